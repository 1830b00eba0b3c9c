"""Every script answers --help, and the ablation keeps only steps that help on validation."""
from __future__ import annotations

import json
import runpy
import sys

import pytest

import ablation
import bench
from conftest import ROOT

SCRIPTS = ["train_segmentation.py", "train_colorization.py", "transfer_vgg.py", "label_efficiency.py", "predict.py",
           "synthetic_endo.py", "endovis2017.py", "report.py", "bench.py", "ablation.py", "run_notebook.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_ablation_keeps_only_improving_steps(synthetic_root, tmp_path):
    steps = [("base", {}), ("+ cross-entropy", {"loss": "dice_ce"}), ("+ strict monitor", {"monitor": "val_mean_instrument_dice"})]
    rows = ablation.run(synthetic_root, tmp_path, steps, min_region_grid=[0.005], seeds=[0, 1], epochs=1,
                        batch_size=4, progress=False)
    assert len(rows) == 3 + 1 + 1  # three trained steps, one threshold, the final test row
    assert all(len(row["per_seed"].split()) == 2 for row in rows[:4])
    assert [r["step"] for r in rows[:3]] == ["base", "+ cross-entropy", "+ strict monitor"]
    best = -1.0
    for row in rows[:3]:
        assert row["kept"] == (row["val_mean_instrument_dice"] > best)
        best = max(best, row["val_mean_instrument_dice"]) if row["kept"] else best
    assert "test_mean_instrument_dice" in rows[-1] and "val_mean_instrument_dice" not in rows[-1]
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["synthetic"] is True and len(saved["class_names"]) == 8
    assert (tmp_path / "ablation.md").read_text().count("\n") == len(rows) + 2


def test_ablation_reuses_finished_steps(synthetic_root, tmp_path, monkeypatch):
    steps = [("base", {})]
    ablation.run(synthetic_root, tmp_path, steps, min_region_grid=[0.01], seeds=[0], epochs=1, batch_size=4,
                 progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished step was trained again")

    monkeypatch.setattr(ablation.train_segmentation, "train", no_training)
    rows = ablation.run(synthetic_root, tmp_path, steps, min_region_grid=[0.01], seeds=[0], epochs=1, batch_size=4,
                        progress=False)
    assert rows[1]["step"] == "+ drop classes under 1.00% of a frame"


def test_seeds_report_the_spread_and_make_a_long_runs_row(synthetic_root, tmp_path):
    import seeds
    import train_segmentation

    result = seeds.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path, [0, 1], recipe="best",
                                    epochs=1, batch_size=4, progress=False)
    scores = result["summary"]["test"]["mean_instrument_dice"]
    assert scores["values"] == [m["test"]["mean_instrument_dice"] for m in result["runs"]]
    assert scores["n"] == 2 and scores["min"] <= scores["mean"] <= scores["max"]
    assert json.loads((tmp_path / "seed1" / "metrics.json").read_text())["options"]["recipe"] == "best"
    assert len(result["summary"]["test"]["dice_per_class"]) == 8
    row = bench.long_run_row(tmp_path / "seeds.json")  # the BENCHMARKS.md long-runs row, read from the file
    assert f"{scores['mean']:.3f}" in row[2] and "--seeds 0 1" in row[-1]
