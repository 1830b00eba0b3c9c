"""Dice loss and segmentation metrics.

Two families of numbers, kept apart on purpose:

* The assignment's Dice (``soft_dice_loss`` and the ``assignment_dice`` score): for each class, intersection
  and cardinalities summed over every element of a batch (all its images and pixels), ``smooth=1`` added to
  numerator and denominator, then averaged over the classes, background included. As a score it is computed
  on the one-hot argmax prediction, in batches of ``ASSIGNMENT_BATCH`` frames in index order (the assignment's
  test loader), and averaged over the batches. ``assignment_dice_per_frame`` is the same formula summed over
  one frame at a time: ours, not the assignment's, kept because it shows how a smoothed per-frame mean flatters
  a model that finds few instrument pixels.
* Strict scores over a whole split (``dice_per_class``, ``iou_per_class``, ``mean_instrument_dice``): one
  confusion matrix accumulated over every pixel of every image, no smoothing, background reported but left
  out of the instrument means, and a class absent from both prediction and ground truth is NaN (unknown),
  not 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ASSIGNMENT_BATCH = 10  # the assignment's batch size: its test Dice is averaged over batches of 10 frames


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                   batch: bool = True) -> torch.Tensor:
    """The assignment's soft multi-class Dice loss.

    Args:
        logits: N x C x H x W raw scores; softmax over C gives the probabilities p.
        target: N x H x W class indices in [0, C); g is its one-hot encoding.
        smooth: added to the numerator and the denominator of every Dice term.
        batch: whether the sums run over the batch dimension too (as in MONAI's ``DiceLoss(batch=True)``).
            True (the assignment's): for each class c,
            ``D_c = (2 * sum_{n,h,w} p * g + smooth) / (sum_{n,h,w} p + sum_{n,h,w} g + smooth)``,
            sums over every element of the batch, and the loss is ``1 - mean_c D_c``.
            False (per frame, an option of ours): ``D_{n,c}`` with the sums over one image's H x W pixels, and
            the loss is ``1 - mean_{n,c} D_{n,c}``.

    Returns:
        A scalar, computed in float32 whatever the autocast precision.

    Why they behave differently: a class absent from a frame (sum g = 0) has the per-frame Dice
    ``smooth / (sum p + smooth)``, which is 1 when the model predicts none of it and falls as soon as it
    predicts a few pixels of it. With eight classes and one or two instruments per frame, most per-frame
    terms reward predicting nothing; the cheapest way down the loss is background everywhere, and the
    per-frame loss does collapse there on the course data. Summed over a batch of 10 frames, a class is
    absent only when no frame of the batch has it, the smoothing is negligible against the thousands of
    pixels of the classes that are present, and every term asks for the pixels of its class to be found.
    """
    probs = logits.float().softmax(dim=1)
    one_hot = F.one_hot(target, probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3) if batch else (2, 3)
    intersection = (probs * one_hot).sum(dim=dims)
    denominator = probs.sum(dim=dims) + one_hot.sum(dim=dims)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    return 1 - dice.mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                 batch: bool = True) -> torch.Tensor:
    """``soft_dice_loss + cross_entropy``: cross-entropy gives every pixel its own gradient, however small its
    class's share of the Dice sums."""
    return soft_dice_loss(logits, target, smooth, batch) + F.cross_entropy(logits.float(), target)


class SegmentationMeter:
    """Accumulates, over batches of integer predictions, what ``segmentation_metrics`` reports.

    State: a C x C confusion matrix and, per image of the split (``num_images``, addressed by its position in
    index order), the per-class intersection and the two cardinalities of the one-hot prediction and truth.
    Processes of a torchrun job fill disjoint positions, so summing the state (one all-reduce each,
    ``state``) gives the single-process numbers.
    """

    def __init__(self, num_classes: int, num_images: int, smooth: float = 1.0) -> None:
        self.num_classes, self.smooth = num_classes, smooth
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
        self.counts = torch.zeros(num_images, 3, num_classes, dtype=torch.float64)  # intersection, pred, truth

    def update(self, pred: torch.Tensor, target: torch.Tensor, positions: torch.Tensor) -> None:
        """pred, target: N x H x W class indices (any device); positions: the N images' places in the split."""
        c, n = self.num_classes, pred.shape[0]
        # One bincount gives every image's own confusion matrix: index = image * C^2 + true * C + predicted.
        flat = (torch.arange(n, device=pred.device).view(n, 1, 1) * c + target) * c + pred
        per_image = torch.bincount(flat.flatten(), minlength=n * c * c).view(n, c, c).double().cpu()
        self.counts[positions.cpu()] = torch.stack(
            [per_image.diagonal(dim1=1, dim2=2), per_image.sum(dim=1), per_image.sum(dim=2)], dim=1)
        self.confusion += per_image.sum(dim=0)

    def state(self) -> list[torch.Tensor]:
        return [self.confusion, self.counts]

    def _smoothed_dice(self, counts: torch.Tensor) -> torch.Tensor:
        """Mean over classes of (2 I + s) / (P + G + s) for each row of counts (... x 3 x C)."""
        intersection, predicted, truth = counts.unbind(dim=-2)
        return ((2 * intersection + self.smooth) / (predicted + truth + self.smooth)).mean(dim=-1)

    def compute(self) -> dict:
        """Returns the metrics described in ``segmentation_metrics`` (floats, lists of per-class floats)."""
        batches = torch.stack([chunk.sum(dim=0) for chunk in self.counts.split(ASSIGNMENT_BATCH)])
        return {"assignment_dice": float(self._smoothed_dice(batches).mean()),
                "assignment_dice_per_frame": float(self._smoothed_dice(self.counts).mean()),
                **strict_scores(self.confusion)}


def strict_scores(confusion: torch.Tensor) -> dict:
    """The strict scores of a split from its C x C confusion matrix (rows true, columns predicted; class 0 the
    background): per-class Dice and IoU, their instrument means under the two conventions, the absent classes
    and the share of pixels predicted as one of them, pixel accuracy, and the matrix itself."""
    confusion = torch.as_tensor(confusion, dtype=torch.float64)
    true_positive = confusion.diagonal()
    in_target, in_pred = confusion.sum(dim=1), confusion.sum(dim=0)
    # 0 / 0 gives NaN: a class absent from both prediction and ground truth has no score.
    dice = 2 * true_positive / (in_target + in_pred)
    iou = true_positive / (in_target + in_pred - true_positive)
    present = in_target[1:] > 0  # instrument classes with ground-truth pixels in this split
    return {
        "dice_per_class": dice.tolist(),
        "iou_per_class": iou.tolist(),
        "mean_instrument_dice": nanmean(dice[1:].tolist()),
        "mean_instrument_iou": nanmean(iou[1:].tolist()),
        "mean_present_instrument_dice": nanmean(dice[1:][present].tolist()),
        "mean_present_instrument_iou": nanmean(iou[1:][present].tolist()),
        "absent_classes": (torch.nonzero(~present).flatten() + 1).tolist(),
        "absent_predicted_share": float(in_pred[1:][~present].sum() / confusion.sum()),
        "pixel_accuracy": float(true_positive.sum() / confusion.sum()),
        "confusion": confusion.long().tolist(),
    }


def segmentation_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict:
    """Metrics of integer predictions ``pred`` (N x H x W) against ``target`` (N x H x W), the N images of a
    split in index order.

    Returns ``assignment_dice`` (the loss's batch-wide definition on one-hot argmax predictions, background
    included, smoothed by 1, in batches of 10 images, averaged over batches), ``assignment_dice_per_frame``
    (the same per image, averaged over images), ``dice_per_class`` and ``iou_per_class`` over all pixels (NaN
    for a class absent from both), ``mean_instrument_dice`` and ``mean_instrument_iou`` (classes 1.. with NaN
    skipped), ``mean_present_instrument_dice`` and ``mean_present_instrument_iou`` (only the instrument classes
    with ground-truth pixels in the split, MONAI's ignore-empty over the whole split), ``absent_classes`` (the
    instrument classes without any), ``absent_predicted_share`` (the share of pixels predicted as one of them),
    ``pixel_accuracy`` and the C x C ``confusion`` (rows true, columns predicted).
    """
    meter = SegmentationMeter(num_classes, len(pred))
    meter.update(pred, target, torch.arange(len(pred)))
    return meter.compute()


def nanmean(values: list[float]) -> float:
    """Mean of the finite entries; NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan
