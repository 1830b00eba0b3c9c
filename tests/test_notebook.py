"""hw6.ipynb end to end in the smoke profile, through the prepared GPU command (tools/full_run.py) on this CPU:
its summary, each section's files, its saved outputs; and notebook/report.py laying out and rebuilding the
report from the results alone."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import REAL_FASHION, ROOT, SHARED_DATA, run_script
from hw6.notebook import answers, report
from hw6.tools import run_notebook
from test_vgg import write_tiny_fashion

SECTIONS = ("1a", "1b", "1c", "1d", "1e", "2a", "2b", "2c")


def tracked_changes() -> str | None:
    """``git status`` of the tracked files (None outside a git checkout)."""
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        return None
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def summary_dir(results: Path, key: str) -> str:
    return json.loads((results / "summary.json").read_text())["experiments"][key]["dir"]


def unreferenced(blocks: list) -> list[str]:
    """The numbered tables and figures that no paragraph of the report refers to."""
    prose = " ".join(b.text for b in blocks if b.kind == "text")
    numbered = [re.match(r"(Table|Figure) \d+", b.text).group(0) for b in blocks if b.kind in ("table", "figure")]
    return [n for n in numbered if not re.search(rf"{n}\b(?!\.)", prose)]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    fashion = SHARED_DATA if (REAL_FASHION / "train-images-idx3-ubyte").is_file() else write_tiny_fashion(tmp / "fashion", 200)
    before = tracked_changes()
    result = run_script("tools/full_run.py", "--out", str(tmp), "--profile", "smoke", "--data", "", "--fashion",
                        str(fashion), "--no-bench", timeout=1500)
    assert tracked_changes() == before  # a run changes no tracked file of the project
    return tmp, result


def test_notebook_runs_and_its_saved_outputs_are_clean(executed):
    tmp, result = executed
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(tmp / "hw6.ipynb", as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "SYNTHETIC data" in text  # no DATA_ROOT given: the run says its results are synthetic
    assert "\r" not in text and "it/s]" not in text  # no progress-bar fragments saved
    warnings = [line for line in text.splitlines() if "Warning" in line or line.startswith("warning:")]
    assert len(warnings) == len(set(warnings))  # each warning at most once
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        printed = "".join(o.get("text", "") for o in cell.outputs)
        assert len(printed.splitlines()) <= 15, cell.source[:80]  # a reader's page, not a log
        assert not re.search(r"/tmp/|/work/|/home/|\.\./|[A-Z]:\\", printed), printed  # no machine paths
        if "VGG16_WEIGHTS or None" in cell.source:  # 2(b) and 2(c), without ImageNet weights here
            assert printed.lower().count("not run") == 1, printed


def test_the_prepared_command_records_the_card_and_each_step(executed):
    tmp, _ = executed
    record = json.loads((tmp / "full_run.json").read_text())
    assert record["card"] == "no GPU (CPU run)" and record["profile"] == "smoke"
    assert record["steps"]["notebook_seconds"] > 0 and record["wall_seconds"] >= record["steps"]["notebook_seconds"]
    assert (tmp / "report.pdf").is_file() and (tmp / "plots").is_dir()


# What each experiment section's cell must show: its train function, model, loss, data and hyper-parameters.
SECTION_CODE = {
    "options_1a": ("train_segmentation.train", "unet.UNet(3 -> 8", 'loss="dice", dice_batch=True', "batch_size=10",
                   "lr=1e-3", 'patience=SCALE["patience"]', 'monitor="val_loss"', "seeds_1a", "DATA"),
    "options_1b": ("train_segmentation.train", 'augment="flips"', "options_1a"),
    "options_1c": ("train_segmentation.sweep", "train_segmentation.train", "grid_1c", 'SCALE["rungs"]', "options_1a",
                   "chosen_1c", "seeds_1a"),
    "options_1d": ("train_colorization.train", "unet.UNet(1 grey channel -> 3", "batch_size=10", "lr=1e-3",
                   'patience=SCALE["color_patience"]', "DATA"),
    "options_1e": ("train_segmentation.train", "init_from=pretrained_1e", "options_1c"),
    "options_2a": ("transfer_vgg.train", 'mode="scratch"', "batch_size=128", "lr=1e-4", "FASHION_ROOT"),
    "options_2b": ("transfer_vgg.train", 'mode="frozen"', "batch_size=256", "lr=1e-3", "weights=VGG16_WEIGHTS"),
    "options_2c": ("transfer_vgg.train", 'mode="finetune-fc"', "batch_size=256", "lr=1e-4", "weights=VGG16_WEIGHTS"),
}


def test_each_section_cell_shows_what_it_trains_and_calls_the_modules_directly():
    nb = nbformat.read(ROOT / "hw6.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for marker, needed in SECTION_CODE.items():
        cells = [c for c in code if f"{marker} = dict(" in c]
        assert len(cells) == 1, marker
        missing = [n for n in needed if n not in cells[0]]
        assert not missing and "answers.answer(" in cells[0] and "show(OUT" in cells[0], (marker, missing)
    assert sum(len(c.splitlines()) for c in code) >= 80
    assert not [c for c in code if "session" in c.lower() or ":train" in c]  # no facade, no functions by name


def test_one_section_reruns_alone_after_the_setup_cells(executed, tmp_path, monkeypatch):
    tmp, _ = executed
    for folder in ("results", "data"):
        shutil.copytree(tmp / folder, tmp_path / folder)
    before = json.loads((tmp_path / "results" / "summary.json").read_text())["experiments"]
    loss_png = tmp_path / "results" / "1a_dice" / "loss.png"
    loss_png.unlink()
    nb = nbformat.read(ROOT / "hw6.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = [c for c in code if "parameters" in c.metadata.get("tags", []) or "results.start(" in c.source]
    section = next(c for c in code if "options_1a = dict(" in c.source)
    section.source = section.source.replace("lr=1e-3", "lr=3e-4")  # what a student changes
    nb.cells = setup + [section]
    nbformat.write(nb, tmp_path / "one_section.ipynb")
    monkeypatch.setenv("HW6_PROFILE", "smoke")
    monkeypatch.setenv("HW6_DATA_ROOT", "")
    monkeypatch.setenv("HW6_OUT", str(tmp_path / "results"))
    monkeypatch.setenv("HW6_PROGRESS", "0")
    run_notebook.execute(tmp_path / "one_section.ipynb", tmp_path / "one_section.out.ipynb", timeout=600)
    after = json.loads((tmp_path / "results" / "summary.json").read_text())["experiments"]
    assert after["1a"]["options"]["lr"] == 3e-4 and before["1a"]["options"]["lr"] == 1e-3
    assert {k: v for k, v in after.items() if k != "1a"} == {k: v for k, v in before.items() if k != "1a"}
    assert loss_png.is_file()  # its figure redrawn
    seed0 = json.loads((tmp_path / "results" / "1a_dice" / "seed0" / "metrics.json").read_text())
    assert seed0["options"]["lr"] == 3e-4
    # Every answer, in the notebook and in the report, stays true: each states its own settings, and those
    # built on 1(a) (directly or through 1(c)) say they are out of date; 1(d) does not build on 1(a).
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    said = {key: answers.answer(key, summary) for key in answers.ANSWERS if key in after}
    assert "learning rate 0.0003 " in said["1a"] and "Out of date" not in said["1a"]
    assert "learning rate 0.001 " in said["1b"] and "Out of date: 1(a) ran again" in said["1b"]
    assert "Out of date: 1(a) ran again" in said["1c"]
    assert "Out of date: 1(c) that this section builds on" in said["1e"]
    assert "Out of date" not in said["1d"] and not [k for k, t in said.items() if "as in 1(a)" in t]
    texts = [b.text for b in report.layout(tmp_path / "results") if b.kind == "text"]
    assert all(text in texts for text in said.values())


def test_parameters_cell_is_tagged_and_reads_hw6_variables():
    nb = nbformat.read(ROOT / "hw6.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("DATA_ROOT", "PROFILE", "DEVICE", "FASHION_ROOT", "VGG16_WEIGHTS", "OUT", "PARALLEL", "PROGRESS"):
        assert re.search(rf'^{name} = os.environ.get\("HW6_{name}"', params[0].source, re.M), name


def test_summary_structure_and_each_sections_files(executed):
    tmp, _ = executed
    results = tmp / "results"
    summary = json.loads((results / "summary.json").read_text())
    assert set(summary["experiments"]) == set(SECTIONS) | {"1c_recipe", "1e_label_efficiency"}
    assert summary["data"]["synthetic"] is True and summary["profile"] == "smoke"
    assert {summary["experiments"][k]["status"] for k in ("2b", "2c")} == {"not run"}
    for key in ("1a", "1b", "1c", "1e"):
        e = summary["experiments"][key]
        assert e["seeds"] == [0, 1] and len(e["fits"]) == 2 and e["score_size"] == [64, 80]
        spread = e["test"]["mean_present_instrument_dice"]
        assert spread["n"] == 2 and spread["min"] <= spread["mean"] <= spread["max"]
        assert len(e["test"]["dice_per_class"]) == 8
        for name in ("loss.png", "seeds.json", "seed0/metrics.json", "seed1/best.pt", "seed0/predictions.png"):
            assert (results / e["dir"] / name).is_file(), (key, name)
    assert (results / "1c_study" / "study.csv").read_text().count("\n") == 1 + 4 * 2  # header + configurations
    assert [r["step"][:1] for r in summary["experiments"]["1c_recipe"]["rows"]] == ["t", "+", "+", "+"]
    assert summary["experiments"]["1e"]["init"]["adapted"] == ["enc1.0.weight"]
    assert len(summary["experiments"]["1e_label_efficiency"]["rows"]) == 2 * 2 * 1  # inits x fractions x seeds
    assert (results / "1d_colorization" / "best.pt").is_file() and (results / "2a" / "curves.png").is_file()
    assert summary["experiments"]["2a"]["status"] == "done" and summary["experiments"]["2b"]["setup"]["trainable_parameters"] == 40970


def test_report_lays_out_every_answer_and_numbered_figure_referred_to(executed):
    tmp, _ = executed
    blocks = report.layout(tmp / "results")
    texts = [b.text for b in blocks if b.kind in ("text", "code")]
    summary = json.loads((tmp / "results" / "summary.json").read_text())
    for key in SECTIONS:
        assert answers.answer(key, summary) in texts, key
        assert "Question. " + answers.QUESTIONS[key] in texts, key
    captions = [b.text for b in blocks if b.kind == "figure"]
    assert [int(re.match(r"Figure (\d+)\. ", c).group(1)) for c in captions] == list(range(1, len(captions) + 1))
    assert not unreferenced(blocks)  # every table and figure is referred to in the text
    figures = {b.path.relative_to((tmp / "results").resolve()).as_posix() for b in blocks if b.kind == "figure"}
    for key in ("1a", "1b", "1d", "1e", "2a"):
        for name, _, _ in report.FIGURES[key]:
            assert f"{summary['experiments'][key]['dir']}/{name}" in figures, (key, name)
    assert "1c_study/study.png" in figures
    assert answers.WHAT_TO_RUN in texts  # 2(b)/2(c) say what a user does to run them
    assert "def augment_batch" in answers.augmentation_source()
    assert answers.dice_implementation().startswith("def soft_dice_loss(")  # the code, as the assignment asks
    assert "def color_jitter" in answers.augmentation_source(whole=True)
    assert answers.augmentation_source(whole=True) in texts and "def adjust_hue" in answers.augmentation_source(whole=True)
    tables = [i for i, b in enumerate(blocks) if b.kind == "table"]
    numbers = [int(re.match(r"Table (\d+)\. ", blocks[i].text).group(1)) for i in tables]  # each its caption
    assert numbers == list(range(1, len(tables) + 1))
    assert not [t for t in texts if "convention" in t]  # one class convention: classes present, absent share
    comparisons = [s for t in texts for s in re.split(r"(?<=\.) ", t) if " against " in s and "seed" in s]
    assert comparisons and all("Welch p" in s or "fewer than three seeds" in s.lower() or "same to three" in s
                               for s in comparisons), comparisons
    assert not [t for t in texts if str(tmp) in t or "/work/" in t]  # no machine paths


def test_report_prose_is_words_its_type_readable_and_its_pages_full(executed, tmp_path):
    tmp, _ = executed
    blocks = report.layout(tmp / "results")
    appendix = next(i for i, b in enumerate(blocks) if b.text.startswith("Appendix A"))
    prose = [b.text for b in blocks[:appendix] if b.kind in ("text", "heading")] + [
        b.text for b in blocks if b.kind == "figure"] + [c for b in blocks if b.kind == "table" for r in b.rows for c in r]
    identifiers = [t for t in prose if re.search(r"\b[a-z]+_[a-z_]+\b|\.py\b|\.pt\b|\.json|\s--\w|\bTrue\b|"
                                                 r"\bFalse\b|\$|`|=|\bHW6_", t)]
    assert not identifiers, identifiers  # code identifiers, literals and commands only in the appendix
    assert not [b for b in blocks[:appendix] if b.kind == "code"]
    writer = report.render(blocks, tmp_path / "r.pdf")
    assert min(writer.sizes["text"] | writer.sizes["caption"]) >= 10 and min(writer.sizes["table"]) >= 9
    assert min(writer.sizes["code"]) >= 8
    assert len(writer.broken) == 2 and writer.broken[0] == 1  # after the title page, before the appendix
    short = [n for n, fill in enumerate(writer.fills[:-1], 1) if fill < 0.5]
    assert set(short) <= set(writer.broken), (short, writer.fills)  # only a section's last page may be short


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def test_report_is_a_pdf_that_rebuilds_from_results(executed, tmp_path):
    tmp, _ = executed
    pdf = tmp / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and 8 <= _pages(pdf) <= 24
    assert (tmp / "plots" / "1a_dice_loss.png").is_file()
    rebuilt = run_script("notebook/report.py", "--results", str(tmp / "results"), "--pdf", str(tmp_path / "r.pdf"),
                         "--plots", str(tmp_path / "plots"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _pages(tmp_path / "r.pdf") == _pages(pdf)


def test_answers_quote_the_run_numbers(executed):
    tmp, _ = executed
    summary = json.loads((tmp / "results" / "summary.json").read_text())
    e = summary["experiments"]["1a"]
    text = answers.answer("1a", summary)
    assert f"{e['test']['mean_present_instrument_dice']['mean']:.3f}" in text
    assert f"{e['test']['assignment_dice']['mean']:.3f}" in text
    assert "fewer than three seeds" in answers.answer("1b", summary).lower()  # two smoke seeds: no conclusion


def test_report_shows_the_longer_runs_apart_with_their_curves_and_convergence(executed, tmp_path):
    tmp, _ = executed
    results = tmp_path / "results"
    shutil.copytree(tmp / "results", results, ignore=shutil.ignore_patterns("*.pt"))
    for source, folder in (("1a_dice", "dice-reading/batch"), ("1b_augment", "1b-seeds-128x160")):
        shutil.copytree(results / source, results / folder)
        (results / folder / "loss.png").unlink()  # a seed set's curves are drawn from its histories
    shutil.copytree(results / summary_dir(results, "2a"), results / "2a-full")  # a longer fixed-schedule VGG16 run
    blocks = report.layout(results)
    heading = [i for i, b in enumerate(blocks) if b.text.startswith("Longer runs, outside the notebook")]
    assert len(heading) == 1
    text = blocks[heading[0] + 1].text
    a1 = json.loads((results / "1a_dice" / "seeds.json").read_text())["test"]["mean_present_instrument_dice"]
    assert "fewer than three seeds" in text.lower() and f"{a1['mean']:.3f}" in text  # two smoke seeds: no finding
    assert "verged" in text  # each longer run says how it ended
    assert "fixed schedules without early stopping" in text and "1(b) against 1(a) at this budget" in text
    assert not unreferenced(blocks)
    assert (results / "dice-reading" / "batch" / "loss.png").is_file()
    title = report.notebook_rows(json.loads((results / "summary.json").read_text()))
    assert "Budget" not in title[0]  # the title page holds this notebook's runs alone, at one budget
    appendix = "\n".join(b.text for b in blocks if b.kind == "code")
    assert "--out results/dice-reading/batch --image-size 32x40" in appendix  # its folder and command
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\n{report.README_END}\n")
    report.update_readme(results, readme)
    assert "Longer runs outside the notebook" in readme.read_text() and "32x40, 2 epochs, 2 seeds" in readme.read_text()
    seeds = json.loads((results / "1b-seeds-128x160" / "seeds.json").read_text())
    seeds["data"]["name"] = "other-data"
    (results / "1b-seeds-128x160" / "seeds.json").write_text(json.dumps(seeds))
    assert not report.outside_runs("1b", json.loads((results / "summary.json").read_text()), results)  # never mixed


@pytest.mark.parametrize("rows, words", [
    ([["1a", "0.88", "0.80", "0.40", "0.50"], ["1b", "0.86", "0.50", "0.40", "0.84"]],
     "the per-frame and strict readings sit closest to the reference's numbers in 1 of 2 sections each"),
    ([["1a", "0.88", "0.80", "0.40", "0.50"]],
     "the per-frame reading sits closest to the reference's numbers in 1 of 1 section"),
    ([["1a", "0.88", "n/a", "0.40", "0.50"]], "no section has all three readings to compare with the reference")])
def test_the_reading_closest_to_the_reference_is_counted_with_ties(rows, words):
    assert report.closest_words([["Experiment", "Reference", "a", "b", "c"]] + rows) == words
