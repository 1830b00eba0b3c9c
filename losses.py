"""Dice loss and segmentation metrics.

Two families of numbers, kept apart on purpose:

* The assignment's Dice (``soft_dice_loss`` and ``assignment_dice``): computed per image and per class,
  background included, with ``smooth=1`` added to numerator and denominator, then averaged. A class absent
  from both the image and the prediction scores (0 + 1) / (0 + 1) = 1, so on frames where most of the eight
  classes are absent a model that predicts only background already scores high.
* Strict scores over a whole split (``dice_per_class``, ``iou_per_class``, ``mean_instrument_dice``): one
  confusion matrix accumulated over every pixel of every image, no smoothing, background reported but left
  out of the instrument means, and a class absent from both prediction and ground truth is NaN (unknown),
  not 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """The assignment's soft multi-class Dice loss.

    Args:
        logits: N x C x H x W raw scores; softmax over C gives the probabilities p.
        target: N x H x W class indices in [0, C).
        smooth: added to numerator and denominator of every per-image, per-class Dice.

    Returns:
        A scalar: 1 - mean over images and classes (background included) of
        ``(2 * sum(p * g) + smooth) / (sum(p) + sum(g) + smooth)``, sums over the H x W pixels of one image,
        g the one-hot ground truth. For a class absent from an image (sum(g) = 0) the Dice is
        ``smooth / (sum(p) + smooth)``: 1 when the model also predicts none of it, falling towards 0 as it
        predicts more, so absent classes teach "predict nothing here" and pull the mean up once learnt.
        Computed in float32 whatever the autocast precision.
    """
    probs = logits.float().softmax(dim=1)
    one_hot = F.one_hot(target, probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    intersection = (probs * one_hot).sum(dim=(2, 3))
    denominator = probs.sum(dim=(2, 3)) + one_hot.sum(dim=(2, 3))
    dice = (2 * intersection + smooth) / (denominator + smooth)
    return 1 - dice.mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``soft_dice_loss + cross_entropy``: cross-entropy gives every instrument pixel a gradient even where the
    smoothed per-image Dice of a rare class is already near 1 because it is absent from most frames."""
    return soft_dice_loss(logits, target, smooth) + F.cross_entropy(logits.float(), target)


class SegmentationMeter:
    """Accumulates, over batches of integer predictions, what ``segmentation_metrics`` reports.

    State is three tensors (a C x C confusion matrix, the sum of per-image assignment Dice and the image
    count), so ranks of a distributed run can sum them with one all-reduce each (``state``/``load_state``).
    """

    def __init__(self, num_classes: int, smooth: float = 1.0) -> None:
        self.num_classes, self.smooth = num_classes, smooth
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
        self.dice_sum = torch.zeros((), dtype=torch.float64)
        self.images = torch.zeros((), dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred, target: N x H x W class indices (any device)."""
        c, n = self.num_classes, pred.shape[0]
        # One bincount gives every image's own confusion matrix: index = image * C^2 + true * C + predicted.
        flat = (torch.arange(n, device=pred.device).view(n, 1, 1) * c + target) * c + pred
        per_image = torch.bincount(flat.flatten(), minlength=n * c * c).view(n, c, c).double().cpu()
        intersection = per_image.diagonal(dim1=1, dim2=2)
        denominator = per_image.sum(dim=1) + per_image.sum(dim=2)
        self.dice_sum += ((2 * intersection + self.smooth) / (denominator + self.smooth)).mean(dim=1).sum()
        self.images += n
        self.confusion += per_image.sum(dim=0)

    def state(self) -> list[torch.Tensor]:
        return [self.confusion, self.dice_sum, self.images]

    def compute(self) -> dict:
        """Returns the metrics described in the module docstring (floats, lists of per-class floats)."""
        confusion = self.confusion
        true_positive = confusion.diagonal()
        in_target, in_pred = confusion.sum(dim=1), confusion.sum(dim=0)
        union = in_target + in_pred - true_positive
        # 0 / 0 gives NaN: a class absent from both prediction and ground truth has no score.
        dice = 2 * true_positive / (in_target + in_pred)
        iou = true_positive / union
        return {
            "assignment_dice": float(self.dice_sum / self.images),
            "dice_per_class": dice.tolist(),
            "iou_per_class": iou.tolist(),
            "mean_instrument_dice": nanmean(dice[1:].tolist()),
            "mean_instrument_iou": nanmean(iou[1:].tolist()),
            "pixel_accuracy": float(true_positive.sum() / confusion.sum()),
            "confusion": confusion.long().tolist(),
        }


def segmentation_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict:
    """Metrics of integer predictions ``pred`` (N x H x W) against ``target`` (N x H x W) over the whole set.

    Returns ``assignment_dice`` (per image, per class, background included, smoothed by 1, averaged: the
    loss's definition on hard one-hot predictions), ``dice_per_class`` and ``iou_per_class`` over all pixels
    (NaN for a class absent from both), ``mean_instrument_dice`` and ``mean_instrument_iou`` (classes 1.. with
    NaN skipped), ``pixel_accuracy`` and the C x C ``confusion`` (rows true, columns predicted).
    """
    meter = SegmentationMeter(num_classes)
    meter.update(pred, target)
    return meter.compute()


def nanmean(values: list[float]) -> float:
    """Mean of the finite entries; NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan
