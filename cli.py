"""What every command-line script shares: the common flags, value parsing, and turning the project's
expected errors into one line on stderr and a non-zero exit instead of a traceback."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

from datasets import DataError
from engine import PRECISIONS, CheckpointError
from unet import DOWNSAMPLING


class UsageError(Exception):
    """A bad argument value found after parsing (for example a batch size larger than the data allows)."""


EXPECTED_ERRORS = (DataError, CheckpointError, UsageError)


def image_size(text: str) -> tuple[int, int]:
    """Parses "HxW" (for example 128x160); both must be positive multiples of 8 for the U-Net."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 128x160 (HxW), got {text!r}") from None
    if h <= 0 or w <= 0 or h % DOWNSAMPLING or w % DOWNSAMPLING:
        raise argparse.ArgumentTypeError(f"image size {text} must be positive and divisible by {DOWNSAMPLING}")
    return h, w


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def add_common_flags(parser: argparse.ArgumentParser, epochs: int | None, batch_size: int | None,
                     lr: float | None) -> None:
    """Flags with the same name and meaning in every training script (None defaults: set by the script)."""
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"maximum epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default {lr})")
    parser.add_argument("--limit", type=positive_int, help="use only the first N training items (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, data order and augmentation")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="autocast precision; auto = bf16 where the device computes it natively, else fp32")
    parser.add_argument("--workers", type=int, default=0,
                        help="CPU threads for torch (0 = torch's default, all cores); data are served from memory")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="LAST_PT",
                        help="continue an interrupted run from LAST_PT (alone: OUT/last.pt)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def is_main_process() -> bool:
    """False in the ranks > 0 of a torchrun job, which must not print the run's summary a second time."""
    return int(os.environ.get("RANK", 0)) == 0


def finish(summary: str, complete: bool, stop_reason: str) -> int:
    """Prints a run's one-line summary (rank 0 only); an incomplete run also gets an error line and exit 1."""
    if is_main_process():
        print(summary)
    if not complete:
        print(f"error: training incomplete: {stop_reason}", file=sys.stderr)
        return 1
    return 0


def resume_path(resume: str | None, out: Path) -> Path | None:
    if resume is None:
        return None
    path = Path(out) / "last.pt" if resume == "latest" else Path(resume)
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume (no such checkpoint)")
    return path


def main(run_cli: Callable[[], int | None]) -> None:
    """Runs a script's CLI body; expected errors become ``error: <one line>`` on stderr and exit status 2."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    try:
        code = run_cli()
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the last completed epoch is in OUT/last.pt; continue with --resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
