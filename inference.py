"""From frames to class masks, and masks to scores: the one code path behind every segmentation score and
every predicted mask.

Evaluation (validation and test during training, the sweep, the ablation, bench) and ``tools/predict.py`` all
go through ``segmentation_logits`` and ``logits_to_classes``: the model sees the frames at the size it was
trained at, its logits are upsampled (bilinear) to the size the masks are stored at, and the argmax is taken
there. Both run in float32 with autocast off, so a mask that predict.py writes, scored against the stored
mask, gives exactly the numbers in metrics.json, whatever precision the model was trained in.

Using a trained model from Python:

    model, meta = load_segmentation_model("runs/1a/best.pt")
    masks = predict_frames(model, frames, meta["input_size"])   # frames: N x 3 x H x W uint8 as stored
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from hw6.datasets import EndoSegDataset, resize_uint8
from hw6.engine import Runtime, all_reduce_sum, load_checkpoint, load_weights, unwrap
from hw6.kit import figures
from hw6.kit.errors import CheckpointError
from hw6.losses import SegmentationMeter
from hw6.unet import UNet, transfer_weights


@contextlib.contextmanager
def scoring_mode(model: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode, no gradients and autocast off (float32) for the block; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            yield
    finally:
        model.train(was_training)


def segmentation_logits(model: torch.nn.Module, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Logits N x C x h x w (float32) of images N x 3 x h x w (uint8, or float in [0, 1]) at the model's input
    size; ``tta`` averages the logits over the identity and the horizontal and vertical flips (the flips the
    model was trained with). Call inside ``scoring_mode`` for scores."""
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    images = images.contiguous(memory_format=torch.channels_last)  # the layout the model trains in
    logits = model(images).float()
    if tta:
        for dims in ((3,), (2,)):
            logits += model(images.flip(dims)).float().flip(dims)
        logits /= 3
    return logits


def drop_small_classes(scores: torch.Tensor, min_region: float) -> torch.Tensor:
    """Class indices N x H x W from logits (or probabilities) N x C x H x W, where an instrument class predicted
    on fewer than ``min_region`` (a fraction) of an image's pixels is dropped from that image and its pixels go
    to their most probable remaining class (background, or a class that does cover enough of the image).
    Scattered false detections of classes absent from a frame then stop costing a whole class its Dice;
    background is never dropped. ``min_region=0`` is a plain argmax."""
    pred = scores.argmax(dim=1)
    if min_region <= 0:
        return pred
    n, c = scores.shape[:2]
    flat = (torch.arange(n, device=pred.device).view(n, 1) * c + pred.flatten(1)).flatten()
    area = torch.bincount(flat, minlength=n * c).view(n, c)
    small = area < min_region * pred[0].numel()  # classes with no pixels too: they must not receive any
    small[:, 0] = False
    return scores.masked_fill(small[:, :, None, None], -torch.inf).argmax(dim=1)


def logits_to_classes(logits: torch.Tensor, size: tuple[int, int], min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) at ``size``: logits upsampled there (bilinear), small classes dropped,
    argmax."""
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return drop_small_classes(logits, min_region)


def predict(model: torch.nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None, tta: bool = False,
            min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) for images N x 3 x h x w (uint8, or float in [0, 1]) at the size the
    model was trained at; ``size``: the (H, W) to predict at (default h x w). float32, eval mode."""
    with scoring_mode(model, images.device):
        return logits_to_classes(segmentation_logits(model, images, tta), size or tuple(images.shape[-2:]),
                                 min_region)


