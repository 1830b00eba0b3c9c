"""Executes hw6.ipynb top to bottom with nbclient, as ``make run`` does, and saves it with its outputs in the
run's own folder (runs/<profile>-<data>/hw6.ipynb beside its results/, report.pdf and plots/).

    python tools/run_notebook.py [--profile quick] [--output FILE] [--resume]

Parameters reach the notebook through HW6_* environment variables (HW6_DATA_ROOT, HW6_PROFILE, HW6_DEVICE,
HW6_FASHION_ROOT, HW6_VGG16_WEIGHTS, HW6_OUT, HW6_PARALLEL, HW6_RESUME, HW6_REPLACE). Progress bars are turned off
(HW6_PROGRESS=0): they animate in a live notebook, but a saved one would keep every redrawn fragment. A cell that
fails stops the run; the notebook is still saved with every output up to the failure, and the exit status is 1.
Ctrl-C or SIGTERM stops the kernel, saves the notebook so far and says how to continue (exit 130 or 143).
"""
from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from hw6.kit import atomic, cli
from hw6.notebook import results

ROOT = Path(__file__).resolve().parents[1]


def execute(notebook: Path, output: Path, cwd: Path = ROOT, timeout: int | None = None) -> float:
    """Runs every cell in a fresh kernel started in ``cwd``; writes the executed notebook to ``output``
    (also on failure, then re-raising); returns the wall time in seconds."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        atomic.write_text(nbformat.writes(nb), output)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--notebook", type=Path, default=ROOT / "hw6.ipynb", help="the notebook (default hw6.ipynb)")
    parser.add_argument("--output", type=Path, help="executed notebook (default: hw6.ipynb in the run's folder)")
    parser.add_argument("--profile", choices=("full", "quick", "smoke"), help="sets HW6_PROFILE (default quick)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (HW6_RESUME=1): every cell runs again, finished trainings "
                             "are kept and scored again, unfinished ones continue from their last.pt")
    args = parser.parse_args(argv)
    if args.resume:
        os.environ["HW6_RESUME"] = "1"
    if args.profile:
        os.environ["HW6_PROFILE"] = args.profile
    os.environ.setdefault("HW6_PROGRESS", "0")
    env = os.environ.get
    output = args.output or ROOT / results.run_folder(env("HW6_OUT", ""), env("HW6_PROFILE", "quick"), env("HW6_DATA_ROOT", ""),
                                               env("HW6_DOWNLOAD", "") == "1").parent / "hw6.ipynb"

    def body() -> int:
        check(args.notebook)
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            seconds = execute(args.notebook, output)
        except CellExecutionError as exc:
            print(f"error: a notebook cell failed; outputs up to it are in {output}\n{str(exc)[-2000:]}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt as stop:  # the kernel is shut down by nbclient on the way out
            print(f"interrupted: the notebook so far is in {output}; the same command with HW6_RESUME=1 continues "
                  "(finished trainings are kept, unfinished ones go on from their last epoch)", file=sys.stderr)
            return 143 if isinstance(stop, cli.Terminated) else 130
        print(f"executed {args.notebook.name} in {seconds / 60:.1f} min; saved {output}")
        return 0

    cli.main(body)


def check(notebook: Path) -> None:
    """The notebook and its HW6_* parameters, checked before a kernel starts (one line each): the file is a
    notebook with a parameter cell, and the values pass ``results.check_parameters`` with the profiles that
    cell defines (read as syntax, never run)."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except FileNotFoundError:
        raise cli.UsageError(f"--notebook {notebook}: no such file") from None
    except Exception as exc:
        raise cli.UsageError(f"--notebook {notebook}: not a Jupyter notebook ({type(exc).__name__})") from None
    cells = [c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    profiles = [node.value for cell in cells for node in ast.walk(ast.parse(cell)) if isinstance(node, ast.Assign)
                and any(getattr(t, "id", "") == "PROFILES" for t in node.targets) and isinstance(node.value, ast.Dict)]
    if len(profiles) != 1:
        raise cli.UsageError(f"--notebook {notebook}: no parameter cell defining PROFILES")
    names = {key.value: None for key in profiles[0].keys if isinstance(key, ast.Constant)}
    env = os.environ.get
    results.check_parameters(env("HW6_PROFILE", "quick"), names, env("HW6_DEVICE", "auto"), env("HW6_PARALLEL", "auto"),
                             env("HW6_OUT", ""), env("HW6_DATA_ROOT", ""), env("HW6_VGG16_WEIGHTS", ""))


if __name__ == "__main__":
    main(sys.argv[1:])
