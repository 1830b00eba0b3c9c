"""One experiment trained once per seed: ``train_over_seeds(train, data, out, seeds, **options)``.

Each seed's run is written to ``OUT/seed<s>/`` exactly as a single run would be; ``OUT/seeds.json`` holds the
spread (``stats.spread``: mean, sample std, min, max) over the seeds of every number each run reports for
its validation and test splits, and per-class lists as a spread per class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import atomic
import stats

SPLITS = ("validation", "test")


def spreads(evaluations: list[dict]) -> dict:
    """The spread over runs of each scalar of an evaluation dict, and of each entry of its flat lists."""
    out = {}
    for key, value in evaluations[0].items():
        values = [e[key] for e in evaluations]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = stats.spread([float(v) for v in values])
        elif isinstance(value, list) and all(isinstance(v, (int, float)) or v is None for v in value):
            out[key] = [stats.spread([float("nan") if v is None else float(v) for v in per_run])
                        for per_run in zip(*values)]
    return out


def train_over_seeds(train: Callable[..., dict], data: str | Path, out: str | Path, seeds: list[int],
                     **options) -> dict:
    """Runs ``train(data, OUT/seed<s>, **options, seed=s)`` for each seed; returns {"runs": [metrics per seed],
    "summary": the content of OUT/seeds.json}."""
    out = Path(out)
    runs = [train(data, out / f"seed{s}", **options, seed=s) for s in seeds]
    first = runs[0]
    summary = {"experiment": first["experiment"], "seeds": seeds, "runs": [f"seed{s}" for s in seeds],
               "options": {k: v for k, v in first["options"].items() if k != "seed"},
               "data_root": Path(first["data_root"]).name, "synthetic": first["synthetic"], "device": first["device"],
               "train_seconds": [m["fit"]["train_seconds"] for m in runs],
               **{split: spreads([m[split] for m in runs]) for split in SPLITS if all(split in m for m in runs)}}
    atomic.write_json(summary, out / "seeds.json")
    return {"runs": runs, "summary": summary}
