"""Speed, measured side by side in one process: ours against a baseline written the way the assignment's
starter code works, on the same data and the same U-Net.

    python tools/bench.py --quick --json docs/bench-cpu.json      # a 2-core CPU
    python tools/bench.py --json docs/bench-gpu.json              # a GPU: more steps
    python tools/bench.py --render docs/bench-*.json --out docs/BENCHMARKS.md

Figures (keys of the JSON): seg_train_images_per_s (ours and baseline) and seg_speedup_vs_baseline,
seg_flops_per_image (FlopCounterMode, one training step of one 256x320 image), matmul_peak_flops (measured
here in the precision we train in), seg_roofline_fraction (achieved training FLOP/s over that peak),
seg_infer_images_per_s, vgg_frozen_cache_speedup (2(b) for 10 epochs with the feature cache versus without),
dataset_cached_reload_speedup (first construction of the dataset versus reload from its cache),
peak memory, and the strict mean instrument Dice of the quick 1(a) experiment in fp32 and bf16 (learning
rate annealed over its epochs by default; see precision_check). With
--compile, also seg_compiled_train_images_per_s and seg_compile_speedup (torch.compile against eager).
"""
from __future__ import annotations

import itertools
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from unittest import mock

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import vgg16

from hw6 import synthetic_endo, train_segmentation, transfer_vgg
from hw6.augment import augment_batch
from hw6.datasets import EndoSegDataset, InMemoryLoader, is_synthetic, list_samples
from hw6.engine import Runtime, adam, cpu_name, keep_freed_memory, setup_runtime
from hw6.kit import atomic, cli, stats
from hw6.kit.cli import SCHEDULERS
from hw6.losses import soft_dice_loss
from hw6.unet import UNet

ROOT = Path(__file__).resolve().parents[1]
REAL_ENDO = ROOT.parent / "shared" / "data" / "endo-real"
REAL_FASHION = ROOT.parent / "shared" / "data"
# The precision check's data and 1(a) settings: those of hw6.ipynb's quick profile.
QUICK_SYNTHETIC = dict(n_train=200, n_val=40, n_test=40, n_color_train=400, n_color_val=40, size=(256, 320))
QUICK_1A = dict(recipe="assignment", image_size=(96, 120), epochs=12, patience=20, batch_size=10, lr=1e-3)


# ----------------------------------------------------------------------------------- the starter-code way
class StarterDataset(torch.utils.data.Dataset):
    """The assignment's starter pipeline: PIL opens and decodes both files on every access, ToTensor-style
    conversion, and a one-hot built with Python loops over np.unique of each mask."""

    def __init__(self, split_dir: Path, grey_levels: list[int]) -> None:
        self.samples = [files for _, files in list_samples(split_dir, ("_input.jpg", "_mask.png"))]
        self.grey_levels = grey_levels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        frame_path, mask_path = self.samples[i]
        image = torch.from_numpy(np.array(Image.open(frame_path).convert("RGB"))).permute(2, 0, 1).float() / 255
        mask = np.array(Image.open(mask_path))
        one_hot = np.zeros((len(self.grey_levels), *mask.shape), dtype=np.float32)
        for value in np.unique(mask):
            for k, level in enumerate(self.grey_levels):
                if value == level:
                    one_hot[k][mask == value] = 1
        return image, torch.from_numpy(one_hot)


