"""Speed, measured side by side in one process: ours against a baseline written the way the assignment's
starter code works, on the same data and the same U-Net.

    python bench.py --quick --json docs/bench-cpu.json      # this 2-core CPU, under 10 minutes
    python bench.py --json docs/bench-gpu.json              # a GPU: more steps
    python bench.py --render docs/bench-*.json --out docs/BENCHMARKS.md

Figures (keys of the JSON): seg_train_images_per_s (ours and baseline) and seg_speedup_vs_baseline,
seg_flops_per_image (FlopCounterMode, one training step of one 256x320 image), matmul_peak_flops (measured
here in the precision we train in), seg_roofline_fraction (achieved training FLOP/s over that peak),
seg_infer_images_per_s, vgg_frozen_cache_speedup (2(b) for 10 epochs with the feature cache versus without),
dataset_cached_reload_speedup (first construction of the dataset versus reload from its cache),
peak memory, and the strict mean instrument Dice of the quick 1(a) experiment in fp32 and bf16. With
--compile, also seg_compiled_train_images_per_s and seg_compile_speedup (torch.compile against eager).
"""
from __future__ import annotations

import argparse
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

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import vgg16

import atomic
import profiles
import synthetic_endo
import train_segmentation
import transfer_vgg
from augment import augment_batch
from datasets import EndoSegDataset, InMemoryLoader, is_synthetic, list_samples
from engine import Runtime, adam, cpu_name, setup_runtime
from losses import soft_dice_loss
from unet import UNet

ROOT = Path(__file__).resolve().parent
REAL_ENDO = ROOT.parent / "shared" / "data" / "endo-real"
REAL_FASHION = ROOT.parent / "shared" / "data"


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
    """Seconds per step over ``steps`` timed steps after ``warmup`` untimed ones."""
    iterator = iter(batches)
    for _ in range(warmup):
        step(next(iterator))
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    sync()
    return (time.perf_counter() - t0) / steps


def endless(loader_factory):
    while True:
        yield from loader_factory()


