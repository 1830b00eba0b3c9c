"""The embedded default data: a procedural, synthetic endoscopic instrument-segmentation data set.

    python synthetic_endo.py --out OUT [--seed 0] [--n-train 200 --n-val 40 --n-test 40
                                  --n-color-train 400 --n-color-val 40] [--size 256x320]

Writes a data root in the assignment's exact layout (segmentation splits, colorization train_cor and
validation_cor, mapping.json with the eight EndoVis 2017 instrument types on grey levels 0, 32, ..., 224)
plus SYNTHETIC.json, which marks every result computed on it as synthetic. Frames imitate endoscopy:
textured reddish tissue with vessels, specular highlights, a vignetted circular field of view, blur and
noise. Instrument types differ in geometry (shaft width, jaw shape, wrist articulation), not only in colour.
Deterministic for a seed: frame k of a split depends only on (seed, split, k).
"""
from __future__ import annotations

import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from hw6.datasets import ENDOVIS_CLASS_NAMES, ENDOVIS_GREY_LEVELS
from hw6.kit import atomic, cli

# Per instrument type: shaft half-width (pixels at 256x320), head length, head style, wrist bend (radians),
# and the grey tone of the shaft's coating (da Vinci shafts differ in finish as well as in size).
INSTRUMENTS = {
    1: dict(shaft=9, head=48, style="prongs", bend=0.5, tone=0.16),        # Bipolar forceps: thin diverging prongs
    2: dict(shaft=12, head=52, style="fenestrated", bend=0.4, tone=0.26),  # Prograsp: broad jaws with windows
    3: dict(shaft=16, head=34, style="stubby", bend=0.3, tone=0.10),       # Large needle driver: short wide jaws
    4: dict(shaft=20, head=64, style="paddle", bend=0.2, tone=0.34),       # Vessel sealer: long flat paddle
    5: dict(shaft=6, head=60, style="hook", bend=0.0, tone=0.45),          # Grasping retractor: thin rod with a hook
    6: dict(shaft=11, head=50, style="curved", bend=0.6, tone=0.05),       # Monopolar curved scissors: one curved blade
    7: dict(shaft=22, head=0, style="probe", bend=0.0, tone=0.92),         # Other: thick white probe, rounded end
}


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly to h x w."""
    coarse = Image.fromarray((rng.random((cells, cells * w // h + 1)) * 255).astype(np.uint8))
    return np.asarray(coarse.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255


def tissue(rng: np.random.Generator, h: int, w: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Reddish tissue with folds, vessels and glossy highlights: h x w x 3 float in [0, 1]."""
    base = np.array([0.72, 0.28, 0.24]) * rng.uniform(0.8, 1.15, 3)
    folds = 0.6 * smooth_noise(rng, h, w, 4) + 0.4 * smooth_noise(rng, h, w, 12)
    image = base * (0.55 + 0.6 * folds[..., None])
    vessel_field = smooth_noise(rng, h, w, 8)
    vessels = np.exp(-((vessel_field - rng.uniform(0.3, 0.7)) ** 2) / 0.0008)
    image = image * (1 - 0.35 * vessels[..., None]) + 0.35 * vessels[..., None] * np.array([0.45, 0.05, 0.08])
    for _ in range(rng.integers(3, 9)):  # specular highlights on wet tissue
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.5, 5)
        image += 0.9 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    return image


