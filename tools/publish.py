"""Publishes one run folder as the project's answers: the deliberate step that replaces the committed
hw6.ipynb, results/ (the notebook's run folders and summary.json), report.pdf, plots/ and the README's results
block. ``make run`` never touches them.

    python tools/publish.py runs/quick-endo-real          # make publish RUN=runs/quick-endo-real

RUN holds what ``make run`` wrote: RUN/hw6.ipynb (executed) and RUN/results/summary.json with its run folders.
Only the folders the summary names are replaced in results/; the longer runs kept there stay.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from hw6.kit import atomic, cli
from hw6.notebook import report

ROOT = Path(__file__).resolve().parents[1]


def publish(run: Path, root: Path = ROOT) -> list[str]:
    """Copies RUN's notebook and results into ``root``, rebuilds its report.pdf, plots/ and README block;
    returns the run folders replaced. Refuses (one line, before any change) a folder that is no finished run."""
    summary_path, notebook = run / "results" / "summary.json", run / "hw6.ipynb"
    for needed in (summary_path, notebook):
        if not needed.is_file():
            raise cli.UsageError(f"RUN={run}: no {needed.relative_to(run)}; run `make run` first")
    report.readme_text(root / "README.md", "")  # its results block is refused now, not after results/ is replaced
    summary = json.loads(summary_path.read_text())
    folders = sorted({e["dir"].split("/")[0] for e in summary["experiments"].values() if e.get("dir")})
    published = root / "results"
    for folder in folders:
        shutil.rmtree(published / folder, ignore_errors=True)
        shutil.copytree(run / "results" / folder, published / folder, ignore=shutil.ignore_patterns("*.pt", ".hw6-lock"))
    atomic.write_json(summary, published / "summary.json")
    shutil.copyfile(notebook, root / "hw6.ipynb")
    report.build(published, root / "report.pdf", root / "plots")
    report.update_readme(published, root / "README.md")
    return folders


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("run", type=Path, help="the run folder to publish (runs/<profile>-<data>)")
    args = parser.parse_args(argv)
    cli.main(lambda: print(f"published {args.run}: hw6.ipynb, report.pdf, plots/, the README block and results/"
                           f"{{{','.join(publish(args.run))}}}"))


if __name__ == "__main__":
    main(sys.argv[1:])
