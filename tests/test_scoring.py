"""One definition of a score: native-resolution scoring, and predict.py's masks reproducing metrics.json."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_script
from hw6 import inference, train_colorization, train_segmentation
from hw6.datasets import ColorizationDataset, EndoSegDataset
from hw6.losses import ASSIGNMENT_BATCH
from hw6.tools.predict import predict_files


def independent_scores(pred_dir: Path, split_dir: Path, grey_levels: list[int]) -> dict:
    """Scores predict.py's mask PNGs against the split's mask PNGs with numpy alone."""
    levels = np.array(sorted(grey_levels))
    c = len(levels)
    indices = sorted(int(p.name) for p in split_dir.iterdir() if p.is_dir())
    truth = [np.searchsorted(levels, np.asarray(Image.open(split_dir / f"{i}/{i}_mask.png"))) for i in indices]
    pred = [np.searchsorted(levels, np.asarray(Image.open(pred_dir / f"{i}/{i}_pred.png"))) for i in indices]
    confusion = sum(np.bincount((t * c + p).ravel(), minlength=c * c).reshape(c, c) for t, p in zip(truth, pred))
    tp = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore"):
        dice = 2 * tp / (confusion.sum(0) + confusion.sum(1))
        iou = tp / (confusion.sum(0) + confusion.sum(1) - tp)

    def smoothed(ps, ts):
        return np.mean([(2 * sum(np.sum((p == k) & (t == k)) for p, t in zip(ps, ts)) + 1) /
                        (sum(np.sum(p == k) + np.sum(t == k) for p, t in zip(ps, ts)) + 1) for k in range(c)])

    batches = range(0, len(indices), ASSIGNMENT_BATCH)
    return {"dice_per_class": dice, "iou_per_class": iou,
            "assignment_dice": np.mean([smoothed(pred[b:b + ASSIGNMENT_BATCH], truth[b:b + ASSIGNMENT_BATCH])
                                        for b in batches]),
            "shape": truth[0].shape}


def assert_reproduces(metrics: dict, scores: dict) -> None:
    test = metrics["test"]
    for key in ("dice_per_class", "iou_per_class"):
        ours = np.array([math.nan if v is None else v for v in test[key]], dtype=float)
        np.testing.assert_allclose(ours, scores[key], atol=1e-6, equal_nan=True)
    assert test["assignment_dice"] == pytest.approx(scores["assignment_dice"], abs=1e-6)


def test_predict_masks_reproduce_metrics_of_a_bf16_run_trained_small(synthetic_root, tmp_path):
    # Trained at 32x40 under bf16 autocast, with the small-class floor: scored and predicted at 64x80 in float32.
    metrics = train_segmentation.train(synthetic_root, tmp_path / "run", epochs=2, batch_size=4, image_size=(32, 40),
                                       precision="bf16", min_region=0.02, progress=False)
    assert metrics["details"]["image_size"] == [32, 40] and metrics["details"]["score_size"] == [64, 80]
    assert sum(map(sum, metrics["test"]["confusion"])) == 4 * 64 * 80  # every stored pixel of the 4 test masks
    predict_files(tmp_path / "run" / "best.pt", synthetic_root / "segmentation" / "test", tmp_path / "pred")
    scores = independent_scores(tmp_path / "pred", synthetic_root / "segmentation" / "test",
                                [32 * k for k in range(8)])
    assert scores["shape"] == (64, 80)
    assert_reproduces(metrics, scores)


def test_predict_masks_reproduce_metrics_on_the_real_data(real_endo, tmp_path):
    metrics = train_segmentation.train(real_endo, tmp_path / "run", epochs=2, limit=20, image_size=(64, 80),
                                       progress=False)
    assert metrics["details"]["score_size"] == [256, 320]
    predict_files(tmp_path / "run" / "best.pt", real_endo / "segmentation" / "test", tmp_path / "pred")
    scores = independent_scores(tmp_path / "pred", real_endo / "segmentation" / "test", [32 * k for k in range(8)])
    assert_reproduces(metrics, scores)


def test_progressive_resizing_trains_its_last_epochs_at_the_stored_size(synthetic_root, tmp_path):
    metrics = train_segmentation.train(synthetic_root, tmp_path / "run", epochs=3, batch_size=4, image_size=(32, 40),
                                       full_size_epochs=1, monitor="val_mean_instrument_dice", progress=False)
    assert metrics["details"]["input_sizes"] == [[1, 32, 40], [3, 64, 80]]
    best = metrics["fit"]["best_epoch"]
    assert metrics["details"]["image_size"] == ([64, 80] if best == 3 else [32, 40])  # the size of the kept weights
    predict_files(tmp_path / "run" / "best.pt", synthetic_root / "segmentation" / "test", tmp_path / "pred")
    assert_reproduces(metrics, independent_scores(tmp_path / "pred", synthetic_root / "segmentation" / "test",
                                                  [32 * k for k in range(8)]))


def assert_background_baseline_is_independent(root: Path, tmp_path: Path) -> None:
    """inference.background_everywhere against all-background masks written to disk and scored by numpy alone."""
    dataset = EndoSegDataset(root, "test")
    split, background = root / "segmentation" / "test", dataset.grey_levels[0]
    truths = []
    for i in dataset.indices:
        truth = np.asarray(Image.open(split / f"{i}/{i}_mask.png"))
        (tmp_path / str(i)).mkdir(parents=True)
        Image.fromarray(np.full_like(truth, background)).save(tmp_path / f"{i}/{i}_pred.png")
        truths.append(truth)
    scores = independent_scores(tmp_path, split, dataset.grey_levels)
    ours = inference.background_everywhere(dataset)
    assert ours["assignment_dice"] == pytest.approx(scores["assignment_dice"], abs=1e-9)
    c = len(dataset.grey_levels)
    per_frame = np.mean([np.mean([(2 * np.sum((t == g) & (g == background)) + 1) /
                                  (np.sum(t == g) + t.size * (g == background) + 1)
                                  for g in dataset.grey_levels]) for t in truths])
    assert ours["assignment_dice_per_frame"] == pytest.approx(per_frame, abs=1e-9)
    assert ours["mean_present_instrument_dice"] == 0 and ours["absent_predicted_share"] == 0 and c > 2
    shares = [float(np.mean(t == background)) for t in truths]
    assert ours["background_share_per_frame"] == pytest.approx([min(shares), max(shares)])
    assert ours["background_share"] == pytest.approx(sum(np.sum(t == background) for t in truths) /
                                                     sum(t.size for t in truths))


def test_the_background_everywhere_baseline_equals_an_independent_computation(synthetic_root, tmp_path):
    assert_background_baseline_is_independent(synthetic_root, tmp_path)


def test_the_background_everywhere_baseline_on_the_real_data(real_endo, tmp_path):
    assert_background_baseline_is_independent(real_endo, tmp_path)


def test_the_no_model_colorization_psnr_equals_an_independent_computation(synthetic_root):
    folder = synthetic_root / "colorization"

    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        indices = sorted(int(p.name) for p in (folder / split).iterdir())
        grey = np.stack([np.asarray(Image.open(folder / f"{split}/{i}/{i}_gray.jpg").convert("L")) for i in indices])
        rgb = np.stack([np.asarray(Image.open(folder / f"{split}/{i}/{i}_input.jpg").convert("RGB")) for i in indices])
        return grey[..., None] / 255.0, rgb / 255.0

    grey, rgb = read("train_cor")
    tint = (rgb - grey).reshape(-1, 3).mean(axis=0)
    grey, rgb = read("validation_cor")

    def psnr(pred: np.ndarray) -> float:
        return 10 * math.log10(1 / np.mean((np.clip(np.broadcast_to(pred, rgb.shape), 0, 1) - rgb) ** 2))

    ours = train_colorization.no_model_psnr(ColorizationDataset(synthetic_root, "train"),
                                            ColorizationDataset(synthetic_root, "validation"))
    assert ours["tint"] == pytest.approx(tint.tolist(), abs=1e-9)
    assert ours["grey_copy_psnr_db"] == pytest.approx(psnr(grey), abs=1e-9)
    assert ours["constant_tint_psnr_db"] == pytest.approx(psnr(grey + tint), abs=1e-9)


def test_baselines_are_added_only_to_a_summary_of_the_same_data(synthetic_root, tmp_path):
    summary = {"data": {"name": synthetic_root.name}, "experiments": {"1d": {"options": {"image_size": [32, 40]}}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    refused = run_script("tools/baselines.py", "--data", str(tmp_path), "--results", str(tmp_path))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "not " + tmp_path.name in refused.stderr
    assert json.loads((tmp_path / "summary.json").read_text()) == summary  # nothing written
    added = run_script("tools/baselines.py", "--data", str(synthetic_root), "--results", str(tmp_path))
    assert added.returncode == 0, added.stderr
    baselines = json.loads((tmp_path / "summary.json").read_text())["baselines"]
    assert baselines["colorization"]["image_size"] == [32, 40]
    assert baselines["segmentation"] == {"split": "test", **inference.background_everywhere(EndoSegDataset(
        synthetic_root, "test"))}  # JSON keeps every float exactly