def segment_distance(yy: np.ndarray, xx: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every pixel to segment p-q, and the position t in [0, 1] of its nearest point."""
    d = q - p
    t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    return np.hypot(yy - (p[0] + t * d[0]), xx - (p[1] + t * d[1])), t


def head_mask(style: str, yy, xx, tip: np.ndarray, direction: np.ndarray, length: float, width: float,
              rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of an instrument's jaws, beginning at ``tip`` and pointing along ``direction``."""
    normal = np.array([-direction[1], direction[0]])
    u = (yy - tip[0]) * direction[0] + (xx - tip[1]) * direction[1]  # along the head
    v = (yy - tip[0]) * normal[0] + (xx - tip[1]) * normal[1]        # across it
    along = (u >= 0) & (u <= length)
    s = np.clip(u / max(length, 1), 0, 1)
    if style == "prongs":  # two thin prongs opening into a V
        gap = rng.uniform(0.15, 0.45) * length * s
        return along & ((np.abs(v - gap) < 3.5) | (np.abs(v + gap) < 3.5))
    if style == "fenestrated":  # two broad jaws, each with a window
        open_ = rng.uniform(0.1, 0.3) * length * s
        jaw = (np.abs(np.abs(v) - open_ - 5) < 7 * (1 - 0.4 * s))
        window = (np.abs(np.abs(v) - open_ - 5) < 2.5) & (s > 0.3) & (s < 0.75)
        return along & jaw & ~window
    if style == "stubby":  # short, wide, closed jaws tapering to a blunt end
        return along & (np.abs(v) < width * (1.25 - 0.5 * s))
    if style == "paddle":  # long flat paddle, slightly wider than the shaft, rounded end
        return (along & (np.abs(v) < width * 0.95)) | (np.hypot(u - length, v) < width * 0.95)
    if style == "hook":  # thin rod ending in a hook to one side
        rod = along & (np.abs(v) < 3.5)
        hook = (np.abs(np.hypot(u - length, v - 9) - 9) < 3.5) & (v > 0)
        return rod | hook
    if style == "curved":  # a single blade curving away to one side
        curve = rng.choice([-1, 1]) * 0.02 * u ** 2 / max(length, 1) * 1.6
        return along & (np.abs(v - curve) < 6 * (1 - 0.6 * s))
    return np.zeros_like(u, dtype=bool)  # "probe": no jaws


def draw_instrument(image: np.ndarray, mask: np.ndarray, cls: int, rng: np.random.Generator, yy, xx) -> None:
    """Draws one instrument of class ``cls`` entering from the border, in place (image and mask)."""
    h, w = mask.shape
    scale = h / 256
    spec = INSTRUMENTS[cls]
    angle = rng.uniform(0, 2 * math.pi)
    entry = np.array([h / 2 - math.sin(angle) * h * 0.7, w / 2 - math.cos(angle) * w * 0.7])
    tip = np.array([rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w])
    direction = (tip - entry) / np.linalg.norm(tip - entry)
    width = spec["shaft"] * scale * rng.uniform(0.9, 1.1)
    dist, t = segment_distance(yy, xx, entry, tip)
    shaft = dist < width
    shaft |= (cls == 7) & (np.hypot(yy - tip[0], xx - tip[1]) < width)  # the probe's rounded end
    bend = rng.uniform(-spec["bend"], spec["bend"])
    head_dir = np.array([direction[0] * math.cos(bend) - direction[1] * math.sin(bend),
                         direction[0] * math.sin(bend) + direction[1] * math.cos(bend)])
    head = head_mask(spec["style"], yy, xx, tip, head_dir, spec["head"] * scale, width, rng)
    # Cylinder shading across the shaft in the type's tone, and bright metal jaws.
    across = np.clip(dist / max(width, 1), 0, 1)
    shade = (1 - 0.6 * across ** 2)[..., None]
    shaft_colour = np.array([1.0, 1.0, 0.96]) * spec["tone"] + 0.02
    image[shaft] = (shaft_colour * shade + 0.5 * np.exp(-((across - 0.35) ** 2) / 0.01)[..., None])[shaft]
    image[head] = (np.array([0.7, 0.72, 0.75]) * rng.uniform(0.85, 1.1) * shade)[head]
    mask[shaft | head] = cls


def render_frame(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame (h x w x 3 uint8) and its class-index mask (h x w uint8)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = tissue(rng, h, w, yy, xx)
    mask = np.zeros((h, w), dtype=np.uint8)
    for cls in rng.choice(np.arange(1, 8), size=rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]), replace=False):
        draw_instrument(image, mask, int(cls), rng, yy, xx)
    # The endoscope's circular field of view, with the light falling off towards its edge.
    r = np.hypot((yy - h / 2) / (h * 0.62), (xx - w / 2) / (w * 0.56))
    image *= np.clip(1.25 - r ** 2, 0, 1)[..., None] * np.clip((1.08 - r) * 12, 0, 1)[..., None]
    mask[r > 1.08] = 0
    pil = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    noisy = np.asarray(pil, dtype=np.float32) + rng.normal(0, 4, (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), mask


def write_split(out: Path, folder: str, count: int, seed: int, size: tuple[int, int], colorization: bool) -> None:
    lut = np.array(ENDOVIS_GREY_LEVELS, dtype=np.uint8)
    for i in tqdm(range(count), desc=folder, unit="frame", leave=False, disable=not sys.stderr.isatty()):
        frame, mask = render_frame(frame_rng(seed, folder, i), *size)
        index = i + 1 if folder == "validation_cor" else i  # the course's validation_cor is numbered from 1
        sample = out / folder / str(index)
        sample.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(sample / f"{index}_input.jpg", quality=92)
        if colorization:
            Image.fromarray(frame).convert("L").save(sample / f"{index}_gray.jpg", quality=92)
        else:
            Image.fromarray(lut[mask]).save(sample / f"{index}_mask.png")


def generate(out: str | Path, seed: int = 0, n_train: int = 200, n_val: int = 40, n_test: int = 40,
             n_color_train: int = 400, n_color_val: int = 40, size: tuple[int, int] = (256, 320)) -> Path:
    """Writes the synthetic data root to ``out`` and returns it."""
    out = Path(out)
    splits = [("segmentation", "train", n_train), ("segmentation", "validation", n_val), ("segmentation", "test", n_test),
              ("colorization", "train_cor", n_color_train), ("colorization", "validation_cor", n_color_val)]
    record = {"generator": "synthetic_endo.py", "seed": seed, "size": list(size),
              "counts": {folder: count for _, folder, count in splits}}
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"--out {out}: is an existing file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        marker = out / "SYNTHETIC.json"
        if not marker.is_file():
            raise cli.UsageError(f"--out {out}: folder exists and is not a synthetic data root; choose an empty folder")
        if json.loads(marker.read_text()) != record:
            raise cli.UsageError(f"--out {out}: holds synthetic data generated with other settings "
                                 f"({marker.name}); choose another folder or delete it")
        return out  # already generated with exactly these settings
    for task, folder, count in tqdm(splits, desc="synthetic data", unit="split", disable=not sys.stderr.isatty()):
        write_split(out / task, folder, count, seed, size, colorization=task == "colorization")
    atomic.write_text(json.dumps({str(g): n for g, n in zip(ENDOVIS_GREY_LEVELS, ENDOVIS_CLASS_NAMES)}, indent=1) + "\n",
                      out / "mapping.json")
    atomic.write_json(record, out / "SYNTHETIC.json")  # last: a root without it is incomplete
    return out


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output data root (created)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="generator seed (default 0)")
    parser.add_argument("--n-train", type=cli.positive_int, default=200, help="segmentation train frames (default 200)")
    parser.add_argument("--n-val", type=cli.positive_int, default=40, help="validation frames (default 40)")
    parser.add_argument("--n-test", type=cli.positive_int, default=40, help="test frames (default 40)")
    parser.add_argument("--n-color-train", type=cli.positive_int, default=400, help="train_cor pairs (default 400)")
    parser.add_argument("--n-color-val", type=cli.positive_int, default=40, help="validation_cor pairs (default 40)")
    parser.add_argument("--size", type=cli.image_size, default=(256, 320), help="HxW (default 256x320)")
    args = parser.parse_args(argv)
    cli.main(lambda: print(f"wrote {generate(args.out, args.seed, args.n_train, args.n_val, args.n_test, args.n_color_train, args.n_color_val, args.size)}"))


if __name__ == "__main__":
    main(sys.argv[1:])
