"""Experiments 2(a)-2(c): torchvision's VGG16 on Fashion-MNIST, from scratch and by transfer from ImageNet.

    python transfer_vgg.py --mode scratch     --data ROOT --out runs/vgg-scratch   # 2(a) every layer trained
    python transfer_vgg.py --mode frozen      --data ROOT --out runs/vgg-frozen    # 2(b) new last layer only
    python transfer_vgg.py --mode finetune-fc --data ROOT --out runs/vgg-fc        # 2(c) all FC layers, lower LR
    python transfer_vgg.py --mode finetune-all --data ROOT --out runs/vgg-all      # whole network, small LR

ROOT holds FashionMNIST/raw/ (torchvision's layout; downloaded when missing and the network allows).
ImageNet weights come from torchvision (VGG16_Weights.IMAGENET1K_V1, cached in $TORCH_HOME) or from a
local state dict given with --weights. Frozen layers are computed once: see ``FeatureCache``.
Writes OUT/history.json|csv, curves.png, metrics.json, confusion.png and last.pt (for --resume).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.datasets import FashionMNIST
from torchvision.models import VGG16_Weights, vgg16

import atomic
import cli
import figures
from datasets import DataError, InMemoryLoader
from engine import (SCHEDULERS, FitConfig, Runtime, adam, all_reduce_sum, fit, lr_scheduler, prepare_run,
                    seed_everything, setup_runtime, unwrap)

MODES = ("scratch", "frozen", "finetune-fc", "finetune-all")
CLASS_NAMES = FashionMNIST.classes
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics
IMAGENET_SHA256_PREFIX = "397923af"  # torchvision's vgg16-397923af.pth
# Per mode: epochs, batch size, Adam learning rate, image side (pixels). Pre-trained modes see 64x64:
# ImageNet features need some resolution, and 224x224 costs 12x more than a 2-core CPU can spend.
MODE_DEFAULTS = {
    "scratch": dict(epochs=10, batch_size=128, lr=1e-4, image_size=32),
    "frozen": dict(epochs=10, batch_size=256, lr=1e-3, image_size=64),
    "finetune-fc": dict(epochs=10, batch_size=256, lr=1e-4, image_size=64),
    "finetune-all": dict(epochs=5, batch_size=64, lr=1e-5, image_size=64),
}
MIN_IMAGE_SIZE = 32  # VGG16 halves the image five times
IDX_FILES = {"train-images-idx3-ubyte": 2051, "train-labels-idx1-ubyte": 2049,
             "t10k-images-idx3-ubyte": 2051, "t10k-labels-idx1-ubyte": 2049}


class WeightsUnavailable(DataError):
    """ImageNet weights could be neither found nor downloaded."""


# ------------------------------------------------------------------------------------------------- data
class TensorPair:
    """The minimal dataset InMemoryLoader batches: ``tensors`` = (inputs, labels), first dimension N."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.tensors = (inputs, labels)

    def __len__(self) -> int:
        return len(self.tensors[0])


def check_idx(path: Path, magic: int) -> None:
    """One-line error for a Fashion-MNIST IDX file with a wrong magic number or a body of the wrong length."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if len(data) < 8 or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file of the expected kind (magic number should be {magic})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(torch.tensor(dims).prod())
    if len(data) != expected:
        raise DataError(f"{path}: IDX body is {len(data)} bytes, header {dims} says {expected}: truncated or damaged")


def load_fashion_mnist(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N x 28 x 28 uint8, labels N long) through torchvision, downloading only when missing."""
    root = Path(root)
    raw = root / "FashionMNIST" / "raw"
    for name, magic in IDX_FILES.items():
        check_idx(raw / name, magic)
    try:
        ds = FashionMNIST(str(root), train=train, download=False)
    except RuntimeError:
        try:
            ds = FashionMNIST(str(root), train=train, download=True)
        except Exception:
            raise DataError(f"{raw}: Fashion-MNIST not found and could not be downloaded; put "
                            f"{', '.join(IDX_FILES)} (or their .gz) there, or allow the network") from None
    return ds.data, ds.targets


def preprocess(images: torch.Tensor, size: int, imagenet: bool) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 3 x size x size: grey repeated on three channels, bilinear resize,
    ImageNet mean/std normalisation (pre-trained modes) or Fashion-MNIST's (scratch)."""
    x = images[:, None].float() / 255
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.expand(-1, 3, -1, -1)
    if imagenet:
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std
    return (x - FASHION_MEAN) / FASHION_STD


