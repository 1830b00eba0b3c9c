"""Numbers over seeds: the spread of a score, and whether two recipes differ by more than it.

At these split sizes (50 validation and 50 test frames) one seed's difference between two recipes is often
run-to-run noise, so a difference is stated as a finding only when it is larger than the spread of either
recipe's seeds; otherwise it is "within noise", and the numbers are given.
"""
from __future__ import annotations

import math
import statistics


def spread(values: list[float]) -> dict:
    """{"mean", "std" (sample, 0 for one value), "min", "max", "range", "n", "values"} of the finite values."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "range": math.nan, "n": 0,
                "values": list(values)}
    return {"mean": statistics.fmean(finite), "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite), "max": max(finite), "range": max(finite) - min(finite), "n": len(finite),
            "values": list(values)}


def is_finding(a: dict, b: dict) -> bool:
    """True when the means of two ``spread``s differ by more than the larger of their ranges (min to max),
    and each rests on at least three values."""
    return min(a["n"], b["n"]) >= 3 and abs(a["mean"] - b["mean"]) > max(a["range"], b["range"])


def describe(s: dict, digits: int = 3) -> str:
    """"0.512 (0.480-0.530 over 3 seeds)"."""
    if s["n"] == 0:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f} (one seed)"
    return f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f} over {s['n']} seeds)"


def compare(label_a: str, a: dict, label_b: str, b: dict, what: str) -> str:
    """A sentence comparing two spreads of ``what``: a finding, or "within noise" with the numbers."""
    delta = a["mean"] - b["mean"]
    numbers = f"{label_a} {describe(a)} against {label_b} {describe(b)}"
    if min(a["n"], b["n"]) < 3:
        return f"Fewer than three seeds, so no conclusion on the {what}: {numbers} (difference {delta:+.3f})."
    if is_finding(a, b):
        return f"{label_a} {'raises' if delta > 0 else 'lowers'} the {what} by {abs(delta):.3f}: {numbers}."
    if round(a["mean"], 3) == round(b["mean"], 3):
        return f"The {what} is the same to three decimals: {numbers}."
    return (f"The {what} is {'higher' if delta > 0 else 'lower'} by {abs(delta):.3f}, within noise (the seeds' "
            f"spread is larger): {numbers}.")
