"""Dice loss against a hand computation, metrics against a known confusion and an independent implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hw6.losses import ASSIGNMENT_BATCH, SegmentationMeter, dice_ce_loss, segmentation_metrics, soft_dice_loss


def test_soft_dice_matches_hand_computation():
    # One image, 2 classes, 2 pixels. Softmax probabilities chosen directly through log-probabilities.
    p = torch.tensor([[0.8, 0.3], [0.2, 0.7]])  # class x pixel, columns sum to 1
    logits = p.log().view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    # class 0: g = [1, 0]; class 1: g = [0, 1]
    d0 = (2 * 0.8 + 1) / (0.8 + 0.3 + 1 + 1)
    d1 = (2 * 0.7 + 1) / (0.2 + 0.7 + 1 + 1)
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - (d0 + d1) / 2, abs=1e-6)
    assert soft_dice_loss(logits, target, batch=False).item() == pytest.approx(1 - (d0 + d1) / 2, abs=1e-6)


def reference_soft_dice(probs: np.ndarray, target: np.ndarray, smooth: float, per_image: bool) -> float:
    """Loops over images and classes, as the assignment's worked answer describes the sums."""
    n, c = probs.shape[:2]
    groups = [[i] for i in range(n)] if per_image else [list(range(n))]
    scores = []
    for group in groups:
        for k in range(c):
            p, g = probs[group, k], (target[group] == k).astype(np.float64)
            scores.append((2 * np.sum(p * g) + smooth) / (np.sum(p) + np.sum(g) + smooth))
    return 1 - float(np.mean(scores))


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("smooth", [1.0, 0.5])
def test_soft_dice_matches_an_independent_implementation(batch, smooth):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 6, 9, 7, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 4, (4, 9, 7), generator=gen)  # classes 4 and 5 absent from every image
    target[1] = 0  # image 1 holds background only: its instrument classes are absent from it
    probs = logits.softmax(dim=1).numpy()
    expected = reference_soft_dice(probs, target.numpy(), smooth, per_image=not batch)
    assert soft_dice_loss(logits, target, smooth, batch).item() == pytest.approx(expected, abs=1e-6)


def test_batch_wide_and_per_frame_dice_differ_where_a_class_is_absent_from_a_frame():
    # Frame 0 holds class 1, frame 1 does not; the model predicts class 1 a little on both.
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    probs = torch.full((2, 2, 4, 4), 0.5)
    logits = probs.log()
    per_image = soft_dice_loss(logits, target, batch=False).item()
    batch = soft_dice_loss(logits, target, batch=True).item()
    # frame 1, class 1 (absent): (0 + 1) / (8 + 0 + 1); in the batch sums class 1 is present (8 pixels)
    assert per_image == pytest.approx(reference_soft_dice(probs.numpy(), target.numpy(), 1.0, True), abs=1e-6)
    assert batch == pytest.approx(reference_soft_dice(probs.numpy(), target.numpy(), 1.0, False), abs=1e-6)
    assert batch != pytest.approx(per_image, abs=1e-3)


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
    assert m["assignment_dice_per_frame"] == m["assignment_dice"]  # one image: one batch


def reference_metrics(pred: np.ndarray, target: np.ndarray, c: int) -> dict:
    """An independent, loop-based implementation for comparison."""

    def smoothed(p: np.ndarray, t: np.ndarray) -> float:
        return np.mean([(2 * np.sum((p == k) & (t == k)) + 1) / (np.sum(p == k) + np.sum(t == k) + 1) for k in range(c)])

    batches = range(0, len(pred), ASSIGNMENT_BATCH)
    dice, iou = [], []
    for k in range(c):
        tp = np.sum((pred == k) & (target == k))
        fp, fn = np.sum((pred == k) & (target != k)), np.sum((pred != k) & (target == k))
        dice.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan)
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
    return {"assignment_dice": np.mean([smoothed(pred[b:b + ASSIGNMENT_BATCH], target[b:b + ASSIGNMENT_BATCH])
                                        for b in batches]),
            "per_frame": np.mean([smoothed(p, t) for p, t in zip(pred, target)]), "dice": dice, "iou": iou,
            "mean_instrument_dice": np.nanmean(dice[1:]), "pixel_accuracy": np.mean(pred == target)}


def test_metrics_agree_with_independent_implementation_over_batches():
    gen = torch.Generator().manual_seed(0)
    n = 23  # batches of 10, 10 and 3 for the assignment's score
    target = torch.randint(0, 6, (n, 12, 10), generator=gen)
    pred = torch.where(torch.rand(n, 12, 10, generator=gen) < 0.6, target, torch.randint(0, 6, (n, 12, 10), generator=gen))
    pred[pred == 5] = 4  # class 5 never predicted
    target[:4][target[:4] == 3] = 0  # class 3 absent from the first frames' truth
    meter = SegmentationMeter(7, n)  # class 6 absent from both
    order = torch.randperm(n, generator=gen)  # batches may arrive in any order: positions place them
    for batch in order.split(4):
        meter.update(pred[batch], target[batch], batch)
    ours = meter.compute()
    ref = reference_metrics(pred.numpy(), target.numpy(), 7)
    assert ours["assignment_dice"] == pytest.approx(ref["assignment_dice"], abs=1e-9)
    assert ours["assignment_dice_per_frame"] == pytest.approx(ref["per_frame"], abs=1e-9)
    np.testing.assert_allclose(ours["dice_per_class"], ref["dice"], atol=1e-9)
    np.testing.assert_allclose(ours["iou_per_class"], ref["iou"], atol=1e-9)
    assert ours["mean_instrument_dice"] == pytest.approx(ref["mean_instrument_dice"], abs=1e-9)
    assert ours["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-9)


def test_assignment_score_is_the_loss_definition_on_one_hot_predictions():
    gen = torch.Generator().manual_seed(5)
    target = torch.randint(0, 4, (ASSIGNMENT_BATCH, 6, 5), generator=gen)
    pred = torch.randint(0, 4, (ASSIGNMENT_BATCH, 6, 5), generator=gen)
    one_hot_logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).double() * 1e4  # softmax = one-hot
    m = segmentation_metrics(pred, target, 4)
    assert m["assignment_dice"] == pytest.approx(1 - soft_dice_loss(one_hot_logits, target).item(), abs=1e-6)
    assert m["assignment_dice_per_frame"] == pytest.approx(
        1 - soft_dice_loss(one_hot_logits, target, batch=False).item(), abs=1e-6)