def random_shift_flip(x: torch.Tensor, max_shift: float = 0.1) -> torch.Tensor:
    """Per-image random horizontal flip and shift of up to ``max_shift`` of the side, in one grid_sample."""
    n = len(x)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0)
    theta[:, 1, 1] = 1
    theta[:, :, 2] = (torch.rand(n, 2, device=x.device) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


# ---------------------------------------------------------------------------------------------- weights
def load_vgg16(pretrained: bool, weights: Path | None) -> tuple[nn.Module, dict]:
    """VGG16 with a fresh 10-class last layer; ImageNet weights from ``weights`` (a local state dict) or
    torchvision's cache/download when ``pretrained``. Returns the model and a description of the weights."""
    if not pretrained:
        return vgg16(weights=None, num_classes=10), {"weights": "random init"}
    if weights is not None:
        if not Path(weights).is_file():
            raise WeightsUnavailable(f"{weights}: weights file not found")
        sha256 = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:
            raise WeightsUnavailable(f"{weights}: not a readable state dict") from None
        source = str(weights)
    else:
        try:
            state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
        except Exception as exc:
            raise WeightsUnavailable(
                f"ImageNet VGG16 weights unavailable (not in $TORCH_HOME and download failed: {type(exc).__name__}); "
                f"fetch {VGG16_Weights.IMAGENET1K_V1.url} where a network is, then pass --weights PATH or "
                f"put it in $TORCH_HOME/hub/checkpoints/") from None
        sha256, source = None, "torchvision VGG16_Weights.IMAGENET1K_V1"
    model = vgg16(weights=None)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise WeightsUnavailable(f"{source}: not a VGG16 state dict") from None
    model.classifier[6] = nn.Linear(4096, 10)
    info = {"weights": source, "sha256": sha256,
            "imagenet_official": sha256 is None or sha256.startswith(IMAGENET_SHA256_PREFIX)}
    if sha256 is not None:
        print(f"weights {weights}: SHA-256 {sha256[:12]}... "
              f"{'matches' if info['imagenet_official'] else 'does NOT match'} torchvision's {IMAGENET_SHA256_PREFIX}")
    return model, info


# ------------------------------------------------------------------------------------------ frozen layers
class FrozenThenTrainable(nn.Module):
    """``trainable(frozen(x))`` where ``frozen`` stays in eval mode (no dropout, fixed BatchNorm) even
    while the module trains: the layers that are not learnt behave exactly as they do at test time."""

    def __init__(self, frozen: nn.Module, trainable: nn.Module) -> None:
        super().__init__()
        self.frozen, self.trainable = frozen.eval().requires_grad_(False), trainable

    def train(self, mode: bool = True) -> "FrozenThenTrainable":
        super().train(mode)
        self.frozen.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.frozen(x)
        return self.trainable(features)


def split_vgg(model: nn.Module, mode: str) -> tuple[nn.Module, nn.Module]:
    """(frozen part, trainable part) of an ImageNet VGG16 for ``frozen`` or ``finetune-fc``.

    frozen: features, avgpool, flatten and the classifier up to its 4096-d penultimate output (the two
    hidden FC layers with their ReLU and Dropout) are frozen; only the new last Linear(4096, 10) learns.
    finetune-fc: the convolutional ``features`` are frozen; avgpool (no weights, cheap, and it would
    replicate a small map 7x7 times) and all three classifier layers learn.
    """
    if mode == "frozen":
        frozen = nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *model.classifier[:6])
        return frozen, model.classifier[6]
    return model.features, nn.Sequential(model.avgpool, nn.Flatten(1), model.classifier)


@torch.no_grad()
def compute_features(frozen: nn.Module, images: torch.Tensor, size: int, runtime: Runtime,
                     batch_size: int = 256) -> torch.Tensor:
    """``frozen`` applied once to every image (eval mode, no_grad, batched); float32 on the CPU."""
    frozen.eval()
    out = []
    for batch in images.split(batch_size):
        with runtime.autocast():
            out.append(frozen(preprocess(batch.to(runtime.device), size, True)).float().cpu())
    return torch.cat(out)


