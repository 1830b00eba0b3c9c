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

import functools
import gzip
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

__all__ = ["EndoSegDataset", "ColorizationDataset", "TensorItems", "InMemoryLoader", "DataError", "load_mapping"]


class DataError(Exception):
    """A fault in the data on disk; the message names the offending path (defined here, not in hw6.kit, so that
    this module travels alone with torch, numpy and pillow)."""


CACHE_FORMAT = 3  # 2: segmentation entries keep the masks at their stored size; 3: entries hold their key
SEG_SPLITS = ("train", "validation", "test")
COLOR_SPLITS = {"train": "train_cor", "validation": "validation_cor"}
SYNTHETIC_MARKER = "SYNTHETIC.json"
# The EndoVis 2017 instrument types on the course's grey levels (its mapping.json); the data makers write these.
ENDOVIS_CLASS_NAMES = ["Background_Tissue", "Bipolar_Forceps", "Prograsp_Forceps", "Large_Needle_Driver",
                       "Vessel_Sealer", "Grasping_Retractor", "Monopolar_Curved_Scissors", "Other"]
ENDOVIS_GREY_LEVELS = [32 * i for i in range(len(ENDOVIS_CLASS_NAMES))]


# ---------------------------------------------------------------------------------------------- mapping.json
def load_mapping(path: Path) -> tuple[list[int], list[str]]:
    """Reads mapping.json; returns (grey levels ascending, class names in the same order).

    Accepts ``{"<grey level>": "<class name>"}`` and ``{"<class name>": <grey level>}``, and the course's
    comma-less variant of the latter (not valid JSON; read with a one-line warning). The class index of a
    grey level is its position in ascending order.
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
        # named by its data folder alone: the notebook saves this line, and a machine's path has no place there
        _warn_once(f"{path.parent.name}/{path.name}: not valid JSON (commas missing, as the course ships it); "
                   "read it anyway")
    if len(pairs) < 2:
        raise DataError(f"{path}: mapping.json must name at least two classes (background and an instrument), "
                        f"got {len(pairs)}")
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
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            found = [f.name for f in files if f.name not in missing]
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
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # convert() would clip to white
                raise DataError(f"{path}: image is {image.mode} (16-bit or float); the data must be 8-bit per "
                                f"channel: save it as 8-bit")
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
def cache_key(files: Sequence[Path], extra: object) -> str:
    """Hash of every file's absolute path, size and mtime, plus ``extra`` (image size, mapping, format)."""
    digest = hashlib.sha256(repr((CACHE_FORMAT, extra)).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def fingerprint(files: Sequence[Path]) -> str:
    """What a set of files holds: each file's path below their common folder and the SHA-256 of its bytes (a
    few tenths of a second for the 52 MB of colorization images). A resume compares it with the one its
    checkpoint stored, so a run never continues on training files whose content changed, while the same files
    given new modification times (the data provisioned again) resume."""
    if not files:
        raise DataError("no files to fingerprint: a training split without files cannot be resumed safely")
    absolute = [Path(os.path.abspath(f)) for f in files]
    base = os.path.commonpath([f.parent for f in absolute])
    digest = hashlib.sha256()
    for path in absolute:
        content = hashlib.sha256()
        try:
            with open(path, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    content.update(chunk)
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
        digest.update(f"{path.relative_to(base).as_posix()}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()[:32]


def cached(files: Sequence[Path], extra: object, decode: Callable[[], dict]) -> dict:
    """``decode()`` once per unchanged set of files; later calls load its tensors from the on-disk cache.

    An entry holds its own key beside the tensors and is used only when that key is this one (tensors only are
    loaded, ``weights_only``): a damaged entry, or one copied or renamed from another set of files, is
    decoded again, never trusted."""
    key = cache_key(files, extra)
    path = Path(os.environ.get("HW6_CACHE_DIR", Path.home() / ".cache" / "hw6")) / f"{key}.pt"
    if path.is_file():
        try:
            entry = torch.load(path, weights_only=True)
            if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("tensors"), dict):
                return entry["tensors"]
        except Exception:
            pass
        _warn_once(f"{path}: decode cache entry is damaged or belongs to other files; decoding again")
    tensors = decode()
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # the entry is replaced whole or not at all
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "tensors": tensors}, partial)
        os.replace(partial, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        partial.unlink(missing_ok=True)
        warnings.warn(f"{path}: could not write the decode cache ({exc}); continuing without it", stacklevel=2)
    return tensors


def is_synthetic(root: Path) -> bool:
    """True for a data root written by synthetic_endo.py."""
    return (Path(root) / SYNTHETIC_MARKER).is_file()


def data_label(root: str | Path) -> str:
    """How results name their data: "synthetic data", or "data: <folder name>" (never a machine's path)."""
    return "synthetic data" if is_synthetic(root) else f"data: {Path(root).name}"


def synthetic_note(root: str | Path) -> str:
    """What a figure's title adds about its data: " (synthetic data)" for the generated default, else nothing
    (the caption names the experiment; a title never carries a data folder's name)."""
    return " (synthetic data)" if is_synthetic(root) else ""


def check_root(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data root does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: data root is not a folder")
    return root


# ---------------------------------------------------------------------------------------------- datasets
class InMemoryDataset(torch.utils.data.Dataset):
    """Tensors held whole in memory, first dimension N, named by ``tensor_names``. Whichever way they are read
    (``dataset[i]``, ``dataset.batch(index)``, ``InMemoryLoader``), uint8 images come out as float32 in
    [0, 1] and labels as int64: the kinds ``"image"`` and ``"label"`` of ``tensor_kinds``."""
    tensor_names: tuple[str, ...] = ()
    tensor_kinds: tuple[str, ...] = ()
    _files: Sequence[Path] = ()  # the files it was read from

    def _read(self, split_dir: Path, names: Sequence[str], extra: object,
              decode: Callable[[list[list[Path]]], dict]) -> dict:
        """Lists the samples of ``split_dir`` (sets ``indices`` and ``_files``) and returns ``decode`` of their
        file pairs, through the decode cache."""
        samples = list_samples(split_dir, names)
        self.indices = [index for index, _ in samples]
        self._files = [f for _, pair in samples for f in pair]
        return cached(self._files, extra, lambda: decode([pair for _, pair in samples]))

    @functools.cached_property
    def fingerprint(self) -> str:
        """The module's ``fingerprint`` of the files read, computed when first asked (a training split only)."""
        return fingerprint(self._files)

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, name) for name in self.tensor_names)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The items at ``index`` (on the tensors' device), converted as the class docstring says."""
        return tuple(t[index].float().div_(255) if kind == "image" and t.dtype == torch.uint8
                     else t[index].long() if kind == "label" else t[index]
                     for t, kind in zip(self.tensors, self.tensor_kinds))

    def to(self, device: torch.device | str) -> "InMemoryDataset":
        """Moves the batched tensors to ``device`` (once: a GPU then gathers batches without host copies)."""
        for name in self.tensor_names:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.batch(torch.tensor([i])))


