"""What hw6.ipynb's cells share, as plain functions with explicit arguments: the data root (the synthetic
default generated only when none is given), results/summary.json (every section records its entry as soon as
it finishes, so an interrupted notebook keeps what it had computed), each section's summary entry, and the
figures it shows. The cells themselves call the experiments' ``train`` functions."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import matplotlib
import numpy
import PIL
import PIL.Image
import torch
import torchvision

from hw6 import experiment, inference, synthetic_endo, train_colorization, train_segmentation, transfer_vgg
from hw6.datasets import ColorizationDataset, DataError, EndoSegDataset, check_root, data_label, is_synthetic
from hw6.engine import read_history, setup_runtime
from hw6.kit import atomic, cli, figures
from hw6.kit.errors import DeviceUnavailable
from hw6.notebook.answers import DEPENDS, count, label

# The generated default data of each profile, used only when no DATA_ROOT is given (counts and stored size).
SYNTHETIC = {
    "full": dict(n_train=300, n_val=50, n_test=50, n_color_train=1584, n_color_val=50, size=(256, 320)),
    "quick": dict(n_train=200, n_val=40, n_test=40, n_color_train=400, n_color_val=40, size=(256, 320)),
    "smoke": dict(n_train=20, n_val=4, n_test=4, n_color_train=8, n_color_val=4, size=(64, 80)),
}
KEPT_OPTIONS = ("recipe", "loss", "dice_batch", "monitor", "augment", "scheduler", "tta", "min_region", "lr",
                "batch_size", "epochs", "patience", "image_size", "init_from")


def check_parameters(profile: str, profiles: dict, device: str, parallel: str, out: str, data_root: str,
                     vgg16_weights: str) -> None:
    """The notebook's parameters, checked before any cell trains: each bad one is one line naming its HW6_
    variable (``tools/run_notebook.py`` runs the same check before it starts the kernel)."""
    if profile not in profiles:
        raise cli.UsageError(f"HW6_PROFILE={profile}: choose one of {', '.join(profiles)}")
    try:
        cli.device(device)
        setup_runtime(device)
    except (argparse.ArgumentTypeError, DeviceUnavailable) as exc:
        raise cli.UsageError(f"HW6_DEVICE={device}: {exc}") from None
    most = 16 if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else os.cpu_count() or 1
    if parallel != "auto" and not (parallel.isdigit() and 1 <= int(parallel) <= most):
        raise cli.UsageError(f"HW6_PARALLEL={parallel}: trainings at a time must be auto or a whole number from 1 to "
                             f"{most} on this device")
    if out and Path(out).exists() and not Path(out).is_dir():
        raise cli.UsageError(f"HW6_OUT={out}: is an existing file, not a folder")
    if out and Path(out).resolve() == PUBLISHED:
        raise cli.UsageError(f"HW6_OUT={out}: is the project's published results; a run writes its own folder "
                             "(leave HW6_OUT empty), and `make publish RUN=<its folder>` replaces the published one")
    if data_root and not Path(data_root).is_dir():
        raise cli.UsageError(f"HW6_DATA_ROOT={data_root}: no such folder")
    if vgg16_weights and not Path(vgg16_weights).is_file():
        raise cli.UsageError(f"HW6_VGG16_WEIGHTS={vgg16_weights}: no such file")


PUBLISHED = Path(__file__).resolve().parents[1] / "results"  # the committed answers: written by publish alone


def run_folder(out: str, profile: str, data_root: str, download: bool) -> Path:
    """Where an execution writes (HW6_OUT): ``out`` if given, else runs/<profile>-<data>/results, one folder
    per profile and data, ignored by git, beside which the executed notebook, report.pdf and plots/ go."""
    if out:
        return Path(out)
    name = Path(data_root).name if data_root else "endo-course" if download else "synthetic"
    return Path("runs") / f"{profile}-{name}" / "results"


def data_root(data_root: str, profile: str, out: Path) -> Path:
    """The data every segmentation section trains on: ``data_root`` checked (a mistyped root is an error,
    never a silent switch to other data), or, when it is empty, the synthetic default generated beside
    ``out``."""
    cli.plain_warnings()
    if data_root:
        return check_root(Path(data_root))
    data = out.parent / "data" / f"synthetic-{profile}"
    print(f"no DATA_ROOT: the synthetic default data ({data.name}, generated beside the results folder)")
    return synthetic_endo.generate(data, **SYNTHETIC[profile])


def trainings_at_a_time(parallel: str, device: str, profile_parallel: int) -> int:
    """``parallel`` ("auto": the profile's number on a GPU, one elsewhere) as a number of trainings at a time."""
    if parallel != "auto":
        return int(parallel)
    return profile_parallel if setup_runtime(device).device.type == "cuda" else 1


def continue_or_replace(resume: bool, out: Path | None = None) -> dict:
    """The options that make a training continue an interrupted execution (``resume``) or replace earlier
    results: for a set of runs (seeds, a grid, a curve; ``out`` None) and for one run into ``out``."""
    if out is not None:
        return experiment.continuation(out, True) if resume else {"overwrite": True}
    return {"resume": "latest"} if resume else {"overwrite": True}


def stored_size(data: Path) -> tuple[int, int]:
    """(H, W) of the data's stored masks (its first test mask): the size every segmentation score is taken at."""
    first = min((Path(data) / "segmentation" / "test").glob("*/*_mask.png"), default=None)
    if first is None:
        raise DataError(f"{data}: no segmentation/test/<i>/<i>_mask.png")
    with PIL.Image.open(first) as mask:
        return mask.height, mask.width


def describe(scale: dict, stored: tuple[int, int]) -> str:
    """The budget in words; ``stored``: the masks' stored size, at which every segmentation score is taken."""
    stored_size = "x".join(map(str, stored))
    size = "x".join(map(str, scale["image_size"])) if scale["image_size"] else stored_size
    color = f"{scale['color_images']:,}" if scale["color_images"] else "all"
    vgg = f"{scale['vgg_images']:,}" if scale["vgg_images"] else "all 60,000"
    return (f"{size} frames (scored at {stored_size}), at most {scale['epochs']} epochs per segmentation run with "
            f"early stopping after {scale['patience']}, seeds {', '.join(map(str, scale['seeds']))}, {color} "
            f"colorization images for at most {scale['color_epochs']} epochs, VGG16 on {vgg} training images")


def start(out: Path, profile: str, scale: dict, data: Path, device: str, parallel: int, fashion_root: str,
          vgg16_weights: str, resume: bool, replace: bool = False) -> dict:
    """The summary of this execution, written to OUT/summary.json: the provenance, and the entries of an
    earlier summary of the same profile and data (so that re-running one section updates only its entry).
    An earlier summary of another profile or data is refused (one line, nothing written) unless ``replace``."""
    out.mkdir(parents=True, exist_ok=True)
    runtime = setup_runtime(device)
    summary = {
        "profile": profile, "profile_description": describe(scale, stored_size(data)), "device": runtime.describe(),
        "parallel": parallel, "data": {"name": data.name, "synthetic": is_synthetic(data), "label": data_label(data)},
        "fashion": Path(fashion_root).name, "vgg16_weights": Path(vgg16_weights).name if vgg16_weights else
        "torchvision cache", "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                          "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                                          "matplotlib": matplotlib.__version__, "pillow": PIL.__version__},
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "train_seconds": 0.0, "resumed": resume,
        "baselines": baselines(data, scale["image_size"]), "experiments": {},
    }
    earlier = out / "summary.json"
    if earlier.is_file():
        old = json.loads(earlier.read_text())
        if (old.get("profile"), old.get("data")) == (profile, summary["data"]):
            summary["experiments"] = old.get("experiments", {})
        elif not replace:
            raise cli.UsageError(f"{earlier}: holds the {old.get('profile')} profile's results on "
                                 f"{old.get('data', {}).get('name')}, not {profile} on {data.name}; choose another "
                                 "HW6_OUT, or set HW6_REPLACE=1 to replace them")
    atomic.write_json(summary, earlier)
    banner = "SYNTHETIC data (results are not the assignment's)" if is_synthetic(data) else "the assignment's data"
    print(f"profile {profile}: {summary['profile_description']}\ndata: {data.name} - {banner}\n"
          f"device: {runtime.describe()}, {count(parallel, 'training')} at a time")
    return summary


