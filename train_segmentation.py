"""Experiments 1(a)-1(c) and 1(e): U-Net instrument segmentation with a Dice loss.

    python train_segmentation.py --data ROOT --out runs/seg                      # 1(a), assignment settings
    python train_segmentation.py --data ROOT --out runs/seg-aug --augment flips  # 1(b)
    python train_segmentation.py --data ROOT --out runs/sweep --sweep            # 1(c)
    python train_segmentation.py --data ROOT --out runs/best --recipe best       # the better recipe
    python train_segmentation.py --data ROOT --out runs/ft --init-from runs/color/best.pt   # 1(e)

Writes OUT/history.json|csv, best.pt, last.pt, metrics.json (test split: the assignment's Dice beside the
strict per-class Dice and IoU), loss.png, predictions.png and confusion.png.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import torch

import atomic
import cli
import figures
from augment import augment_batch
from datasets import EndoSegDataset, InMemoryLoader, is_synthetic, select_fraction
from engine import (SCHEDULERS, CheckpointError, FitConfig, Runtime, adam, all_reduce_sum, fit, load_checkpoint,
                    lr_scheduler, prepare_run, seed_everything, setup_runtime, unwrap)
from inference import logits_to_classes, predict, scoring_mode, segmentation_logits
from losses import DICE_REDUCTIONS, SegmentationMeter, dice_ce_loss, soft_dice_loss
from unet import DOWNSAMPLING, UNet

LOSSES = {"dice": soft_dice_loss, "dice_ce": dice_ce_loss}
AUGMENTATIONS = ("none", "flips", "strong")  # flips: 1(b)'s flips + colour jitter; strong: + affine

# The assignment's settings; every run starts from these, then a recipe, then explicit overrides.
DEFAULTS = dict(epochs=200, patience=20, batch_size=10, lr=1e-3, augment="none", image_size=None, limit=None,
                init_from=None, monitor="val_loss", loss="dice", dice_reduction="batch", scheduler="none", tta=False,
                min_region=0.0, full_size_epochs=0, label_fraction=1.0, batch_norm=True, seed=0, device="auto",
                precision="auto", workers=0, resume=None, overwrite=False, progress=True)
RECIPES = {
    "assignment": {},
    # Chosen step by step on the validation split of the real data (ablation.py; results/ablation/ablation.md):
    # cross-entropy beside Dice gives every instrument pixel a gradient; checkpoints are selected on strict
    # instrument Dice, not on the loss; an instrument class covering under 2% of a frame is dropped from it.
    "best": dict(loss="dice_ce", monitor="val_mean_instrument_dice", min_region=0.02),
}
MONITORS = ("val_loss", "val_mean_instrument_dice", "val_assignment_dice")


def resolve_options(recipe: str = "assignment", **overrides) -> dict:
    if recipe not in RECIPES:
        raise cli.UsageError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    options = {**DEFAULTS, **RECIPES[recipe], **overrides}
    for key, allowed in (("loss", LOSSES), ("augment", AUGMENTATIONS), ("scheduler", SCHEDULERS),
                         ("monitor", MONITORS), ("dice_reduction", DICE_REDUCTIONS)):
        if options[key] not in allowed:
            raise cli.UsageError(f"{key} must be one of {', '.join(allowed)}, got {options[key]!r}")
    if options["full_size_epochs"] and options["image_size"] is None:
        raise cli.UsageError("full_size_epochs needs an image_size to train at before the stored size")
    options["recipe"] = recipe
    return options


def segmentation_loss(o: dict):
    """The run's training loss ``loss(logits, masks) -> scalar``, with its Dice reduction."""
    loss = LOSSES[o["loss"]]
    return lambda logits, masks: loss(logits, masks, reduction=o["dice_reduction"])


# -------------------------------------------------------------------------------------------- evaluation
def evaluate_split(model: torch.nn.Module, dataset: EndoSegDataset, runtime: Runtime, batch_size: int,
                   loss_fn=soft_dice_loss, tta: bool = False, min_region: float = 0.0) -> dict:
    """Every metric of losses.SegmentationMeter over a whole split, scored against the masks at the size they
    are stored at (``inference``: float32, logits upsampled before the argmax), and ``loss``, the mean over
    images of the training loss of each batch at the model's input size. Batches are the split's frames in
    index order, and torchrun ranks take whole batches in turn, then sum: every number, the batch-wide loss
    included, equals a single process's."""
    model = unwrap(model)
    meter = SegmentationMeter(dataset.num_classes, len(dataset))
    loss_sum = torch.zeros((), dtype=torch.float64)
    with scoring_mode(model, runtime.device):
        for batch in torch.arange(len(dataset)).split(batch_size)[runtime.rank::runtime.world_size]:
            logits = segmentation_logits(model, dataset.images[batch].to(runtime.device), tta)
            loss_sum += loss_fn(logits, dataset.masks[batch].to(runtime.device).long()).double().cpu() * len(batch)
            score_batch(meter, logits, [dataset.native_masks[i] for i in batch], batch, min_region)
    all_reduce_sum([loss_sum, *meter.state()])
    return {"loss": float(loss_sum / len(dataset)), **meter.compute()}


