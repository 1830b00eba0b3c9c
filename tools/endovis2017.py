"""Converts the official MICCAI 2017 EndoVis robotic instrument release to this project's layout.

    python tools/endovis2017.py --release RELEASE --out OUT [--val 7] [--test 8]

RELEASE holds ``instrument_dataset_K/left_frames/frameNNN.png`` and
``instrument_dataset_K/ground_truth/<Instrument_Name>_labels/frameNNN.png`` (one binary mask per instrument).
Each frame is cropped to its 1280x1024 content area (rows 28..1052, columns 320..1600) and resized to 256x320;
the per-instrument masks are merged into instrument-TYPE grey levels (0, 32, ..., 224 as in the course's
mapping.json). Splits are by sequence, so no video appears in two splits; colorization/train_cor holds the
training sequences' frames (grey + RGB) and validation_cor the validation sequences'.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from hw6.datasets import ENDOVIS_CLASS_NAMES, ENDOVIS_GREY_LEVELS, DataError, open_image
from hw6.kit import atomic, cli

CROP = (320, 28, 1600, 1052)  # left, top, right, bottom: the 1280x1024 area inside the 1920x1080 frame
SIZE = (320, 256)  # width, height written
# Folder name fragments (lower case) -> instrument type; "Maryland_Bipolar_Forceps" is a bipolar forceps.
TYPE_OF = [("bipolar", "Bipolar_Forceps"), ("prograsp", "Prograsp_Forceps"), ("needle_driver", "Large_Needle_Driver"),
           ("vessel_sealer", "Vessel_Sealer"), ("grasping_retractor", "Grasping_Retractor"),
           ("monopolar", "Monopolar_Curved_Scissors"), ("scissors", "Monopolar_Curved_Scissors"), ("other", "Other")]


def instrument_type(folder: Path) -> int:
    """Class index (1..7) of a ground_truth/<Instrument_Name>_labels folder."""
    name = folder.name.lower()
    for fragment, type_name in TYPE_OF:
        if fragment in name:
            return ENDOVIS_CLASS_NAMES.index(type_name)
    raise DataError(f"{folder}: unknown instrument type (expected one of {', '.join(ENDOVIS_CLASS_NAMES[1:])})")


def sequences(release: Path) -> dict[int, Path]:
    """The instrument_dataset_K folders of the release by K, ascending."""
    found = {int(match.group(1)): folder for folder in release.glob("instrument_dataset_*")
             if (match := re.fullmatch(r"instrument_dataset_(\d+)", folder.name)) and folder.is_dir()}
    if not found:
        raise DataError(f"{release}: no instrument_dataset_K folders (is this the EndoVis 2017 release?)")
    return dict(sorted(found.items()))


def convert_frame(frame_path: Path, label_folders: list[Path]) -> tuple[Image.Image, np.ndarray]:
    """The cropped, resized RGB frame and its merged grey-level mask."""
    frame = Image.fromarray(open_image(frame_path, "RGB"))
    if frame.size != (1920, 1080):
        raise DataError(f"{frame_path}: expected a 1920x1080 frame, got {frame.size[0]}x{frame.size[1]}")
    mask = np.zeros((1080, 1920), dtype=np.uint8)
    for folder in label_folders:
        label_path = folder / frame_path.name
        if label_path.is_file():
            mask[open_image(label_path, "L") > 0] = ENDOVIS_GREY_LEVELS[instrument_type(folder)]
    rgb = frame.crop(CROP).resize(SIZE, Image.BILINEAR)
    grey = Image.fromarray(mask).crop(CROP).resize(SIZE, Image.NEAREST)
    return rgb, np.asarray(grey)


def convert(release: str | Path, out: str | Path, val: list[int], test: list[int]) -> dict[str, int]:
    """Writes the data root whole or not at all (into a hidden sibling folder, renamed to ``out`` at the end);
    refuses a non-empty ``out`` and one inside the release (or around it). Returns the frames per split."""
    release, final = Path(release), Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise cli.UsageError(f"--out {final}: exists and is not empty; the converter writes only a new data root")
    if final.resolve().is_relative_to(release.resolve()) or release.resolve().is_relative_to(final.resolve()):
        raise cli.UsageError(f"--out {final} lies inside (or around) the release {release}; choose a folder apart")
    seqs = sequences(release)
    final.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    try:
        counts = _write(seqs, out, val, test)
        if final.exists():
            final.rmdir()  # the empty folder checked above
        out.rename(final)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # only the hidden folder this call made; gone after the rename
    return counts


def _write(seqs: dict[int, Path], out: Path, val: list[int], test: list[int]) -> dict[str, int]:
    release = next(iter(seqs.values())).parent
    for k in val + test:
        if k not in seqs:
            raise DataError(f"{release}: instrument_dataset_{k} (asked for as a validation/test sequence) is missing")
    if set(val) & set(test):
        raise cli.UsageError(f"sequences {sorted(set(val) & set(test))} cannot be both validation and test")
    split_of = {k: "validation" if k in val else "test" if k in test else "train" for k in seqs}
    counts = {"train": 0, "validation": 0, "test": 0, "train_cor": 0, "validation_cor": 0}
    for k, folder in tqdm(seqs.items(), desc="sequences", unit="seq", file=sys.stderr):
        labels = sorted(p for p in (folder / "ground_truth").glob("*_labels") if p.is_dir())
        for label in labels:
            instrument_type(label)  # refuse unknown types before writing anything of this sequence
        split = split_of[k]
        for frame_path in sorted((folder / "left_frames").glob("frame*.png")):
            rgb, mask = convert_frame(frame_path, labels)
            i = counts[split]
            sample = out / "segmentation" / split / str(i)
            sample.mkdir(parents=True, exist_ok=True)
            rgb.save(sample / f"{i}_input.jpg", quality=95)
            Image.fromarray(mask).save(sample / f"{i}_mask.png")
            counts[split] += 1
            if split != "test":  # colorization never sees a test sequence
                cor = f"{split}_cor"
                j = counts[cor]
                pair = out / "colorization" / cor / str(j)
                pair.mkdir(parents=True, exist_ok=True)
                rgb.save(pair / f"{j}_input.jpg", quality=95)
                rgb.convert("L").save(pair / f"{j}_gray.jpg", quality=95)
                counts[cor] += 1
    atomic.write_text(json.dumps({str(g): n for g, n in zip(ENDOVIS_GREY_LEVELS, ENDOVIS_CLASS_NAMES)}, indent=1) + "\n",
                      out / "mapping.json")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--release", type=Path, required=True,
                        help="folder with instrument_dataset_1 ... instrument_dataset_8")
    parser.add_argument("--out", type=Path, required=True, help="data root to write")
    parser.add_argument("--val", type=int, nargs="+", default=[7], help="validation sequences (default 7)")
    parser.add_argument("--test", type=int, nargs="+", default=[8], help="test sequences (default 8)")
    args = parser.parse_args(argv)
    cli.main(lambda: print(f"wrote {args.out}: {convert(args.release, args.out, args.val, args.test)}"))


if __name__ == "__main__":
    main(sys.argv[1:])
