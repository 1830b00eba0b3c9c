"""Which steps of the segmentation recipe earn their place: a cumulative ablation on the validation split.

    python ablation.py --data ../shared/data/endo-real --out results/ablation --image-size 128x160 --epochs 25

Starts from the assignment's pipeline and tries each step in turn on top of the best configuration so far;
a step is kept only if it raises the validation strict mean instrument Dice (the test split is never
looked at during selection). Last, dropping small predicted class regions is tried at a few thresholds on
the kept run. The final configuration alone is then scored on the test split. Writes
OUT/<step>/ (one run each), OUT/ablation.csv, OUT/ablation.md and OUT/ablation.json. Run again with the same
flags, it reuses the steps that already finished.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import atomic
import cli
import train_segmentation
from datasets import EndoSegDataset
from engine import Runtime, load_checkpoint, load_weights, setup_runtime
from unet import UNet

# (name, overrides on top of the best configuration so far); the first is the assignment's pipeline.
STEPS = [
    ("assignment (Dice loss, select on val loss)", {}),
    ("+ cross-entropy beside Dice", {"loss": "dice_ce"}),
    ("+ select checkpoints on val strict Dice", {"monitor": "val_mean_instrument_dice"}),
    ("+ flips and colour jitter", {"augment": "flips"}),
    ("+ cosine learning-rate schedule", {"scheduler": "cosine"}),
    ("+ flip test-time augmentation", {"tta": True}),
    ("+ rotation, scale and shift", {"augment": "strong"}),
]


MIN_REGION_GRID = [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08]  # fractions of a frame


def run(data: str | Path, out: str | Path, steps: list[tuple[str, dict]] = STEPS,
        min_region_grid: list[float] = MIN_REGION_GRID, **common) -> list[dict]:
    """Runs the cumulative ablation; returns the table rows (also written as CSV, Markdown and JSON).

    After the training steps, dropping small predicted class regions (predict.drop_small_classes) is tried
    on the kept run's weights for each threshold of ``min_region_grid``: an evaluation-only step."""
    out = Path(out)
    rows, kept, best_score, best_dir = [], {}, -math.inf, None
    for i, (name, change) in enumerate(steps):
        config = {**kept, **change}
        m = finished(out / f"step{i}", {**common, **config}) or train_segmentation.train(
            data, out / f"step{i}", test=False, **common, **config)
        score = m["validation"]["mean_instrument_dice"]
        keep = not math.isnan(score) and score > best_score
        if keep:
            kept, best_score, best_dir = config, score, out / f"step{i}"
        rows.append(_row(name, m["validation"], m["class_names"], keep, m["fit"]["best_epoch"],
                         m["fit"]["train_seconds"], m["device"]))
        atomic.write_csv(rows, out / "ablation.csv")
    model, used, runtime = load_run(best_dir, common.get("device", "auto"))
    splits = {s: EndoSegDataset(data, s, common.get("image_size")) for s in ("validation", "test")}
    for threshold in min_region_grid:
        val = evaluate(model, splits["validation"], used, runtime, threshold)
        keep = val["mean_instrument_dice"] > best_score
        if keep:
            kept, best_score = {**kept, "min_region": threshold}, val["mean_instrument_dice"]
        rows.append(_row(f"+ drop classes under {threshold:.2%} of a frame", val, splits["test"].class_names, keep,
                         None, None, runtime.describe()))  # evaluation only: no epochs, no training time
    final = evaluate(model, splits["test"], used, runtime, kept.get("min_region", 0.0))
    rows.append({"step": f"final recipe {kept} on TEST", "test_mean_instrument_dice": round(final["mean_instrument_dice"], 4),
                 "test_assignment_dice": round(final["assignment_dice"], 4),
                 **{f"test_dice_{n}": _round(d) for n, d in zip(splits["test"].class_names, final["dice_per_class"])}})
    atomic.write_csv(rows, out / "ablation.csv")
    atomic.write_text(train_segmentation.markdown_table(rows), out / "ablation.md")
    first = json.loads((out / "step0" / "metrics.json").read_text())
    atomic.write_json({"kept": kept, "test": final, "rows": rows, "class_names": first["class_names"],
                       "data_root": first["data_root"], "synthetic": first["synthetic"], "device": first["device"],
                       "description": f"{common.get('epochs')} epochs per step at "
                                      f"{'x'.join(map(str, first['image_size']))}, seed {common.get('seed', 0)}."},
                      out / "ablation.json")
    return rows