def score_batch(meter: SegmentationMeter, logits: torch.Tensor, native_masks: list[torch.Tensor],
                positions: torch.Tensor, min_region: float) -> None:
    """Scores a batch's logits against its masks at their stored sizes (one resize when they share one)."""
    sizes = {tuple(mask.shape) for mask in native_masks}
    groups = [range(len(native_masks))] if len(sizes) == 1 else [[k] for k in range(len(native_masks))]
    for group in groups:
        truth = torch.stack([native_masks[k] for k in group]).to(logits.device).long()
        pred = logits_to_classes(logits[list(group)], tuple(truth.shape[-2:]), min_region)
        meter.update(pred, truth, positions[list(group)])


def evaluate_as_trained(model: torch.nn.Module, dataset: EndoSegDataset, runtime: Runtime, o: dict) -> dict:
    """``evaluate_split`` with a run's own options (batch size, loss, TTA, class-region floor)."""
    return evaluate_split(model, dataset, runtime, o["batch_size"], segmentation_loss(o), o["tta"], o["min_region"])


def check_batch_norm(frames: int, batch_size: int, size: tuple[int, int]) -> None:
    """BatchNorm needs two values per channel in every training batch; the U-Net's bottleneck has
    (H / 8) x (W / 8) of them per frame, and an epoch's last batch may hold a single frame."""
    smallest = min(frames, batch_size) if frames % batch_size == 0 or frames < batch_size else frames % batch_size
    values = smallest * (size[0] // DOWNSAMPLING) * (size[1] // DOWNSAMPLING)
    if values < 2:
        raise cli.UsageError(f"--image-size {size[0]}x{size[1]} with a batch of {smallest} frame(s) leaves BatchNorm "
                             f"{values} value per channel at the U-Net's bottleneck; use a larger image or batch, or "
                             f"--no-batch-norm")


def validation_numbers(metrics: dict) -> dict:
    """The scalars of an evaluation that go into the per-epoch history."""
    return {"val_loss": metrics["loss"], "val_assignment_dice": metrics["assignment_dice"],
            "val_mean_instrument_dice": metrics["mean_instrument_dice"], "val_pixel_accuracy": metrics["pixel_accuracy"]}


# ------------------------------------------------------------------------------------ progressive resizing
class SizePhases:
    """Progressive resizing: the epochs before ``switch`` train (and evaluate) on the frames resized to the
    run's image size, the epochs from ``switch`` on the frames at the size they are stored at. ``loaders``
    and the datasets of each phase are indexed by ``phase(epoch)``; ``set_epoch`` selects the phase and
    forwards the epoch to its loader (which draws that epoch's order)."""

    def __init__(self, loaders: list[InMemoryLoader], switch: int) -> None:
        self.loaders, self.switch, self.current = loaders, switch, 0

    def phase(self, epoch: int) -> int:
        return int(epoch >= self.switch and len(self.loaders) > 1)

    def set_epoch(self, epoch: int) -> None:
        self.current = self.phase(epoch)
        self.loaders[self.current].set_epoch(epoch)

    def __iter__(self):
        return iter(self.loaders[self.current])

    def __len__(self) -> int:
        return len(self.loaders[self.current])


def input_size(meta: dict, epoch: int) -> tuple[int, int]:
    """The frame size (H, W) a segmentation checkpoint's model was trained at in ``epoch``
    (``meta["input_sizes"]``: [first epoch, H, W] per phase)."""
    return tuple(next(size for first, *size in reversed(meta["input_sizes"]) if epoch >= first))


# -------------------------------------------------------------------------------------------- pre-training
def load_pretrained(model: UNet, path: Path) -> dict:
    """Initialises ``model`` from any U-Net checkpoint of this project (typically colorization's best.pt).

    Tensors whose name and shape match are loaded. The first convolution of a 1-channel (grey) model is
    adapted to 3 channels by repeating its kernel over RGB divided by 3, so that a grey frame repeated on
    three channels gives exactly the colorization model's activations. Everything else (the 3 -> C head)
    keeps its fresh initialisation. Returns {"loaded": [...], "adapted": [...], "new": [...]}.
    """
    ckpt = load_checkpoint(path)
    arch = ckpt["meta"].get("arch", {})
    if arch.get("batch_norm") != model.batch_norm:
        raise CheckpointError(f"{path}: checkpoint has batch_norm={arch.get('batch_norm')}, model has "
                              f"batch_norm={model.batch_norm}; architectures differ")
    source, own = ckpt["model"], model.state_dict()
    report: dict[str, list[str]] = {"loaded": [], "adapted": [], "new": []}
    first_conv = "enc1.0.weight"
    for name, tensor in own.items():
        src = source.get(name)
        if src is not None and src.shape == tensor.shape:
            own[name] = src
            report["loaded"].append(name)
        elif (name == first_conv and src is not None and src.shape[1] == 1
              and src.shape[0] == tensor.shape[0] and src.shape[2:] == tensor.shape[2:]):
            own[name] = src.repeat(1, tensor.shape[1], 1, 1) / tensor.shape[1]
            report["adapted"].append(name)
        else:
            report["new"].append(name)
    if not report["loaded"]:
        raise CheckpointError(f"{path}: no tensor of the checkpoint fits this U-Net")
    model.load_state_dict(own)
    return report


# ----------------------------------------------------------------------------------------------- training
def train(data: str | Path, out: str | Path, recipe: str = "assignment", test: bool = True, **overrides) -> dict:
    """Trains one segmentation model and writes every output file; returns the metrics.json content.

    ``overrides``: any key of DEFAULTS (epochs, batch_size, lr, augment, image_size=(H, W), limit, monitor,
    loss, dice_reduction, scheduler, tta, full_size_epochs, label_fraction, init_from, seed, device, precision,
    ...). ``test=False`` skips the test split (the sweep looks at it only for the configuration it selects).
    """
    o = resolve_options(recipe, **overrides)
    out = Path(out)
    t0 = time.perf_counter()
    shaping = {**o, "data": str(Path(data).resolve())}
    resume = prepare_run(out, o["resume"], o["overwrite"], "segmentation", shaping)
    runtime = setup_runtime(o["device"], o["precision"], o["workers"])
    seed_everything(o["seed"])
    sizes = [o["image_size"]] + ([None] if o["full_size_epochs"] else [])  # one entry per phase
    phases_data = [{s: EndoSegDataset(data, s, size) for s in ("train", "validation", "test")} for size in sizes]
    train_ds = phases_data[0]["train"]
    positions = list(range(len(train_ds)))[: o["limit"]]
    if o["label_fraction"] < 1:
        chosen = select_fraction(train_ds.masks[positions], o["label_fraction"], o["seed"])
        positions = [positions[i] for i in chosen]
    if o["batch_size"] > len(positions):
        warnings.warn(f"batch size {o['batch_size']} is larger than the {len(positions)} training frames; "
                      f"each epoch is one batch of {len(positions)}", stacklevel=2)
    if o["batch_norm"]:
        check_batch_norm(len(positions), o["batch_size"], tuple(train_ds.images.shape[-2:]))
    model = UNet(3, train_ds.num_classes, o["batch_norm"])
    init_report = load_pretrained(model, Path(o["init_from"])) if o["init_from"] else None
    if init_report and runtime.is_main:
        print(f"init from {o['init_from']}: loaded {len(init_report['loaded'])} tensors, adapted "
              f"{init_report['adapted']}, new {init_report['new']}")
    model = model.to(runtime.device, memory_format=torch.channels_last)
    if runtime.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = adam(model.parameters(), o["lr"])
    scheduler = lr_scheduler(optimizer, o["scheduler"], o["epochs"])
    switch = o["epochs"] - o["full_size_epochs"] + 1
    batches = SizePhases([InMemoryLoader(d["train"], o["batch_size"], shuffle=True, seed=o["seed"], rank=runtime.rank,
                                         world_size=runtime.world_size, indices=positions,
                                         pin_memory=runtime.device.type == "cuda") for d in phases_data], switch)
    loss_fn = segmentation_loss(o)

    def train_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, masks = batch[0].float() / 255, batch[1].long()
        if o["augment"] != "none":
            images, masks = augment_batch(images, masks, strong=o["augment"] == "strong")
        return loss_fn(model(images.contiguous(memory_format=torch.channels_last)), masks)

    def evaluate(model: torch.nn.Module) -> dict:
        full = evaluate_as_trained(model, phases_data[batches.current]["validation"], runtime, o)
        return {**validation_numbers(full), "validation": full}

    input_sizes = [[1 if k == 0 else switch, *d["train"].images.shape[-2:]] for k, d in enumerate(phases_data)]
    meta = {"kind": "segmentation", "arch": unwrap(model).arch, "class_names": train_ds.class_names,
            "grey_levels": train_ds.grey_levels, "input_sizes": input_sizes, "tta": o["tta"],
            "min_region": o["min_region"], "options": json.loads(json.dumps(shaping, default=str))}
    config = FitConfig(out=out, epochs=o["epochs"], patience=o["patience"], monitor=o["monitor"],
                       maximize=not o["monitor"].endswith("loss"),
                       resume=resume, progress=o["progress"])
    result = fit(model, optimizer, batches, train_loss, evaluate, config, runtime, meta, scheduler)
    final = phases_data[batches.phase(max(result.best_epoch, 1))]  # the phase whose weights the model holds
    metrics = {
        "experiment": "segmentation", "data_root": str(Path(data).resolve()), "synthetic": is_synthetic(data),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in o.items()},
        "device": runtime.describe(), "class_names": train_ds.class_names, "train_frames": len(positions),
        "image_size": list(final["train"].images.shape[-2:]), "input_sizes": input_sizes,
        "score_size": list(final["test"].native_masks[0].shape), "init": init_report,
        "fit": {"monitor": o["monitor"], "best_epoch": result.best_epoch, "best_value": result.best_value,
                "epochs_run": len(result.history), "stop_reason": result.stop_reason, "complete": result.complete,
                "train_seconds": round(sum(r["seconds"] for r in result.history), 1)},
        "validation": (result.evaluation or {}).get("validation"),  # None when no epoch finished
    }
    if runtime.is_main:
        figures.curves({"": result.history}, ["train_loss", "val_loss"], f"{o['loss']} loss",
                       f"Segmentation loss ({_data_label(data)})", out / "loss.png")
    if test and metrics["validation"] is not None:  # never score untrained weights
        metrics["test"] = test_results(model, final["test"], runtime, o, out, _data_label(data))
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    if runtime.is_main:
        atomic.write_json(metrics, out / "metrics.json")
    return metrics