class TensorItems(InMemoryDataset):
    """Inputs (uint8 images, or float features) and integer labels, e.g. Fashion-MNIST for VGG16."""
    tensor_names, tensor_kinds = ("inputs", "labels"), ("image", "label")

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels


class EndoSegDataset(InMemoryDataset):
    """Frames and class-index masks of one segmentation split, decoded once and held as uint8.

    Attributes: ``images`` N x 3 x h x w uint8 and ``masks`` N x h x w uint8 class indices at the training
    size (``image_size``, default as stored); ``native_masks``: the N masks at the size they are stored at, one
    H x W uint8 tensor each (views of ``masks`` when nothing was resized), which every score is computed
    against; ``indices`` the folder numbers, ``class_names`` and ``grey_levels`` (class k has grey level
    grey_levels[k]).
    Items and batches: ``(images float in [0, 1], masks long)`` at the training size.
    """
    tensor_names, tensor_kinds = ("images", "masks"), ("image", "label")

    def __init__(self, root: str | Path, split: str, image_size: tuple[int, int] | None = None) -> None:
        if split not in SEG_SPLITS:
            raise ValueError(f"split must be one of {SEG_SPLITS}, got {split!r}")
        self.root, self.split = check_root(Path(root)), split
        self.grey_levels, self.class_names = load_mapping(self.root / "mapping.json")
        data = self._read(self.root / "segmentation" / split, ("_input.jpg", "_mask.png"),
                          ("seg", image_size, self.grey_levels), lambda pairs: self._decode(pairs, image_size))
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
                unknown = np.unique(grey[mask == 255]).tolist()  # sorted
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
    def num_classes(self) -> int:
        return len(self.class_names)