class FeatureCache:
    """Frozen-layer outputs for a whole split, computed once, so each epoch only runs the trainable layers.

    This is the standard linear-probe protocol: frozen layers are a fixed function, evaluated in eval mode
    (dropout off, as at test time), so their output for an image never changes and computing it every
    epoch is wasted work. It differs from running the frozen network in train mode each epoch: there its
    Dropout layers (inside VGG16's classifier, before the new last layer) would randomly zero features in
    every batch, a noisy input for the head that the frozen weights cannot adapt to, and its outputs
    would differ from those the model sees at test time. ``--no-cache`` runs the same frozen layers in
    eval mode on every batch instead: same numbers, many times slower.
    """

    def __init__(self, frozen: nn.Module, images: torch.Tensor, labels: torch.Tensor, size: int, runtime: Runtime):
        self.tensors = (compute_features(frozen, images, size, runtime), labels)

    def __len__(self) -> int:
        return len(self.tensors[1])


# ---------------------------------------------------------------------------------------------- training
@torch.no_grad()
def evaluate_classifier(model: nn.Module, dataset, prepare, runtime: Runtime, batch_size: int) -> dict:
    """Test loss, accuracy, per-class accuracy and the 10 x 10 confusion matrix (rows true)."""
    model = unwrap(model)
    confusion = torch.zeros(10, 10, dtype=torch.float64)
    loss_sum = torch.zeros((), dtype=torch.float64)
    loader = InMemoryLoader(dataset, batch_size, shuffle=False, rank=runtime.rank, world_size=runtime.world_size)
    for inputs, labels in loader:
        inputs, labels = runtime.to_device((inputs, labels))
        with runtime.autocast():
            logits = model(prepare(inputs)).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double().cpu()
        confusion += torch.bincount(labels * 10 + logits.argmax(1), minlength=100).view(10, 10).double().cpu()
    all_reduce_sum([confusion, loss_sum])
    per_class = confusion.diagonal() / confusion.sum(dim=1)
    return {"test_loss": float(loss_sum / confusion.sum()), "test_accuracy": float(confusion.diagonal().sum() / confusion.sum()),
            "per_class_accuracy": per_class.tolist(), "confusion": confusion.long().tolist()}