def test_results(model: torch.nn.Module, test_ds: EndoSegDataset, runtime: Runtime, o: dict, out: Path,
                 data_label: str) -> dict:
    """Test-split metrics, and the prediction and confusion figures (rank 0 writes)."""
    metrics = evaluate_as_trained(model, test_ds, runtime, o)
    if runtime.is_main:
        show = torch.linspace(0, len(test_ds) - 1, min(4, len(test_ds))).long().tolist()
        truth = [test_ds.native_masks[i] for i in show]
        pred = [predict(unwrap(model), test_ds.images[i:i + 1].to(runtime.device), tuple(t.shape), o["tta"],
                        o["min_region"])[0].cpu() for i, t in zip(show, truth)]
        figures.predictions(test_ds.images[show], truth, pred, test_ds.class_names, out / "predictions.png",
                            f"Test frames ({data_label})")
        figures.confusion(metrics["confusion"], test_ds.class_names, out / "confusion.png",
                          f"Test confusion, rows normalised ({data_label})")
    return metrics


def _data_label(data: str | Path) -> str:
    return "synthetic data" if is_synthetic(data) else f"data: {Path(data).name}"


# -------------------------------------------------------------------------------------------------- sweep
DEFAULT_GRID = {"lr": [1e-3, 3e-4], "batch_size": [10, 4]}


