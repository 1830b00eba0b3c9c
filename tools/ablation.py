"""Which steps of the segmentation recipe earn their place: a cumulative ablation on the validation split.

    python tools/ablation.py --data ../shared/data/endo-real --out results/ablation --image-size 128x160 --epochs 40

Starts from the assignment's pipeline (the batch-wide Dice loss, checkpoints chosen on the validation loss) and
tries each step in turn on top of the best configuration so far, every step trained once per seed (default
0 1 2). A step is kept only if it raises the mean over seeds of the validation strict mean instrument Dice;
each row shows that mean, its spread over the seeds and whether the gain exceeds the spread. Every score is
computed against the masks at their stored size (256x320), whatever size the models train at. Last,
dropping small predicted class regions is tried at a few thresholds on the kept runs (evaluation only). The
test split is never looked at during selection: the kept configuration's runs are scored on it once, at the
end (the confirmation over seeds). Writes OUT/step<i>/seed<s>/ (one run each), OUT/ablation.csv,
OUT/ablation.md and OUT/ablation.json. Run again with the same flags, it reuses the runs that finished.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from hw6 import experiment, train_segmentation
from hw6.datasets import EndoSegDataset
from hw6.engine import setup_runtime
from hw6.inference import evaluate_split, load_segmentation_model
from hw6.kit import atomic, cli, stats
from hw6.unet import UNet

# (name, overrides on top of the best configuration so far); the first is the assignment's pipeline.
STEPS = [
    ("assignment (batch-wide Dice loss, select on val loss)", {}),
    ("per-frame Dice loss instead (ours, not the assignment's)", {"dice_batch": False}),
    ("+ cross-entropy beside Dice", {"loss": "dice_ce"}),
    ("+ select checkpoints on val strict Dice", {"monitor": "val_mean_instrument_dice"}),
    ("+ flips and colour jitter", {"augment": "flips"}),
    ("+ cosine learning-rate schedule", {"scheduler": "cosine"}),
    ("+ flip test-time augmentation", {"tta": True}),
    ("+ rotation, scale and shift", {"augment": "strong"}),
    ("+ last 5 epochs at the stored size (progressive resizing)", {"full_size_epochs": 5}),
]
MIN_REGION_GRID = [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08]  # fractions of a frame
SEEDS = [0, 1, 2]


def run(data: str | Path, out: str | Path, steps: list[tuple[str, dict]] = STEPS,
        min_region_grid: list[float] = MIN_REGION_GRID, seeds: list[int] = SEEDS, parallel: int = 1,
        **common) -> list[dict]:
    """Runs the cumulative ablation (each step's seeds ``parallel`` at a time); returns the table rows (also
    written as CSV, Markdown and JSON).

    After the training steps, dropping small predicted class regions (inference.drop_small_classes) is tried
    on the kept runs' weights for each threshold of ``min_region_grid``: an evaluation-only step."""
    out = Path(out)
    rows, kept, best, best_dir = [], {}, None, None
    for i, (name, change) in enumerate(steps):
        config = {**kept, **change}
        runs = train_step(data, out / f"step{i}", seeds, parallel, {**common, **config})
        score = stats.spread([m["validation"]["mean_instrument_dice"] for m in runs])
        keep = not math.isnan(score["mean"]) and (best is None or score["mean"] > best["mean"])
        rows.append(_row(name, score, [m["validation"] for m in runs], best, keep,
                         [m["fit"]["train_seconds"] for m in runs], runs[0]["device"]))
        if keep:
            kept, best, best_dir = config, score, out / f"step{i}"
        atomic.write_csv(rows, out / "ablation.csv")
    runtime = setup_runtime(common.get("device", "auto"))
    models = [load_run(best_dir / f"seed{s}", runtime) for s in seeds]
    for threshold in min_region_grid:
        vals = [evaluate(model, data, "validation", used, runtime, threshold) for model, used in models]
        score = stats.spread([v["mean_instrument_dice"] for v in vals])
        keep = score["mean"] > best["mean"]
        rows.append(_row(f"+ drop classes under {threshold:.2%} of a frame", score, vals, best, keep, None,
                         runtime.describe()))  # evaluation only: no epochs, no training time
        if keep:
            kept, best = {**kept, "min_region": threshold}, score
    tests = [evaluate(model, data, "test", used, runtime, kept.get("min_region", 0.0)) for model, used in models]
    confirmation = confirmation_summary(kept, tests, seeds)
    rows.append({"step": f"final recipe {kept} on TEST", "test_mean_instrument_dice": _round(
        confirmation["test_mean_instrument_dice"]["mean"]), "test_spread": _spread_text(
        confirmation["test_mean_instrument_dice"]), "test_assignment_dice": _round(
        confirmation["test_assignment_dice"]["mean"])})
    atomic.write_csv(rows, out / "ablation.csv")
    atomic.write_text(cli.markdown_table(rows), out / "ablation.md")
    first = json.loads((out / "step0" / f"seed{seeds[0]}" / "metrics.json").read_text())
    atomic.write_json({"kept": kept, "confirmation": confirmation, "rows": rows,
                       "class_names": first["details"]["class_names"],
                       "data": first["data"], "device": first["device"], "seeds": seeds,
                       "description": f"{common.get('epochs')} epochs per run at "
                                      f"{'x'.join(map(str, first['details']['image_size']))}, scored at "
                                      f"{'x'.join(map(str, first['details']['score_size']))}, seeds {seeds}."},
                      out / "ablation.json")
    return rows


