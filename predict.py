"""Segment frames with a trained model: ``python predict.py --weights best.pt --input FRAME_OR_DIR --out DIR``
writes, per frame, the mask in the dataset's grey levels (``<name>_mask.png``) and a colour overlay
(``<name>_overlay.png``). Importable: ``predict(model, images) -> class indices``."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import cli
from datasets import DataError, open_image, resize_uint8
from engine import load_checkpoint, load_weights, setup_runtime
from figures import class_colours
from unet import DOWNSAMPLING, UNet

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def segmentation_probs(model: torch.nn.Module, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Softmax probabilities N x C x H x W of float images N x 3 x H x W in [0, 1]; ``tta`` averages them
    over the identity and the horizontal and vertical flips (the flips the model was trained with)."""
    images = images.contiguous(memory_format=torch.channels_last)
    probs = model(images).float().softmax(dim=1)
    if tta:
        for dims in ((3,), (2,)):
            probs += model(images.flip(dims)).float().softmax(dim=1).flip(dims)
        probs /= 3
    return probs


def drop_small_classes(probs: torch.Tensor, min_region: float) -> torch.Tensor:
    """Class indices N x H x W from probabilities N x C x H x W, where an instrument class predicted on fewer
    than ``min_region`` (a fraction) of an image's pixels is dropped from that image and its pixels go to
    their most probable remaining class (background, or a class that does cover enough of the image).
    Scattered false detections of classes absent from a frame then stop costing a whole class its Dice;
    background is never dropped. ``min_region=0`` is a plain argmax."""
    pred = probs.argmax(dim=1)
    if min_region <= 0:
        return pred
    n, c = probs.shape[:2]
    flat = (torch.arange(n, device=pred.device).view(n, 1) * c + pred.flatten(1)).flatten()
    area = torch.bincount(flat, minlength=n * c).view(n, c)
    small = area < min_region * pred[0].numel()  # classes with no pixels too: they must not receive any
    small[:, 0] = False
    return probs.masked_fill(small[:, :, None, None], -1.0).argmax(dim=1)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, tta: bool = False, min_region: float = 0.0) -> torch.Tensor:
    """Class indices N x H x W (long) for float images N x 3 x H x W in [0, 1] (or uint8 0-255)."""
    if images.dtype == torch.uint8:
        images = images.float() / 255
    was_training = model.training
    model.eval()
    try:
        return drop_small_classes(segmentation_probs(model, images, tta), min_region)
    finally:
        model.train(was_training)


def load_segmentation_model(path: Path, device: torch.device) -> tuple[UNet, dict]:
    """The U-Net of a segmentation checkpoint (best.pt or last.pt) and its meta."""
    ckpt = load_checkpoint(path, "segmentation")
    model = UNet(**ckpt["meta"]["arch"])
    load_weights(model, ckpt, path)
    return model.to(device, memory_format=torch.channels_last).eval(), ckpt["meta"]


def frames_in(path: Path) -> list[Path]:
    if path.is_dir():
        frames = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "_mask" not in p.stem)
        if not frames:
            raise DataError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
        return frames
    if not path.is_file():
        raise DataError(f"{path}: input frame or folder does not exist")
    return [path]


def predict_files(weights: Path, inputs: Path, out: Path, device: str = "auto", tta: bool = False,
                  min_region: float = 0.0) -> list[Path]:
    """Writes ``<stem>_mask.png`` (grey levels of mapping.json) and ``<stem>_overlay.png`` per frame;
    frames are resized to the training size for the model and the mask back to the frame's size."""
    runtime = setup_runtime(device, "fp32")
    model, meta = load_segmentation_model(weights, runtime.device)
    grey_levels = np.array(meta["grey_levels"], dtype=np.uint8)
    colours = class_colours(len(grey_levels))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for frame_path in frames_in(inputs):
        frame = torch.from_numpy(open_image(frame_path, "RGB")).permute(2, 0, 1)[None]
        h, w = frame.shape[-2:]
        size = tuple(meta.get("image_size") or (h - h % DOWNSAMPLING, w - w % DOWNSAMPLING))
        pred = predict(model, resize_uint8(frame, size, nearest=False).to(runtime.device), tta, min_region)
        pred = resize_uint8(pred[:, None].to(torch.uint8).cpu(), (h, w), nearest=True)[0, 0].numpy()
        stem = frame_path.stem.removesuffix("_input")
        Image.fromarray(grey_levels[pred]).save(out / f"{stem}_mask.png")
        rgb = frame[0].permute(1, 2, 0).numpy().astype(np.float32)
        overlay = np.where(pred[..., None] > 0, 0.45 * rgb + 0.55 * colours[pred], rgb).astype(np.uint8)
        Image.fromarray(overlay).save(out / f"{stem}_overlay.png")
        written.append(out / f"{stem}_mask.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="segmentation checkpoint (best.pt)")
    parser.add_argument("--input", type=Path, required=True, help="a frame, or a folder searched recursively")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tta", action="store_true", help="average over flips (test-time augmentation)")
    parser.add_argument("--min-region", type=float, default=0.0,
                        help="drop an instrument class covering less than this fraction of a frame (e.g. 0.005)")
    args = parser.parse_args()

    def body() -> None:
        written = predict_files(args.weights, args.input, args.out, args.device, args.tta, args.min_region)
        print(f"wrote {len(written)} masks and overlays to {args.out}")

    cli.main(body)


if __name__ == "__main__":
    main()