def sweep(data: str | Path, out: str | Path, grid: dict | None = None, recipe: str = "assignment",
          **overrides) -> dict:
    """Experiment 1(c): trains every combination of ``grid`` (default: learning rate x batch size), selects
    the one with the best monitored validation value, and only then evaluates it on the test split.
    Writes OUT/<config>/..., OUT/sweep.csv, OUT/sweep.md and OUT/metrics.json (the selected run's)."""
    grid = grid or DEFAULT_GRID
    out = Path(out)
    o = resolve_options(recipe, **overrides)
    prepare_run(out, None, o["overwrite"], "segmentation", {})
    overrides = {**overrides, "overwrite": False}  # each configuration's folder is new
    maximize = not o["monitor"].endswith("loss")
    rows, runs = [], {}
    for values in itertools.product(*grid.values()):
        config = dict(zip(grid, values))
        name = "_".join(f"{k}={v}" for k, v in config.items())
        metrics = train(data, out / name, recipe, test=False, **{**overrides, **config})
        runs[name] = metrics
        val = metrics["validation"]
        rows.append({"config": name, **config, "monitor": o["monitor"], "best_value": round(metrics["fit"]["best_value"], 4),
                     "best_epoch": metrics["fit"]["best_epoch"], "val_assignment_dice": round(val["assignment_dice"], 4),
                     "val_mean_instrument_dice": round(val["mean_instrument_dice"], 4),
                     "train_seconds": metrics["fit"]["train_seconds"]})
    chosen = max(rows, key=lambda r: r["best_value"] if maximize else -r["best_value"])
    for row in rows:
        row["selected"] = row is chosen
    atomic.write_csv(rows, out / "sweep.csv")
    atomic.write_text(cli.markdown_table(rows), out / "sweep.md")
    selected = runs[chosen["config"]]
    runtime = setup_runtime(o["device"], o["precision"], o["workers"])
    ckpt = load_checkpoint(out / chosen["config"] / "best.pt", "segmentation")
    model = UNet(**ckpt["meta"]["arch"])
    model.load_state_dict(ckpt["model"])
    model.to(runtime.device, memory_format=torch.channels_last)
    chosen_options = {**o, **{k: chosen[k] for k in grid}}
    test_ds = EndoSegDataset(data, "test", input_size(ckpt["meta"], ckpt["epoch"]))
    selected["test"] = test_results(model, test_ds, runtime, chosen_options, out / chosen["config"], _data_label(data))
    selected["sweep"] = {"grid": grid, "selected": chosen["config"], "rows": rows}
    atomic.write_json(selected, out / chosen["config"] / "metrics.json")
    atomic.write_json(selected, out / "metrics.json")
    return selected