def train_step(data: str | Path, step_dir: Path, seeds: list[int], parallel: int, config: dict) -> list[dict]:
    """One step's run per seed, ``parallel`` at a time; a run that already finished with exactly these options
    is read back instead of trained again (an unfinished one is trained afresh)."""
    done = {s: finished(step_dir / f"seed{s}", {**config, "seed": s}) for s in seeds}
    todo = [experiment.Job(train_segmentation.train, Path(data), step_dir / f"seed{s}",
                           {**config, "seed": s, "test": False, "overwrite": True}) for s in seeds if done[s] is None]
    trained = iter(experiment.run_jobs(todo, parallel))
    return [done[s] or next(trained) for s in seeds]


def finished(run_dir: Path, wanted: dict) -> dict | None:
    """The metrics of a complete earlier run in ``run_dir`` trained with ``wanted`` options."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    resolved = experiment.jsonable(train_segmentation.resolve_options(**wanted))
    same = all(metrics["options"].get(k) == v for k, v in resolved.items()
               if k not in ("progress", "device", "resume", "overwrite", "threads", "test"))
    return metrics if same and metrics["fit"]["complete"] and metrics["validation"] else None


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)  # NaN is stored as null


def _spread_text(s: dict) -> str:
    return f"{s['min']:.3f}-{s['max']:.3f}" if s["n"] > 1 else ""


def _row(name: str, score: dict, vals: list[dict], best: dict | None, kept: bool, seconds: list[float] | None,
         device: str) -> dict:
    gain = None if best is None else score["mean"] - best["mean"]
    verdict = "" if best is None else "a finding" if stats.is_finding(score, best) else "within noise"
    return {"step": name, "val_mean_instrument_dice": _round(score["mean"]), "val_spread": _spread_text(score),
            "gain": None if gain is None else round(gain, 4), "gain_vs_spread": verdict, "kept": kept,
            "val_assignment_dice": _round(stats.spread([v["assignment_dice"] for v in vals])["mean"]),
            "per_seed": " ".join(f"{v:.3f}" for v in score["values"]),
            "train_seconds": None if seconds is None else round(sum(seconds) / len(seconds)), "device": device}


def load_run(run_dir: Path, runtime) -> tuple[UNet, dict]:
    """A finished run's best weights (on the runtime's device) and its options, with the input size of those
    weights as ``image_size``."""
    model, meta = load_segmentation_model(run_dir / "best.pt", runtime.device)
    used = json.loads((run_dir / "metrics.json").read_text())["options"]
    return model, {**used, "image_size": meta["input_size"]}


def evaluate(model: UNet, data: str | Path, split: str, used: dict, runtime, min_region: float) -> dict:
    o = {**used, "min_region": min_region}
    return evaluate_split(model, EndoSegDataset(data, split, used["image_size"]), runtime, o["batch_size"],
                          train_segmentation.segmentation_loss(o), o["tta"], min_region)


def confirmation_summary(kept: dict, tests: list[dict], seeds: list[int]) -> dict:
    """The kept configuration's runs, scored once on the test split: spreads, and per-class Dice per seed."""
    return {"recipe": kept, "seeds": seeds,
            "test_mean_instrument_dice": stats.spread([t["mean_instrument_dice"] for t in tests]),
            "test_mean_instrument_iou": stats.spread([t["mean_instrument_iou"] for t in tests]),
            "test_assignment_dice": stats.spread([t["assignment_dice"] for t in tests]),
            "dice_per_class": [list(per_seed) for per_seed in zip(*(map(_round, t["dice_per_class"]) for t in tests))]}


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="data root (mapping.json, segmentation/...)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (finished runs in it are reused)")
    parser.add_argument("--image-size", type=cli.image_size, help="HxW the models train at (default: as stored)")
    parser.add_argument("--epochs", type=cli.positive_int, default=40, help="epochs per run (default 40)")
    parser.add_argument("--seeds", type=cli.non_negative_int, nargs="+", default=SEEDS,
                        help="one run per seed for every step (default 0 1 2)")
    parser.add_argument("--parallel", type=cli.positive_int, default=1,
                        help="runs trained at a time (on a GPU: several share it; default 1)")
    cli.add_device_flag(parser)
    args = parser.parse_args(argv)
    common = dict(image_size=args.image_size, epochs=args.epochs, device=args.device, progress=False)

    def body() -> None:
        print(cli.markdown_table(run(args.data, args.out, seeds=args.seeds, parallel=args.parallel, **common)))

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
