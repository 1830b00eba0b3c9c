"""What every command-line script shares: the common flags, value parsing, and turning the project's
expected errors into one line on stderr and a non-zero exit instead of a traceback."""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

from datasets import DataError
from engine import PRECISIONS, CheckpointError, DeviceUnavailable, RunFolderError
from unet import DOWNSAMPLING


class UsageError(Exception):
    """A bad argument value found after parsing (for example a batch size larger than the data allows)."""


EXPECTED_ERRORS = (DataError, CheckpointError, UsageError, DeviceUnavailable, RunFolderError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the script's docstring as description, defaults shown by each flag's help, and a bad
    argument reported in one line (argparse's own usage block runs to a dozen lines for these scripts)."""

    def __init__(self, doc: str | None, **kwargs) -> None:
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


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


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {value}")
    return value


def label_fraction(text: str) -> float:
    """A fraction in (0, 1] of the labelled training frames."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {value}")
    return value


def fraction(text: str) -> float:
    """A fraction in [0, 1) (for example 0.02 of a frame)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value}")
    return value


DEVICES = ("auto", "cpu", "cuda", "mps")


def device(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps."""
    if text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {text!r}")


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device, default="auto",
                        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (default auto)")


def add_common_flags(parser: argparse.ArgumentParser, epochs: int | None, batch_size: int | None,
                     lr: float | None) -> None:
    """Flags with the same name and meaning in every training script (None defaults: set by the script)."""
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"maximum epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default {lr})")
    parser.add_argument("--limit", type=positive_int, help="use only the first N training items (quick runs)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed for weights, data order and augmentation (default 0)")
    add_device_flag(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="autocast precision; auto = bf16 where the device computes it natively, else fp32")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="CPU threads for torch (default 0 = torch's default, all cores); data are served from memory")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="LAST_PT",
                        help="continue an interrupted run from LAST_PT (alone: OUT/last.pt) with the same options")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out (deleted first)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table of dict rows (columns: every key, in order of first appearance; NaN as n/a)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


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