def finished(run_dir: Path, wanted: dict, recipe: str = "assignment") -> dict | None:
    """The metrics of a complete earlier run in ``run_dir`` trained with ``wanted`` options, so that an
    interrupted or extended ablation does not train its finished steps again."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    resolved = train_segmentation.resolve_options(recipe, **wanted)
    stored = {**train_segmentation.DEFAULTS, **metrics["options"]}  # runs from before an option existed used its default
    same = all(stored.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in resolved.items()
               if k not in ("progress", "device", "resume"))
    return metrics if same and metrics["fit"]["complete"] and "validation" in metrics else None


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 3)  # NaN is stored as null


def _row(name: str, val: dict, class_names: list[str], kept: bool, best_epoch: int | None, seconds: float | None,
         device: str) -> dict:
    return {"step": name, "val_mean_instrument_dice": round(val["mean_instrument_dice"], 4),
            "val_assignment_dice": round(val["assignment_dice"], 4), "kept": kept,
            **{f"val_dice_{n}": _round(d) for n, d in zip(class_names, val["dice_per_class"])},
            "best_epoch": best_epoch, "train_seconds": seconds, "device": device}


def load_run(run_dir: Path, device: str) -> tuple[UNet, dict, Runtime]:
    """A finished run's best weights and the options it was trained and evaluated with."""
    ckpt = load_checkpoint(run_dir / "best.pt", "segmentation")
    model = UNet(**ckpt["meta"]["arch"])
    load_weights(model, ckpt, run_dir / "best.pt")
    runtime = setup_runtime(device)
    return model.to(runtime.device), json.loads((run_dir / "metrics.json").read_text())["options"], runtime


def evaluate(model: UNet, split: EndoSegDataset, used: dict, runtime: Runtime, min_region: float) -> dict:
    return train_segmentation.evaluate_as_trained(model, split, runtime, {**used, "min_region": min_region})


def confirm(data: str | Path, out: str | Path, seeds: list[int], **options) -> dict:
    """``--recipe best`` trained once per seed and scored on the test split: mean, min and max of the strict
    mean instrument Dice and the per-class Dice (one seed proves nothing at these split sizes)."""
    out = Path(out)
    runs = [finished(out / f"seed{s}", {**options, "seed": s}, "best") for s in seeds]
    runs = [m if m and "test" in m else train_segmentation.train(data, out / f"seed{s}", "best", **{**options, "seed": s})
            for m, s in zip(runs, seeds)]
    scores = [m["test"]["mean_instrument_dice"] for m in runs]
    names = runs[0]["class_names"]
    per_class = [[m["test"]["dice_per_class"][k] for m in runs] for k in range(len(names))]
    options = {**options, "image_size": runs[0]["image_size"], "epochs": runs[0]["options"]["epochs"]}  # as run
    result = {"recipe": train_segmentation.RECIPES["best"], "options": options, "seeds": seeds, "device": runs[0]["device"],
              "data_root": runs[0]["data_root"], "synthetic": runs[0]["synthetic"],
              "test_mean_instrument_dice": {"mean": sum(scores) / len(scores), "min": min(scores), "max": max(scores),
                                            "per_seed": scores},
              "test_assignment_dice_per_seed": [m["test"]["assignment_dice"] for m in runs],
              "train_seconds_per_seed": [m["fit"]["train_seconds"] for m in runs],
              "dice_per_class": {n: [_round(v) for v in vals] for n, vals in zip(names, per_class)}}
    atomic.write_json(result, out / "seeds.json")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--image-size", type=cli.image_size)
    parser.add_argument("--epochs", type=cli.positive_int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--confirm-seeds", type=int, nargs="+", metavar="SEED",
                        help="instead: train --recipe best once per seed and report the test spread (OUT/seeds.json)")
    args = parser.parse_args()
    common = dict(image_size=args.image_size, epochs=args.epochs, device=args.device, progress=False)

    def body() -> None:
        if args.confirm_seeds:
            result = confirm(args.data, args.out, args.confirm_seeds, **common)
            print(json.dumps(result["test_mean_instrument_dice"], indent=1))
        else:
            print(train_segmentation.markdown_table(run(args.data, args.out, seed=args.seed, **common)))

    cli.main(body)


if __name__ == "__main__":
    main()