class ColorizationDataset(InMemoryDataset):
    """Grey inputs and RGB targets of ``colorization/train_cor`` (split "train") or ``validation_cor``
    (split "validation"): no other folder can be read, so no segmentation frame leaks into pre-training.

    Attributes: ``grey`` N x 1 x H x W uint8, ``rgb`` N x 3 x H x W uint8. Items and batches: float pairs in
    [0, 1]. A grey file stored with colour channels is converted to one channel, not refused.
    """
    tensor_names, tensor_kinds = ("grey", "rgb"), ("image", "image")

    def __init__(self, root: str | Path, split: str, image_size: tuple[int, int] | None = None) -> None:
        if split not in COLOR_SPLITS:
            raise ValueError(f"split must be one of {tuple(COLOR_SPLITS)}, got {split!r}")
        self.root, self.split = check_root(Path(root)), split
        data = self._read(self.root / "colorization" / COLOR_SPLITS[split], ("_gray.jpg", "_input.jpg"),
                          ("color", image_size), lambda pairs: self._decode(pairs, image_size))
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
    """Batches of an ``InMemoryDataset``, gathered by index on the tensors' device: no per-item decode, copy
    or collate, and on a GPU (``dataset.to(device)``) no host copy either.

    ``shuffle=True`` draws a fresh order per epoch from ``seed + epoch`` (``set_epoch``) through
    ``DistributedSampler``, which also gives each rank of a torchrun job its own share; ``shuffle=False``
    gives rank r the items r, r + W, ... with no padding, so that sums over ranks count every item once.
    ``indices``: the dataset positions to draw from (default all).
    """

    def __init__(self, dataset: InMemoryDataset, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, indices: Sequence[int] | None = None) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.subset = torch.arange(len(dataset)) if indices is None else torch.as_tensor(indices)
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
        order = self._order().to(self.dataset.tensors[0].device)  # one copy per epoch, not one per batch
        for index in order.split(self.batch_size):
            yield self.dataset.batch(index)


class PhasedLoader:
    """Progressive resizing: ``loaders[0]`` (frames resized small) for the epochs before ``switch``,
    ``loaders[1]`` (at their stored size) from ``switch`` on. ``set_epoch`` selects the phase's loader and
    forwards the epoch (which draws its order); ``current`` is the phase the model trains in."""

    def __init__(self, loaders: list[InMemoryLoader], switch: int) -> None:
        self.loaders, self.switch, self.current = loaders, switch, 0

    def phase(self, epoch: int) -> int:
        return int(epoch >= self.switch and len(self.loaders) > 1)

    def set_epoch(self, epoch: int) -> None:
        self.current = self.phase(epoch)
        self.loaders[self.current].set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return iter(self.loaders[self.current])


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


# --------------------------------------------------------------------------------------------- Fashion-MNIST
FASHION_IDX_FILES = {"train-images-idx3-ubyte": 2051, "train-labels-idx1-ubyte": 2049,
                     "t10k-images-idx3-ubyte": 2051, "t10k-labels-idx1-ubyte": 2049}
FASHION_CLASSES = 10


def idx_file(path: Path) -> Path | None:
    """``path``, or ``path``.gz when only that is there; None when neither is."""
    return next((p for p in (path, path.with_name(f"{path.name}.gz")) if p.is_file()), None)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The array of a Fashion-MNIST IDX file (``path``, or ``path``.gz when only that is there), uint8; one-line
    errors for a missing file, a wrong magic number and a body of the wrong length."""
    path = idx_file(path) or path
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:  # a missing or unreadable file, a damaged .gz
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) < 8 or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file of the expected kind (magic number should be {magic})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    expected = 4 + 4 * len(dims) + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: IDX body is {len(data)} bytes, header {dims} says {expected}: truncated or damaged")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def fashion_raw(root: str | Path) -> Path:
    """ROOT/FashionMNIST/raw, checked: a ROOT that is that folder itself, or FashionMNIST/, is named as such."""
    root = Path(root)
    raw = root / "FashionMNIST" / "raw"
    if not raw.is_dir() and (root.name == "raw" or (root / "raw").is_dir()):
        raise DataError(f"{root}: is Fashion-MNIST's own folder; give the folder that holds FashionMNIST/raw/")
    missing = [name for name in FASHION_IDX_FILES if idx_file(raw / name) is None]
    if missing:
        raise DataError(f"{raw}: Fashion-MNIST not found; put {', '.join(missing)} (or their .gz) there")
    return raw


def load_fashion_mnist(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N x 28 x 28 uint8, labels N long) of ``root/FashionMNIST/raw``, read from its IDX files (or
    their .gz) as they are: nothing is downloaded or written."""
    raw, prefix = fashion_raw(root), "train" if train else "t10k"
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte", FASHION_IDX_FILES[f"{prefix}-images-idx3-ubyte"])
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte", FASHION_IDX_FILES[f"{prefix}-labels-idx1-ubyte"])
    if len(labels) != len(images):
        raise DataError(f"{raw / f'{prefix}-labels-idx1-ubyte'}: {len(labels)} labels for the {len(images)} images "
                        f"of {prefix}-images-idx3-ubyte; the two files do not belong together")
    if len(labels) and int(labels.max()) >= FASHION_CLASSES:
        raise DataError(f"{raw / f'{prefix}-labels-idx1-ubyte'}: labels must lie in 0-{FASHION_CLASSES - 1}, found "
                        f"0-{int(labels.max())}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def fashion_fingerprint(root: str | Path) -> str:
    """``fingerprint`` of the Fashion-MNIST files under ``root/FashionMNIST/raw`` (whichever are present)."""
    raw = Path(root) / "FashionMNIST" / "raw"
    return fingerprint(sorted(p for p in raw.glob("*-ubyte*") if p.is_file()))  # the files read (or their .gz)
