"""What hw6.ipynb keeps between its cells, and the few steps each section takes, so that every cell is a line
or two: the data root (the synthetic default generated only when none is given), the profile, the results
folder, and results/summary.json, which every section updates as soon as it finishes (an interrupted notebook
keeps what it had computed). Every segmentation experiment is trained once per seed of the profile."""
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

from hw6 import experiment, label_efficiency, synthetic_endo, train_colorization, train_segmentation, transfer_vgg
from hw6.datasets import DataError, check_root, data_label, is_synthetic
from hw6.engine import read_history, setup_runtime
from hw6.kit import atomic, cli, figures
from hw6.notebook import profiles

SEG = "hw6.train_segmentation:train"
KEPT_OPTIONS = ("recipe", "loss", "dice_reduction", "monitor", "augment", "scheduler", "tta", "min_region", "lr",
                "batch_size", "epochs", "patience", "image_size", "init_from")


@dataclass
class Session:
    data: Path
    profile: dict
    device: str
    fashion_root: Path
    vgg16_weights: Path | None
    out: Path
    parallel: int
    progress: bool
    resume: bool = False
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

    def _common(self) -> dict:
        """Options of every set of runs: a fresh notebook replaces earlier results, a resumed one continues them."""
        return {"device": self.device, "progress": self.progress,
                **({"resume": "latest"} if self.resume else {"overwrite": True})}

    def _single(self, out: Path) -> dict:
        """Options of one run into ``out``: as ``_common``, but a resumed run continues only from its last.pt."""
        return {**self._common(), **(experiment.continuation(out, True) if self.resume else {})}

    def segmentation(self, key: str, folder: str, **options) -> dict:
        """Trains the profile's segmentation settings, with ``options``, once per seed into OUT/folder/seed<s>/;
        draws every seed's training and validation loss in OUT/folder/loss.png; records the spreads."""
        result = experiment.train_over_seeds(SEG, self.data, self.out / folder, self.profile["seeds"], self.parallel,
                                             **{**self.profile["seg"], **self._common(), **options})
        histories = {f"seed {s}": read_history(self.out / folder / f"seed{s}") for s in self.profile["seeds"]}
        figures.curves(histories, ["train_loss", "val_loss"], f"{result['runs'][0]['options']['loss']} loss",
                       f"{key}: training and validation loss per seed ({data_label(self.data)})",
                       self.out / folder / "loss.png")
        return self.record(key, seg_entry(result, folder))

    def sweep(self, key: str, folder: str) -> dict:
        """1(c): the profile's grid with the best recipe (seed 0, validation only), then the chosen
        configuration once per seed into OUT/folder/best/."""
        sweep = self.profile["sweep"]
        options = {**self.profile["seg"], **self._common(), "recipe": "best", "seed": 0,
                   "epochs": sweep.get("epochs", self.profile["seg"]["epochs"])}
        selected = train_segmentation.sweep(self.data, self.out / folder / "grid", sweep["grid"], self.parallel, **options)
        chosen = {k: selected["options"][k] for k in sweep["grid"]}
        entry = self.segmentation(key, f"{folder}/best", recipe="best", **chosen)
        return self.record(key, {**entry, "sweep_rows": selected["details"]["sweep"]["rows"], "chosen": chosen})

    def colorization(self, key: str, folder: str) -> dict:
        metrics = train_colorization.train(self.data, self.out / folder, **self.profile["color"],
                                           **self._single(self.out / folder))
        return self.record(key, {"kind": "colorization", "status": _status(metrics), "dir": folder,
                                 "validation": metrics["validation"], "fit": metrics["fit"],
                                 "details": metrics["details"], "device": metrics["device"]})

    def label_efficiency(self, key: str, folder: str, init_from: Path, **options) -> dict:
        le = self.profile["label_efficiency"]
        epochs = le.get("epochs", self.profile["seg"]["epochs"])
        result = label_efficiency.run(self.data, self.out / folder, init_from, le["fractions"], le["seeds"],
                                      self.parallel, **{**self.profile["seg"], **options, "epochs": epochs,
                                                        **self._common(), "progress": False})
        return self.record(key, {"kind": "label_efficiency", "status": "done", "dir": folder, **result,
                                 "epochs": epochs, "seeds": le["seeds"]})

    def vgg(self, key: str, mode: str) -> dict:
        """Runs one VGG16 experiment, or records it as not run with the reason (no weights, no data); the
        set-up (layers, parameter counts, options) is recorded either way."""
        options = {**self.profile["vgg"][mode], "mode": mode, "weights": self.vgg16_weights,
                   **self._single(self.out / key)}
        setup = {"mode": mode, **transfer_vgg.layer_counts(mode),
                 "options": experiment.jsonable(transfer_vgg.resolve_options(**options))}
        try:
            metrics = transfer_vgg.train(self.fashion_root, self.out / key, **options)
        except DataError as exc:
            print(f"NOT RUN: {exc}")
            return self.record(key, {"kind": "vgg", "status": "not run", "reason": str(exc), "setup": setup})
        return self.record(key, {"kind": "vgg", "status": _status(metrics), "dir": key, "setup": setup,
                                 **{k: metrics[k] for k in ("test", "fit", "details", "device")}})


