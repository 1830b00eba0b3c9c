"""Segment frames with a trained model:

    python tools/predict.py --weights runs/1a/best.pt --input FRAME_OR_FOLDER [MORE ...] --out runs/pred

For every frame (``*.jpg``, ``*.png``, ... found recursively in a folder), writes under ``--out``, mirroring
the folder tree of each ``--input`` (``test/3/3_input.jpg`` -> ``OUT/test/3/3_*.png``): ``3_pred.png``, the
predicted mask in the data set's grey levels (named apart from the ground truth's ``_mask.png``), and
``3_overlay.png``: the frame with the prediction laid over it, the colour mask, and a legend of the class
colours. The frame is resized to the size the model was trained at and the prediction is made at the frame's
own size, by the same code and in the same precision as every score in metrics.json (``inference.py``), with
the run's own test-time options (flip TTA, small-class floor) unless overridden.

Safe by construction: ``--out`` may not lie inside the input folder or inside the data root it belongs to,
no file that this command did not write is ever replaced (it keeps a list in ``OUT/PREDICTIONS.json``),
ground-truth masks (``*_mask.png``) and earlier outputs are skipped and counted, and every check runs
before the first frame is read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from hw6.datasets import DataError, open_image
from hw6.engine import setup_runtime
from hw6.inference import load_segmentation_model, predict_frames
from hw6.kit import atomic, cli
from hw6.kit.figures import class_colours

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
OUTPUT_LIST = "PREDICTIONS.json"  # what this command wrote into an output folder: the only files it may replace
OUTPUT_SUFFIXES = ("_pred.png", "_overlay.png")


def data_root_of(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds a mapping.json: the data root it belongs to."""
    return next((p for p in [path, *path.parents] if (p / "mapping.json").is_file()), None)


