"""Experiment 1(d): self-supervised colorization pre-training with the same U-Net (grey in, RGB out).

    python train_colorization.py --data ROOT --out runs/color --image-size 128x160

Trains on ``colorization/train_cor`` only and validates on ``validation_cor`` only (the datasets cannot
read anything else). The U-Net has 1 input and 3 output channels, a sigmoid on its output and an MSE loss.
Writes OUT/history.json|csv, best.pt, last.pt, loss.png, colorization.png and metrics.json (validation MSE
and PSNR). Fine-tune segmentation from it with ``train_segmentation.py --init-from OUT/best.pt``.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

import atomic
import cli
import figures
from datasets import ColorizationDataset, InMemoryLoader, is_synthetic
from engine import (FitConfig, Runtime, adam, all_reduce_sum, fit, prepare_run, seed_everything, setup_runtime,
                    unwrap)
from unet import UNet

DEFAULTS = dict(epochs=100, patience=10, batch_size=10, lr=1e-3, image_size=None, limit=None, batch_norm=True,
                seed=0, device="auto", precision="auto", workers=0, resume=None, overwrite=False,
                progress=True)


def colorize(model: torch.nn.Module, grey: torch.Tensor) -> torch.Tensor:
    """RGB N x 3 x H x W in [0, 1] (sigmoid of the logits) from grey N x 1 x H x W in [0, 1]."""
    return torch.sigmoid(model(grey.contiguous(memory_format=torch.channels_last)).float())


@torch.no_grad()
def evaluate_colorization(model: torch.nn.Module, dataset: ColorizationDataset, runtime: Runtime,
                          batch_size: int) -> dict:
    """Mean squared error per pixel and channel over the split, and the PSNR (dB, peak 1) of that MSE."""
    model = unwrap(model)
    sums = torch.zeros(2, dtype=torch.float64)  # squared-error sum, element count
    loader = InMemoryLoader(dataset, batch_size, shuffle=False, rank=runtime.rank, world_size=runtime.world_size)
    for grey, rgb in loader:
        grey, rgb = runtime.to_device((grey, rgb))
        with runtime.autocast():
            pred = colorize(model, grey.float() / 255)
        sums += torch.stack([F.mse_loss(pred, rgb.float() / 255, reduction="sum").double().cpu(),
                             torch.tensor(float(rgb.numel()), dtype=torch.float64)])
    all_reduce_sum([sums])
    mse = float(sums[0] / sums[1])
    return {"val_loss": mse, "val_psnr": 10 * math.log10(1 / mse) if mse > 0 else math.inf}


def train(data: str | Path, out: str | Path, **overrides) -> dict:
    """Trains the colorization U-Net; returns the metrics.json content. ``overrides``: keys of DEFAULTS."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    o = {**DEFAULTS, **overrides}
    out = Path(out)
    t0 = time.perf_counter()
    shaping = {**o, "data": str(Path(data).resolve())}
    resume = prepare_run(out, o["resume"], o["overwrite"], "colorization", shaping)
    runtime = setup_runtime(o["device"], o["precision"], o["workers"])
    seed_everything(o["seed"])
    train_ds = ColorizationDataset(data, "train", o["image_size"])
    val_ds = ColorizationDataset(data, "validation", o["image_size"])
    positions = list(range(len(train_ds)))[: o["limit"]]
    if o["batch_size"] > len(positions):
        warnings.warn(f"batch size {o['batch_size']} is larger than the {len(positions)} training images", stacklevel=2)
    model = UNet(1, 3, o["batch_norm"]).to(runtime.device, memory_format=torch.channels_last)
    if runtime.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = adam(model.parameters(), o["lr"])
    loader = InMemoryLoader(train_ds, o["batch_size"], shuffle=True, seed=o["seed"], rank=runtime.rank,
                            world_size=runtime.world_size, indices=positions, pin_memory=runtime.device.type == "cuda")

    def train_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(colorize(model, batch[0].float() / 255), batch[1].float() / 255)

    meta = {"kind": "colorization", "arch": unwrap(model).arch, "image_size": tuple(train_ds.grey.shape[-2:]),
            "options": json.loads(json.dumps(shaping, default=str))}
    config = FitConfig(out=out, epochs=o["epochs"], patience=o["patience"],
                       resume=resume, progress=o["progress"])
    result = fit(model, optimizer, loader, train_loss,
                 lambda m: evaluate_colorization(m, val_ds, runtime, o["batch_size"]), config, runtime, meta)
    validation = result.evaluation or evaluate_colorization(model, val_ds, runtime, o["batch_size"])
    label = "synthetic data" if is_synthetic(data) else f"data: {Path(data).name}"
    metrics = {
        "experiment": "colorization", "data_root": str(Path(data).resolve()), "synthetic": is_synthetic(data),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in o.items()},
        "device": runtime.describe(), "train_images": len(positions), "validation_images": len(val_ds),
        "image_size": list(meta["image_size"]),
        "fit": {"monitor": "val_loss", "best_epoch": result.best_epoch, "best_value": result.best_value,
                "epochs_run": len(result.history), "stop_reason": result.stop_reason, "complete": result.complete,
                "train_seconds": round(sum(r["seconds"] for r in result.history), 1)},
        "validation_mse": validation["val_loss"], "validation_psnr_db": validation["val_psnr"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if runtime.is_main:
        figures.curves({"": result.history}, ["train_loss", "val_loss"], "MSE", f"Colorization loss ({label})",
                       out / "loss.png")
        show = torch.linspace(0, len(val_ds) - 1, min(4, len(val_ds))).long()
        with torch.no_grad(), runtime.autocast():
            pred = colorize(unwrap(model).eval(), val_ds.grey[show].to(runtime.device).float() / 255).cpu()
        figures.image_grid({"grey input": val_ds.grey[show] / 255, "ground truth": val_ds.rgb[show] / 255,
                            "prediction": pred}, out / "colorization.png", f"Colorization, validation ({label})")
        atomic.write_json(metrics, out / "metrics.json")
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="data root (colorization/train_cor, ...)")
    cli.add_common_flags(parser, DEFAULTS["epochs"], DEFAULTS["batch_size"], DEFAULTS["lr"])
    parser.add_argument("--patience", type=cli.positive_int, default=DEFAULTS["patience"],
                        help=f"early-stopping patience in epochs (default {DEFAULTS['patience']})")
    parser.add_argument("--image-size", type=cli.image_size, help="HxW, multiples of 8 (default: as stored)")
    parser.add_argument("--no-batch-norm", dest="batch_norm", action="store_false")
    args = parser.parse_args(argv)
    options = {k: getattr(args, k) for k in DEFAULTS if k != "progress"}
    options["progress"] = not args.no_progress

    def body() -> int:
        metrics = train(args.data, args.out, **options)
        return cli.finish(f"validation MSE {metrics['validation_mse']:.5f}, PSNR {metrics['validation_psnr_db']:.2f} dB; "
                          f"outputs in {args.out}", metrics["fit"]["complete"], metrics["fit"]["stop_reason"])

    cli.main(body)


if __name__ == "__main__":
    main()
