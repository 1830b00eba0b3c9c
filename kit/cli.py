"""What every command-line script shares: a parser whose errors are one line, the types that check each
value at parse time, the flags every training script has with the same name, meaning and help, a Markdown
table, and ``main``, which turns the project's expected errors into one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import math
import signal
import sys
import warnings
from pathlib import Path
from typing import Callable

from hw6.kit.errors import EXPECTED_ERRORS, UsageError

__all__ = ["ArgumentParser", "UsageError", "add_common_flags", "main", "markdown_table"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULERS = ("none", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
NOT_GIVEN = argparse.SUPPRESS  # the default of option flags: a flag left out stays out of the parsed options


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the script's docstring as description, and a bad argument reported in one line
    (argparse's own usage block runs to a dozen lines for these scripts)."""

    def __init__(self, doc: str | None, **kwargs) -> None:
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        signal.signal(signal.SIGTERM, _terminate)  # every main() builds its parser first: SIGTERM is one line from there

    def parse_known_args(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().parse_known_args(*args, **kwargs)
        except KeyboardInterrupt as stop:
            print("interrupted before it started: nothing was written", file=sys.stderr)
            sys.exit(143 if isinstance(stop, Terminated) else 130)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# ----------------------------------------------------------------------------------------------- value types
def _number(text: str, kind: type, what: str, ok: Callable[[float], bool]):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    return _number(text, int, "a whole number >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a positive finite number", lambda v: v > 0 and math.isfinite(v))


def fraction(text: str) -> float:
    """A fraction in [0, 1) (for example 0.02 of a frame)."""
    return _number(text, float, "a fraction in [0, 1)", lambda v: 0 <= v < 1)


def label_fraction(text: str) -> float:
    """A fraction in (0, 1] of the labelled training frames."""
    return _number(text, float, "a fraction in (0, 1]", lambda v: 0 < v <= 1)


def image_size(text: str) -> tuple[int, int]:
    """"HxW" (for example 128x160), both positive."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 128x160, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive HxW, got {text}")
    return h, w


def device(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps."""
    if text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICES)} or cuda:N, got {text!r}")


# ------------------------------------------------------------------------------------------------ the flags
def _default(defaults: dict, key: str) -> str:
    value = defaults.get(key)
    if isinstance(value, tuple):
        value = "x".join(map(str, value))
    return f"(default {'as stored' if value is None and key == 'image_size' else value})"


def add_device_flag(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--device", type=device, default=default,
                        help=f"auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (default {default})")


def add_common_flags(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """The flags every training script has, with one meaning each: those whose option is a key of
    ``defaults`` (the script's DEFAULTS, shown in the help). Flags that are not given stay out of the parsed
    namespace (argparse.SUPPRESS), so a named recipe can set them and an explicit flag still wins."""
    d, none = defaults, NOT_GIVEN
    parser.add_argument("--data", type=Path, required=True, help="data root of the experiment")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; see --resume, --overwrite)")
    flags = [
        ("epochs", dict(type=positive_int, help="epochs at most")),
        ("patience", dict(type=positive_int, help="early stopping: epochs without a better monitored value")),
        ("batch_size", dict(type=positive_int, help="frames (or images) per training batch")),
        ("lr", dict(type=positive_float, help="Adam learning rate")),
        ("scheduler", dict(choices=SCHEDULERS, help="learning-rate schedule, stepped once per epoch")),
        ("image_size", dict(type=image_size, help="HxW the model sees")),
        ("limit", dict(type=positive_int, help="use only the first N training items (quick runs)")),
        ("precision", dict(choices=PRECISIONS, help="autocast precision; auto = $HW6_PRECISION if set, else bf16 "
                                                    "where the hardware has it, fp16 on older CUDA GPUs, else fp32")),
        ("threads", dict(type=non_negative_int, help="CPU threads for torch, 0 = torch's default")),
    ]
    for key, spec in flags:
        if key in d:
            parser.add_argument("--" + key.replace("_", "-"), default=none, **{**spec, "help": f"{spec['help']} "
                                                                                  f"{_default(d, key)}"})
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=non_negative_int, default=none,
                       help=f"seed of weights, data order and augmentation {_default(d, 'seed')}")
    seeds.add_argument("--seeds", type=non_negative_int, nargs="+", default=none, metavar="SEED",
                       help="one run per seed in OUT/seed<s>/, and their spread in OUT/seeds.json")
    parser.add_argument("--device", type=device, default=none,
                        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--resume", nargs="?", const="latest", default=none, metavar="LAST_PT",
                        help="continue an interrupted run from LAST_PT (alone: OUT/last.pt) with the same options")
    parser.add_argument("--overwrite", action="store_true", default=none,
                        help="replace an earlier run in --out (its folder is deleted first)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=none,
                        help="no progress bars")


# ----------------------------------------------------------------------------------------------- output
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


def finish(summary: str, complete: bool, stop_reason: str, show: bool = True) -> int:
    """Prints a run's one-line summary (``show``: False in the processes of a torchrun job but the first, so
    that it is printed once); an incomplete run also gets an error line and exit 1."""
    if show:
        print(summary)
    if not complete:
        print(f"error: training incomplete: {stop_reason}", file=sys.stderr)
        return 1
    return 0


def plain_warnings() -> None:
    """Warnings print as ``warning: <message>``: the project's own name the file or option at fault, and the
    source line Python adds would only show a path on this machine (in the notebook's saved outputs too)."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt: every file is written whole
    (kit.atomic), so stopping anywhere leaves the previous complete files."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(run_cli: Callable[[], int | None]) -> None:
    """Runs a script's CLI body; expected errors become ``error: <one line>`` on stderr and exit status 2;
    Ctrl-C and SIGTERM stop it with one line (exit 130 and 143) unless the body says more itself."""
    plain_warnings()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = run_cli()
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:
        print("interrupted: every file written so far is complete; run the command again", file=sys.stderr)
        sys.exit(143 if isinstance(stop, Terminated) else 130)
    sys.exit(code or 0)
