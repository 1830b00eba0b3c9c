"""Endoscopic segmentation and colorization data: validation, decode-once cache, in-memory batches.

On-disk layout (the assignment's):

    ROOT/mapping.json
    ROOT/segmentation/{train,validation,test}/<i>/<i>_input.jpg + <i>_mask.png
    ROOT/colorization/{train_cor,validation_cor}/<i>/<i>_gray.jpg + <i>_input.jpg

Every split is validated and decoded once into uint8 tensors kept in memory; the decoded tensors are
cached on disk outside the data root (``$HW6_CACHE_DIR``, default ``~/.cache/hw6``), keyed by every file's
path, size and mtime, so a second construction on unchanged files loads without decoding. Nothing inside
the data root is ever written. Every fault in the data raises ``DataError`` with one line naming the path.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

import atomic

CACHE_FORMAT = 2  # 2: segmentation entries keep the masks at their stored size
SEG_SPLITS = ("train", "validation", "test")
COLOR_SPLITS = {"train": "train_cor", "validation": "validation_cor"}
SYNTHETIC_MARKER = "SYNTHETIC.json"


class DataError(Exception):
    """A fault in the data on disk; the message is one line and names the offending path."""


# ---------------------------------------------------------------------------------------------- mapping.json
def load_mapping(path: Path) -> tuple[list[int], list[str]]:
    """Reads mapping.json; returns (grey levels ascending, class names in the same order).

    Accepts ``{"<grey level>": "<class name>"}`` and ``{"<class name>": <grey level>}``, and the course's
    comma-less variant of the latter (not valid JSON; read with a one-line warning). The class index of a
    grey level is its rank in ascending order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mapping.json is missing")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read mapping.json ({exc.__class__.__name__})") from None
    try:
        if not isinstance(json.loads(text), dict):
            raise DataError(f"{path}: mapping.json must be a JSON object of grey level <-> class name, "
                            f"not a {type(json.loads(text)).__name__}")
        pairs = json.loads(text, object_pairs_hook=list)  # a list of (key, value): duplicates stay visible
    except json.JSONDecodeError:
        pairs = _parse_commaless(text, path)
        _warn_once(f"{path}: not valid JSON (commas missing, as the course ships it); read it anyway")
    if not pairs:
        raise DataError(f"{path}: mapping.json must be a non-empty object of grey level <-> class name")
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise DataError(f"{path}: duplicate key {_first_duplicate(keys)!r} in mapping.json")
    if all(re.fullmatch(r"\d+", k) for k in keys) and all(isinstance(v, str) for _, v in pairs):
        level_to_name = [(int(k), v) for k, v in pairs]
    elif all(isinstance(v, int) and not isinstance(v, bool) for _, v in pairs):
        level_to_name = [(v, k) for k, v in pairs]
    else:
        raise DataError(f"{path}: mapping.json must map integer grey levels to class names (or names to levels)")
    levels = [level for level, _ in level_to_name]
    if any(not 0 <= level <= 255 for level in levels):
        raise DataError(f"{path}: grey levels must lie in 0-255, got {sorted(levels)}")
    if len(set(levels)) != len(levels):
        raise DataError(f"{path}: grey level {_first_duplicate(levels)} appears twice in mapping.json")
    level_to_name.sort()
    return [level for level, _ in level_to_name], [name for _, name in level_to_name]


def _parse_commaless(text: str, path: Path) -> list[tuple[str, object]]:
    """Parses ``{"name": 0 "other": 32}``: a JSON object whose members lack the separating commas."""
    body = re.fullmatch(r"\s*\{(.*)\}\s*", text, flags=re.S)
    member = r'\s*"([^"\\]*)"\s*:\s*(-?\d+|"[^"\\]*")\s*,?'
    if not body or not re.fullmatch(f"(?:{member})*\\s*", body.group(1)):
        raise DataError(f"{path}: mapping.json is malformed (neither JSON nor the course's comma-less form)")
    return [(k, json.loads(v)) for k, v in re.findall(member, body.group(1))]


def _first_duplicate(items: Sequence) -> object:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