def starter_dice_loss(probs: torch.Tensor, one_hot: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    intersection = (probs * one_hot).sum(dim=(2, 3))
    return 1 - ((2 * intersection + smooth) / (probs.sum(dim=(2, 3)) + one_hot.sum(dim=(2, 3)) + smooth)).mean()


def time_steps(step, batches, warmup: int, steps: int) -> float:
    """Seconds per step over ``steps`` timed steps after ``warmup`` untimed ones; ``batches`` is iterated
    again and again (one pass per epoch), so a loader never runs dry."""
    iterator = itertools.chain.from_iterable(itertools.repeat(batches))
    for _ in range(warmup):
        step(next(iterator))
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    sync()
    return (time.perf_counter() - t0) / steps


def our_training_step(num_classes: int, runtime: Runtime, compiled: bool):
    """One training step the way train_segmentation runs it (augmentation on tensors, channels_last,
    autocast, fused Adam); ``compiled`` wraps the U-Net in torch.compile (nn.Module.compile)."""
    torch.manual_seed(0)
    model = UNet(3, num_classes).to(runtime.device, memory_format=torch.channels_last)
    if compiled:
        model.compile()
    optimizer = adam(model.parameters(), 1e-3)

    def step(b):
        images, masks = augment_batch(*runtime.to_device(b))
        with runtime.autocast():
            loss = soft_dice_loss(model(images.contiguous(memory_format=torch.channels_last)), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def starter_training_step(data: Path, grey_levels: list[int], runtime: Runtime, batch: int):
    """The starter code's step, with its DataLoader: fp32, default memory format, sigmoid, plain Adam."""
    torch.manual_seed(0)
    model = UNet(3, len(grey_levels)).to(runtime.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(StarterDataset(Path(data) / "segmentation" / "train", grey_levels),
                                         batch_size=batch, shuffle=True)

    def step(b):
        images, one_hot = (t.to(runtime.device) for t in b)
        loss = starter_dice_loss(torch.sigmoid(model(images)), one_hot)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, loader


def bench_segmentation_training(data: Path, runtime: Runtime, batch: int, warmup: int, steps: int,
                                compiled: bool, allocator: bool) -> dict:
    """``allocator``: glibc's default allocator settings are still in force (see ``run``); the baseline and
    ours without ``keep_freed_memory`` are timed under them, then ours with it."""
    train = EndoSegDataset(data, "train").to(runtime.device)
    loader = InMemoryLoader(train, batch, shuffle=True)
    result = {}
    base_step, starter = starter_training_step(data, train.grey_levels, runtime, batch)
    base_s = time_steps(base_step, starter, warmup, steps)

    def time_ours() -> float:
        return time_steps(our_training_step(train.num_classes, runtime, False), loader, warmup, steps)

    if allocator:
        default_s = time_ours()
        keep_freed_memory()
    ours_s = time_ours()
    if allocator:
        result.update(seg_default_allocator_train_images_per_s=batch / default_s, seg_allocator_speedup=default_s / ours_s)
    if compiled:
        t0 = time.perf_counter()
        step = our_training_step(train.num_classes, runtime, True)
        step(next(iter(loader)))  # compiles
        result["seg_compile_seconds"] = time.perf_counter() - t0
        compiled_s = time_steps(step, loader, warmup, steps)
        result.update(seg_compiled_train_images_per_s=batch / compiled_s, seg_compile_speedup=ours_s / compiled_s)
    image, mask = train.batch(torch.tensor([0], device=runtime.device))
    flops = count_training_flops(UNet(3, train.num_classes).to(runtime.device), image, mask)
    return {"seg_train_images_per_s": batch / ours_s, "seg_baseline_train_images_per_s": batch / base_s,
            "seg_speedup_vs_baseline": base_s / ours_s, "seg_flops_per_image": flops,
            "seg_frame_size": list(train.images.shape[-2:]), "seg_batch_size": batch, **result}


def count_training_flops(model: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor) -> float:
    """FLOPs of forward + backward of one image (FlopCounterMode counts matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        soft_dice_loss(model(image), mask).backward()
    return float(counter.get_total_flops())


def matmul_peak(runtime: Runtime, repeats: int = 20, rounds: int = 3) -> float:
    """FLOP/s of large square matrix products in the training precision: the roofline's compute ceiling,
    the fastest of ``rounds`` timings (a ceiling is what the hardware can do, so a slow round from a busy
    moment must not lower it). A GPU needs 8192-square products to reach its peak (2048 ones finish in
    microseconds, launch-bound)."""
    n = 8192 if runtime.device.type == "cuda" else 2048
    dtype = runtime.amp_dtype or torch.float32
    a = torch.randn(n, n, device=runtime.device, dtype=dtype)
    b = torch.randn(n, n, device=runtime.device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(rounds):
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 * repeats / best


def bench_inference(data: Path, runtime: Runtime, batch: int, warmup: int, steps: int) -> float:
    test = EndoSegDataset(data, "test").to(runtime.device)
    model = UNet(3, test.num_classes).to(runtime.device, memory_format=torch.channels_last).eval()
    loader = InMemoryLoader(test, batch, shuffle=False)

    @torch.no_grad()
    def step(b):
        with runtime.autocast():
            model(b[0].contiguous(memory_format=torch.channels_last)).argmax(1)

    return batch / time_steps(step, loader, warmup, steps)


def bench_dataset_reload(data: Path) -> dict:
    with tempfile.TemporaryDirectory() as cache, mock.patch.dict(os.environ, HW6_CACHE_DIR=cache):
        t0 = time.perf_counter()
        EndoSegDataset(data, "train")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        EndoSegDataset(data, "train")
        again = time.perf_counter() - t0
    return {"dataset_first_load_s": first, "dataset_cached_reload_s": again, "dataset_cached_reload_speedup": first / again}


def bench_vgg_cache(fashion: Path, device: str, limit: int, test_limit: int, image_size: tuple[int, int]) -> dict:
    """2(b) for 10 epochs on the same images, with the feature cache and with --no-cache."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "vgg16-random.pth"
        torch.manual_seed(0)
        torch.save(vgg16().state_dict(), weights)  # same cost as ImageNet weights; accuracy is not the point
        times = {}
        for cache in (True, False):
            t0 = time.perf_counter()
            transfer_vgg.train(fashion, Path(tmp) / str(cache), mode="frozen", epochs=10, limit=limit,
                               test_limit=test_limit, image_size=image_size, weights=weights, cache=cache, device=device,
                               progress=False)
            times[cache] = time.perf_counter() - t0
    return {"vgg_frozen_cached_s": times[True], "vgg_frozen_uncached_s": times[False],
            "vgg_frozen_cache_speedup": times[False] / times[True], "vgg_images": [limit, test_limit],
            "vgg_image_size": list(image_size)}


def precision_check(device: str, workdir: Path, seeds: list[int], schedule: str = "cosine") -> dict:
    """Strict mean instrument Dice of the quick 1(a) experiment (synthetic default) in fp32 and bf16, each seed
    trained once per precision; the difference is taken between means over ``seeds``.

    Rounding changes a trajectory from the first step, so the two precisions end wherever their trajectories
    happen to be. 1(a)'s constant learning rate (``schedule`` "none") ends its epochs while the strict Dice
    still swings from epoch to epoch, and the difference then says where the runs stopped; annealed to 0
    ("cosine", the default) both end settled and the difference measures the precision. The recipe is 1(a)'s
    (QUICK_1A), recorded as ``precision_recipe``."""
    data = synthetic_endo.generate(workdir / "synthetic-quick", **QUICK_SYNTHETIC)
    runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}  # metrics.json of each seed, per precision
    for seed in seeds:
        for precision in runs:
            runs[precision].append(train_segmentation.train(
                data, workdir / f"{precision}-{seed}", device=device, precision=precision,
                seed=seed, progress=False, **QUICK_1A, scheduler=schedule))
    dice = {p: [m["test"]["mean_instrument_dice"] for m in ms] for p, ms in runs.items()}
    mean = {p: sum(v) / len(v) for p, v in dice.items()}
    seconds = {p: sum(m["fit"]["train_seconds"] for m in ms) / len(seeds) for p, ms in runs.items()}
    return {"precision_seeds": seeds, "precision_recipe": QUICK_1A["recipe"], "precision_schedule": schedule,
            "dice_fp32": mean["fp32"], "dice_bf16": mean["bf16"], "dice_bf16_minus_fp32": mean["bf16"] - mean["fp32"],
            "dice_fp32_per_seed": dice["fp32"], "dice_bf16_per_seed": dice["bf16"],
            "quick_1a_train_seconds_fp32": seconds["fp32"], "quick_1a_train_seconds_bf16": seconds["bf16"]}


def run(quick: bool, device: str, data: Path | None, fashion: Path | None, precision_seeds: list[int],
        compiled: bool = False, save: Callable[[dict], None] = lambda result: None,
        precision_schedule: str = "cosine", precision_only: bool = False) -> dict:
    """Every figure, in one process. ``save`` gets the figures so far after each part (``complete`` False
    until the last), so a run stopped early keeps what it measured. ``precision_only``: just the fp32/bf16
    comparison."""
    t_start = time.perf_counter()
    # The starter code runs under glibc's default allocator settings, so the baseline is timed under them,
    # first: keep_freed_memory cannot be undone within a process.
    runtime = setup_runtime(device)
    allocator = runtime.device.type == "cpu"
    workdir = Path(tempfile.mkdtemp(prefix="hw6-bench-"))
    try:
        if data is None and not precision_only:  # the precision check makes its own synthetic data
            data = synthetic_endo.generate(workdir / "synthetic", n_train=60, n_val=10, n_test=20, n_color_train=1,
                                           n_color_val=1)
        steps, warmup = (12, 2) if quick else (30, 5)  # 6 timed steps left the baseline ratio +-10% between runs
        result = {"machine": cpu_name() if runtime.device.type == "cpu" else torch.cuda.get_device_name(),
                  "device": runtime.describe(), "cores": os.cpu_count(), "torch": torch.__version__,
                  "python": platform.python_version(), "precision": runtime.precision,
                  "seg_data": "the quick profile's synthetic data, generated in the run" if precision_only
                  else f"{data} ({'synthetic' if is_synthetic(data) else 'real'})",
                  "command": "python " + " ".join(sys.argv), "complete": False}

        def measured(figures: dict) -> None:
            result.update(figures)
            result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if torch.cuda.is_available():
                result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
            result["bench_wall_s"] = time.perf_counter() - t_start
            save(result)

        if precision_only:
            result["label"] = f"fp32 against bf16 only, recipe {QUICK_1A['recipe']}, schedule {precision_schedule}"
            if allocator:
                keep_freed_memory()  # as training runs
        else:
            measured(bench_segmentation_training(data, runtime, 10, warmup, steps, compiled, allocator))
            peak = matmul_peak(runtime)
            achieved = result["seg_flops_per_image"] * result["seg_train_images_per_s"]
            measured({"matmul_peak_flops": peak, "seg_achieved_flops": achieved,
                      "seg_roofline_fraction": achieved / peak})
            measured({"seg_infer_images_per_s": bench_inference(data, runtime, 10, warmup, steps * 2)})
            measured(bench_dataset_reload(data))
            if fashion is not None:
                limit, test_limit = (2000, 500) if quick else (10000, 2000)
                measured(bench_vgg_cache(fashion, device, limit, test_limit, (32, 32)))
        if precision_seeds:
            measured(precision_check(device, workdir, precision_seeds, precision_schedule))
        measured({"complete": True})
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------- BENCHMARKS.md
# One row of the tables per line: JSON key | what it measures | format of its value.
ROWS = [tuple(part.strip() for part in line.split(" | ")) for line in """
seg_train_images_per_s | segmentation training, ours (images/s, 256x320, batch 10) | {:.2f}
seg_baseline_train_images_per_s | segmentation training, starter-code baseline (images/s) | {:.2f}
seg_speedup_vs_baseline | speed-up over the baseline (target >= 3) | {:.2f}x
seg_default_allocator_train_images_per_s | segmentation training, ours with glibc's default allocator settings (images/s) | {:.2f}
seg_allocator_speedup | keeping freed memory (engine.keep_freed_memory) over glibc's defaults | {:.2f}x
seg_flops_per_image | training FLOP per image (FlopCounterMode) | {:.3g}
matmul_peak_flops | matmul peak in the training precision (FLOP/s) | {:.3g}
seg_achieved_flops | achieved training FLOP/s | {:.3g}
seg_roofline_fraction | roofline fraction (target >= 0.6) | {:.3f}
seg_compiled_train_images_per_s | segmentation training, torch.compile (images/s) | {:.2f}
seg_compile_speedup | torch.compile speed-up over eager (training runs eager) | {:.2f}x
seg_compile_seconds | torch.compile: first step, compilation included (s) | {:.0f}
seg_infer_images_per_s | prediction (images/s, 256x320) | {:.2f}
vgg_frozen_cached_s | 2(b) 10 epochs with the feature cache (s) | {:.1f}
vgg_frozen_uncached_s | 2(b) 10 epochs with --no-cache (s) | {:.1f}
vgg_frozen_cache_speedup | feature-cache speed-up (target >= 8) | {:.1f}x
dataset_first_load_s | dataset first construction, decoding (s) | {:.3f}
dataset_cached_reload_s | dataset reload from the cache (s) | {:.3f}
dataset_cached_reload_speedup | cached reload speed-up (target >= 5) | {:.1f}x
precision_recipe | recipe of the fp32/bf16 comparison (assignment: 1(a)'s) | {}
precision_schedule | learning-rate schedule of the fp32/bf16 runs (none: 1(a)'s constant rate; cosine: annealed to 0) | {}
precision_seeds | seeds of the fp32/bf16 comparison (quick profile, synthetic data) | {}
dice_fp32_per_seed | quick segmentation run, strict mean instrument Dice per seed, fp32 | {:.3f}
dice_bf16_per_seed | quick segmentation run, strict mean instrument Dice per seed, bf16 | {:.3f}
dice_fp32 | quick segmentation run, strict mean instrument Dice, fp32 (mean over seeds) | {:.3f}
dice_bf16 | quick segmentation run, strict mean instrument Dice, bf16 (mean over seeds) | {:.3f}
dice_bf16_minus_fp32 | bf16 - fp32 (target within 0.02) | {:+.3f}
quick_1a_train_seconds_fp32 | quick segmentation run, training time, fp32 (s, mean) | {:.0f}
quick_1a_train_seconds_bf16 | quick segmentation run, training time, bf16 (s, mean) | {:.0f}
peak_rss_mib | peak RSS (MiB) | {:.0f}
cuda_max_memory_allocated_mib | torch.cuda.max_memory_allocated (MiB) | {:.0f}
bench_wall_s | whole benchmark wall time (s) | {:.0f}
""".strip().splitlines()]


NOTES = Path(__file__).with_name("bench_notes.md")  # the notes under the tables, written by hand


def read_json(path: Path, flag: str, needed: tuple[str, ...], what: str) -> dict:
    """The JSON object in ``path``, with the ``needed`` keys of ``what`` it must be; else one line."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise cli.UsageError(f"{flag} {path}: cannot read it as JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict) or not all(key in value for key in needed):
        raise cli.UsageError(f"{flag} {path}: not {what}")
    return value


def long_run_row(path: Path) -> list[str]:
    """A row of the long-runs table from a run's own output: a VGG16 run's metrics.json or the seeds.json of a
    segmentation configuration trained over seeds."""
    m = read_json(path, "--runs", ("experiment", "options", "device"), "a run's metrics.json or a seed set's seeds.json")
    o, fit, seeded = m["options"], m.get("fit"), "seeds" in m
    size = "x".join(map(str, o["image_size"])) if o.get("image_size") else "256x320"
    if (m["experiment"], seeded) not in (("segmentation", True), ("vgg16", False)):
        raise cli.UsageError(f"--runs {path}: a {'seed set of' if seeded else 'single'} {m['experiment']} run; give a "
                             "VGG16 run's metrics.json or a segmentation seed set's seeds.json")
    if seeded:  # experiment.train_over_seeds: one segmentation configuration over several seeds
        extra = (f" --augment {o['augment']}" if o["augment"] != "none" else "") + \
            ("" if o["dice_batch"] else " --dice-per-frame")
        return [f"segmentation `--recipe {o['recipe']}`{extra}, {size}, {o['epochs']} epochs, seeds {m['seeds']}",
                m["data"]["name"], f"test strict mean instrument Dice {stats.describe(m['test']['mean_instrument_dice'])}",
                " / ".join(f"{t / 60:.0f}" for t in m["train_seconds"]) + " min per seed", m["device"],
                f"`python train_segmentation.py --data DATA --out {path.parent} --recipe {o['recipe']}{extra} "
                f"--image-size {size} --epochs {o['epochs']} --seeds {' '.join(map(str, m['seeds']))}`"]
    incomplete = "" if fit["complete"] else " (INCOMPLETE)"
    d = m["details"]
    schedule = f" --scheduler {o['scheduler']}" if o["scheduler"] != "none" else ""
    return [f"VGG16 `{o['mode']}`, {d['train_images']:,} train / {d['test_images']:,} test images at {size}, "
            f"{o['epochs']} epochs", "Fashion-MNIST", f"final test accuracy {m['test']['accuracy']:.4f}{incomplete}",
            f"{fit['train_seconds'] / 60:.0f} min training (epochs {_epoch_range(path.with_name('history.json'))} s)",
            m["device"], f"`python transfer_vgg.py --mode {o['mode']} --data DATA --out {path.parent} --epochs "
                         f"{o['epochs']} --batch-size {o['batch_size']} --lr {o['lr']:g}{schedule}`"]


def _epoch_range(history: Path) -> str:
    seconds = [row["seconds"] for row in json.loads(history.read_text())]
    return f"{min(seconds):.0f}-{max(seconds):.0f}"


def _format(fmt: str, value) -> str:
    return ", ".join(fmt.format(v) for v in value) if isinstance(value, list) else fmt.format(value)


def render(results: list[dict], runs: list[Path] = ()) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python tools/bench.py --render ...` from the JSON that `bench.py --json` wrote and the notes "
             "in `tools/bench_notes.md`; do not edit by hand.",
             "Every ratio is measured in one process, on the same data and model, side by side.", ""]
    for r in sorted(results, key=lambda r: bool(r.get("label"))):  # whole benchmarks first, labelled extras after
        if "precision_seeds" in r:
            # Files from before the recipe and the schedule were recorded: the quick profile's constant rate.
            r = {"precision_recipe": "assignment", "precision_schedule": "none", **r}
        partial = "" if r.get("complete", True) else " (PARTIAL: the run stopped before its last part)"
        label = f", {r['label']}" if r.get("label") else ""
        lines += [f"## {r['machine']}{label}{partial}", "",
                  f"Device {r['device']}; {r['cores']} cores; torch {r['torch']}; Python {r['python']}; "
                  f"segmentation data: {r['seg_data']}.", "", f"Command: `{r['command']}`", "",
                  "| figure | value |", "|---|---|"]
        lines += [f"| {label} | {_format(fmt, r[key])} |" for key, label, fmt in ROWS if key in r]
        lines += [""]
    if runs:
        lines += ["## Long training runs", "", "Read from each run's own output file; DATA is the data root named.", "",
                  "| run | data | result | time | device | command |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(long_run_row(p)) + " |" for p in runs] + [""]
    return "\n".join(lines) + "\n" + NOTES.read_text()


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps, for a 2-core CPU")
    parser.add_argument("--json", type=Path, help="write the figures here (after each part)")
    cli.add_device_flag(parser)
    parser.add_argument("--data", type=Path, help="segmentation data root (default: ../shared/data/endo-real "
                                                  "if present, else a small synthetic set)")
    parser.add_argument("--fashion-data", type=Path, help="Fashion-MNIST root (default: ../shared/data if present)")
    parser.add_argument("--precision-seeds", type=cli.non_negative_int, nargs="*", default=[0], metavar="SEED",
                        help="seeds of the fp32-vs-bf16 Dice runs (default 0; none: skip)")
    parser.add_argument("--precision-schedule", choices=SCHEDULERS, default="cosine",
                        help="learning-rate schedule of the fp32-vs-bf16 runs: cosine (annealed to 0, so both end "
                             "settled; default) or none (1(a)'s constant rate)")
    parser.add_argument("--precision-only", action="store_true", help="only the fp32-vs-bf16 comparison")
    parser.add_argument("--compile", action="store_true", help="also time training under torch.compile")
    parser.add_argument("--render", type=Path, nargs="+", help="JSON files to turn into BENCHMARKS.md")
    parser.add_argument("--runs", type=Path, nargs="*", default=[],
                        help="with --render: a VGG16 run's metrics.json or a seed set's seeds.json")
    parser.add_argument("--out", type=Path, help="with --render: the Markdown file")
    args = parser.parse_args(argv)
    if args.render:
        def write_markdown() -> None:
            text = render([read_json(p, "--render", ("machine", "device", "command"), "a benchmark's JSON (bench.py "
                                     "--json)") for p in args.render], args.runs)
            atomic.write_text(text, args.out) if args.out else print(text)
        cli.main(write_markdown)
    data = args.data or (REAL_ENDO if (REAL_ENDO / "segmentation").is_dir() else None)
    fashion = args.fashion_data or (REAL_FASHION if (REAL_FASHION / "FashionMNIST" / "raw").is_dir() else None)
    if args.precision_only and not args.precision_seeds:
        parser.error("--precision-only needs --precision-seeds")
    save = (lambda result: atomic.write_json(result, args.json)) if args.json else (lambda result: None)
    cli.main(lambda: print(json.dumps(run(args.quick, args.device, data, fashion, args.precision_seeds, args.compile,
                                          save, args.precision_schedule, args.precision_only),
                                          indent=2)))


if __name__ == "__main__":
    main(sys.argv[1:])