def run(mode: str, data: str | Path, out: str | Path, epochs: int | None = None, batch_size: int | None = None,
        lr: float | None = None, image_size: int | None = None, limit: int | None = None,
        test_limit: int | None = None, weights: Path | None = None, cache: bool = True, seed: int = 0,
        device: str = "auto", precision: str = "auto", workers: int = 0, resume: str | None = None,
        progress: bool = True, scheduler: str = "none", overwrite: bool = False) -> dict:
    """Trains VGG16 on Fashion-MNIST in ``mode``; returns the metrics.json content (None values take
    MODE_DEFAULTS[mode]). ``limit``/``test_limit`` take the first N training/test images; ``scheduler``
    "cosine" anneals the learning rate to 0 over ``epochs`` (stepped once per epoch)."""
    if scheduler not in SCHEDULERS:
        raise cli.UsageError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if mode not in MODES:
        raise cli.UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    d = MODE_DEFAULTS[mode]
    epochs, batch_size, lr = epochs or d["epochs"], batch_size or d["batch_size"], lr or d["lr"]
    size = image_size or d["image_size"]
    if size < MIN_IMAGE_SIZE:
        raise cli.UsageError(f"--image-size {size}: VGG16's five poolings need at least {MIN_IMAGE_SIZE} pixels")
    out = Path(out)
    t0 = time.perf_counter()
    shaping = dict(mode=mode, data=str(Path(data).resolve()), epochs=epochs, batch_size=batch_size, lr=lr,
                   image_size=size, limit=limit, test_limit=test_limit, weights=str(weights), cache=cache, seed=seed,
                   precision=precision, scheduler=scheduler)
    resume_from = prepare_run(out, resume, overwrite, f"vgg16-{mode}", shaping)
    runtime = setup_runtime(device, precision, workers)
    seed_everything(seed)
    train_x, train_y = (t[:limit] for t in load_fashion_mnist(data, train=True))
    test_x, test_y = (t[:test_limit] for t in load_fashion_mnist(data, train=False))
    model, weights_info = load_vgg16(mode != "scratch", weights)
    imagenet = mode != "scratch"
    cached = mode in ("frozen", "finetune-fc") and cache
    if mode in ("frozen", "finetune-fc"):
        frozen, trainable = split_vgg(model, mode)
        frozen.to(runtime.device, memory_format=torch.channels_last)
        if cached:
            t_cache = time.perf_counter()
            train_set = FeatureCache(frozen, train_x, train_y, size, runtime)
            test_set = FeatureCache(frozen, test_x, test_y, size, runtime)
            weights_info["feature_cache_seconds"] = round(time.perf_counter() - t_cache, 2)
            model, prepare = trainable, (lambda x: x)
        else:
            model = FrozenThenTrainable(frozen, trainable)
            train_set, test_set = TensorPair(train_x, train_y), TensorPair(test_x, test_y)
            prepare = (lambda x: preprocess(x, size, True).contiguous(memory_format=torch.channels_last))
    else:
        train_set, test_set = TensorPair(train_x, train_y), TensorPair(test_x, test_y)
        prepare = (lambda x: preprocess(x, size, imagenet).contiguous(memory_format=torch.channels_last))
    model = model.to(runtime.device, memory_format=torch.channels_last)
    trainable_params = [p for p in model.parameters() if p.requires_grad]
    if runtime.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = adam(trainable_params, lr)
    lr_schedule = lr_scheduler(optimizer, scheduler, epochs)
    loader = InMemoryLoader(train_set, batch_size, shuffle=True, seed=seed, rank=runtime.rank,
                            world_size=runtime.world_size, pin_memory=runtime.device.type == "cuda")

    def train_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = prepare(batch[0])
        if mode == "scratch":
            x = random_shift_flip(x)
        return F.cross_entropy(model(x).float(), batch[1])

    def evaluate(model: nn.Module) -> dict:
        return evaluate_classifier(model, test_set, prepare, runtime, max(batch_size, 256))

    meta = {"kind": f"vgg16-{mode}", "image_size": size, "cached_features": cached, "options": shaping}
    config = FitConfig(out=out, epochs=epochs, patience=None, monitor="test_accuracy", maximize=True,
                       resume=resume_from, progress=progress, restore_best=False)
    result = fit(model, optimizer, loader, train_loss, evaluate, config, runtime, meta, lr_schedule)
    final = result.evaluation or evaluate_classifier(model, test_set, prepare, runtime, max(batch_size, 256))
    metrics = {
        "experiment": f"vgg16-{mode}", "mode": mode, "data_root": str(Path(data).resolve()),
        "device": runtime.describe(), "image_size": size, "train_images": len(train_y), "test_images": len(test_y),
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "scheduler": scheduler,
        "seed": seed, "cached_features": cached,
        "trainable_parameters": sum(p.numel() for p in trainable_params), **weights_info,
        "final_test_accuracy": final["test_accuracy"],
        "best_epoch_test_accuracy": max(r["test_accuracy"] for r in result.history) if result.history else None,
        "per_class_accuracy": dict(zip(CLASS_NAMES, final["per_class_accuracy"])), "confusion": final["confusion"],
        "complete": result.complete, "stop_reason": result.stop_reason,
        "train_seconds": round(sum(r["seconds"] for r in result.history), 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if runtime.is_main:
        figures.curves({"": result.history}, ["train_loss", "test_loss"], "cross-entropy",
                       f"VGG16 {mode} on Fashion-MNIST ({len(train_y)} training images)", out / "curves.png",
                       right=("test_accuracy", "test accuracy"))
        figures.confusion(final["confusion"], CLASS_NAMES, out / "confusion.png", f"VGG16 {mode}: test confusion")
        atomic.write_json(metrics, out / "metrics.json")
    return metrics


def main(argv: list[str] | None = None) -> None:
    defaults = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for m, d in MODE_DEFAULTS.items())
    parser = cli.ArgumentParser(__doc__ + f"\nDefaults per mode: {defaults}.")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder holding FashionMNIST/raw/")
    cli.add_common_flags(parser, None, None, None)
    parser.add_argument("--image-size", type=cli.positive_int, help="side in pixels (default per mode, above)")
    parser.add_argument("--test-limit", type=cli.positive_int, help="evaluate on the first N test images only")
    parser.add_argument("--weights", type=Path, help="local ImageNet VGG16 state dict (vgg16-397923af.pth)")
    parser.add_argument("--no-cache", action="store_true", help="run frozen layers on every batch (no feature cache)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="none", help="learning-rate schedule (default none)")
    args = parser.parse_args(argv)

    def body() -> int:
        m = run(args.mode, args.data, args.out, args.epochs, args.batch_size, args.lr, args.image_size, args.limit,
                args.test_limit, args.weights, not args.no_cache, args.seed, args.device, args.precision,
                args.workers, args.resume, not args.no_progress, args.scheduler, args.overwrite)
        return cli.finish(f"{args.mode}: final test accuracy {m['final_test_accuracy']:.4f}; outputs in {args.out}",
                          m["complete"], m["stop_reason"])

    cli.main(body)


if __name__ == "__main__":
    main()
