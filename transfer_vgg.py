"""Experiments 2(a)-2(c): torchvision's VGG16 on Fashion-MNIST, from scratch and by transfer from ImageNet.

    python transfer_vgg.py --mode scratch     --data ROOT --out runs/2a   # 2(a) every layer trained
    python transfer_vgg.py --mode frozen      --data ROOT --out runs/2b   # 2(b) a new last layer only
    python transfer_vgg.py --mode finetune-fc --data ROOT --out runs/2c   # 2(c) all FC layers, lower LR
ROOT holds FashionMNIST/raw/. ImageNet weights come from torchvision (VGG16_Weights.IMAGENET1K_V1, cached in
$TORCH_HOME) or from a local state dict (--weights). Frozen layers are computed once (``FeatureCache``). The
test split is scored after every epoch, as the assignment asks, and never used to select one: a run ends
with its last weights. Writes OUT/history.json|csv, curves.png, confusion.png, metrics.json and last.pt.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16

from hw6 import experiment
from hw6.augment import random_shift_flip
from hw6.datasets import TensorItems, fashion_fingerprint, load_fashion_mnist
from hw6.engine import Evaluation, FitConfig, Runtime, adam, all_reduce_sum, fit, lr_scheduler, unwrap
from hw6.kit import cli, figures
from hw6.kit.errors import DataError
from hw6.tools import fetch_data

MODES = ("scratch", "frozen", "finetune-fc", "finetune-all")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]  # torchvision's FashionMNIST.classes
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics
MIN_SIDE = 32  # VGG16 halves a side 5 times
# Per mode: epochs, batch size, Adam learning rate, image size. Pre-trained modes see 64x64: ImageNet
# features need some resolution, and 224x224 costs 12x more than a 2-core CPU can spend.
MODE_DEFAULTS = {
    "scratch": dict(epochs=10, batch_size=128, lr=1e-4, image_size=(32, 32)),
    "frozen": dict(epochs=10, batch_size=256, lr=1e-3, image_size=(64, 64)),
    "finetune-fc": dict(epochs=10, batch_size=256, lr=1e-4, image_size=(64, 64)),
    "finetune-all": dict(epochs=5, batch_size=64, lr=1e-5, image_size=(64, 64)),
}
DEFAULTS = dict(experiment.COMMON_DEFAULTS, mode="scratch", **MODE_DEFAULTS["scratch"], test_limit=None, weights=None,
                cache=True)


def preprocess(images: torch.Tensor, size: tuple[int, int], imagenet: bool) -> torch.Tensor:
    """float N x 28 x 28 in [0, 1] -> N x 3 x H x W, channels-last: grey repeated on three channels, bilinear
    resize, then ImageNet mean/std normalisation (pre-trained modes) or Fashion-MNIST's (scratch)."""
    x = F.interpolate(images[:, None], size=size, mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    stats = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else ((FASHION_MEAN,) * 3, (FASHION_STD,) * 3)
    mean, std = (torch.tensor(v, device=x.device).view(1, 3, 1, 1) for v in stats)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def load_vgg16(pretrained: bool, weights: Path | None) -> tuple[nn.Module, dict]:
    """VGG16 with a fresh 10-class last layer; ImageNet weights when ``pretrained``, from ``weights`` (a local
    state dict) or torchvision's file in $TORCH_HOME/hub/checkpoints (downloaded there when absent and a
    network allows). Either file is read with ``weights_only=True`` (tensors only: no code can run), the
    cached one only after its SHA-256 matches the prefix in torchvision's file name. Returns the model and a
    description of the weights: ``imagenet_official`` says whether the file's SHA-256 is torchvision's."""
    if not pretrained:
        return vgg16(weights=None, num_classes=10), {"weights": "random init"}
    path = Path(weights) if weights is not None else fetch_data.vgg16_imagenet_weights()
    if not path.is_file():
        raise DataError(f"{path}: weights file not found")
    sha256 = fetch_data.file_sha256(path)
    official = sha256.startswith(fetch_data.IMAGENET_SHA256_PREFIX)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise DataError(f"{path}: not a readable state dict (only tensors are loaded)") from None
    model = vgg16(weights=None)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise DataError(f"{path.name}: not a VGG16 state dict") from None
    model.classifier[6] = nn.Linear(4096, 10)
    print(f"weights {path.name}: SHA-256 {sha256[:12]}... {'matches' if official else 'does NOT match'} torchvision's "
          f"{fetch_data.IMAGENET_SHA256_PREFIX}")
    return model, {"weights": path.name, "sha256": sha256, "imagenet_official": official}


class FrozenThenTrainable(nn.Module):
    """``trainable(frozen(x))``, ``frozen`` kept in eval mode while the module trains, as at test time."""

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
    """(frozen part, trainable part) of VGG16 in ``mode``. frozen: all but the new last Linear(4096, 10) (the
    features, and the two hidden FC layers with their ReLU and Dropout); finetune-fc: the convolutional
    ``features`` (avgpool, which has no weights, and the three FC layers learn); scratch, finetune-all: none."""
    if mode == "frozen":
        return nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *model.classifier[:6]), model.classifier[6]
    if mode == "finetune-fc":
        return model.features, nn.Sequential(model.avgpool, nn.Flatten(1), model.classifier)
    return nn.Sequential(), model


