"""Every answer fits its bound (answers.LINES at answers.WIDTH) whatever the numbers: the committed course-data
summary, pushed to each worst case a run can produce, through every answer function."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from hw6.kit import stats
from hw6.notebook import answers

SUMMARY = json.loads((Path(__file__).resolve().parents[1] / "results" / "summary.json").read_text())
LONG_NAMES = ["Background_Tissue_Everywhere", "Bipolar_Forceps_Fenestrated", "Prograsp_Forceps_Curved",
              "Large_Needle_Driver_Suture", "Vessel_Sealer_Extend_Long", "Grasping_Retractor_Tip_Up",
              "Monopolar_Curved_Scissors_Hot", "Other_Instrument_Unlisted"]


def spread(values: list[float]) -> dict:
    return stats.spread(values)


def worst(summary: dict, seeds: int, disagree: bool) -> dict:
    """``summary`` with every segmentation run at its cap, the longest class names, the longest options, and
    (``disagree``) comparisons on either side of the finding line, every section out of date."""
    s = copy.deepcopy(summary)
    for key, e in s["experiments"].items():
        e["inputs"] = {dep: "changed" for dep in answers.DEPENDS.get(key, [])}
        e["options_hash"] = key
        if e.get("kind") == "segmentation":
            e["class_names"] = LONG_NAMES
            e["seeds"] = list(range(seeds))
            e["options"].update(lr=0.000316228, epochs=999, patience=999, scheduler="cosine",
                                monitor="val_mean_instrument_dice")
            e["train_frames"] = 123456
            e["fits"] = [{"seed": k, "best_epoch": 999, "epochs_run": 999, "stop_reason": "reached 999 epochs",
                          "train_seconds": 1.0, "val_loss_slope": 0.12345 if disagree else -0.12345,
                          "train_loss_slope": -0.1}
                         for k in range(seeds)]
            for split in ("test", "validation"):
                e[split]["absent_classes"] = [1, 5, 6, 7]
                shift = 0.3 if disagree and key in ("1b", "1c", "1e") else 0.0
                e[split]["mean_present_instrument_dice"] = spread([0.123456 + shift + 0.01 * k for k in range(seeds)])
                e[split]["absent_predicted_share"] = spread([0.4444] * seeds)
    for i, row in enumerate(s["experiments"]["1c_recipe"]["rows"]):  # steps that move: every sentence is said
        for split in ("test", "validation"):
            row[split]["mean_present_instrument_dice"] = spread([0.9 - 0.2 * (k % 2) - 0.05 * i for k in range(seeds)])
    s["experiments"]["1c_recipe"]["seeds"] = list(range(seeds))
    s["experiments"]["1c_recipe"]["kept_epochs"] = {"val_loss": [999] * seeds, "val_present_dice": [998] * seeds}
    study = s["experiments"]["1c"]["study"]
    study["grid"] = {"lr": [1e-2, 3e-3, 1e-3, 3.16228e-4, 1e-4, 3e-5, 1e-5], "batch_size": [10, 4, 2]}
    study["rungs"] = [1, 3, 9, 27, 81, 243]
    d = s["experiments"]["1d"]
    d["val_loss_per_epoch"] = [0.001 + 0.0001 * math.sin(k) for k in range(150)]
    d["train_loss_per_epoch"] = [0.01 / (k + 1) for k in range(150)]
    d["options"].update(epochs=999, patience=999, lr=0.000316228)
    s["experiments"]["2a"]["accuracy_per_epoch"] = [0.5 + 0.001 * k for k in range(200)]
    s["experiments"]["1e_label_efficiency"] = {
        "kind": "label_efficiency", "status": "done", "dir": "x", "epochs": 999, "seeds": list(range(seeds)),
        "comparison": [{"fraction": f, "pretrained": spread([0.5] * seeds), "scratch": spread([0.4] * seeds),
                        "finding": True} for f in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)],
        "inputs": {"1e": "changed"}}
    s["experiments"]["2b"]["reason"] = "ImageNet VGG16 weights unavailable " * 10
    return s


@pytest.mark.parametrize("seeds", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("disagree", [False, True])
def test_every_answer_fits_its_bound_in_the_worst_case(seeds, disagree):
    summary = worst(SUMMARY, seeds, disagree)
    for key in list(answers.ANSWERS) + ["unknown"]:
        text = answers.answer(key, summary, width=answers.WIDTH)
        assert len(text.splitlines()) <= answers.LINES, (key, seeds, disagree, text)
        assert max(len(line) for line in text.splitlines()) <= answers.WIDTH, key
    assert "Out of date: 1(c) and 1(d)" in answers.answer("1e", summary)  # the worst case is really exercised


def test_answers_make_a_finding_only_with_a_test():
    summary = copy.deepcopy(SUMMARY)
    text = answers.answer("1e", summary)
    assert "within noise (Welch p = " in text or "(Welch p " in text
    for key in answers.ANSWERS:
        assert "conventions" not in answers.answer(key, summary)


def test_an_answer_says_it_is_out_of_date_only_when_its_inputs_changed():
    summary = copy.deepcopy(SUMMARY)
    ex = summary["experiments"]
    ex["1a"]["options_hash"], ex["1b"]["inputs"] = "a", {"1a": "a"}
    assert "Out of date" not in answers.answer("1b", summary)
    ex["1a"]["options_hash"] = "b"
    assert "Out of date: 1(a) ran again with other settings" in answers.answer("1b", summary)
    for key in ("1c", "1d"):
        ex[key]["options_hash"] = key
    ex["1c"]["inputs"], ex["1c_recipe"]["inputs"], ex["1e"]["inputs"] = {"1a": "a"}, {"1c": "1c"}, {"1c": "1c", "1d": "1d"}
    assert "Out of date: 1(c) that this section builds on is out of date" in answers.answer("1e", summary)
    assert "Out of date: 1(c) that" in answers.answer("1c_recipe", summary)  # through 1(c), which itself ran as it did
    ex["1a"]["options_hash"] = "a"
    assert not [k for k in answers.ANSWERS if "Out of date" in answers.answer(k, summary)]


def test_welch_p_matches_closed_forms_and_tables():
    """Student's t two-sided tail against closed forms (1 and 2 degrees of freedom) and table values."""
    for t in (0.3, 1.0, 2.5, 10.0):
        assert stats.t_two_sided(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
        assert stats.t_two_sided(t, 2) == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-12)
    assert stats.t_two_sided(2.776445, 4) == pytest.approx(0.05, abs=1e-6)  # t table, 4 df, 97.5%
    assert stats.t_two_sided(2.570582, 5) == pytest.approx(0.05, abs=1e-6)
    a, b = stats.spread([1.0, 2.0, 3.0]), stats.spread([4.0, 5.0, 6.0])  # t = -3/sqrt(2/3), df = 4
    assert stats.welch_p(a, b) == pytest.approx(stats.t_two_sided(3 / math.sqrt(2 / 3), 4), abs=1e-12)
    assert math.isnan(stats.welch_p(stats.spread([1.0]), b))
    assert not stats.is_finding(stats.spread([0.5, 0.6, 0.7]), stats.spread([0.71, 0.72, 0.73]))  # within range


