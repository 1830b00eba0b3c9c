"""Dice loss against a hand computation, metrics against a known confusion and an independent implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losses import SegmentationMeter, dice_ce_loss, segmentation_metrics, soft_dice_loss


def test_soft_dice_matches_hand_computation():
    # One image, 2 classes, 2 pixels. Softmax probabilities chosen directly through log-probabilities.
    p = torch.tensor([[0.8, 0.3], [0.2, 0.7]])  # class x pixel, columns sum to 1
    logits = p.log().view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    # class 0: g = [1, 0]; class 1: g = [0, 1]
    d0 = (2 * 0.8 + 1) / (0.8 + 0.3 + 1 + 1)
    d1 = (2 * 0.7 + 1) / (0.2 + 0.7 + 1 + 1)
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - (d0 + d1) / 2, abs=1e-6)


def test_soft_dice_is_zero_for_a_perfect_prediction_and_absent_classes_count_one():
    target = torch.randint(0, 3, (2, 8, 8))
    logits = F.one_hot(target, 5).permute(0, 3, 1, 2).float() * 100  # classes 3 and 4 absent everywhere
    assert soft_dice_loss(logits, target).item() == pytest.approx(0, abs=1e-6)
    assert dice_ce_loss(logits, target).item() == pytest.approx(0, abs=1e-5)


def test_soft_dice_has_gradients_and_runs_under_bf16():
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    loss = soft_dice_loss(logits.bfloat16(), torch.randint(0, 4, (2, 8, 8)))
    loss.backward()
    assert loss.dtype == torch.float32 and logits.grad.abs().sum() > 0


def test_metrics_on_a_known_confusion():
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 2, 2]]])  # 1 image, 8 pixels
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 0, 2]]])
    m = segmentation_metrics(pred, target, num_classes=4)
    assert m["confusion"] == [[3, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert m["dice_per_class"][:3] == pytest.approx([6 / 8, 4 / 5, 2 / 3])
    assert math.isnan(m["dice_per_class"][3]) and math.isnan(m["iou_per_class"][3])  # absent from both: NaN
    assert m["iou_per_class"][:3] == pytest.approx([3 / 5, 2 / 3, 1 / 2])
    assert m["mean_instrument_dice"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert m["pixel_accuracy"] == pytest.approx(6 / 8)
    # the assignment's Dice: per class with smoothing 1, class 3 absent -> (0 + 1) / (0 + 1) = 1
    assert m["assignment_dice"] == pytest.approx(((6 + 1) / 9 + (4 + 1) / 6 + (2 + 1) / 4 + 1) / 4)


def reference_metrics(pred: np.ndarray, target: np.ndarray, c: int) -> dict:
    """An independent, loop-based implementation for comparison."""
    per_image = []
    for p, t in zip(pred, target):
        scores = []
        for k in range(c):
            inter = np.sum((p == k) & (t == k))
            scores.append((2 * inter + 1) / (np.sum(p == k) + np.sum(t == k) + 1))
        per_image.append(np.mean(scores))
    dice, iou = [], []
    for k in range(c):
        tp = np.sum((pred == k) & (target == k))
        fp, fn = np.sum((pred == k) & (target != k)), np.sum((pred != k) & (target == k))
        dice.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan)
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
    return {"assignment_dice": np.mean(per_image), "dice": dice, "iou": iou,
            "mean_instrument_dice": np.nanmean(dice[1:]), "pixel_accuracy": np.mean(pred == target)}


def test_metrics_agree_with_independent_implementation_over_batches():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (7, 12, 10), generator=gen)
    pred = torch.where(torch.rand(7, 12, 10, generator=gen) < 0.6, target, torch.randint(0, 6, (7, 12, 10), generator=gen))
    pred[pred == 5] = 4  # class 5 never predicted
    meter = SegmentationMeter(7)  # class 6 absent from both
    for i in range(0, 7, 3):
        meter.update(pred[i:i + 3], target[i:i + 3])
    ours = meter.compute()
    ref = reference_metrics(pred.numpy(), target.numpy(), 7)
    assert ours["assignment_dice"] == pytest.approx(ref["assignment_dice"], abs=1e-9)
    np.testing.assert_allclose(ours["dice_per_class"], ref["dice"], atol=1e-9)
    np.testing.assert_allclose(ours["iou_per_class"], ref["iou"], atol=1e-9)
    assert ours["mean_instrument_dice"] == pytest.approx(ref["mean_instrument_dice"], abs=1e-9)
    assert ours["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-9)
