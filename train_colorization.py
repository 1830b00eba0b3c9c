"""Experiment 1(d): self-supervised colorization pre-training with the same U-Net (grey in, RGB out).

    python train_colorization.py --data ROOT --out runs/1d --image-size 128x160

Trains on ``colorization/train_cor`` only and validates on ``validation_cor`` only (the data set cannot read
anything else). The U-Net changes in two places: 1 input channel (the grey frame) and 3 output channels (RGB)
through a sigmoid, with an MSE loss. Writes OUT/history.json|csv, best.pt, last.pt, loss.png,
colorization.png and metrics.json (experiment.py's schema; validation: MSE and PSNR). Fine-tune segmentation
from it with ``train_segmentation.py --init-from OUT/best.pt``.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from hw6 import experiment
from hw6.datasets import ColorizationDataset, synthetic_note
from hw6.engine import Evaluation, FitConfig, Runtime, adam, all_reduce_sum, fit, lr_scheduler, unwrap
from hw6.kit import cli, figures
from hw6.unet import DOWNSAMPLING, UNet

DEFAULTS = dict(experiment.COMMON_DEFAULTS, epochs=100, patience=10, batch_size=10, lr=1e-3, image_size=None,
                batch_norm=True)


def colorize(model: torch.nn.Module, grey: torch.Tensor) -> torch.Tensor:
    """RGB N x 3 x H x W in [0, 1] (sigmoid of the logits) from grey N x 1 x H x W in [0, 1]."""
    return torch.sigmoid(model(grey.contiguous(memory_format=torch.channels_last)).float())


@torch.no_grad()
def evaluate_colorization(model: torch.nn.Module, dataset: ColorizationDataset, runtime: Runtime,
                          batch_size: int) -> dict:
    """{"loss": the mean squared error per pixel and channel over the split, "psnr_db": its PSNR (peak 1)}."""
    model = unwrap(model)
    sums = torch.zeros(2, dtype=torch.float64)  # squared-error sum, element count
    for grey, rgb in runtime.loader(dataset, batch_size, shuffle=False):
        grey, rgb = runtime.to_device((grey, rgb))
        with runtime.autocast():
            pred = colorize(model, grey)
        sums += torch.stack([F.mse_loss(pred, rgb, reduction="sum").double().cpu(),
                             torch.tensor(float(rgb.numel()), dtype=torch.float64)])
    all_reduce_sum([sums])
    mse = float(sums[0] / sums[1])
    return {"loss": mse, "psnr_db": 10 * math.log10(1 / mse) if mse > 0 else math.inf}


def no_model_psnr(train_ds: ColorizationDataset, val_ds: ColorizationDataset) -> dict:
    """PSNR (dB, peak 1) on ``val_ds``, scored as ``evaluate_colorization`` scores a model, of two predictions
    that need none: the grey frame copied to R, G and B (``grey_copy_psnr_db``), and the grey frame plus a
    constant tint (``constant_tint_psnr_db``), the per-channel mean of RGB - grey over ``train_ds`` (``tint``,
    in [-1, 1]: the offset that minimises the training images' squared error), clipped to [0, 1]."""
    offset, pixels = torch.zeros(3, dtype=torch.float64), 0
    for grey, rgb in zip(train_ds.grey.split(64), train_ds.rgb.split(64)):  # in chunks: int16 of every image is GBs
        offset += (rgb.short() - grey.short()).sum(dim=(0, 2, 3), dtype=torch.float64)
        pixels += grey.numel()
    tint = offset / pixels / 255
    grey, rgb = val_ds.grey.double() / 255, val_ds.rgb.double() / 255

    def psnr(pred: torch.Tensor) -> float:
        return 10 * math.log10(1 / float(F.mse_loss(pred.expand_as(rgb).clamp(0, 1), rgb)))

    return {"grey_copy_psnr_db": psnr(grey), "constant_tint_psnr_db": psnr(grey + tint.view(1, 3, 1, 1)),
            "tint": tint.tolist()}


def train(data: str | Path, out: str | Path, **options) -> dict:
    """Trains the colorization U-Net; returns the metrics.json content. ``options``: keys of DEFAULTS."""
    o = experiment.resolve(DEFAULTS, options, size_multiple=DOWNSAMPLING)
    run = experiment.start("colorization", data, out, o)
    train_ds = ColorizationDataset(data, "train", o["image_size"]).to(run.runtime.device)
    val_ds = ColorizationDataset(data, "validation", o["image_size"])
    experiment.image_size(tuple(train_ds.grey.shape[-2:]), DOWNSAMPLING)
    run.check_data(train_ds.fingerprint)
    positions = list(range(len(train_ds)))[: o["limit"]]
    if o["batch_norm"]:
        experiment.check_batch_norm(len(positions), o["batch_size"], tuple(train_ds.grey.shape[-2:]))
    model = run.runtime.place(UNet(1, 3, o["batch_norm"]))
    optimizer = adam(model.parameters(), o["lr"])
    loader = run.runtime.loader(train_ds, o["batch_size"], shuffle=True, seed=o["seed"], indices=positions)

    def train_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(colorize(model, batch[0]), batch[1])

    def evaluate(model: torch.nn.Module) -> Evaluation:
        val = evaluate_colorization(model, val_ds, run.runtime, o["batch_size"])
        return Evaluation({"val_loss": val["loss"], "val_psnr_db": val["psnr_db"]}, val)

    image_size = list(train_ds.grey.shape[-2:])
    meta = {"arch": unwrap(model).arch, "image_size": image_size, "options": run.shaping}
    config = FitConfig("colorization", run.out, o["epochs"], o["patience"], resume=run.resume, progress=o["progress"])
    result = fit(model, optimizer, loader, train_loss, evaluate, config, run.runtime, meta,
                 lr_scheduler(optimizer, o["scheduler"], o["epochs"]))
    if run.writes:
        figures.curves({"": result.history}, ["train_loss", "val_loss"], "mean squared error",
                       f"Colorization loss, training and validation{synthetic_note(run.data)}", run.out / "loss.png")
        if result.evaluation is not None:
            colorization_figure(unwrap(model), val_ds, run)
    return run.record(result, result.evaluation.details if result.evaluation else None, None,
                      {"train_images": len(positions), "validation_images": len(val_ds), "image_size": image_size})


def colorization_figure(model: torch.nn.Module, val_ds: ColorizationDataset, run: experiment.Run) -> None:
    """colorization.png: three validation frames, grey input, ground truth and prediction."""
    show = torch.linspace(0, len(val_ds) - 1, min(3, len(val_ds))).long()
    grey, rgb = val_ds.batch(show)
    with torch.no_grad(), run.runtime.autocast():
        pred = colorize(model.eval(), grey.to(run.runtime.device)).cpu()
    figures.image_grid({"grey input": grey, "ground truth": rgb, "prediction": pred}, run.out / "colorization.png",
                       f"Colorization, validation frames{synthetic_note(run.data)}")


def parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(__doc__)
    cli.add_common_flags(p, DEFAULTS)
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", default=cli.NOT_GIVEN,
                   help="a U-Net without BatchNorm (then pre-train segmentation without it too)")
    return p


def summarize(metrics: dict) -> str:
    val = metrics.get("validation")
    return "no validation scores: no epoch finished" if val is None else (
        f"validation MSE {val['loss']:.5f}, PSNR {val['psnr_db']:.2f} dB")


def main(argv: list[str] | None = None) -> None:
    data, out, options, seeds = experiment.parse(parser(), argv)
    experiment.run_cli(train, data, out, options, seeds, summarize)


if __name__ == "__main__":
    main(sys.argv[1:])