def baselines(data: Path, color_size: tuple[int, int] | None) -> dict:
    """What needs no model, beside what the models score: the all-background prediction on the test split
    (``inference.background_everywhere``) and, on the colorization validation images at ``color_size`` (1(d)'s
    training size), the grey copy and the constant tint fitted on the training images
    (``train_colorization.no_model_psnr``)."""
    color = [ColorizationDataset(data, split, color_size) for split in ("train", "validation")]
    return {"segmentation": {"split": "test", **inference.background_everywhere(EndoSegDataset(data, "test"))},
            "colorization": {"split": "validation", "image_size": list(color[1].grey.shape[-2:]),
                             **train_colorization.no_model_psnr(*color)}}


def options_hash(entry: dict) -> str:
    """A short hash of what a section trained with (its options, seeds and study), by which a section built on
    it can tell it was re-run with other settings."""
    shaping = {k: entry.get(k) for k in ("options", "seeds", "setup", "study", "rows")}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record(summary: dict, out: Path, key: str, entry: dict) -> dict:
    """Stores one section's entry in ``summary`` with its options hash and those of the sections it builds on
    (``DEPENDS``, as they were when it ran), and rewrites OUT/summary.json at once."""
    entry["options_hash"] = options_hash(entry)
    entry["inputs"] = {dep: summary["experiments"][dep].get("options_hash")
                       for dep in DEPENDS.get(key, []) if dep in summary["experiments"]}
    summary["experiments"][key] = entry
    summary["train_seconds"] = round(sum(e.get("train_seconds", 0) for e in summary["experiments"].values()), 1)
    atomic.write_json(summary, out / "summary.json")
    return entry


