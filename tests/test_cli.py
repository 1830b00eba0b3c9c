"""Every script answers --help; 1(c)'s recipe ablation scores each step over seeds."""
from __future__ import annotations

import importlib
import json
import runpy
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from hw6 import experiment, recipe_ablation, train_segmentation
from hw6.notebook import results
from hw6.tools import bench

SCRIPTS = ["train_segmentation.py", "train_colorization.py", "transfer_vgg.py", "label_efficiency.py", "recipe_ablation.py",
           "synthetic_endo.py", "tools/predict.py", "tools/endovis2017.py", "tools/bench.py", "tools/run_notebook.py",
           "tools/fetch_data.py", "tools/full_run.py", "tools/baselines.py", "tools/publish.py", "notebook/report.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_recipe_ablation_steps_over_seeds(synthetic_root, tmp_path):
    seeds = [0, 1]
    base = experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path / "base", seeds,
                                       epochs=3, batch_size=4, progress=False)["runs"]
    rows = recipe_ablation.run(synthetic_root, tmp_path / "recipe", base, seeds, epochs=3, batch_size=4,
                               progress=False)
    assert [r["step"] for r in rows] == ["the study's choice", "+ Dice + cross-entropy loss",
                                         "+ weights kept by validation strict Dice",
                                         "+ classes under 2% of a frame dropped"]
    assert [r["change"] for r in rows] == ["base", "loss", "checkpoint", "filter"]
    present = [r["validation"]["mean_present_instrument_dice"]["values"] for r in rows]
    kept = results.kept_epochs(tmp_path / "recipe", seeds)
    assert list(kept) == ["val_loss", "val_present_dice"]
    for k, seed in enumerate(seeds):
        history = json.loads((tmp_path / "recipe" / f"seed{seed}" / "history.json").read_text())
        best = max(h["val_present_dice"] for h in history)
        # the strict-Dice step scores the epoch of the highest validation strict Dice, and says which one it was
        assert present[2][k] == pytest.approx(best, abs=1e-6)
        assert history[kept["val_present_dice"][k] - 1]["val_present_dice"] == pytest.approx(best, abs=1e-6)
        assert present[1][k] == pytest.approx(history[kept["val_loss"][k] - 1]["val_present_dice"], abs=1e-6)
    assert all(len(r["test"]["mean_present_instrument_dice"]["values"]) == len(seeds) for r in rows)
    saved = json.loads((tmp_path / "recipe" / "ablation.json").read_text())
    assert [r["step"] for r in saved] == [r["step"] for r in rows]
    assert (tmp_path / "recipe" / "ablation.md").read_text().count("\n") == len(rows) + 2


def test_seeds_report_the_spread_and_make_a_long_runs_row(synthetic_root, tmp_path):
    from hw6 import experiment

    result = experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path, [0, 1],
                                         recipe="best", epochs=1, batch_size=4, progress=False)
    scores = result["summary"]["test"]["mean_instrument_dice"]
    assert scores["values"] == [m["test"]["mean_instrument_dice"] for m in result["runs"]]
    assert scores["n"] == 2 and scores["min"] <= scores["mean"] <= scores["max"]
    assert json.loads((tmp_path / "seed1" / "metrics.json").read_text())["options"]["recipe"] == "best"
    assert len(result["summary"]["test"]["dice_per_class"]) == 8
    row = bench.long_run_row(tmp_path / "seeds.json")  # the BENCHMARKS.md long-runs row, read from the file
    assert f"{scores['mean']:.3f}" in row[2] and "--seeds 0 1" in row[-1]


COMMON_ARGV = ["--epochs", "3", "--batch-size", "5", "--lr", "0.01", "--image-size", "64x80", "--seed", "4",
               "--device", "cpu", "--precision", "fp32", "--threads", "1", "--scheduler", "cosine", "--limit", "9",
               "--resume", "--overwrite", "--no-progress"]
COMMON_OPTIONS = dict(epochs=3, batch_size=5, lr=0.01, image_size=(64, 80), seed=4, device="cpu", precision="fp32",
                      threads=1, scheduler="cosine", limit=9, resume="latest", overwrite=True, progress=False)
EXPERIMENT_FLAGS = {
    "train_segmentation": (["--patience", "7", "--recipe", "best", "--augment", "--loss", "dice_ce", "--dice-per-frame",
                            "--monitor", "val_mean_instrument_dice", "--tta", "--min-region", "0.01",
                            "--full-size-epochs", "2", "--label-fraction", "0.5", "--no-batch-norm", "--init-from", "c.pt"],
                           dict(patience=7, recipe="best", augment="flips", loss="dice_ce", dice_batch=False,
                                monitor="val_mean_instrument_dice", tta=True, min_region=0.01, full_size_epochs=2,
                                label_fraction=0.5, batch_norm=False, init_from=Path("c.pt"), sweep=False,
                                rungs=None)),
    "train_colorization": (["--patience", "7", "--no-batch-norm"], dict(patience=7, batch_norm=False)),
    "transfer_vgg": (["--mode", "frozen", "--test-limit", "8", "--weights", "w.pth", "--no-cache"],
                     dict(mode="frozen", test_limit=8, weights=Path("w.pth"), cache=False)),
}