def layer_counts(mode: str) -> dict:
    """Frozen and trainable parameter counts of ``mode`` (from the architecture: no weights needed)."""
    frozen, trainable = split_vgg(vgg16(weights=None, num_classes=10), mode)
    return {"frozen_parameters": sum(p.numel() for p in frozen.parameters()),
            "trainable_parameters": sum(p.numel() for p in trainable.parameters())}


class FeatureCache(TensorItems):
    """Frozen-layer outputs for a whole split, computed once (eval mode, as at test time), so each epoch only
    runs the trainable layers: the linear-probe protocol. Frozen layers are a fixed function, so recomputing
    them every epoch is wasted work; ``cache=False`` does so (in eval mode): the same numbers, many times slower.
    In train mode they would differ: VGG16's Dropout, before the new last layer, would zero features at random."""

    @torch.no_grad()
    def __init__(self, frozen: nn.Module, images: TensorItems, size: tuple[int, int], runtime: Runtime) -> None:
        frozen.eval()
        features = []
        for index in torch.arange(len(images)).split(256):
            x, _ = images.batch(index)
            with runtime.autocast():
                features.append(frozen(preprocess(x.to(runtime.device), size, True)).float().cpu())
        super().__init__(torch.cat(features), images.labels)


@torch.no_grad()
def evaluate_classifier(model: nn.Module, dataset: TensorItems, prepare, runtime: Runtime, batch_size: int) -> dict:
    """Test loss, accuracy, per-class accuracy and the 10 x 10 confusion matrix (rows true)."""
    model = unwrap(model)
    confusion = torch.zeros(10, 10, dtype=torch.float64)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for inputs, labels in runtime.loader(dataset, batch_size, shuffle=False):
        inputs, labels = runtime.to_device((inputs, labels))
        with runtime.autocast():
            logits = model(prepare(inputs)).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double().cpu()
        confusion += torch.bincount(labels * 10 + logits.argmax(1), minlength=100).view(10, 10).double().cpu()
    all_reduce_sum([confusion, loss_sum])
    return {"loss": float(loss_sum / confusion.sum()), "accuracy": float(confusion.diagonal().sum() / confusion.sum()),
            "per_class_accuracy": (confusion.diagonal() / confusion.sum(dim=1)).tolist(),
            "confusion": confusion.long().tolist()}


def resolve_options(**options) -> dict:
    """DEFAULTS, then MODE_DEFAULTS[mode], then ``options``; checked (one line)."""
    mode = options.get("mode", DEFAULTS["mode"])
    if mode not in MODES:
        raise cli.UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    o = experiment.resolve(DEFAULTS, {**MODE_DEFAULTS[mode], **options})
    if min(o["image_size"]) < MIN_SIDE:
        raise cli.UsageError(f"--image-size {'x'.join(map(str, o['image_size']))}: VGG16 needs {MIN_SIDE} pixels a side")
    return o


