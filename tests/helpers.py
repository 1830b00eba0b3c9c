"""Hand-made data roots for tests: tiny, exact, and easy to damage on purpose."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
from PIL import Image

GREYS = [0, 32, 64]
NAMES = ["Background_Tissue", "Bipolar_Forceps", "Other"]


def write_pair(folder: Path, index: int, rng: np.random.Generator, size=(16, 24), greys=GREYS) -> None:
    sample = folder / str(index)
    sample.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(sample / f"{index}_input.jpg")
    mask = np.zeros(size, dtype=np.uint8)
    mask[: size[0] // 2, : size[1] // 2] = greys[1 + index % (len(greys) - 1)]
    Image.fromarray(mask).save(sample / f"{index}_mask.png")


def write_color_pair(folder: Path, index: int, rng: np.random.Generator, size=(16, 24)) -> None:
    sample = folder / str(index)
    sample.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(sample / f"{index}_input.jpg")
    Image.fromarray(rgb).convert("L").save(sample / f"{index}_gray.jpg")


def make_root(root: Path, first_index: int = 0, n: int = 3, size=(16, 24), mapping: object = None) -> Path:
    """A complete data root with ``n`` samples per split, indices first_index, first_index + 2, ..."""
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for k in range(n):
            write_pair(root / "segmentation" / split, first_index + 2 * k, rng, size)
    for split, start in (("train_cor", 0), ("validation_cor", 1)):
        for k in range(n):
            write_color_pair(root / "colorization" / split, start + k, rng, size)
    mapping = {str(g): name for g, name in zip(GREYS, NAMES)} if mapping is None else mapping
    (root / "mapping.json").write_text(mapping if isinstance(mapping, str) else json.dumps(mapping))
    return root


def meet_sibling(data: str, out: str, **options) -> dict:
    """A stand-in training for experiment.run_jobs: marks its start, then waits (up to a minute) until its
    sibling job has started too; returns whether it saw it, so only jobs that really ran at once both pass."""
    import os
    import time

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "started").write_text(str(os.getpid()))
    sibling = out.parent / options["sibling"] / "started"
    deadline = time.monotonic() + 60
    while not sibling.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"pid": os.getpid(), "saw_sibling": sibling.is_file(), "threads": options.get("threads")}


def interrupt_after_an_epoch(data: str, out: str, **options) -> dict:
    """A job for experiment.run_jobs: trains one epoch of segmentation into ``out``, then sends its parent the
    Ctrl-C of a user (SIGINT) and waits to be stopped."""
    import os
    import signal
    import time

    from hw6 import train_segmentation

    train_segmentation.train(data, out, epochs=1, batch_size=2, progress=False, seed=options["seed"])
    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(300)
    return {}


def wait_to_be_stopped(data: str, out: str, **options) -> dict:
    """A job for experiment.run_jobs: takes its folder, marks that it started, and waits to be stopped."""
    import time

    Path(out).mkdir(parents=True)
    (Path(out) / "started").write_text("yes")
    time.sleep(300)
    return {}


def ctrl_c_enabled() -> None:
    """A child's ``preexec_fn``: SIGINT back to its default, so that Python installs its Ctrl-C handler. A test
    suite started with SIGINT ignored (in the background of a non-interactive shell, or under nohup) passes
    that on to its children, and a Python started so never sees Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
