"""From frames to class masks: the one code path behind every segmentation score and every predicted mask.

Evaluation (validation, test, the ablation, bench) and ``predict.py`` both call ``segmentation_logits`` and
``logits_to_classes``: the model sees the frames at the size it was trained at, its logits are upsampled
(bilinear) to the size the masks are stored at, and the argmax is taken there. Both run in float32 with
autocast off, so a mask that ``predict.py`` writes, scored against the stored mask, gives exactly the numbers
in metrics.json, whatever precision the model was trained in.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from datasets import resize_uint8


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


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 or float 0-1 images -> float32 in [0, 1], channels-last (the layout the model trains in)."""
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return images.contiguous(memory_format=torch.channels_last)


def segmentation_logits(model: torch.nn.Module, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Logits N x C x h x w (float32) of images N x 3 x h x w (uint8, or float in [0, 1]) at the model's input
    size; ``tta`` averages the logits over the identity and the horizontal and vertical flips (the flips the
    model was trained with). Call inside ``scoring_mode`` for scores; training calls the model directly."""
    images = as_float_images(images)
    logits = model(images).float()
    if tta:
        for dims in ((3,), (2,)):
            logits += model(images.flip(dims)).float().flip(dims)
        logits /= 3
    return logits


def upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of N x C x h x w logits to ``size`` (H, W); unchanged when already that size."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def drop_small_classes(probs: torch.Tensor, min_region: float) -> torch.Tensor:
    """Class indices N x H x W from probabilities (or logits) N x C x H x W, where an instrument class predicted
    on fewer than ``min_region`` (a fraction) of an image's pixels is dropped from that image and its pixels go
    to their most probable remaining class (background, or a class that does cover enough of the image).
    Scattered false detections of classes absent from a frame then stop costing a whole class its Dice;
    background is never dropped. ``min_region=0`` is a plain argmax."""
    pred = probs.argmax(dim=1)
    if min_region <= 0:
        return pred
    n, c = probs.shape[:2]
    flat = (torch.arange(n, device=pred.device).view(n, 1) * c + pred.flatten(1)).flatten()
    area = torch.bincount(flat, minlength=n * c).view(n, c)
    small = area < min_region * pred[0].numel()  # classes with no pixels too: they must not receive any
    small[:, 0] = False
    return probs.masked_fill(small[:, :, None, None], -torch.inf).argmax(dim=1)


def logits_to_classes(logits: torch.Tensor, size: tuple[int, int], min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) at ``size``: logits upsampled there, small classes dropped, argmax."""
    return drop_small_classes(upsample(logits, size), min_region)


def predict(model: torch.nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None, tta: bool = False,
            min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) for images N x 3 x h x w (uint8, or float in [0, 1]) at the size the
    model was trained at; ``size``: the (H, W) to predict at (default h x w). float32, eval mode."""
    with scoring_mode(model, images.device):
        logits = segmentation_logits(model, images, tta)
        return logits_to_classes(logits, size or tuple(images.shape[-2:]), min_region)


def predict_frames(model: torch.nn.Module, frames: torch.Tensor, input_size: tuple[int, int], tta: bool = False,
                   min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) for uint8 frames N x 3 x H x W as stored: resized to ``input_size`` (the
    size the model was trained at, exactly as the data set resizes them), predicted at H x W."""
    return predict(model, resize_uint8(frames, input_size, nearest=False), tuple(frames.shape[-2:]), tta, min_region)