def _status(metrics: dict) -> str:
    return "done" if metrics["fit"]["complete"] else "incomplete"


def seg_entry(result: dict, folder: str) -> dict:
    """The summary entry of a segmentation experiment trained over seeds (experiment.train_over_seeds)."""
    summary, runs = result["summary"], result["runs"]
    details = runs[0]["details"]
    return {"kind": "segmentation", "status": "done" if all(m["fit"]["complete"] for m in runs) else "incomplete",
            "dir": folder, "seeds": summary["seeds"], "device": summary["device"],
            "class_names": details["class_names"], "image_size": details["image_size"],
            "background_share": sum(runs[0]["test"]["confusion"][0]) / sum(map(sum, runs[0]["test"]["confusion"])),
            "score_size": details["score_size"], "train_frames": details["train_frames"], "init": details["init"],
            "options": {k: summary["options"][k] for k in KEPT_OPTIONS},
            "test": summary.get("test", {}), "validation": summary.get("validation", {}),
            "fits": [{"seed": s, **{k: m["fit"][k] for k in ("best_epoch", "epochs_run", "stop_reason", "train_seconds")}}
                     for s, m in zip(summary["seeds"], runs)]}


def start(data_root: str, profile: str, device: str, fashion_root: str, vgg16_weights: str, out: str,
          parallel: str = "auto", progress: bool = True, resume: bool = False) -> Session:
    """Resolves the notebook's parameters; generates the synthetic default only when ``data_root`` is empty (a
    ``data_root`` that does not exist is an error); starts results/summary.json with the run's provenance.
    ``parallel``: trainings at a time ("auto": the profile's on a GPU, one elsewhere). ``resume``: continue an
    interrupted execution of the same profile: finished trainings are kept (and scored again), unfinished ones
    continue from their last.pt, and a training whose options differ from the stored ones is an error."""
    cli.plain_warnings()
    prof = profiles.get(profile)
    out_dir = Path(out)
    if data_root:
        data = check_root(Path(data_root))  # a mistyped root is an error, never a silent switch to other data
    else:
        data = out_dir.parent / "data" / f"synthetic-{profile}"
        print(f"no DATA_ROOT: the synthetic default data in {data}")
        synthetic_endo.generate(data, **prof["synthetic"])
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = setup_runtime(device)
    workers = (prof["parallel"] if runtime.device.type == "cuda" else 1) if parallel == "auto" else int(parallel)
    session = Session(data, prof, device, Path(fashion_root), Path(vgg16_weights) if vgg16_weights else None,
                      out_dir, workers, progress, resume)
    session.summary = {
        "profile": profile, "profile_description": prof["description"], "device": runtime.describe(),
        "parallel": workers, "data": {"name": data.name, "synthetic": is_synthetic(data), "label": data_label(data)},
        "fashion": Path(fashion_root).name, "vgg16_weights": Path(vgg16_weights).name if vgg16_weights else
        "torchvision cache", "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                          "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                                          "matplotlib": matplotlib.__version__, "pillow": PIL.__version__},
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "wall_seconds": 0.0, "resumed": resume,
        "experiments": {},
    }
    atomic.write_json(session.summary, out_dir / "summary.json")
    banner = "SYNTHETIC data (results are not the assignment's)" if is_synthetic(data) else "the assignment's data"
    print(f"profile {profile}: {prof['description']}\ndata: {data.name} - {banner}\ndevice: {runtime.describe()}, "
          f"{workers} training(s) at a time")
    return session
