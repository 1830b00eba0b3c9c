"""Augmentation for segmentation, on whole batches of tensors (CPU or GPU).

Every image of a batch draws its own flips and colour-jitter factors, from the distributions of per-image
calls of torchvision's ``RandomHorizontalFlip``, ``RandomVerticalFlip`` and ``ColorJitter``, but the batch is
transformed by a few tensor operations at once. Per-image calls launch hundreds of small kernels per batch:
on an H200 they took 11.9 ms per batch of 10, more than the 8.7 ms model step, and the batched version
1.6 ms (docs/gpu-step-profile-h200.txt). Geometric transforms move frame and mask together; colour jitter
touches the frame only. Imports torch only, so the file can be copied into any notebook.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

JITTER = dict(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.03)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, strong: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Experiment 1(b): random horizontal and vertical flips of frame and mask, and colour jitter of the frame
    (brightness, contrast, saturation, a little hue: lighting and tissue colour vary between procedures,
    instrument geometry does not). ``strong`` adds a small random rotation, scale and shift.

    Args:
        images: N x 3 x H x W float in [0, 1].
        masks: N x H x W class indices.

    Returns:
        The same shapes and dtypes; mask values are only moved, never mixed.
    """
    images, masks = random_flips(images, masks)
    if strong:
        images, masks = random_affine(images, masks)
    return color_jitter(images, **JITTER), masks


def random_flips(images: torch.Tensor, masks: torch.Tensor, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips each (frame, mask) pair left-right with probability ``p``, then up-down with probability ``p``.
    ``torch.where`` on a per-image draw, not boolean indexing, so a GPU batch needs no host sync."""
    n = images.shape[0]
    for dim in (-1, -2):
        flip = torch.rand(n, device=images.device) < p
        images = torch.where(flip.view(n, 1, 1, 1), images.flip(dim), images)
        masks = torch.where(flip.view(n, 1, 1), masks.flip(dim), masks)
    return images, masks


def random_affine(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation up to 15 degrees, shift up to 5% of each side, scale 0.9-1.15, one draw per pair (the ranges of
    torchvision's ``RandomAffine(15, (0.05, 0.05), (0.9, 1.15))``), in one ``grid_sample`` per batch: the frame
    bilinear, the mask nearest-neighbour so that class indices are moved, never mixed. Uncovered pixels
    become 0 (black frame, background mask)."""
    n, device = images.shape[0], images.device
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(15)
    scale = 0.9 + torch.rand(n, device=device) * 0.25
    theta = torch.zeros(n, 2, 3, device=device)
    # The sampling grid maps output to input coordinates: the inverse rotation and scale.
    aspect = images.shape[-2] / images.shape[-1]  # H / W: grid coordinates run -1..1 along both sides
    theta[:, 0, 0], theta[:, 0, 1] = angle.cos() / scale, -angle.sin() / scale * aspect
    theta[:, 1, 0], theta[:, 1, 1] = angle.sin() / scale / aspect, angle.cos() / scale
    theta[:, :, 2] = (torch.rand(n, 2, device=device) * 2 - 1) * 0.05 * 2  # [-1, 1] spans a side: 5% is 0.1
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images.float(), grid, mode="bilinear", align_corners=False).to(images.dtype)
    warped_masks = F.grid_sample(masks[:, None].float(), grid, mode="nearest", align_corners=False)
    return warped, warped_masks[:, 0].to(masks.dtype)


def rgb_to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> N x 1 x H x W with the ITU-R 601 weights torchvision and PIL use."""
    r, g, b = images.unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def color_jitter(images: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 hue: float) -> torch.Tensor:
    """torchvision's ``ColorJitter`` applied to every image with its own factors: brightness, contrast and
    saturation factors uniform in [1 - x, 1 + x], hue shift uniform in [-hue, hue] of a full turn. The four
    adjustments run in a random order drawn once per batch (torchvision draws one per call, i.e. per image:
    each image's order is uniformly random either way).

    images: N x 3 x H x W float in [0, 1]; returns the same.
    """
    n, device = images.shape[0], images.device
    factors = {name: 1 + (torch.rand(n, device=device) * 2 - 1) * spread
               for name, spread in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation))}
    factors["hue"] = (torch.rand(n, device=device) * 2 - 1) * hue
    names = list(factors)
    for i in torch.randperm(len(names)).tolist():
        images = ADJUST[names[i]](images, factors[names[i]])
    return images


def _blend(images: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``ratio * images + (1 - ratio) * other``, clamped to [0, 1]; ratio: one factor per image (N)."""
    ratio = ratio.view(-1, 1, 1, 1)
    return (ratio * images + (1 - ratio) * other).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, torch.zeros_like(images[:, :1]), factor)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blends with each image's mean grey level."""
    return _blend(images, rgb_to_grayscale(images).mean(dim=(-3, -2, -1), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blends with each image's own greyscale version."""
    return _blend(images, rgb_to_grayscale(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotates each image's hue by ``shift`` of a full turn, keeping saturation and value (HSV, as PIL and
    torchvision define them). Hue h is measured in sixths of a turn; back to RGB with the closed form
    ``channel = V - C * clamp(min(k, 4 - k), 0, 1)``, ``k = (n + h) mod 6``, n = 5, 3, 1 for R, G, B, where
    V is the largest channel and C the spread between largest and smallest."""
    r, g, b = images.unbind(dim=1)
    value, low = images.amax(dim=1), images.amin(dim=1)
    chroma = value - low
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))  # grey pixels: any hue, C = 0 cancels it
    h = torch.where(value == r, (g - b) / safe, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = (h + 6 * shift.view(-1, 1, 1)).remainder(6)
    k = (torch.tensor([5.0, 3.0, 1.0], device=images.device).view(1, 3, 1, 1) + h.unsqueeze(1)).remainder(6)
    return value.unsqueeze(1) - chroma.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


ADJUST = {"brightness": adjust_brightness, "contrast": adjust_contrast, "saturation": adjust_saturation,
          "hue": adjust_hue}


def random_shift_flip(x: torch.Tensor, max_shift: float = 0.1) -> torch.Tensor:
    """2(a)'s augmentation of N x C x H x W images: a random horizontal flip and a shift of up to ``max_shift`` of
    the side per image, in one grid_sample (borders repeated)."""
    n = len(x)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0)
    theta[:, 1, 1] = 1
    theta[:, :, 2] = (torch.rand(n, 2, device=x.device) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)