def our_training_step(num_classes: int, runtime: Runtime, compiled: bool):
    """One training step the way train_segmentation runs it (augmentation on tensors, channels_last,
    autocast, fused Adam); ``compiled`` wraps the U-Net in torch.compile (nn.Module.compile)."""
    torch.manual_seed(0)
    model = UNet(3, num_classes).to(runtime.device, memory_format=torch.channels_last)
    if compiled:
        model.compile()
    optimizer = adam(model.parameters(), 1e-3)

    def step(b):
        images, masks = runtime.to_device(b)
        images, masks = augment_batch(images.float() / 255, masks.long())
        with runtime.autocast():
            loss = soft_dice_loss(model(images.contiguous(memory_format=torch.channels_last)), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def bench_segmentation_training(data: Path, runtime: Runtime, batch: int, warmup: int, steps: int,
                                compiled: bool) -> dict:
    train = EndoSegDataset(data, "train")
    loader = InMemoryLoader(train, batch, shuffle=True, pin_memory=runtime.device.type == "cuda")
    ours_s = time_steps(our_training_step(train.num_classes, runtime, False), endless(lambda: loader), warmup, steps)
    result = {}
    if compiled:
        t0 = time.perf_counter()
        step = our_training_step(train.num_classes, runtime, True)
        step(next(iter(loader)))  # compiles
        result["seg_compile_seconds"] = time.perf_counter() - t0
        compiled_s = time_steps(step, endless(lambda: loader), warmup, steps)
        result.update(seg_compiled_train_images_per_s=batch / compiled_s, seg_compile_speedup=ours_s / compiled_s)

    torch.manual_seed(0)
    base_model = UNet(3, train.num_classes).to(runtime.device)
    base_opt = torch.optim.Adam(base_model.parameters(), lr=1e-3)
    starter = torch.utils.data.DataLoader(StarterDataset(Path(data) / "segmentation" / "train", train.grey_levels),
                                          batch_size=batch, shuffle=True)

    def baseline(b):
        images, one_hot = (t.to(runtime.device) for t in b)
        loss = starter_dice_loss(torch.sigmoid(base_model(images)), one_hot)
        base_opt.zero_grad()
        loss.backward()
        base_opt.step()

    base_s = time_steps(baseline, endless(lambda: starter), warmup, steps)
    image = train.images[:1].float().to(runtime.device) / 255
    flops = count_training_flops(UNet(3, train.num_classes).to(runtime.device), image, train.masks[:1].long().to(runtime.device))
    return {"seg_train_images_per_s": batch / ours_s, "seg_baseline_train_images_per_s": batch / base_s,
            "seg_speedup_vs_baseline": base_s / ours_s, "seg_flops_per_image": flops,
            "seg_frame_size": list(train.images.shape[-2:]), "seg_batch_size": batch, **result}


def count_training_flops(model: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor) -> float:
    """FLOPs of forward + backward of one image (FlopCounterMode counts matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        soft_dice_loss(model(image), mask).backward()
    return float(counter.get_total_flops())


def matmul_peak(runtime: Runtime, repeats: int = 20) -> float:
    """FLOP/s of large square matrix products in the training precision: the roofline's compute ceiling.
    A GPU needs 8192-square products to reach its peak (2048 ones finish in microseconds, launch-bound)."""
    n = 8192 if runtime.device.type == "cuda" else 2048
    dtype = runtime.amp_dtype or torch.float32
    a = torch.randn(n, n, device=runtime.device, dtype=dtype)
    b = torch.randn(n, n, device=runtime.device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0)


def bench_inference(data: Path, runtime: Runtime, batch: int, warmup: int, steps: int) -> float:
    test = EndoSegDataset(data, "test")
    model = UNet(3, test.num_classes).to(runtime.device, memory_format=torch.channels_last).eval()
    loader = InMemoryLoader(test, batch, shuffle=False)

    @torch.no_grad()
    def step(b):
        with runtime.autocast():
            model((b[0].to(runtime.device).float() / 255).contiguous(memory_format=torch.channels_last)).argmax(1)

    return batch / time_steps(step, endless(lambda: loader), warmup, steps)


def bench_dataset_reload(data: Path) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("HW6_CACHE_DIR")
        os.environ["HW6_CACHE_DIR"] = cache
        try:
            t0 = time.perf_counter()
            EndoSegDataset(data, "train")
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            EndoSegDataset(data, "train")
            again = time.perf_counter() - t0
        finally:
            if previous is None:
                os.environ.pop("HW6_CACHE_DIR")
            else:
                os.environ["HW6_CACHE_DIR"] = previous
    return {"dataset_first_load_s": first, "dataset_cached_reload_s": again, "dataset_cached_reload_speedup": first / again}


def bench_vgg_cache(fashion: Path, device: str, limit: int, test_limit: int, image_size: int) -> dict:
    """2(b) for 10 epochs on the same images, with the feature cache and with --no-cache."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "vgg16-random.pth"
        torch.manual_seed(0)
        torch.save(vgg16().state_dict(), weights)  # same cost as ImageNet weights; accuracy is not the point
        times = {}
        for cache in (True, False):
            t0 = time.perf_counter()
            transfer_vgg.run("frozen", fashion, Path(tmp) / str(cache), epochs=10, limit=limit, test_limit=test_limit,
                             image_size=image_size, weights=weights, cache=cache, device=device, progress=False)
            times[cache] = time.perf_counter() - t0
    return {"vgg_frozen_cached_s": times[True], "vgg_frozen_uncached_s": times[False],
            "vgg_frozen_cache_speedup": times[False] / times[True], "vgg_images": [limit, test_limit],
            "vgg_image_size": image_size}


def precision_check(device: str, workdir: Path, seeds: list[int]) -> dict:
    """Strict mean instrument Dice of the quick 1(a) experiment (synthetic default) in fp32 and bf16, each seed
    trained once per precision. One seed mixes the precision's effect with run-to-run chaos (rounding changes
    the trajectory from the first step), so the difference is taken between means over ``seeds``."""
    quick = profiles.get("quick")
    data = synthetic_endo.generate(workdir / "synthetic-quick", **quick["synthetic"])
    dice: dict[str, list[float]] = {"fp32": [], "bf16": []}
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for seed in seeds:
        for precision in dice:
            m = train_segmentation.train(data, workdir / f"{precision}-{seed}", device=device, precision=precision,
                                         seed=seed, progress=False, **quick["seg"])
            dice[precision].append(m["test"]["mean_instrument_dice"])
            seconds[precision].append(m["fit"]["train_seconds"])
    mean = {p: sum(v) / len(v) for p, v in dice.items()}
    return {"precision_seeds": seeds, "dice_fp32": mean["fp32"], "dice_bf16": mean["bf16"],
            "dice_bf16_minus_fp32": mean["bf16"] - mean["fp32"],
            "dice_fp32_per_seed": dice["fp32"], "dice_bf16_per_seed": dice["bf16"],
            "quick_1a_train_seconds_fp32": sum(seconds["fp32"]) / len(seeds),
            "quick_1a_train_seconds_bf16": sum(seconds["bf16"]) / len(seeds)}


def run(quick: bool, device: str, data: Path | None, fashion: Path | None, precision_seeds: list[int],
        compiled: bool = False, save: Callable[[dict], None] = lambda result: None) -> dict:
    """Every figure, in one process. ``save`` gets the figures so far after each part (``complete`` False
    until the last), so a run stopped early keeps what it measured."""
    t_start = time.perf_counter()
    runtime = setup_runtime(device)
    workdir = Path(tempfile.mkdtemp(prefix="hw6-bench-"))
    try:
        if data is None:
            data = synthetic_endo.generate(workdir / "synthetic", n_train=60, n_val=10, n_test=20, n_color_train=1,
                                           n_color_val=1)
        steps, warmup = (12, 2) if quick else (30, 5)  # 6 timed steps left the baseline ratio +-10% between runs
        result = {"machine": cpu_name() if runtime.device.type == "cpu" else torch.cuda.get_device_name(),
                  "device": runtime.describe(), "cores": os.cpu_count(), "torch": torch.__version__,
                  "python": platform.python_version(), "precision": runtime.precision,
                  "seg_data": f"{data} ({'synthetic' if is_synthetic(data) else 'real'})",
                  "command": "python " + " ".join(sys.argv), "complete": False}

        def measured(figures: dict) -> None:
            result.update(figures)
            result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if torch.cuda.is_available():
                result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
            result["bench_wall_s"] = time.perf_counter() - t_start
            save(result)

        measured(bench_segmentation_training(data, runtime, 10, warmup, steps, compiled))
        peak = matmul_peak(runtime)
        achieved = result["seg_flops_per_image"] * result["seg_train_images_per_s"]
        measured({"matmul_peak_flops": peak, "seg_achieved_flops": achieved, "seg_roofline_fraction": achieved / peak})
        measured({"seg_infer_images_per_s": bench_inference(data, runtime, 10, warmup, steps * 2)})
        measured(bench_dataset_reload(data))
        if fashion is not None:
            limit, test_limit = (2000, 500) if quick else (10000, 2000)
            measured(bench_vgg_cache(fashion, device, limit, test_limit, 32))
        if precision_seeds:
            measured(precision_check(device, workdir, precision_seeds))
        measured({"complete": True})
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------- BENCHMARKS.md
ROWS = [
    ("seg_train_images_per_s", "segmentation training, ours (images/s, 256x320, batch 10)", "{:.2f}"),
    ("seg_baseline_train_images_per_s", "segmentation training, starter-code baseline (images/s)", "{:.2f}"),
    ("seg_speedup_vs_baseline", "speed-up over the baseline (target >= 3)", "{:.2f}x"),
    ("seg_flops_per_image", "training FLOP per image (FlopCounterMode)", "{:.3g}"),
    ("matmul_peak_flops", "matmul peak in the training precision (FLOP/s)", "{:.3g}"),
    ("seg_achieved_flops", "achieved training FLOP/s", "{:.3g}"),
    ("seg_roofline_fraction", "roofline fraction (target >= 0.6)", "{:.3f}"),
    ("seg_compiled_train_images_per_s", "segmentation training, torch.compile (images/s)", "{:.2f}"),
    ("seg_compile_speedup", "torch.compile speed-up over eager (training runs eager)", "{:.2f}x"),
    ("seg_compile_seconds", "torch.compile: first step, compilation included (s)", "{:.0f}"),
    ("seg_infer_images_per_s", "prediction (images/s, 256x320)", "{:.2f}"),
    ("vgg_frozen_cached_s", "2(b) 10 epochs with the feature cache (s)", "{:.1f}"),
    ("vgg_frozen_uncached_s", "2(b) 10 epochs with --no-cache (s)", "{:.1f}"),
    ("vgg_frozen_cache_speedup", "feature-cache speed-up (target >= 8)", "{:.1f}x"),
    ("dataset_first_load_s", "dataset first construction, decoding (s)", "{:.3f}"),
    ("dataset_cached_reload_s", "dataset reload from the cache (s)", "{:.3f}"),
    ("dataset_cached_reload_speedup", "cached reload speed-up (target >= 5)", "{:.1f}x"),
    ("precision_seeds", "seeds of the fp32/bf16 comparison (synthetic quick 1(a))", "{}"),
    ("dice_fp32_per_seed", "quick 1(a) strict mean instrument Dice per seed, fp32", "{:.3f}"),
    ("dice_bf16_per_seed", "quick 1(a) strict mean instrument Dice per seed, bf16", "{:.3f}"),
    ("dice_fp32", "quick 1(a) strict mean instrument Dice, fp32 (mean over seeds)", "{:.3f}"),
    ("dice_bf16", "quick 1(a) strict mean instrument Dice, bf16 (mean over seeds)", "{:.3f}"),
    ("dice_bf16_minus_fp32", "bf16 - fp32 (target within 0.02)", "{:+.3f}"),
    ("quick_1a_train_seconds_fp32", "quick 1(a) training time, fp32 (s, mean)", "{:.0f}"),
    ("quick_1a_train_seconds_bf16", "quick 1(a) training time, bf16 (s, mean)", "{:.0f}"),
    ("peak_rss_mib", "peak RSS (MiB)", "{:.0f}"),
    ("cuda_max_memory_allocated_mib", "torch.cuda.max_memory_allocated (MiB)", "{:.0f}"),
    ("bench_wall_s", "whole benchmark wall time (s)", "{:.0f}"),
]


FOOTER = """## Not measured yet

- **GPU.** A machine without a table above was not measured: so far no GPU was lent to a session, so there is no
  GPU table, no `full`-profile notebook wall time and no GPU `seg_train_images_per_s` yet. On a GPU:
  `python bench.py --json docs/bench-gpu.json`, then render again (Makefile target `bench`).

## How the ratios are made

Rates on a shared 2-core CPU move by several percent from one run to the next, so a figure near its target
(the roofline fraction, the speed-up) can land on either side of it in another run; quick mode times 12
training steps per side to keep that spread down. `torch.compile` is measured (`--compile`), not used: on
this CPU it does not speed training up (its row above), so training runs eager; a GPU has not measured it yet.

`seg_speedup_vs_baseline` times the same U-Net trained two ways in one process: ours (uint8 frames decoded
once and held in memory, batched by index, flips and colour jitter on tensors, `F.one_hot` inside the Dice
loss, channels_last, bf16 autocast, fused Adam) and the starter code's (PIL decode of both files on every
access, a one-hot built with Python loops over `np.unique`, sigmoid output, fp32, default memory format,
plain Adam). `seg_roofline_fraction` divides the achieved training FLOP/s (FlopCounterMode's count of one
forward + backward, times images/s) by the matrix-multiply peak measured in the same run and precision.
"""


def long_run_row(path: Path) -> list[str]:
    """A row of the long-runs table from a run's own output: transfer_vgg's metrics.json or ablation.py's seeds.json."""
    m = json.loads(path.read_text())
    if "seeds" in m:
        o, score = m["options"], m["test_mean_instrument_dice"]
        size = "x".join(map(str, o["image_size"]))
        return [f"segmentation `--recipe best`, {size}, {o['epochs']} epochs, seeds {m['seeds']}", m["data_root"],
                f"test strict mean instrument Dice {score['mean']:.3f} (min {score['min']:.3f}, max {score['max']:.3f})",
                " / ".join(f"{t / 60:.0f}" for t in m["train_seconds_per_seed"]) + " min per seed", m["device"],
                f"`python ablation.py --data DATA --out {path.parent} --image-size {size} --epochs {o['epochs']} "
                f"--confirm-seeds {' '.join(map(str, m['seeds']))}`"]
    schedule = f" --scheduler {m['scheduler']}" if m.get("scheduler", "none") != "none" else ""
    return [f"VGG16 `{m['mode']}`, {m['train_images']:,} train / {m['test_images']:,} test images at "
            f"{m['image_size']}x{m['image_size']}, {m['epochs']} epochs", m["data_root"],
            f"final test accuracy {m['final_test_accuracy']:.4f}" + ("" if m["complete"] else " (INCOMPLETE)"),
            f"{m['train_seconds'] / 60:.0f} min training (epochs {_epoch_range(path.with_name('history.json'))} s)",
            m["device"],
            f"`python transfer_vgg.py --mode {m['mode']} --data DATA --out {path.parent} --epochs {m['epochs']} "
            f"--batch-size {m['batch_size']} --lr {m['lr']:g}{schedule}`"]


def _epoch_range(history: Path) -> str:
    seconds = [row["seconds"] for row in json.loads(history.read_text())]
    return f"{min(seconds):.0f}-{max(seconds):.0f}"


def _format(fmt: str, value) -> str:
    return ", ".join(fmt.format(v) for v in value) if isinstance(value, list) else fmt.format(value)


def render(results: list[dict], runs: list[Path] = ()) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python bench.py --render ...` from the JSON that `bench.py --json` wrote; do not edit by hand.",
             "Every ratio is measured in one process, on the same data and model, side by side.", ""]
    for r in results:
        partial = "" if r.get("complete", True) else " (PARTIAL: the run stopped before its last part)"
        lines += [f"## {r['machine']}{partial}", "",
                  f"Device {r['device']}; {r['cores']} cores; torch {r['torch']}; Python {r['python']}; "
                  f"segmentation data: {r['seg_data']}.", "", f"Command: `{r['command']}`", "",
                  "| figure | value |", "|---|---|"]
        lines += [f"| {label} | {_format(fmt, r[key])} |" for key, label, fmt in ROWS if key in r]
        lines += [""]
    if runs:
        lines += ["## Long training runs", "", "Read from each run's own output file; DATA is the data root named.", "",
                  "| run | data | result | time | device | command |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(long_run_row(p)) + " |" for p in runs] + [""]
    return "\n".join(lines) + "\n" + FOOTER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps, for a 2-core CPU (under 10 minutes)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, help="segmentation data root (default: ../shared/data/endo-real "
                                                  "if present, else a small synthetic set)")
    parser.add_argument("--fashion", type=Path, help="Fashion-MNIST root (default: ../shared/data if present)")
    parser.add_argument("--precision-seeds", type=int, nargs="*", default=[0], metavar="SEED",
                        help="seeds of the fp32-vs-bf16 Dice runs, about 4.5 minutes each on a 2-core CPU "
                             "(default 0; none: skip)")
    parser.add_argument("--compile", action="store_true", help="also time training under torch.compile "
                                                               "(compilation takes about a minute on a 2-core CPU)")
    parser.add_argument("--render", type=Path, nargs="+", help="JSON files to turn into BENCHMARKS.md")
    parser.add_argument("--runs", type=Path, nargs="*", default=[],
                        help="with --render: long runs' metrics.json (transfer_vgg) or seeds.json (ablation.py)")
    parser.add_argument("--out", type=Path, help="with --render: the Markdown file")
    args = parser.parse_args()
    if args.render:
        text = render([json.loads(p.read_text()) for p in args.render], args.runs)
        atomic.write_text(text, args.out) if args.out else print(text)
        return
    data = args.data or (REAL_ENDO if (REAL_ENDO / "segmentation").is_dir() else None)
    fashion = args.fashion or (REAL_FASHION if (REAL_FASHION / "FashionMNIST" / "raw").is_dir() else None)
    save = (lambda result: atomic.write_json(result, args.json)) if args.json else (lambda result: None)
    result = run(args.quick, args.device, data, fashion, args.precision_seeds, args.compile, save)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