# ------------------------------------------------------------------------------------- folders and decoding
def list_samples(split_dir: Path, names: Sequence[str]) -> list[tuple[int, list[Path]]]:
    """Numerically sorted ``(index, [split_dir/<i>/<i><name> for name in names])`` for every index folder.

    Indices may start anywhere and have gaps; stray files (.DS_Store, Icon\\r, notes) are ignored, and so are
    folders whose name is not ASCII decimal digits (one warning lists them: "٣" or "²" are not sample 3 or 2);
    a folder with only some of the files, two folders of one index ("7" and "007"), or an empty split is an
    error.
    """
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder is missing")
    samples, others = [], []
    for entry in split_dir.iterdir():
        if not entry.is_dir():
            continue
        if not (entry.name.isascii() and entry.name.isdigit()):
            others.append(entry.name)
            continue
        files = [entry / f"{entry.name}{name}" for name in names]
        present = [f.is_file() for f in files]
        if not all(present):
            found = [f.name for f, ok in zip(files, present) if ok]
            missing = [f.name for f, ok in zip(files, present) if not ok]
            what = f"has {', '.join(found)} but not" if found else "lacks"
            raise DataError(f"{entry}: sample folder {what} {', '.join(missing)}")
        samples.append((int(entry.name), files))
    if others:
        _warn_once(f"{split_dir}: ignored {len(others)} folder(s) not named by a number: {', '.join(sorted(others)[:5])}")
    if not samples:
        raise DataError(f"{split_dir}: split is empty (no <i>/ sample folders)")
    duplicate = _first_duplicate([index for index, _ in samples])
    if duplicate is not None:
        raise DataError(f"{split_dir}: two sample folders have the index {duplicate} (e.g. 7 and 007)")
    return sorted(samples)


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A warning per message and process: the notebook reads the same data many times."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def open_image(path: Path, mode: str | None) -> np.ndarray:
    """Decodes an image fully (a truncated file fails here). ``mode``: convert to it (None: must already be
    8-bit single-channel 'L', as masks must). Returns H x W or H x W x C uint8."""
    try:
        with Image.open(path) as image:
            image.load()
            if mode is None:
                if image.mode != "L":
                    raise DataError(f"{path}: mask must be 8-bit single-channel (mode L), got mode {image.mode}")
                return np.array(image)
            return np.array(image.convert(mode))
    except Image.DecompressionBombError:
        raise DataError(f"{path}: image is larger than {Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?); "
                        f"refused") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        reason = "unreadable or not an image" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise DataError(f"{path}: cannot decode image ({reason})") from None


def resize_uint8(images: torch.Tensor, size: tuple[int, int] | None, nearest: bool) -> torch.Tensor:
    """Resizes N x C x H x W uint8 to ``size``: bilinear (antialiased) for frames, nearest for label maps."""
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images
    if nearest:
        return F.interpolate(images, size=size, mode="nearest-exact")
    resized = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    return Path(os.environ.get("HW6_CACHE_DIR", Path.home() / ".cache" / "hw6"))


