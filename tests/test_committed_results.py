"""The committed results agree with themselves: every headline number can be recomputed from the files it
was computed from."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SEGMENTATION_METRICS = sorted(p for p in RESULTS.glob("**/metrics.json")
                              if json.loads(p.read_text()).get("experiment") == "segmentation")


def present_class_scores(confusion: list[list[int]]) -> tuple[float, float, list[int], float]:
    """Written apart from losses.strict_scores, in numpy: (mean Dice and mean IoU over the instrument classes
    with ground-truth pixels, the classes without any, the share of pixels predicted as one of those)."""
    m = np.asarray(confusion, dtype=np.float64)
    truth, predicted, hits = m.sum(axis=1), m.sum(axis=0), np.diag(m)
    present = [c for c in range(1, len(m)) if truth[c] > 0]
    absent = [c for c in range(1, len(m)) if truth[c] == 0]
    dice = [2 * hits[c] / (truth[c] + predicted[c]) for c in present]
    iou = [hits[c] / (truth[c] + predicted[c] - hits[c]) for c in present]
    return float(np.mean(dice)), float(np.mean(iou)), absent, float(predicted[absent].sum() / m.sum())


def test_results_hold_segmentation_runs():
    assert len(SEGMENTATION_METRICS) >= 9  # 1(a), 1(b), 1(c) and 1(e) over three seeds at the least


@pytest.mark.parametrize("path", SEGMENTATION_METRICS, ids=lambda p: str(p.parent.relative_to(RESULTS)))
def test_present_class_mean_of_every_run_equals_its_confusion_matrix(path):
    metrics = json.loads(path.read_text())
    splits = [s for s in ("validation", "test") if metrics.get(s) and "confusion" in metrics[s]]
    assert splits
    for split in splits:
        scores = metrics[split]
        dice, iou, absent, share = present_class_scores(scores["confusion"])
        assert scores["mean_present_instrument_dice"] == pytest.approx(dice, abs=1e-12)
        assert scores["mean_present_instrument_iou"] == pytest.approx(iou, abs=1e-12)
        assert scores["absent_classes"] == absent
        assert scores["absent_predicted_share"] == pytest.approx(share, abs=1e-12)


def test_summary_means_are_the_means_of_their_seeds_runs():
    summary = json.loads((RESULTS / "summary.json").read_text())
    segmentation = {k: e for k, e in summary["experiments"].items() if e.get("kind") == "segmentation"}
    assert segmentation
    for key, entry in segmentation.items():
        for metric in ("mean_present_instrument_dice", "mean_instrument_dice", "absent_predicted_share"):
            runs = [json.loads((RESULTS / entry["dir"] / f"seed{s}" / "metrics.json").read_text())["test"][metric]
                    for s in entry["seeds"]]
            assert entry["test"][metric]["mean"] == pytest.approx(sum(runs) / len(runs), abs=1e-12), (key, metric)
            assert not math.isnan(entry["test"][metric]["mean"])


def test_every_published_figure_belongs_to_a_run_the_summary_or_the_longer_runs_name():
    """plots/ holds exactly the figures of the committed report: each named by the list the report build
    writes, each copied from a run folder of summary.json or of a longer run on the same data."""
    from hw6.notebook import report

    summary = json.loads((RESULTS / "summary.json").read_text())
    folders = {e["dir"].split("/")[0] for e in summary["experiments"].values() if e.get("dir")}
    folders |= {run["folder"].replace("/", "_") for key in report.OUTSIDE for run in report.outside_runs(key, summary, RESULTS)}
    plots = sorted(p.name for p in (ROOT / "plots").glob("*.png"))
    assert plots == (ROOT / "plots" / report.FIGURE_LIST).read_text().split()
    assert all(any(name.startswith(folder + "_") for folder in folders) for name in plots), plots
