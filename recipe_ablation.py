"""Beside 1(c)'s study: what each change of our own recipe (train_segmentation.RECIPES["best"]) does, one step on
top of the other, over seeds, from the runs of a configuration trained over the same seeds.

    python train_segmentation.py --data ROOT --out runs/1c --seeds 0 1 2 --epochs 60      # the runs to start from
    python recipe_ablation.py --data ROOT --base runs/1c --out runs/1c-recipe --seeds 0 1 2 --epochs 60

The steps: the base runs; + Dice + cross-entropy loss (trained once per seed, keeping also the weights of the
best validation strict Dice); + those weights; + instrument classes under 2% of a frame dropped. No step is
chosen on the test split. Writes OUT/seed<s>/ (one segmentation run each), OUT/ablation.json and OUT/ablation.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hw6 import experiment, train_segmentation
from hw6.datasets import DataError
from hw6.kit import atomic, cli, stats

KEPT_BY_STRICT_DICE = train_segmentation.RECIPES["best"]["monitor"]
REGION_FILTER = train_segmentation.RECIPES["best"]["min_region"]  # the fraction of a frame under which a class is dropped


def run(data: str | Path, out: str | Path, base: list[dict], seeds: list[int], parallel: int = 1,
        **options) -> list[dict]:
    """``base``: the metrics of the runs the steps start from (``options`` trained over ``seeds``). Returns one
    row per step: its words, what it changes (base, loss, checkpoint, filter) and the spread over the seeds of
    every validation and test number (``experiment.spreads``)."""
    trained = experiment.train_over_seeds(train_segmentation.train, data, out, seeds, parallel, **{
        **options, "loss": "dice_ce", "also_keep": (KEPT_BY_STRICT_DICE,)})["runs"]
    o = {**train_segmentation.resolve_options(**options), "loss": "dice_ce"}
    best = [Path(out) / f"seed{s}" / f"best-{KEPT_BY_STRICT_DICE}.pt" for s in seeds]
    rescored = [train_segmentation.evaluate_checkpoint(data, path, {**o, "min_region": region}, ("validation", "test"))[2]
                for region in (0.0, REGION_FILTER) for path in best]
    steps = [("the study's choice", "base", base), ("+ Dice + cross-entropy loss", "loss", trained),
             ("+ weights kept by validation strict Dice", "checkpoint", rescored[:len(seeds)]),
             (f"+ classes under {REGION_FILTER:.0%} of a frame dropped", "filter", rescored[len(seeds):])]
    rows = [{"step": name, "change": change, **{split: experiment.spreads([m[split] for m in runs])
                                                for split in ("validation", "test")}} for name, change, runs in steps]
    atomic.write_json(rows, Path(out) / "ablation.json")
    atomic.write_text(cli.markdown_table([{"step": r["step"], **{
        f"{split} present-class Dice": stats.describe(r[split]["mean_present_instrument_dice"])
        for split in ("validation", "test")}} for r in rows]), Path(out) / "ablation.md")
    return rows


def base_metrics(base: Path, seeds: list[int]) -> list[dict]:
    """BASE/seed<s>/metrics.json for each seed, refused (one line) when one is missing or has no test scores."""
    found = [base / f"seed{s}" / "metrics.json" for s in seeds]
    missing = [str(p) for p in found if not p.is_file() or "test" not in json.loads(p.read_text())]
    if missing:
        raise DataError(f"--base: {missing[0]} is missing or has no test scores (train the base over the same seeds)")
    return [json.loads(p.read_text()) for p in found]


def main(argv: list[str] | None = None) -> None:
    p = cli.ArgumentParser(__doc__)
    cli.add_common_flags(p, train_segmentation.DEFAULTS)
    p.add_argument("--base", type=Path, required=True, help="the runs the steps start from (seed<s>/metrics.json)")
    p.add_argument("--parallel", type=cli.positive_int, default=1, help="runs at a time (default 1)")
    data, out, options, seeds = experiment.parse(p, argv)
    seeds = seeds or [0, 1, 2]

    def body() -> None:
        base = base_metrics(options.pop("base"), seeds)
        print(cli.markdown_table([{"step": r["step"], "test present-class Dice": stats.describe(
            r["test"]["mean_present_instrument_dice"])} for r in run(data, out, base, seeds, options.pop("parallel"),
                                                                      **options)]))

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
