"""What hw6.ipynb keeps between its cells: the data root (the synthetic default generated when none is
given), the profile, the results folder and results/summary.json, which every section updates as soon
as it finishes, so an interrupted notebook keeps what it had computed."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy
import PIL
import torch
import torchvision

import atomic
import profiles
import synthetic_endo
import transfer_vgg
from datasets import DataError, check_root, is_synthetic
from engine import setup_runtime


@dataclass
class Session:
    data: Path
    profile: dict
    device: str
    fashion_root: Path
    vgg16_weights: Path | None
    out: Path
    summary: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def record(self, key: str, entry: dict) -> dict:
        """Stores one experiment's summary entry and rewrites results/summary.json at once."""
        self.summary["experiments"][key] = entry
        self.summary["wall_seconds"] = round(time.perf_counter() - self.started, 1)
        atomic.write_json(self.summary, self.out / "summary.json")
        return entry

    def show(self, *relative: str) -> None:
        """Displays figures from the results folder inline (in Jupyter; prints their paths elsewhere)."""
        try:
            from IPython.display import Image, display
        except ImportError:
            print(*(self.out / r for r in relative), sep="\n")
            return
        for r in relative:
            display(Image(filename=str(self.out / r)))

    def vgg(self, key: str, mode: str) -> dict:
        """Runs one VGG16 experiment, or records it as not run with the reason (no weights, no data)."""
        try:
            metrics = transfer_vgg.run(mode, self.fashion_root, self.out / key, weights=self.vgg16_weights,
                                       device=self.device, **self.profile["vgg"][mode])
        except DataError as exc:
            print(f"NOT RUN: {exc}")
            return self.record(key, {"kind": "vgg", "mode": mode, "status": "not run", "reason": str(exc)})
        return self.record(key, {"kind": "vgg", "status": "done" if metrics["complete"] else "incomplete", "dir": key,
                                 **{k: v for k, v in metrics.items() if k != "confusion"}})


def start(data_root: str, profile: str, device: str, fashion_root: str, vgg16_weights: str, out: str) -> Session:
    """Resolves the notebook's parameters; generates the synthetic default only when ``data_root`` is empty (a
    ``data_root`` that does not exist is an error); starts results/summary.json with the run's provenance."""
    prof = profiles.get(profile)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if data_root:
        data = check_root(Path(data_root))  # a mistyped root is an error, never a silent switch to other data
    else:
        data = Path("data") / f"synthetic-{profile}" if out == "results" else out_dir.parent / f"synthetic-{profile}"
        if not (data / "SYNTHETIC.json").is_file():
            print(f"generating the synthetic default data in {data} ...")
            synthetic_endo.generate(data, **prof["synthetic"])
    synthetic = is_synthetic(data)
    runtime = setup_runtime(device)
    session = Session(data, prof, device, Path(fashion_root),
                      Path(vgg16_weights) if vgg16_weights else None, out_dir)
    session.summary = {
        "profile": profile, "profile_description": prof["description"], "device": runtime.describe(),
        "data_root": str(data.resolve()), "synthetic": synthetic, "fashion_root": str(Path(fashion_root).resolve()),
        "vgg16_weights": vgg16_weights or "torchvision cache/download",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                     "matplotlib": matplotlib.__version__, "pillow": PIL.__version__},
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "wall_seconds": 0.0, "experiments": {},
    }
    atomic.write_json(session.summary, out_dir / "summary.json")
    banner = "SYNTHETIC data (results are not the assignment's)" if synthetic else "the assignment's data"
    print(f"profile {profile}: {prof['description']}\ndata: {data} - {banner}\ndevice: {runtime.describe()}")
    return session