# -------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="data root (mapping.json, segmentation/...)")
    cli.add_common_flags(parser, DEFAULTS["epochs"], DEFAULTS["batch_size"], DEFAULTS["lr"])
    parser.add_argument("--recipe", choices=RECIPES, default="assignment",
                        help="named configuration; explicit flags override it (best: " +
                        ", ".join(f"{k}={v}" for k, v in RECIPES["best"].items()) + ")")
    parser.add_argument("--patience", type=cli.positive_int, help="early-stopping patience in epochs (default 20)")
    parser.add_argument("--image-size", type=cli.image_size, help="HxW, multiples of 8 (default: as stored, 256x320)")
    parser.add_argument("--augment", nargs="?", const="flips", choices=AUGMENTATIONS,
                        help="1(b): flips (joint flips + colour jitter; the default when given alone) or strong")
    parser.add_argument("--loss", choices=LOSSES, help="dice (the assignment's) or dice_ce (Dice + cross-entropy)")
    parser.add_argument("--dice-reduction", choices=DICE_REDUCTIONS,
                        help="batch: Dice sums over the whole batch, as the assignment describes (default); "
                             "image: per-frame Dice averaged over frames")
    parser.add_argument("--full-size-epochs", type=cli.non_negative_int,
                        help="progressive resizing: the last N epochs train at the frames' stored size (default 0)")
    parser.add_argument("--monitor", choices=MONITORS, help="validation quantity for early stopping and best weights")
    parser.add_argument("--scheduler", choices=SCHEDULERS, help="learning-rate schedule")
    parser.add_argument("--tta", action="store_const", const=True, help="flip test-time augmentation in evaluation")
    parser.add_argument("--min-region", type=cli.fraction,
                        help="drop an instrument class covering less than this fraction of a frame (default 0)")
    parser.add_argument("--label-fraction", type=cli.label_fraction,
                        help="train on this class-balanced fraction of the labelled frames, in (0, 1] (default 1)")
    parser.add_argument("--no-batch-norm", dest="batch_norm", action="store_const", const=False)
    parser.add_argument("--init-from", type=Path, help="1(e): initialise from a (colorization) checkpoint")
    parser.add_argument("--sweep", action="store_true", help="1(c): grid over learning rate and batch size")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    keys = set(DEFAULTS) - {"progress"}
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    overrides["progress"] = not args.no_progress

    def body() -> int:
        if args.sweep:
            metrics = sweep(args.data, args.out, recipe=args.recipe, **overrides)
        else:
            metrics = train(args.data, args.out, args.recipe, **overrides)
        test = metrics.get("test")
        summary = "no test scores: no epoch finished" if test is None else (
            f"test: assignment Dice {test['assignment_dice']:.3f}, strict mean instrument Dice "
            f"{test['mean_instrument_dice']:.3f}, IoU {test['mean_instrument_iou']:.3f}")
        return cli.finish(f"{summary}; outputs in {args.out}", metrics["fit"]["complete"], metrics["fit"]["stop_reason"])

    cli.main(body)


if __name__ == "__main__":
    main()
