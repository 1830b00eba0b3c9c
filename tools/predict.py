"""Segment frames with a trained model:

    python tools/predict.py --weights runs/1a/best.pt --input FRAME_OR_FOLDER --out runs/pred

For every frame (``*.jpg``, ``*.png``, ... found recursively in a folder), writes the mask in the data set's
grey levels and a colour overlay under ``--out``, mirroring the folder tree of ``--input``
(``test/3/3_input.jpg`` -> ``OUT/test/3/3_mask.png`` and ``OUT/test/3/3_overlay.png``). The frame is resized to
the size the model was trained at and the prediction is made at the frame's own size, by the same code and
in the same precision as every score in metrics.json (``inference.py``), with the run's own test-time
options (flip TTA, small-class floor) unless overridden.

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

from hw6.datasets import DataError, open_image
from hw6.engine import setup_runtime
from hw6.inference import load_segmentation_model, predict_frames
from hw6.kit import atomic, cli
from hw6.kit.figures import class_colours

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
OUTPUT_LIST = "PREDICTIONS.json"  # what this command wrote into an output folder: the only files it may replace
OUTPUT_SUFFIXES = ("_mask.png", "_overlay.png")


def data_root_of(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds a mapping.json: the data root it belongs to."""
    return next((p for p in [path, *path.parents] if (p / "mapping.json").is_file()), None)


def plan(inputs: Path, out: Path) -> tuple[list[tuple[Path, Path]], dict[str, int]]:
    """(frame, output stem) pairs and the counts of skipped files; refuses (one line) an ``out`` inside the
    input folder or its data root, and outputs that would replace a file this command did not write."""
    inputs, out = inputs.resolve(), out.resolve()
    if not inputs.exists():
        raise DataError(f"{inputs}: input frame or folder does not exist")
    folder = inputs if inputs.is_dir() else inputs.parent
    root = data_root_of(folder)
    for forbidden, what in ((inputs if inputs.is_dir() else None, "the input folder"), (root, "the data root")):
        if forbidden is not None and out.is_relative_to(forbidden):
            raise cli.UsageError(f"--out {out} lies inside {what} {forbidden}; predictions never write into data")
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"--out {out} is an existing file, not a folder")
    skipped = {"ground-truth masks (*_mask.png)": 0, "outputs of an earlier prediction": 0, "other files": 0}
    pairs = []
    for path in sorted(inputs.rglob("*")) if inputs.is_dir() else [inputs]:
        if not path.is_file():
            continue
        if (path.parent / OUTPUT_LIST).is_file() or path.name.endswith("_overlay.png"):
            skipped["outputs of an earlier prediction"] += 1
        elif path.name.endswith("_mask.png"):
            skipped["ground-truth masks (*_mask.png)"] += 1
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped["other files"] += int(not path.name.startswith("."))
        else:
            relative = path.relative_to(folder)
            pairs.append((path, out / relative.parent / path.stem.removesuffix("_input")))
    if not pairs:
        raise DataError(f"{inputs}: no frame to segment ({', '.join(sorted(IMAGE_SUFFIXES))})")
    ours = set(atomic.read_json_list(out / OUTPUT_LIST))
    for _, stem in pairs:
        for suffix in OUTPUT_SUFFIXES:
            target = Path(f"{stem}{suffix}")
            if target.exists() and str(target.relative_to(out)) not in ours:
                raise cli.UsageError(f"{target}: exists and was not written by predict.py; choose another --out")
    return pairs, skipped


def predict_files(weights: Path, inputs: Path, out: Path, device: str = "auto", tta: bool | None = None,
                  min_region: float | None = None) -> list[Path]:
    """Writes ``<stem>_mask.png`` (grey levels of mapping.json) and ``<stem>_overlay.png`` per frame, mirroring
    the input tree under ``out``; returns the mask paths. ``tta``/``min_region``: None takes the run's own."""
    pairs, skipped = plan(Path(inputs), Path(out))
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
        overlay = np.where(pred[..., None] > 0, 0.45 * rgb + 0.55 * colours[pred], rgb).astype(np.uint8)
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
    parser.add_argument("--input", type=Path, required=True, help="a frame, or a folder searched recursively")
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
        print(f"wrote {len(written)} masks and overlays under {args.out}")

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