def test_a_comparison_at_one_cap_says_when_the_smaller_batch_leads_by_more_updates():
    s = copy.deepcopy(SUMMARY)
    c, a = s["experiments"]["1c"], s["experiments"]["1a"]
    c["options"]["batch_size"], a["options"]["batch_size"], c["train_frames"], a["train_frames"] = 4, 10, 301, 301
    assert answers.present(c)["mean"] > answers.present(a)["mean"]
    assert "Batch 4: 76 updates an epoch, batch 10: 31;" in answers.answer("1c", s)  # ceil(301 / b)
    c["options"]["batch_size"] = 20  # fewer steps, yet ahead: the steps explain nothing
    assert "updates an epoch" not in answers.answer("1c", s)
    c["options"]["batch_size"] = 10
    assert "updates an epoch" not in answers.answer("1c", s)
    c["options"]["batch_size"] = 4
    for fit in c["fits"] + a["fits"]:
        fit["stop_reason"] = "early stop: no better val_loss for 8 epochs"
    assert "updates an epoch" not in answers.answer("1c", s)  # runs that converged owe nothing to the cap


@pytest.mark.parametrize("psnr, words", [(30.0, "adds 4.3 dB to the tint"), (25.0, "is 0.7 dB below the tint"),
                                         (float("inf"), "25.7 dB.")])
def test_1d_sets_its_psnr_against_the_constant_tint_on_either_side(psnr, words):
    s = copy.deepcopy(SUMMARY)
    s["experiments"]["1d"]["validation"]["psnr_db"] = psnr
    s["baselines"]["colorization"]["constant_tint_psnr_db"] = 25.7
    assert words in answers.answer("1d", s)


@pytest.mark.parametrize("last, side", [(0.7, "above the first (Welch p < 0.001, a finding)."),
                                        (0.3, "below the first (Welch p < 0.001, a finding)."),
                                        (0.5001, "level with the first.")])
def test_the_recipe_answer_says_where_its_steps_end_on_validation(last, side):
    s = copy.deepcopy(SUMMARY)
    rows = s["experiments"]["1c_recipe"]["rows"]
    for row, value in zip(rows, [0.5, 0.6, 0.4, last]):
        row["validation"]["mean_present_instrument_dice"] = spread([value] * 3)
    # three equal seeds a side: no spread, so any difference is a finding by the test
    assert (f"On validation the steps read 0.500, 0.600, 0.400, {last:.3f}: the last ends {side}"
            in answers.answer("1c_recipe", s))


@pytest.mark.parametrize("slopes, word", [([0.01, 0.02], "rose +0.0150 per epoch, past its best"),
                                          ([0.03, -0.01], "moved +0.0100 per epoch"),
                                          ([0.00001, 0.00002], "moved +0.0000 per epoch")])
def test_past_its_best_only_when_the_validation_loss_rose_in_every_seed(slopes, word):
    fits = [{"seed": k, "best_epoch": 5, "epochs_run": 10, "stop_reason": "reached 10 epochs", "val_loss_slope": s}
            for k, s in enumerate(slopes)]
    assert word in answers.convergence(fits, 10)


def test_the_recipe_validation_sentence_needs_two_finite_steps():
    assert answers.validation_end([]) == ""
    row = {"validation": {"mean_present_instrument_dice": spread([0.5])}}
    assert answers.validation_end([row]) == ""
    assert answers.validation_end([row, {"validation": {"mean_present_instrument_dice": spread([])}}]) == ""


@pytest.mark.parametrize("seeds", [1, 3])
def test_a_table_cell_over_seeds_gives_its_range_only_where_there_is_one(seeds):
    from hw6.notebook import report
    summary = worst(SUMMARY, seeds, False)
    cells = [c for row in report.ablation_rows(summary["experiments"]["1c_recipe"])[1:] for c in row[1:3]]
    cells += report.notebook_rows(summary)[1][1:2]
    assert all(c.count("(") == c.count(")") == (seeds > 1) for c in cells), cells
