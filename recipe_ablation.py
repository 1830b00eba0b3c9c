"""Beside 1(c)'s study: what each change of our own recipe (train_segmentation.RECIPES["best"]) does, one step on
top of the other, over seeds, from the runs of a configuration trained over the same seeds.

    python train_segmentation.py --data ROOT --out runs/1c-base --seeds 0 1 2 --epochs 60   # the runs to start from
    python recipe_ablation.py --data ROOT --base runs/1c-base --out runs/1c-recipe --seeds 0 1 2 --epochs 60

The steps: the base runs (in the notebook, the study's choice); + Dice + cross-entropy loss (trained once per
seed, keeping also the weights of the best validation strict Dice); + those weights; + instrument classes under
2% of a frame dropped. No step is chosen on the test split. Writes OUT/seed<s>/ (one segmentation run each),
OUT/seeds.json, OUT/ablation.json and OUT/ablation.md.
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
        base_step: str = "the study's choice", **options) -> list[dict]:
    """``base``: the metrics of the runs the steps start from (``options`` trained over ``seeds``), its row named
    ``base_step``. Returns one
    row per step: its words, what it changes (base, loss, checkpoint, filter) and the spread over the seeds of
    every validation and test number (``experiment.spreads``)."""
    trained = experiment.train_over_seeds(train_segmentation.train, data, out, seeds, parallel, **{
        **options, "loss": "dice_ce", "also_keep": (KEPT_BY_STRICT_DICE,)})["runs"]
    o = {**train_segmentation.resolve_options(**options), "loss": "dice_ce"}
    best = [Path(out) / f"seed{s}" / f"best-{KEPT_BY_STRICT_DICE}.pt" for s in seeds]
    rescored = [train_segmentation.evaluate_checkpoint(data, path, {**o, "min_region": region}, ("validation", "test"))[2]
                for region in (0.0, REGION_FILTER) for path in best]
    steps = [(base_step, "base", base), ("+ Dice + cross-entropy loss", "loss", trained),
             ("+ weights kept by validation strict Dice", "checkpoint", rescored[:len(seeds)]),
             (f"+ classes under {REGION_FILTER:.0%} of a frame dropped", "filter", rescored[len(seeds):])]
    rows = [{"step": name, "change": change, **{split: experiment.spreads([m[split] for m in runs])
                                                for split in ("validation", "test")}} for name, change, runs in steps]
    atomic.write_json(rows, Path(out) / "ablation.json")
    atomic.write_text(cli.markdown_table([{"step": r["step"], **{
        f"{split} present-class Dice": stats.describe(r[split]["mean_present_instrument_dice"])
        for split in ("validation", "test")}} for r in rows]), Path(out) / "ablation.md")
    return rows


NOT_COMPARED = ("seed", "device", "precision", "threads", "progress", "resume", "overwrite", "also_keep", "test")


def base_metrics(base: Path, data: Path, seeds: list[int], options: dict) -> list[dict]:
    """BASE/seed<s>/metrics.json for each seed, refused (one line, before any training) when one is missing,
    unreadable, without validation and test scores, trained on other data, or trained with another value of an
    option that shapes the run (all but NOT_COMPARED) than these ``options`` give."""
    found, wanted = [], experiment.jsonable(train_segmentation.resolve_options(**options))
    for path in (base / f"seed{s}" / "metrics.json" for s in seeds):
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            m = {}
        if not (isinstance(m, dict) and m.get("validation") and m.get("test")):
            raise DataError(f"--base: {path} is missing or has no validation and test scores (train the base over "
                            "the same seeds)")
        if m.get("data", {}).get("path") != str(Path(data).resolve()):
            raise DataError(f"--base: {path} was trained on other data ({m.get('data', {}).get('path')})")
        other = [k for k in wanted if k not in NOT_COMPARED and m.get("options", {}).get(k) != wanted[k]]
        if other:
            raise DataError(f"--base: {path} was trained with another {other[0]} ({m.get('options', {}).get(other[0])}"
                            f", here {wanted[other[0]]}); train the base with this command's options")
        found.append(m)
    return found


def main(argv: list[str] | None = None) -> None:
    p = cli.ArgumentParser(__doc__)
    cli.add_common_flags(p, train_segmentation.DEFAULTS)
    p.add_argument("--base", type=Path, required=True, help="the runs the steps start from (seed<s>/metrics.json)")
    p.add_argument("--parallel", type=cli.positive_int, default=1, help="runs at a time (default 1)")
    data, out, options, seeds = experiment.parse(p, argv)
    seeds = seeds or [0, 1, 2]

    def body() -> int:
        base_folder, parallel = options.pop("base"), options.pop("parallel")
        base = base_metrics(base_folder, data, seeds, options)
        rows = run(data, out, base, seeds, parallel, f"the base runs ({base_folder})", **options)
        print(cli.markdown_table([{"step": r["step"], "test present-class Dice": stats.describe(
            r["test"]["mean_present_instrument_dice"])} for r in rows]))
        complete = all(json.loads((out / f"seed{s}" / "metrics.json").read_text())["fit"]["complete"] for s in seeds)
        return cli.finish(f"steps in {out / 'ablation.md'}", complete, "a seed's run is incomplete", True)

    experiment.guarded(body)


if __name__ == "__main__":
    main(sys.argv[1:])