@pytest.mark.parametrize("name", EXPERIMENT_FLAGS)
def test_every_flag_reaches_the_options_with_one_meaning(name):
    module = importlib.import_module(f"hw6.{name}")
    argv, own = EXPERIMENT_FLAGS[name]
    data, out, options, seeds = experiment.parse(module.parser(), ["--data", "D", "--out", "O", *COMMON_ARGV, *argv])
    assert (data, out, seeds) == (Path("D"), Path("O"), None)
    assert options == {**COMMON_OPTIONS, **own}
    assert set(options) - {"sweep", "rungs"} <= set(module.DEFAULTS)  # every flag is an option of train()
    _, _, given, seeds = experiment.parse(module.parser(), ["--data", "D", "--out", "O", "--seeds", "0", "1",
                                                            *(["--mode", "scratch"] if name == "transfer_vgg" else [])])
    assert seeds == [0, 1] and set(given) <= {"sweep", "rungs", "mode"}  # flags not given stay out: recipes and DEFAULTS apply


def test_the_same_flag_has_the_same_help_everywhere():
    helps = {}
    for name in EXPERIMENT_FLAGS:
        for action in importlib.import_module(f"hw6.{name}").parser()._actions:
            for flag in action.option_strings:
                helps.setdefault(flag, set()).add((action.type, action.choices and tuple(action.choices),
                                                   action.help.split(" (default")[0] if action.help else None))
    shared = {flag: kinds for flag, kinds in helps.items() if flag in ("--data", "--out", "--epochs", "--lr", "--seed",
                                                                       "--device", "--precision", "--image-size")}
    assert shared and all(len(kinds) == 1 for kinds in shared.values()), shared


@pytest.mark.parametrize("seed1, words", [
    (None, "is missing or has no validation and test scores"),
    ("{not json", "is missing or has no validation and test scores"),
    ({"validation": None, "test": None}, "is missing or has no validation and test scores"),
    ({"data": {"path": "/elsewhere"}}, "was trained on other data (/elsewhere)"),
    ({"options": {"epochs": 5}}, "was trained with another epochs (5, here 1)"),
    ({"options": {"loss": "dice_ce"}}, "was trained with another loss (dice_ce, here dice)")])
def test_recipe_ablation_refuses_an_unusable_base_before_any_training(seed1, words, synthetic_root, tmp_path, capsys):
    options = experiment.jsonable(train_segmentation.resolve_options(epochs=1))
    usable = {"validation": {"loss": 0.5}, "test": {"loss": 0.5}, "data": {"path": str(synthetic_root.resolve())}}
    for seed, content in ((0, {}), (1, seed1)):
        (tmp_path / "base" / f"seed{seed}").mkdir(parents=True)
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(
                {**usable, **content, "options": {**options, **content.get("options", {})}})
            (tmp_path / "base" / f"seed{seed}" / "metrics.json").write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        recipe_ablation.main(["--data", str(synthetic_root), "--base", str(tmp_path / "base"), "--out",
                              str(tmp_path / "out"), "--seeds", "0", "1", "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'base' / 'seed1' / 'metrics.json'} {words}" in err and not (tmp_path / "out").exists()


def test_report_refuses_a_missing_readme_before_writing_anything(tmp_path, capsys):
    from hw6.notebook import report
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--results", str(ROOT / "results"), "--pdf", str(tmp_path / "r.pdf"), "--plots",
                     str(tmp_path / "plots"), "--readme", str(tmp_path / "README.md")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--readme {tmp_path / 'README.md'}" in err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad, words", [
    (["--render", "missing.json"], "cannot read it as JSON"), (["--render", "list.json"], "not a benchmark's JSON"),
    (["--render", "good.json", "--runs", "notes.md"], "cannot read it as JSON"),
    (["--render", "good.json", "--runs", "good.json"], "not a run's metrics.json or a seed set's seeds.json"),
    (["--render", "good.json", "--runs", "vgg-seeds.json"], "a seed set of vgg16 run; give a VGG16 run's")])
def test_bench_render_names_an_unusable_file_in_one_line(bad, words, tmp_path, monkeypatch, capsys):
    (tmp_path / "good.json").write_text(json.dumps({"machine": "m", "device": "cpu", "cores": 2, "torch": "2",
                                                    "python": "3", "seg_data": "d", "command": "c"}))
    (tmp_path / "vgg-seeds.json").write_text(json.dumps({"experiment": "vgg16", "options": {}, "device": "cpu",
                                                         "seeds": [0, 1]}))
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "notes.md").write_text("# not JSON\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(bad + ["--out", "BENCHMARKS.md"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{bad[-2]} {bad[-1]}: {words}" in err and not (tmp_path / "BENCHMARKS.md").exists()