def show(out: Path, *relative: str) -> None:
    """Displays figures from the results folder inline (in Jupyter; prints their paths elsewhere)."""
    try:
        from IPython.display import Image, display
    except ImportError:
        print(*(out / r for r in relative), sep="\n")
        return
    for r in relative:
        display(Image(filename=str(out / r)))


def _status(*metrics: dict) -> str:
    return "done" if all(m["fit"]["complete"] for m in metrics) else "incomplete"


def segmentation(summary: dict, out: Path, key: str, folder: str, result: dict, **extra) -> dict:
    """Records a segmentation section trained over seeds (``experiment.train_over_seeds``' result) and draws
    every seed's training and validation loss in OUT/folder/loss.png."""
    s, runs = result["summary"], result["runs"]
    histories = {f"seed {seed}": read_history(out / folder / f"seed{seed}") for seed in s["seeds"]}
    figures.curves(histories, ["train_loss", "val_loss"], train_segmentation.LOSS_WORDS[s["options"]["loss"]],
                   f"{label(key)}: training and validation loss per seed{note(s)}", out / folder / "loss.png")
    d, confusion = runs[0]["details"], runs[0]["test"]["confusion"]
    reused = any(e.get("dir") == folder for k, e in summary["experiments"].items() if k != key)  # counted once
    seconds = 0.0 if reused else (sum(m["fit"]["train_seconds"] for m in runs)  # the epochs' own seconds
                                  + sum(r["train_seconds"] for r in extra.get("study", {}).get("rows", [])))
    entry = {"kind": "segmentation", "status": _status(*runs), "dir": folder, "seeds": s["seeds"],
             "device": s["device"], "class_names": d["class_names"], "image_size": d["image_size"],
             "background_share": sum(confusion[0]) / sum(map(sum, confusion)), "score_size": d["score_size"],
             "train_frames": d["train_frames"], "init": d["init"],
             "options": {k: s["options"][k] for k in KEPT_OPTIONS}, "test": s.get("test", {}),
             "validation": s.get("validation", {}), "train_seconds": seconds,
             "fits": [{"seed": seed, **{k: m["fit"][k] for k in ("best_epoch", "epochs_run", "stop_reason",
                                                                 "train_seconds")}, **slopes(histories[f"seed {seed}"])}
                      for seed, m in zip(s["seeds"], runs)], **extra}
    return record(summary, out, key, entry)


