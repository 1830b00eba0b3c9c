"""Numbers over seeds: the spread of a score, and whether two recipes differ by more than chance.

At these split sizes (50 validation and 50 test frames) one seed's difference between two recipes is often
run-to-run noise. A difference is stated as a finding only when both sides rest on at least three seeds, the
means differ by more than either side's spread (lowest to highest seed), and Welch's t-test (two-sided, unequal
variances) gives p < 0.05; otherwise it is "within noise", and the numbers and the p-value are given.
"""
from __future__ import annotations

import math
import statistics

ALPHA = 0.05  # the p-value under which a difference is a finding


def spread(values: list[float]) -> dict:
    """{"mean", "std" (sample, 0 for one value), "min", "max", "range", "n", "values"} of the finite values."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "range": math.nan, "n": 0,
                "values": list(values)}
    return {"mean": statistics.fmean(finite), "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite), "max": max(finite), "range": max(finite) - min(finite), "n": len(finite),
            "values": list(values)}


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Numerical Recipes' betacf,
    modified Lentz's method)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on the other side only
        return 1 - _incomplete_beta(b, a, 1 - x)
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1 / nonzero(1 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 / nonzero(1 + numerator * d)
            c = nonzero(1 + numerator / c)
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    return front * h / a


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def welch_p(a: dict, b: dict) -> float:
    """Two-sided p-value of Welch's t-test between two ``spread``s (NaN with fewer than two values a side; 0 or 1
    when both sides have no spread at all, as their means differ or not)."""
    if min(a["n"], b["n"]) < 2:
        return math.nan
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    delta = a["mean"] - b["mean"]
    if va + vb == 0:
        return 1.0 if delta == 0 else 0.0
    df = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
    return t_two_sided(delta / math.sqrt(va + vb), df)


def is_finding(a: dict, b: dict) -> bool:
    """True when two ``spread``s rest on at least three values each, their means differ by more than the larger
    of their ranges, and Welch's test gives p < ALPHA."""
    return (min(a["n"], b["n"]) >= 3 and abs(a["mean"] - b["mean"]) > max(a["range"], b["range"])
            and welch_p(a, b) < ALPHA)


def describe(s: dict, digits: int = 3) -> str:
    """"0.512 (0.480-0.530 over 3 seeds)"."""
    if s["n"] == 0:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f} (one seed)"
    return f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f} over {s['n']} seeds)"


def p_words(a: dict, b: dict) -> str:
    """"Welch p = 0.031" (or "p < 0.001")."""
    p = welch_p(a, b)
    return "Welch p < 0.001" if p < 0.001 else f"Welch p = {p:.3f}"


def compare(label_a: str, a: dict, label_b: str, b: dict, what: str) -> str:
    """A sentence comparing two spreads of ``what``: a finding, or "within noise", always with the numbers and,
    from two seeds a side, the p-value."""
    delta = a["mean"] - b["mean"]
    numbers = f"{label_a} {describe(a)} against {label_b} {describe(b)}"
    if min(a["n"], b["n"]) < 3:
        return f"Fewer than three seeds, so no conclusion on the {what}: {numbers} (difference {delta:+.3f})."
    if is_finding(a, b):
        return f"{label_a} {'raises' if delta > 0 else 'lowers'} the {what} by {abs(delta):.3f} ({p_words(a, b)}): {numbers}."
    if round(a["mean"], 3) == round(b["mean"], 3):
        return f"The {what} is the same to three decimals: {numbers}."
    return (f"The {what} is {'higher' if delta > 0 else 'lower'} by {abs(delta):.3f}, within noise "
            f"({p_words(a, b)}): {numbers}.")
