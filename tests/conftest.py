"""Shared fixtures: small generated data roots, the real data where present, a private decode cache."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_DATA = Path(os.environ.get("HW6_SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_ENDO = SHARED_DATA / "endo-real"
REAL_FASHION = SHARED_DATA / "FashionMNIST" / "raw"
TINY_SIZE = (64, 80)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tests never touch the user's decode cache."""
    path = tmp_path_factory.mktemp("hw6-cache")
    os.environ["HW6_CACHE_DIR"] = str(path)
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch-home"))
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic data root in the assignment's layout (64x80 frames)."""
    import synthetic_endo

    return synthetic_endo.generate(tmp_path_factory.mktemp("synthetic") / "root", seed=1, n_train=12, n_val=4,
                                   n_test=4, n_color_train=8, n_color_val=4, size=TINY_SIZE)


@pytest.fixture()
def real_endo() -> Path:
    if not (REAL_ENDO / "segmentation").is_dir():
        pytest.skip(f"the assignment's real data is not at {REAL_ENDO}; set HW6_SHARED_DATA to the folder holding "
                    "endo-real/ to run this test")
    return REAL_ENDO


@pytest.fixture()
def real_fashion() -> Path:
    if not (REAL_FASHION / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real Fashion-MNIST is not at {REAL_FASHION}; set HW6_SHARED_DATA to the folder holding "
                    "FashionMNIST/raw/ to run this test")
    return SHARED_DATA


def run_script(*args: str, cwd: Path = ROOT, timeout: float = 600, env: dict | None = None):
    """Runs a project script in a subprocess with the test's environment; returns CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
