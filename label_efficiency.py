"""How much labelled data does colorization pre-training save? Segmentation trained from scratch and from a
colorization checkpoint on seeded, class-balanced fractions of the labelled training frames.

    python label_efficiency.py --data ROOT --init-from runs/1d/best.pt --out runs/le \\
        --fractions 0.1 0.25 0.5 1.0 --seeds 0 1 2 --image-size 128x160 --epochs 15

Writes OUT/<init>_f<fraction>_s<seed>/ (one segmentation run each), OUT/label_efficiency.csv (one row a run)
and OUT/label_efficiency.png (test strict Dice over the instrument classes present, against the fraction:
the line is the mean over seeds, the band min to max); returns the rows and, per fraction, the comparison
of the two initialisations.
"""
from __future__ import annotations

import sys
from pathlib import Path

from hw6 import experiment, train_segmentation
from hw6.datasets import synthetic_note
from hw6.engine import load_checkpoint, release_folder
from hw6.kit import atomic, cli, figures, stats

FRACTIONS = [0.1, 0.25, 0.5, 1.0]
INITS = ("scratch", "pretrained")


def run(data: str | Path, out: str | Path, init_from: str | Path, fractions: list[float] = FRACTIONS,
        seeds: list[int] = (0, 1, 2), parallel: int = 1, overwrite: bool = False, resume: str | bool | None = None,
        **options) -> dict:
    """Trains every (init, fraction, seed), ``parallel`` at a time; ``options`` go to every segmentation run;
    ``resume`` continues an interrupted set (each run from its own last.pt).
    Returns {"rows": one per run, "comparison": per fraction, the two spreads and whether they differ,
    "wall_seconds": summed over the runs}."""
    experiment.check_distinct("--fractions", "fraction", list(fractions))
    experiment.check_distinct("--seeds", "seed", list(seeds))
    out = Path(out)
    experiment.check_set_options(resume, overwrite)
    load_checkpoint(Path(init_from), mmap=True)  # refused before the set's folder is cleared
    resume = experiment.start_set(out, Path(data), resume, overwrite)
    keys = [(init, f, s) for init in INITS for f in fractions for s in seeds]
    jobs = [experiment.Job(train_segmentation.train, Path(data), out / f"{init}_f{f}_s{s}",
                           {**options, "init_from": None if init == "scratch" else Path(init_from),
                            "label_fraction": f, "seed": s,
                            **experiment.continuation(out / f"{init}_f{f}_s{s}", resume)}) for init, f, s in keys]
    try:
        runs = experiment.run_jobs(jobs, parallel)
    finally:
        release_folder(out)
    rows = [{"init": init, "fraction": f, "seed": s, "train_frames": m["details"]["train_frames"],
             "test_present_dice": round(m["test"]["mean_present_instrument_dice"], 4),
             "test_all_class_dice": round(m["test"]["mean_instrument_dice"], 4),
             "test_assignment_dice": round(m["test"]["assignment_dice"], 4), "best_epoch": m["fit"]["best_epoch"]}
            for (init, f, s), m in zip(keys, runs)]
    atomic.write_csv(rows, out / "label_efficiency.csv")
    score = {(init, f): stats.spread([r["test_present_dice"] for r in rows
                                      if r["init"] == init and r["fraction"] == f]) for init in INITS for f in fractions}
    figures.lines_with_spread(fractions, {init: ([score[init, f]["mean"] for f in fractions],
                                                 [score[init, f]["min"] for f in fractions],
                                                 [score[init, f]["max"] for f in fractions]) for init in INITS},
                              "fraction of labelled training frames", "test strict Dice, classes present",
                              out / "label_efficiency.png", f"1(e) label efficiency, {len(seeds)} seeds{synthetic_note(data)}")
    comparison = [{"fraction": f, "scratch": score["scratch", f], "pretrained": score["pretrained", f],
                   "finding": stats.is_finding(score["pretrained", f], score["scratch", f])} for f in fractions]
    return {"rows": rows, "comparison": comparison, "wall_seconds": sum(m["wall_seconds"] for m in runs)}


def main(argv: list[str] | None = None) -> None:
    p = cli.ArgumentParser(__doc__)
    cli.add_common_flags(p, train_segmentation.DEFAULTS)
    p.add_argument("--init-from", type=Path, required=True, help="the colorization checkpoint (best.pt)")
    p.add_argument("--fractions", type=cli.label_fraction, nargs="+", default=FRACTIONS,
                   help=f"fractions of the labelled frames (default {' '.join(map(str, FRACTIONS))})")
    p.add_argument("--recipe", default=cli.NOT_GIVEN, help="segmentation recipe (default assignment)")
    p.add_argument("--parallel", type=cli.positive_int, default=1, help="runs at a time (default 1)")
    data, out, options, seeds = experiment.parse(p, argv)

    def body() -> None:
        result = run(data, out, options.pop("init_from"), options.pop("fractions"), seeds or [0, 1, 2],
                     options.pop("parallel"), **options)
        print(cli.markdown_table(result["rows"]))

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
