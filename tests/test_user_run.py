"""A user's own run: it writes its own folder (never the published answers), refuses a folder of another
profile or data, reports on what there is, and the notebook's first cell sets the project up on Colab."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, run_script
from hw6.kit import cli
from hw6.notebook import report, results


def test_a_run_writes_its_own_ignored_folder_and_never_the_published_results(tmp_path):
    folder = results.run_folder("", "quick", "", False)
    assert folder == Path("runs/quick-synthetic/results")
    assert results.run_folder("", "full", "/data/endo-real", False) == Path("runs/full-endo-real/results")
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", str(folder / "summary.json")], cwd=ROOT)
        assert ignored.returncode == 0  # the run folder is ignored: git status stays clean after make run
    with pytest.raises(cli.UsageError, match="make publish"):
        results.check_parameters("quick", {"quick": {}}, "cpu", "auto", str(ROOT / "results"), "", "")


def test_a_summary_of_another_profile_or_data_is_refused_and_left_as_it_was(synthetic_root, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    earlier = {"profile": "quick", "data": {"name": "endo-real", "synthetic": False, "label": "data: endo-real"},
               "experiments": {"1a": {"kept": True}}}
    (out / "summary.json").write_text(json.dumps(earlier))
    scale = {"image_size": (32, 40), "epochs": 2, "patience": 1, "seeds": [0], "color_images": 8,
             "color_epochs": 1, "vgg_images": 10}
    with pytest.raises(cli.UsageError, match="HW6_REPLACE=1"):
        results.start(out, "smoke", scale, synthetic_root, "cpu", 1, "data", "", False)
    assert json.loads((out / "summary.json").read_text()) == earlier  # nothing written
    summary = results.start(out, "smoke", scale, synthetic_root, "cpu", 1, "data", "", False, replace=True)
    assert summary["experiments"] == {} and summary["profile"] == "smoke"
    assert "scored at 64x80" in summary["profile_description"]  # the data's own stored size


def test_the_report_of_an_empty_summary_says_not_run(synthetic_root, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    scale = {"image_size": (32, 40), "epochs": 2, "patience": 1, "seeds": [0], "color_images": 8,
             "color_epochs": 1, "vgg_images": 10}
    results.start(out, "smoke", scale, synthetic_root, "cpu", 1, "data", "", False)
    pdf = report.build(out)
    assert pdf == tmp_path / "report.pdf" and pdf.stat().st_size > 0
    rows = report.notebook_rows(json.loads((out / "summary.json").read_text()))
    experiments, no_model = rows[1:1 + len(report.QUESTIONED)], rows[1 + len(report.QUESTIONED):]
    assert all(row[-1] == "not run" for row in experiments)
    assert [row[0] for row in no_model] == ["No model: background everywhere",  # what needs no training is there
                                            "No model: 1(d) grey copy / constant tint"]


def test_publish_refuses_a_folder_that_is_no_run(tmp_path):
    result = run_script("tools/publish.py", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "make run" in result.stderr


@pytest.mark.skipif(not shutil.which("git"), reason="the Colab cell clones with git, which this machine lacks")
def test_the_first_cell_clones_enters_and_installs_the_project_on_colab(tmp_path):
    """The first cell, as Colab runs it (HW6_COLAB=1 stands for Colab), in a fresh folder that is not the
    project: it clones a repository given as a file:// URL, enters it, installs it, and hw6 imports from it."""
    bare = tmp_path / "hw6.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(bare)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    outer = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "outer.pth").write_text(outer + "\n")  # torch, pip and the rest from the test's environment
    first = next(c for c in nbformat.read(ROOT / "hw6.ipynb", as_version=4).cells if c.cell_type == "code")
    cell = first.source.replace('REPOSITORY = "', f'REPOSITORY = "file://{bare}"  # "', 1)
    cell += "\nimport hw6, os; print('hw6 from', os.path.dirname(hw6.__file__))"
    work = tmp_path / "content"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), "-c", cell], cwd=work, capture_output=True, text=True, timeout=600,
                          env={**env, "HW6_COLAB": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"hw6 from {work / 'hw6'}" in done.stdout and (work / "hw6" / "hw6.ipynb").is_file()


def test_publish_replaces_the_answers_with_one_run_folder(tmp_path):
    """A run folder (here the committed one, copied) published into a fresh project root: its notebook, its
    summary's run folders, the report, plots/ and the README block, and nothing of the run's checkpoints."""
    run, root = tmp_path / "run", tmp_path / "root"
    shutil.copytree(ROOT / "results", run / "results", ignore=shutil.ignore_patterns("archive", "dice-reading", "2a-*",
                                                                                     "1b-seeds-*"))
    shutil.copyfile(ROOT / "hw6.ipynb", run / "hw6.ipynb")
    (run / "results" / "1a_dice" / "seed0" / "last.pt").write_bytes(b"checkpoint")
    (root / "results").mkdir(parents=True)
    (root / "README.md").write_text(f"intro\n{report.README_START}\n{report.README_END}\n")
    from hw6.tools import publish

    folders = publish.publish(run, root)
    assert "1a_dice" in folders and (root / "results" / "1a_dice" / "seed0" / "metrics.json").is_file()
    assert not (root / "results" / "1a_dice" / "seed0" / "last.pt").exists()
    assert (root / "report.pdf").is_file() and (root / "hw6.ipynb").read_bytes() == (run / "hw6.ipynb").read_bytes()
    assert "| 1(a) |" in (root / "README.md").read_text()
    listed = (root / "plots" / report.FIGURE_LIST).read_text().split()
    assert listed == sorted(p.name for p in (root / "plots").glob("*.png"))


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
@pytest.mark.parametrize("moment", ["during a cell", "between cells"])
def test_a_signal_to_run_notebook_stops_the_kernel_with_one_line(signame, code, moment, tmp_path):
    """The kernel signals run_notebook.py itself at a known moment (no timing): one line on stderr, the exit
    status of the signal, the kernel gone, no later cell run, and the notebook so far saved."""
    parameters = nbformat.v4.new_code_cell('PROFILES = {"full": {}, "quick": {}, "smoke": {}}')
    parameters.metadata["tags"] = ["parameters"]
    signal_cell = (f"import os, signal, time\nopen({str(tmp_path / 'kernel.pid')!r}, 'w').write(str(os.getpid()))\n"
                   "os.write(2, b'said below Python\\n')\n"  # as a C library dying in the kernel would
                   f"os.kill(os.getppid(), signal.{signame})\n" + ("time.sleep(300)" if moment == "during a cell"
                                                                  else ""))
    later = f"open({str(tmp_path / 'later-cell-ran')!r}, 'w').write('yes')"
    nb = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(signal_cell),
                                         nbformat.v4.new_code_cell(later)])
    nbformat.write(nb, tmp_path / "signal.ipynb")
    result = run_script("tools/run_notebook.py", "--notebook", str(tmp_path / "signal.ipynb"), "--output",
                        str(tmp_path / "out.ipynb"), timeout=240, env={"HW6_OUT": str(tmp_path / "results")})
    assert result.returncode == code and result.stderr.strip().splitlines() == [
        f"interrupted: the notebook so far is in {tmp_path / 'out.ipynb'}; the same command with HW6_RESUME=1 "
        "continues (finished trainings are kept, unfinished ones go on from their last epoch)"], result.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "kernel.pid").read_text()), 0)  # nbclient shut the kernel down before the exit
    assert not (tmp_path / "later-cell-ran").exists()
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1].source == signal_cell
    assert (tmp_path / "out-kernel.log").read_text() == "said below Python\n"  # kept apart from the one line


def test_a_kernel_that_dies_is_one_error_naming_its_log(tmp_path):
    parameters = nbformat.v4.new_code_cell('PROFILES = {"full": {}, "quick": {}, "smoke": {}}')
    parameters.metadata["tags"] = ["parameters"]
    dying = nbformat.v4.new_code_cell("import os\nos.write(2, b'segfault, say\\n')\nos._exit(1)")
    nbformat.write(nbformat.v4.new_notebook(cells=[parameters, dying]), tmp_path / "dies.ipynb")
    result = run_script("tools/run_notebook.py", "--notebook", str(tmp_path / "dies.ipynb"), "--output",
                        str(tmp_path / "out.ipynb"), timeout=240, env={"HW6_OUT": str(tmp_path / "results")})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: the kernel died; outputs up to it are in {tmp_path / 'out.ipynb'} (the "
                                    f"kernel's own error output: {tmp_path / 'out-kernel.log'})"), result.stderr
    assert (tmp_path / "out-kernel.log").read_text() == "segfault, say\n" and (tmp_path / "out.ipynb").is_file()
