"""unet.py, losses.py and augment.py travel: copied alone into an empty folder, they import and work in a fresh
interpreter that cannot import the project (or torchvision)."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys

from conftest import ROOT

THIN = ("unet.py", "losses.py", "augment.py")
ALLOWED = {"__future__", "math", "torch", "numpy"} | {name[:-3] for name in THIN}

USE_THEM = r"""
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hw6", "torchvision"):
            raise ImportError(f"{name} must not be needed")

sys.meta_path.insert(0, Refuse())
import torch
import augment, losses, unet

model = unet.UNet(3, 4)
images, masks = torch.rand(2, 3, 32, 40), torch.randint(0, 4, (2, 32, 40))
images, masks = augment.augment_batch(images, masks, strong=True)
loss = losses.soft_dice_loss(model(images), masks, batch=True)
loss.backward()
print("ok", round(float(loss), 3), losses.segmentation_metrics(masks, masks, 4)["mean_instrument_dice"])
"""


def test_thin_modules_import_only_torch_numpy_and_each_other():
    for name in THIN:
        tree = ast.parse((ROOT / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= ALLOWED, (name, imported - ALLOWED)


def test_thin_modules_copied_alone_work_in_a_fresh_interpreter(tmp_path):
    for name in THIN:
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run([sys.executable, "-c", USE_THEM], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok ") and result.stdout.strip().endswith("1.0")


USE_DATASETS = r"""
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hw6", "torchvision", "matplotlib"):
            raise ImportError(f"{name} must not be needed")

sys.meta_path.insert(0, Refuse())
import datasets

train = datasets.EndoSegDataset(sys.argv[1], "train", (8, 16))
images, masks = train.batch(datasets.torch.arange(2))
print("ok", tuple(images.shape), train.class_names[0])
try:
    datasets.load_fashion_mnist(sys.argv[1], train=True)
except datasets.DataError as exc:
    print("refused", exc)
"""


def test_datasets_copied_alone_reads_a_data_root_without_the_project(tmp_path):
    from helpers import make_root

    root = make_root(tmp_path / "root")
    shutil.copy(ROOT / "datasets.py", tmp_path / "datasets.py")
    result = subprocess.run([sys.executable, "-c", USE_DATASETS, str(root)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**__import__("os").environ, "HW6_CACHE_DIR": str(tmp_path / "c")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok (2, 3, 8, 16) Background_Tissue")
    assert "FashionMNIST/raw: Fashion-MNIST not found" in result.stdout  # and nothing was created in the root:
    assert not (root / "FashionMNIST").exists()