def predict_frames(model: torch.nn.Module, frames: torch.Tensor, input_size: tuple[int, int], tta: bool = False,
                   min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) for uint8 frames N x 3 x H x W as stored: resized to ``input_size`` (the
    size the model was trained at, exactly as the data set resizes them), predicted at H x W."""
    return predict(model, resize_uint8(frames, input_size, nearest=False), tuple(frames.shape[-2:]), tta, min_region)


# ------------------------------------------------------------------------------------------- checkpoints
def input_size(meta: dict, epoch: int) -> tuple[int, int]:
    """The frame size (H, W) a segmentation checkpoint's weights were trained at in ``epoch``
    (``meta["input_sizes"]``: [first epoch, H, W] per phase of progressive resizing)."""
    return tuple(next(size for first, *size in reversed(meta["input_sizes"]) if epoch >= first))


def load_segmentation_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, dict]:
    """The U-Net of a segmentation checkpoint (best.pt or last.pt), in eval mode on ``device``, and its meta:
    ``class_names``, ``grey_levels`` (class k is stored as grey level grey_levels[k]), ``tta`` and
    ``min_region`` (as the run was evaluated), ``options``, and ``input_size``: the (H, W) its weights were
    trained at."""
    path = Path(path)
    ckpt = load_checkpoint(path, "segmentation")
    model = UNet(**ckpt["meta"]["arch"])
    load_weights(model, ckpt, path)
    meta = {**ckpt["meta"], "input_size": input_size(ckpt["meta"], ckpt["epoch"])}
    return model.to(device, memory_format=torch.channels_last).eval(), meta


# -------------------------------------------------------------------------------------------- evaluation
def load_pretrained(model: UNet, path: Path) -> dict:
    """Initialises ``model`` from a U-Net checkpoint of this project (1(e): colorization's best.pt) through
    ``unet.transfer_weights``; refuses (one line) a checkpoint of another architecture."""
    ckpt = load_checkpoint(path)
    batch_norm = ckpt["meta"].get("arch", {}).get("batch_norm")
    if batch_norm != model.batch_norm:
        raise CheckpointError(f"{path}: checkpoint has batch_norm={batch_norm}, model has "
                              f"batch_norm={model.batch_norm}; architectures differ")
    report = transfer_weights(model, ckpt["model"])
    if not report["loaded"]:
        raise CheckpointError(f"{path}: no tensor of the checkpoint fits this U-Net")
    return {**report, "epoch": ckpt.get("epoch")}  # the pre-training epoch these weights were kept at


def evaluate_split(model: torch.nn.Module, dataset: EndoSegDataset, runtime: Runtime, batch_size: int,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], tta: bool = False,
                   min_region: float = 0.0) -> dict:
    """Every metric of ``losses.SegmentationMeter`` over a whole split, scored against the masks at the size
    they are stored at, and ``loss``: the mean over images of ``loss_fn`` of each batch at the model's input
    size. Batches are the split's frames in index order; the processes of a torchrun job take whole batches in
    turn (``Runtime.shard``), then sum: every number, the batch-wide loss included, equals a single process's."""
    model = unwrap(model)
    meter = SegmentationMeter(dataset.num_classes, len(dataset))
    loss_sum = torch.zeros((), dtype=torch.float64)
    with scoring_mode(model, runtime.device):
        for index in runtime.shard(torch.arange(len(dataset)).split(batch_size)):
            images, masks = (t.to(runtime.device) for t in dataset.batch(index.to(dataset.images.device)))
            logits = segmentation_logits(model, images, tta)
            loss_sum += loss_fn(logits, masks).double().cpu() * len(index)
            _score_batch(meter, logits, [dataset.native_masks[i] for i in index], index, min_region)
    all_reduce_sum([loss_sum, *meter.state()])
    return {"loss": float(loss_sum / len(dataset)), **meter.compute()}


def background_everywhere(dataset: EndoSegDataset) -> dict:
    """The do-nothing prediction's scores on a split: background on every pixel of every frame, scored as a
    model is (``losses.SegmentationMeter`` against the masks at their stored size), and the background's share
    of the pixels: over the split (``background_share``) and per frame (``background_share_per_frame``:
    [lowest, highest])."""
    meter = SegmentationMeter(dataset.num_classes, len(dataset))
    shares = []
    for position, mask in enumerate(dataset.native_masks):
        truth = mask[None].long()
        meter.update(torch.zeros_like(truth), truth, torch.tensor([position]))
        shares.append(float((mask == 0).double().mean()))
    scores = meter.compute()
    confusion = torch.tensor(scores["confusion"], dtype=torch.float64)
    return {**{k: scores[k] for k in ("assignment_dice", "assignment_dice_per_frame", "mean_present_instrument_dice",
                                      "absent_predicted_share", "pixel_accuracy")},
            "background_share": float(confusion[0].sum() / confusion.sum()),
            "background_share_per_frame": [min(shares), max(shares)]}


def test_figures(model: UNet, test_ds: EndoSegDataset, test: dict, tta: bool, min_region: float, out: Path,
                 note: str) -> None:
    """OUT/predictions.png (two test frames, ground truth and prediction at the stored size, as scored) and
    OUT/confusion.png (``test``: ``evaluate_split``'s result); ``note`` ends both titles."""
    show = torch.linspace(0, len(test_ds) - 1, min(2, len(test_ds))).long().tolist()
    truth = [test_ds.native_masks[i] for i in show]
    images = test_ds.images[show].to(next(model.parameters()).device)
    pred = [predict(model, images[k:k + 1], tuple(t.shape), tta, min_region)[0].cpu()
            for k, t in enumerate(truth)]
    figures.predictions(images.cpu(), truth, pred, test_ds.class_names, out / "predictions.png",
                        f"Test frames, ground truth and prediction{note}")
    figures.confusion(test["confusion"], test_ds.class_names, out / "confusion.png",
                      f"Test confusion, rows normalised{note}")


def _score_batch(meter: SegmentationMeter, logits: torch.Tensor, native_masks: list[torch.Tensor],
                 positions: torch.Tensor, min_region: float) -> None:
    """Scores a batch's logits against its masks at their stored sizes (one resize when they share one)."""
    sizes = {tuple(mask.shape) for mask in native_masks}
    groups = [list(range(len(native_masks)))] if len(sizes) == 1 else [[k] for k in range(len(native_masks))]
    for group in groups:
        truth = torch.stack([native_masks[k] for k in group]).to(logits.device).long()
        meter.update(logits_to_classes(logits[group], tuple(truth.shape[-2:]), min_region), truth, positions[group])