def train(data: str | Path, out: str | Path, **options) -> dict:
    """Trains VGG16 on Fashion-MNIST in ``options["mode"]``; returns the metrics.json content.
    ``limit``/``test_limit``: the first N training/test images."""
    o = resolve_options(**options)
    fashion = [load_fashion_mnist(fetch_data.fashion_mnist(data), train=split)  # read before --overwrite clears
               for split in (True, False)]
    weights_path = None if o["mode"] == "scratch" else Path(o["weights"] or fetch_data.vgg16_imagenet_weights())
    run = experiment.start("vgg16", data, out, o)
    size, mode = o["image_size"], o["mode"]
    train_set, test_set = (TensorItems(*(t[:limit] for t in split)) for split, limit in zip(fashion, (o["limit"],
                                                                                                      o["test_limit"])))
    run.check_data(fashion_fingerprint(data))
    model, weights = load_vgg16(mode != "scratch", weights_path)
    frozen, trainable = split_vgg(model, mode)
    cached = mode in ("frozen", "finetune-fc") and o["cache"]
    if cached:
        t0 = time.perf_counter()
        frozen.to(run.runtime.device, memory_format=torch.channels_last)
        train_set, test_set = (FeatureCache(frozen, s, size, run.runtime) for s in (train_set, test_set))
        weights["feature_cache_seconds"] = round(time.perf_counter() - t0, 2)
    model = trainable if cached else FrozenThenTrainable(frozen, trainable) if mode in ("frozen", "finetune-fc") else model

    def prepare(x: torch.Tensor) -> torch.Tensor:  # cached features go to the trainable layers as they are
        return x if cached else preprocess(x, size, mode != "scratch")
    model = run.runtime.place(model)
    optimizer = adam([p for p in model.parameters() if p.requires_grad], o["lr"])
    loader = run.runtime.loader(train_set.to(run.runtime.device), o["batch_size"], shuffle=True, seed=o["seed"])

    def train_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = prepare(batch[0])
        return F.cross_entropy(model(random_shift_flip(x) if mode == "scratch" else x).float(), batch[1])

    def evaluate(model: nn.Module) -> Evaluation:
        test = evaluate_classifier(model, test_set, prepare, run.runtime, max(o["batch_size"], 256))
        return Evaluation({"test_loss": test["loss"], "test_accuracy": test["accuracy"]}, test)

    meta = {"image_size": list(size), "options": run.shaping}
    config = FitConfig("vgg16", run.out, o["epochs"], None, "test_accuracy", maximize=True, resume=run.resume,
                       progress=o["progress"], restore_best=False)
    result = fit(model, optimizer, loader, train_loss, evaluate, config, run.runtime, meta,
                 lr_scheduler(optimizer, o["scheduler"], o["epochs"]))
    test = result.evaluation.details if result.evaluation else None
    if run.writes and test is not None:
        figures.curves({"": result.history}, ["train_loss", "test_loss"], "cross-entropy",
                       f"VGG16 {mode} on Fashion-MNIST ({len(train_set):,} training images)", run.out / "curves.png",
                       right=("test_accuracy", "test accuracy"))
        figures.confusion(test["confusion"], CLASS_NAMES, run.out / "confusion.png", f"VGG16 {mode}: test confusion")
    details = {"mode": mode, "train_images": len(train_set), "test_images": len(test_set), "image_size": list(size),
               "class_names": CLASS_NAMES, **layer_counts(mode), **weights,
               "best_epoch_test_accuracy": max((r["test_accuracy"] for r in result.history), default=None)}
    return run.record(result, None, test, details)


def parser() -> cli.ArgumentParser:
    defaults = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for m, d in MODE_DEFAULTS.items())
    p = cli.ArgumentParser(__doc__ + f"\nDefaults per mode: {defaults}.")
    p.add_argument("--mode", choices=MODES, required=True, help="which of 2(a), 2(b), 2(c) (or the whole network)")
    cli.add_common_flags(p, {k: "per mode" if k in MODE_DEFAULTS["scratch"] else v for k, v in DEFAULTS.items()})
    p.add_argument("--test-limit", type=cli.positive_int, default=cli.NOT_GIVEN,
                   help="score on the first N test images only (default all 10,000)")
    p.add_argument("--weights", type=Path, default=cli.NOT_GIVEN,
                   help="local ImageNet VGG16 state dict (vgg16-397923af.pth; default torchvision's cache)")
    p.add_argument("--no-cache", dest="cache", action="store_false", default=cli.NOT_GIVEN,
                   help="run frozen layers on every batch instead of once (same numbers, slower)")
    return p


def summarize(metrics: dict) -> str:
    test = metrics.get("test")
    return "no test scores: no epoch finished" if test is None else f"final test accuracy {test['accuracy']:.4f}"


def main(argv: list[str] | None = None) -> None:
    data, out, options, seeds = experiment.parse(parser(), argv)
    experiment.run_cli(train, data, out, options, seeds, summarize)


if __name__ == "__main__":
    main(sys.argv[1:])
