"""How much labelled data does colorization pre-training save? Segmentation trained from scratch and from
a colorization checkpoint on seeded, class-balanced fractions of the labelled training frames.

    python label_efficiency.py --data ROOT --init-from runs/color/best.pt --out runs/label-eff \\
        --fractions 0.1 0.25 0.5 1.0 --seeds 0 1 --image-size 128x160 --epochs 15

Writes OUT/<init>_f<fraction>_s<seed>/ (one segmentation run each), OUT/label_efficiency.csv and
OUT/label_efficiency.png (test strict mean instrument Dice against fraction; line = mean over seeds,
band = min to max).
"""
from __future__ import annotations

import statistics
from pathlib import Path

import atomic
import cli
import figures
import train_segmentation
from datasets import is_synthetic
from engine import prepare_run


def run(data: str | Path, out: str | Path, init_from: str | Path, fractions: list[float], seeds: list[int],
        recipe: str = "assignment", overwrite: bool = False, **overrides) -> list[dict]:
    """Trains every (init, fraction, seed); returns the table rows (also written to CSV and plotted).
    ``overwrite``: replace an earlier label-efficiency run in ``out``."""
    out = Path(out)
    prepare_run(out, None, overwrite, "segmentation", {})
    rows = []
    for init_name, init in (("scratch", None), ("pretrained", init_from)):
        for fraction in fractions:
            for seed in seeds:
                m = train_segmentation.train(data, out / f"{init_name}_f{fraction}_s{seed}", recipe,
                                             **{**overrides, "init_from": init, "label_fraction": fraction, "seed": seed})
                rows.append({"init": init_name, "fraction": fraction, "seed": seed, "train_frames": m["train_frames"],
                             "test_mean_instrument_dice": round(m["test"]["mean_instrument_dice"], 4),
                             "test_assignment_dice": round(m["test"]["assignment_dice"], 4),
                             "best_epoch": m["fit"]["best_epoch"]})
    atomic.write_csv(rows, out / "label_efficiency.csv")
    series = {}
    for init_name in ("scratch", "pretrained"):
        scores = [[r["test_mean_instrument_dice"] for r in rows if r["init"] == init_name and r["fraction"] == f]
                  for f in fractions]
        series[init_name] = ([statistics.fmean(s) for s in scores], [min(s) for s in scores], [max(s) for s in scores])
    label = "synthetic data" if is_synthetic(data) else f"data: {Path(data).name}"
    figures.lines_with_spread(fractions, series, "fraction of labelled training frames",
                              "test strict mean instrument Dice", out / "label_efficiency.png",
                              f"Label efficiency, {len(seeds)} seeds ({label})")
    return rows


def main() -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--init-from", type=Path, required=True, help="colorization best.pt")
    parser.add_argument("--fractions", type=cli.positive_float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--recipe", choices=train_segmentation.RECIPES, default="assignment")
    parser.add_argument("--image-size", type=cli.image_size)
    parser.add_argument("--epochs", type=cli.positive_int, default=15)
    parser.add_argument("--batch-size", type=cli.positive_int, default=10)
    parser.add_argument("--lr", type=cli.positive_float, default=1e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    def body() -> None:
        rows = run(args.data, args.out, args.init_from, args.fractions, args.seeds, args.recipe,
                   image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   device=args.device, precision=args.precision, progress=False)
        print(train_segmentation.markdown_table(rows))

    cli.main(body)


if __name__ == "__main__":
    main()