def ablation(summary: dict, out: Path, key: str, folder: str, rows: list[dict], base: str) -> dict:
    """Records 1(c)'s recipe ablation (``recipe_ablation.run``'s rows, trained into OUT/folder
    over the seeds of the runs in OUT/base its steps start from) and draws the validation strict Dice per
    epoch of both sets of runs in OUT/folder/val_dice.png: the same quantity for every run, whatever its loss."""
    seeds = json.loads((out / folder / "seeds.json").read_text())
    histories = {f"{name}, seed {seed}": read_history(out / where / f"seed{seed}") for name, where in
                 (("study's choice", base), ("Dice + cross-entropy", folder)) for seed in seeds["seeds"]}
    figures.curves(histories, ["val_present_dice"], "validation strict Dice, classes present",
                   f"1(c) recipe: validation strict Dice per epoch, before and after the loss change{note(seeds)}",
                   out / folder / "val_dice.png")
    return record(summary, out, key, {"kind": "ablation", "status": "done", "dir": folder, "base": base,
                                      "seeds": seeds["seeds"], "rows": rows,
                                      "kept_epochs": kept_epochs(out / folder, seeds["seeds"]),
                                      "train_seconds": sum(seeds["train_seconds"])})


def kept_epochs(folder: Path, seeds: list[int]) -> dict[str, list[int]]:
    """Per seed, the epoch whose weights each checkpoint rule kept: monitor -> epochs, the run's own monitor
    first, as the engine recorded them in each seed's metrics.json (``fit.kept_epochs``)."""
    kept: dict[str, list[int]] = {}
    for seed in seeds:
        for monitor, epoch in json.loads((folder / f"seed{seed}" / "metrics.json").read_text())["fit"]["kept_epochs"].items():
            kept.setdefault(monitor, []).append(epoch)
    return kept


def note(record: dict) -> str:
    return " (synthetic data)" if record["data"]["synthetic"] else ""


def slopes(history: list[dict], last: int = 3) -> dict:
    """Where the losses ended and how they still moved: the last epoch's training and validation loss, and
    their mean change per epoch over the run's ``last`` epochs (None when it ran fewer)."""
    keys = ("train_loss", "val_loss")
    return {**{f"final_{k}": history[-1][k] if history else None for k in keys},
            **{f"{k}_slope": (history[-1][k] - history[-1 - last][k]) / last if len(history) > last else None
               for k in keys}}


def colorization(summary: dict, out: Path, key: str, folder: str, metrics: dict) -> dict:
    history = read_history(out / folder)
    return record(summary, out, key, {"kind": "colorization", "status": _status(metrics), "dir": folder,
                                      "options": {k: metrics["options"][k] for k in ("batch_size", "lr", "epochs",
                                                                                     "patience", "image_size")},
                                      "val_loss_per_epoch": [r["val_loss"] for r in history],
                                      "train_loss_per_epoch": [r["train_loss"] for r in history],
                                      **{k: metrics[k] for k in ("validation", "fit", "details", "device")},
                                      "train_seconds": metrics["fit"]["train_seconds"]})


def label_efficiency(summary: dict, out: Path, key: str, folder: str, result: dict, epochs: int,
                     seeds: list[int]) -> dict:
    return record(summary, out, key, {"kind": "label_efficiency", "status": "done", "dir": folder, **result,
                                      "epochs": epochs, "seeds": seeds})


def vgg(summary: dict, out: Path, key: str, options: dict, metrics: dict | DataError) -> dict:
    """Records a VGG16 section: its set-up (layers, parameter counts, options) either way, and its results, or
    the reason it was not run (``metrics`` is then the DataError: no weights, no data)."""
    mode = options["mode"]
    setup = {"mode": mode, **transfer_vgg.layer_counts(mode),
             "options": experiment.jsonable(transfer_vgg.resolve_options(**options))}
    if isinstance(metrics, DataError):
        return record(summary, out, key, {"kind": "vgg", "status": "not run", "reason": str(metrics), "setup": setup})
    return record(summary, out, key, {"kind": "vgg", "status": _status(metrics), "dir": key, "setup": setup,
                                      "accuracy_per_epoch": [r["test_accuracy"] for r in read_history(out / key)],
                                      "train_seconds": metrics["fit"]["train_seconds"],
                                      **{k: metrics[k] for k in ("test", "fit", "details", "device")}})
