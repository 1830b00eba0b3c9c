"""hw6.ipynb end to end in the smoke profile, and report.py rebuilding the PDF from results alone."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import report
from conftest import REAL_FASHION, ROOT, SHARED_DATA, run_script
from test_vgg import write_tiny_fashion


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    fashion = SHARED_DATA if (REAL_FASHION / "train-images-idx3-ubyte").is_file() else write_tiny_fashion(tmp / "fashion", 200)
    env = {"HW6_PROFILE": "smoke", "HW6_OUT": str(tmp / "results"), "HW6_DATA_ROOT": "",
           "HW6_FASHION_ROOT": str(fashion), "HW6_VGG16_WEIGHTS": ""}
    result = run_script("run_notebook.py", "--output", str(tmp / "executed.ipynb"), env=env, timeout=900)
    return tmp, result


def test_notebook_runs_without_error_outputs(executed):
    tmp, result = executed
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(tmp / "executed.ipynb", as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "SYNTHETIC data" in text  # no DATA_ROOT given: the run says its results are synthetic
    assert "NOT RUN: ImageNet VGG16 weights unavailable" in text


def test_parameters_cell_is_tagged_and_reads_hw6_variables():
    nb = nbformat.read(ROOT / "hw6.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("DATA_ROOT", "PROFILE", "DEVICE", "FASHION_ROOT", "VGG16_WEIGHTS", "OUT"):
        assert re.search(rf'^{name} = os.environ.get\("HW6_{name}"', params[0].source, re.M), name


def test_summary_has_every_experiment(executed):
    tmp, _ = executed
    summary = json.loads((tmp / "results" / "summary.json").read_text())
    assert set(summary["experiments"]) == set(report.SECTIONS)
    assert summary["synthetic"] is True and summary["profile"] == "smoke"
    assert {summary["experiments"][k]["status"] for k in ("2b", "2c")} == {"not run"}
    for key in ("1a", "1b", "1c", "1e"):
        e = summary["experiments"][key]
        assert len(e["dice_per_class"]) == 8 and 0 <= e["assignment_dice"] <= 1
    assert summary["experiments"]["2a"]["status"] == "done"
    assert len(summary["experiments"]["1e"]["label_efficiency"]) == 2 * 2 * 2  # inits x fractions x seeds


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def test_report_is_a_pdf_with_a_page_per_section_and_rebuilds_from_results(executed, tmp_path):
    tmp, _ = executed
    pdf = tmp / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and _pages(pdf) >= 1 + len(report.SECTIONS)
    assert (tmp / "plots" / "1a_loss.png").is_file()
    rebuilt = run_script("report.py", "--results", str(tmp / "results"), "--pdf", str(tmp_path / "r.pdf"),
                         "--plots", str(tmp_path / "plots"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _pages(tmp_path / "r.pdf") == _pages(pdf)


def test_answers_quote_the_run_numbers(executed):
    tmp, _ = executed
    summary = json.loads((tmp / "results" / "summary.json").read_text())
    e = summary["experiments"]["1a"]
    text = report.answer("1a", summary)
    assert f"{e['mean_instrument_dice']:.3f}" in text and f"{e['assignment_dice']:.3f}" in text
    assert "def augment_batch" in report.augmentation_source()
    assert report.dice_implementation().startswith("The assignment's soft multi-class Dice loss.")