def plan(inputs: list[Path], out: Path) -> tuple[list[tuple[Path, Path]], dict[str, int]]:
    """(frame, output stem) pairs and the counts of skipped files; refuses (one line) an ``out`` inside an
    input folder or its data root, two frames with one output, and outputs that would replace a file this
    command did not write."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"--out {out} is an existing file, not a folder")
    skipped = {"ground-truth masks (*_mask.png)": 0, "outputs of an earlier prediction": 0, "other files": 0}
    pairs, seen = [], {}
    for given in inputs:
        given = given.resolve()
        if not given.exists():
            raise DataError(f"{given}: input frame or folder does not exist")
        folder = given if given.is_dir() else given.parent
        for forbidden, what in ((given if given.is_dir() else None, "the input folder"),
                                (data_root_of(folder), "the data root")):
            if forbidden is not None and out.is_relative_to(forbidden):
                raise cli.UsageError(f"--out {out} lies inside {what} {forbidden}; predictions never write into data")
        for path in sorted(given.rglob("*")) if given.is_dir() else [given]:
            kind = file_kind(path)
            if kind == "frame":
                stem = out / path.relative_to(folder).parent / path.stem.removesuffix("_input")
                if seen.setdefault(stem, path) != path:
                    raise cli.UsageError(f"{path} and {seen[stem]}: both would write {stem}_pred.png; give them "
                                         "separate runs of predict.py")
                pairs.append((path, stem))
            elif kind:
                skipped[kind] += 1
    if not pairs:
        raise DataError(f"{', '.join(map(str, inputs))}: no frame to segment ({', '.join(sorted(IMAGE_SUFFIXES))})")
    ours = set(atomic.read_json_list(out / OUTPUT_LIST))
    for _, stem in pairs:
        for suffix in OUTPUT_SUFFIXES:
            target = Path(f"{stem}{suffix}")
            if target.exists() and str(target.relative_to(out)) not in ours:
                raise cli.UsageError(f"{target}: exists and was not written by predict.py; choose another --out")
    return pairs, skipped


def file_kind(path: Path) -> str | None:
    """"frame", the ``skipped`` count a file adds to, or None (a folder, a hidden file)."""
    if not path.is_file() or path.name.startswith("."):
        return None
    if (path.parent / OUTPUT_LIST).is_file() or path.name.endswith(OUTPUT_SUFFIXES):
        return "outputs of an earlier prediction"
    if path.name.endswith("_mask.png"):
        return "ground-truth masks (*_mask.png)"
    return "frame" if path.suffix.lower() in IMAGE_SUFFIXES else "other files"


def overlay_with_legend(rgb: np.ndarray, pred: np.ndarray, colours: np.ndarray, names: list[str]) -> np.ndarray:
    """H x W' x 3 uint8: the frame (H x W x 3) with the instrument classes of ``pred`` (H x W class indices)
    laid over it, the colour mask beside it, and a legend of every class colour, the predicted ones marked *."""
    overlay = np.where(pred[..., None] > 0, 0.45 * rgb + 0.55 * colours[pred], rgb).astype(np.uint8)
    row, found = 14, set(np.unique(pred).tolist())
    legend = Image.new("RGB", (190, max(rgb.shape[0], row * (len(names) + 1) + 8)), "white")
    draw = ImageDraw.Draw(legend)
    for k, name in enumerate(names):
        draw.rectangle([6, 4 + k * row, 16, 14 + k * row], fill=tuple(int(c) for c in colours[k]), outline="black")
        draw.text((22, 3 + k * row), f"{name.replace('_', ' ')}{' *' if k in found else ''}", fill="black")
    draw.text((6, 3 + len(names) * row), "* predicted in this frame", fill="black")
    pad = [(0, legend.height - rgb.shape[0]), (0, 4), (0, 0)]  # a white gap after each picture
    panels = [np.pad(p, pad, constant_values=255) for p in (overlay, colours[pred].astype(np.uint8))]
    return np.concatenate(panels + [np.asarray(legend)], axis=1)


def predict_files(weights: Path, inputs: Path | list[Path], out: Path, device: str = "auto",
                  tta: bool | None = None, min_region: float | None = None) -> list[Path]:
    """Writes ``<stem>_pred.png`` (grey levels of mapping.json) and ``<stem>_overlay.png`` per frame of
    ``inputs`` (frames or folders), mirroring each input's tree under ``out``; returns the paths of the
    predicted masks. ``tta``/``min_region``: None takes the run's own."""
    pairs, skipped = plan([Path(p) for p in (inputs if isinstance(inputs, list) else [inputs])], Path(out))
    for frame_path, _ in pairs:  # every frame decodes (one line naming a bad one) before any output is written
        open_image(frame_path, "RGB")
    runtime = setup_runtime(device, "fp32")
    model, meta = load_segmentation_model(weights, runtime.device)
    tta = meta["tta"] if tta is None else tta
    min_region = meta["min_region"] if min_region is None else min_region
    grey_levels = np.array(meta["grey_levels"], dtype=np.uint8)
    colours = class_colours(len(grey_levels))
    out = Path(out).resolve()
    written = set(atomic.read_json_list(out / OUTPUT_LIST))
    masks = []
    for frame_path, stem in pairs:
        frame = torch.from_numpy(open_image(frame_path, "RGB")).permute(2, 0, 1)[None]
        pred = predict_frames(model, frame.to(runtime.device), meta["input_size"], tta, min_region)[0].cpu().numpy()
        rgb = frame[0].permute(1, 2, 0).numpy().astype(np.float32)
        overlay = overlay_with_legend(rgb, pred, colours, meta["class_names"])
        for suffix, picture in zip(OUTPUT_SUFFIXES, (grey_levels[pred], overlay)):
            target = Path(f"{stem}{suffix}")
            written.add(str(target.relative_to(out)))
            atomic.write_json(sorted(written), out / OUTPUT_LIST)  # listed before written: a kill leaves no stranger
            atomic.save_png(picture, target)
        masks.append(Path(f"{stem}{OUTPUT_SUFFIXES[0]}"))
    for what, count in skipped.items():
        if count:
            print(f"skipped {count} {what}")
    return masks


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--weights", type=Path, required=True, help="segmentation checkpoint (best.pt)")
    parser.add_argument("--input", type=Path, nargs="+", required=True,
                        help="frames, or folders searched recursively")
    parser.add_argument("--out", type=Path, required=True, help="output folder (mirrors the input tree)")
    cli.add_device_flag(parser)
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction,
                        help="average over flips (default: as the run was evaluated)")
    parser.add_argument("--min-region", type=cli.fraction,
                        help="drop an instrument class covering less than this fraction of a frame "
                             "(default: as the run was evaluated)")
    args = parser.parse_args(argv)

    def body() -> None:
        written = predict_files(args.weights, args.input, args.out, args.device, args.tta, args.min_region)
        print(f"wrote {len(written)} predicted mask{'s' * (len(written) != 1)} (*_pred.png) and overlay"
              f"{'s' * (len(written) != 1)} with a colour legend (*_overlay.png) under {args.out}")

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