def cache_key(files: Sequence[Path], extra: object) -> str:
    """Hash of every file's absolute path, size and mtime, plus ``extra`` (image size, mapping, format)."""
    digest = hashlib.sha256(repr((CACHE_FORMAT, extra)).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cached(files: Sequence[Path], extra: object, decode: Callable[[], dict]) -> dict:
    """``decode()`` once per unchanged set of files; later calls load its tensors from the on-disk cache."""
    path = cache_dir() / f"{cache_key(files, extra)}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            pass
    tensors = decode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.save_torch(tensors, path)
    except OSError as exc:
        warnings.warn(f"{path}: could not write the decode cache ({exc}); continuing without it", stacklevel=2)
    return tensors


def is_synthetic(root: Path) -> bool:
    """True for a data root written by synthetic_endo.py."""
    return (Path(root) / SYNTHETIC_MARKER).is_file()


def check_root(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data root does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: data root is not a folder")
    return root


# ---------------------------------------------------------------------------------------------- datasets
class EndoSegDataset(torch.utils.data.Dataset):
    """Frames and class-index masks of one segmentation split, decoded once and held as uint8.

    Attributes: ``images`` N x 3 x h x w uint8 and ``masks`` N x h x w uint8 class indices at the training
    size (``image_size``, default as stored); ``native_masks``: the N masks at the size they are stored at, one
    H x W uint8 tensor each (views of ``masks`` when nothing was resized), which every score is computed
    against; ``indices`` the folder numbers, ``class_names`` and ``grey_levels`` (class k has grey level
    grey_levels[k]).
    Items: ``(image 3 x H x W float in [0, 1], mask H x W long)``, passed through ``augment`` if given.
    """

    def __init__(self, root: str | Path, split: str, image_size: tuple[int, int] | None = None,
                 augment: Callable | None = None) -> None:
        if split not in SEG_SPLITS:
            raise ValueError(f"split must be one of {SEG_SPLITS}, got {split!r}")
        self.root, self.split, self.augment = check_root(Path(root)), split, augment
        self.grey_levels, self.class_names = load_mapping(self.root / "mapping.json")
        samples = list_samples(self.root / "segmentation" / split, ("_input.jpg", "_mask.png"))
        self.indices = [index for index, _ in samples]
        files = [f for _, pair in samples for f in pair]
        extra = ("seg", image_size, self.grey_levels)
        data = cached(files, extra, lambda: self._decode([pair for _, pair in samples], image_size))
        self.images, self.masks = data["images"], data["masks"]
        native = data.get("native_masks")
        self.native_masks: list[torch.Tensor] = list(self.masks if native is None else native)

    def _decode(self, pairs: list[list[Path]], image_size: tuple[int, int] | None) -> dict:
        lut = np.full(256, 255, dtype=np.uint8)
        lut[self.grey_levels] = np.arange(len(self.grey_levels), dtype=np.uint8)
        images, masks = [], []
        for frame_path, mask_path in pairs:
            frame, grey = open_image(frame_path, "RGB"), open_image(mask_path, None)
            if frame.shape[:2] != grey.shape:
                raise DataError(f"{mask_path}: mask is {_wh(grey)} but its frame {frame_path.name} is {_wh(frame)}")
            mask = lut[grey]
            if (mask == 255).any():
                unknown = sorted(set(np.unique(grey[mask == 255]).tolist()))
                raise DataError(f"{mask_path}: grey level(s) {unknown} not in mapping.json {self.grey_levels}")
            images.append(resize_uint8(torch.from_numpy(frame).permute(2, 0, 1)[None], image_size, nearest=False)[0])
            masks.append(torch.from_numpy(mask))
        _check_same_size(images, [pair[0] for pair in pairs])
        resized = [resize_uint8(m[None, None], image_size, nearest=True)[0, 0] for m in masks]
        data = {"images": torch.stack(images).contiguous(), "masks": torch.stack(resized).contiguous()}
        if any(r.shape != m.shape for r, m in zip(resized, masks)):
            same = len({m.shape for m in masks}) == 1
            data["native_masks"] = torch.stack(masks).contiguous() if same else masks
        return data

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images, self.masks

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.images[i].float() / 255, self.masks[i].long()
        if self.augment is not None:
            image, mask = self.augment(image[None], mask[None])
            image, mask = image[0], mask[0]
        return image, mask


class ColorizationDataset(torch.utils.data.Dataset):
    """Grey inputs and RGB targets of ``colorization/train_cor`` (split "train") or ``validation_cor``
    (split "validation"): no other folder can be read, so no segmentation frame leaks into pre-training.

    Attributes: ``grey`` N x 1 x H x W uint8, ``rgb`` N x 3 x H x W uint8. Items: float pairs in [0, 1].
    A grey file stored with colour channels is converted to one channel, not refused.
    """

    def __init__(self, root: str | Path, split: str, image_size: tuple[int, int] | None = None) -> None:
        if split not in COLOR_SPLITS:
            raise ValueError(f"split must be one of {tuple(COLOR_SPLITS)}, got {split!r}")
        self.root, self.split = check_root(Path(root)), split
        samples = list_samples(self.root / "colorization" / COLOR_SPLITS[split], ("_gray.jpg", "_input.jpg"))
        self.indices = [index for index, _ in samples]
        files = [f for _, pair in samples for f in pair]
        data = cached(files, ("color", image_size), lambda: self._decode([p for _, p in samples], image_size))
        self.grey, self.rgb = data["grey"], data["rgb"]

    @staticmethod
    def _decode(pairs: list[list[Path]], image_size: tuple[int, int] | None) -> dict:
        greys, rgbs = [], []
        for grey_path, rgb_path in pairs:
            grey, rgb = open_image(grey_path, "L"), open_image(rgb_path, "RGB")
            if grey.shape != rgb.shape[:2]:
                raise DataError(f"{grey_path}: grey image is {_wh(grey)} but {rgb_path.name} is {_wh(rgb)}")
            greys.append(resize_uint8(torch.from_numpy(grey)[None, None], image_size, False)[0])
            rgbs.append(resize_uint8(torch.from_numpy(rgb).permute(2, 0, 1)[None], image_size, False)[0])
        _check_same_size(greys, [pair[0] for pair in pairs])
        return {"grey": torch.stack(greys).contiguous(), "rgb": torch.stack(rgbs).contiguous()}

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.grey, self.rgb

    def __len__(self) -> int:
        return len(self.grey)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.grey[i].float() / 255, self.rgb[i].float() / 255


def _wh(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


def _check_same_size(images: list[torch.Tensor], paths: list[Path]) -> None:
    """Frames of one split must share a size (after the requested resize) to be batched; the error names a
    frame whose size differs from the split's most common one."""
    sizes = [tuple(image.shape[-2:]) for image in images]
    common = max(set(sizes), key=sizes.count)
    for size, path in zip(sizes, paths):
        if size != common:
            raise DataError(f"{path}: size {size[1]}x{size[0]} differs from the {sizes.count(common)} other frames' "
                            f"{common[1]}x{common[0]}; pass an image size (--image-size HxW) to resize them all")


# ------------------------------------------------------------------------------------------- batching
class InMemoryLoader:
    """Batches of a dataset's uint8 ``tensors``, gathered by index: no per-item decode, copy or collate.

    ``shuffle=True`` draws a fresh order per epoch from ``seed + epoch`` (``set_epoch``) through
    ``DistributedSampler``, which also gives each rank of a torchrun job its own share; evaluation
    (``shuffle=False``) gives rank r the items r, r + W, ... with no padding, so that sums over ranks
    count every item exactly once.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, indices: Sequence[int] | None = None, pin_memory: bool = False) -> None:
        self.tensors = dataset.tensors
        self.subset = torch.arange(len(self.tensors[0])) if indices is None else torch.as_tensor(indices)
        self.batch_size, self.shuffle, self.pin_memory = batch_size, shuffle, pin_memory
        self.rank, self.world_size = rank, world_size
        self.sampler = torch.utils.data.DistributedSampler(
            range(len(self.subset)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed) if shuffle else None

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def _order(self) -> torch.Tensor:
        if self.sampler is None:
            return self.subset[self.rank::self.world_size]
        return self.subset[torch.tensor(list(self.sampler), dtype=torch.long)]

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.subset[self.rank::self.world_size])
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for batch in self._order().split(self.batch_size):
            items = tuple(t[batch] for t in self.tensors)
            yield tuple(t.pin_memory() for t in items) if self.pin_memory else items


def select_fraction(masks: torch.Tensor, fraction: float, seed: int) -> list[int]:
    """A seeded subset of ``round(fraction * N)`` frames (at least 1), as class-balanced as possible.

    Each frame is filed under the rarest class it contains (by pixel count over the split); frames are then
    taken from these strata in turn, rarest stratum first, each stratum shuffled by ``seed``, so every
    class present in the split appears in the subset whenever the subset is large enough.
    ``masks``: N x H x W class indices. Returns sorted dataset positions.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must lie in (0, 1], got {fraction}")
    n = len(masks)
    wanted = max(1, round(fraction * n))
    num_classes = int(masks.max()) + 1
    pixels = torch.bincount(masks.flatten().long(), minlength=num_classes).double()
    per_frame = torch.arange(n).view(n, 1) * num_classes + masks.flatten(1).long()
    present = torch.bincount(per_frame.flatten(), minlength=n * num_classes).view(n, num_classes) > 0
    rarity = torch.where(present, pixels, torch.inf).argmin(dim=1)  # rarest class of each frame
    rng = random.Random(seed)
    strata = []
    for cls in sorted(set(rarity.tolist()), key=lambda c: pixels[c].item()):
        members = torch.nonzero(rarity == cls).flatten().tolist()
        rng.shuffle(members)
        strata.append(members)
    chosen: list[int] = []
    while len(chosen) < wanted:
        for members in strata:
            if members and len(chosen) < wanted:
                chosen.append(members.pop())
    return sorted(chosen)
