"""Augmentation for segmentation, on tensors (CPU or GPU), with torchvision.transforms.v2.

Geometric transforms move frame and mask together (the mask is a ``tv_tensors.Mask``, so v2 resamples it
with nearest-neighbour and leaves its values alone); colour jitter touches the frame only. v2 draws one set
of random parameters per call, so each image of a batch is transformed by its own call.
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


def build_augmentation(strong: bool = False) -> v2.Compose:
    """Experiment 1(b): random horizontal and vertical flips of frame and mask, and colour jitter of the
    frame (brightness, contrast, saturation, a little hue: lighting and tissue colour vary between
    procedures, instrument geometry does not). ``strong`` adds a small random rotation, scale and shift."""
    transforms = [
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomVerticalFlip(p=0.5),
        v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.03),
    ]
    if strong:
        transforms.insert(2, v2.RandomAffine(degrees=15, translate=(0.05, 0.05), scale=(0.9, 1.15)))
    return v2.Compose(transforms)


class SegmentationAugment:
    """Applies ``build_augmentation(strong)`` to each (frame, mask) of a batch.

    Call with images N x 3 x H x W float in [0, 1] and masks N x H x W long; returns the same shapes.
    """

    def __init__(self, strong: bool = False) -> None:
        self.strong = strong
        self.transform = build_augmentation(strong)

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask)) for image, mask in zip(images, masks)]
        return (torch.stack([image.as_subclass(torch.Tensor) for image, _ in pairs]).clamp_(0, 1),
                torch.stack([mask.as_subclass(torch.Tensor) for _, mask in pairs]))
