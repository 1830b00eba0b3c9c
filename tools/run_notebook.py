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
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from hw6.kit import atomic, cli
from hw6.notebook import results

ROOT = Path(__file__).resolve().parents[1]
KERNEL_GRACE_S = 10  # after a stop signal, the seconds a kernel has to end its cell before it is killed


class Stopped(Exception):
    """The execution was stopped by SIGINT or SIGTERM (``signum``); the notebook so far is saved."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def execute(notebook: Path, output: Path, cwd: Path = ROOT, timeout: int | None = None) -> float:
    """Runs every cell in a fresh kernel started in ``cwd``; writes the executed notebook to ``output``
    (also on failure, then re-raising); returns the wall time in seconds.

    SIGINT and SIGTERM interrupt the running cell as Jupyter's stop button does (SIGINT to the kernel; a kernel
    still running ``KERNEL_GRACE_S`` later is killed), no later cell starts, nbclient shuts the kernel down as
    after any failed cell, and ``Stopped`` is raised. What reaches the kernel process's own standard error goes to
    ``kernel_log(output)``, kept only when not empty: ipykernel forwards C-level output to the cells where it
    captures the file descriptors, so what lands here is what it did not forward (a message written as the
    kernel dies, or everything when the capture is off, as under pytest)."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])  # not its log on stderr
    stopped: list[int] = []

    def kernel(sig: int) -> None:
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def on_signal(signum: int, *_) -> None:
        stopped.append(signum)
        kernel(signal.SIGINT)
        with contextlib.suppress(RuntimeError):  # a kernel the interrupt did not stop (caught between two
            asyncio.get_running_loop().call_later(KERNEL_GRACE_S, kernel, signal.SIGKILL)  # cells) is killed

    def take_signals(**_) -> None:  # once the kernel runs: nbclient's own handlers would kill it mid-cell
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, on_signal, s)

    def before_cell(**_) -> None:  # a signal between cells stops the run before the next one
        if stopped:
            raise Stopped(stopped[0])

    client.on_notebook_start, client.on_cell_execute = take_signals, before_cell
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}  # until the kernel runs
    t0 = time.perf_counter()
    log = kernel_log(output)
    try:
        with open(log, "a") as kernel_stderr:  # appended: a resumed run keeps what the stopped one logged
            client.execute(stderr=kernel_stderr)  # passed on to the kernel's Popen
    except (CellExecutionError, DeadKernelError):
        if not stopped:
            raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        atomic.write_text(nbformat.writes(nb), output)
        if log.is_file() and log.stat().st_size == 0:
            log.unlink()
    if stopped:
        raise Stopped(stopped[0])
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
        except (CellExecutionError, DeadKernelError) as exc:
            print(failure_words(exc, output), file=sys.stderr)
            return 1
        except Stopped as stop:  # the kernel was interrupted and shut down: one line, and how to go on
            print(f"interrupted: the notebook so far is in {output}; the same command with HW6_RESUME=1 continues "
                  "(finished trainings are kept, unfinished ones go on from their last epoch)", file=sys.stderr)
            return 128 + stop.signum
        print(f"executed {args.notebook.name} in {seconds / 60:.1f} min; saved {output}")
        return 0

    cli.main(body)


def kernel_log(output: Path) -> Path:
    """Where the kernel's own standard error goes: beside the executed notebook."""
    return output.with_name(f"{output.stem}-kernel.log")


def failure_words(exc: Exception, output: Path) -> str:
    """The error of a failed cell or a dead kernel: what happened, where the notebook so far is, the kernel log
    when there is one, and the end of nbclient's message."""
    what = "a notebook cell failed" if isinstance(exc, CellExecutionError) else "the kernel died"
    logged = f" (the kernel's own error output: {kernel_log(output)})" if kernel_log(output).is_file() else ""
    return f"error: {what}; outputs up to it are in {output}{logged}\n{str(exc)[-2000:]}"


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
