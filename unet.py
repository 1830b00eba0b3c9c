"""The assignment's simplified U-Net.

Four resolution levels with 32-64-128-256 channels, two 3x3 convolutions per stage, max-pooling down,
``ConvTranspose2d(k=4, s=2, p=1)`` + ReLU up, and skip connections by concatenation. The assignment's
starter code stops at the last 32-channel stage; the final 1x1 convolution to ``out_channels`` is the
missing last layer. The network returns logits: the task code applies softmax (segmentation) or sigmoid
(colorization). Imports torch only, so the file can be copied into any notebook.
"""
from __future__ import annotations

import torch
from torch import nn

STAGE_CHANNELS = (32, 64, 128, 256)
DOWNSAMPLING = 2 ** (len(STAGE_CHANNELS) - 1)  # H and W must be divisible by this (8)


def double_conv(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by BatchNorm + LeakyReLU(0.1), or ReLU without BatchNorm."""
    layers: list[nn.Module] = []
    for c_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers += [nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True)]
        else:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def up_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Doubles H and W: ConvTranspose2d(kernel 4, stride 2, padding 1) + ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net mapping N x in_channels x H x W to logits N x out_channels x H x W (H, W divisible by 8)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 8, batch_norm: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.batch_norm = in_channels, out_channels, batch_norm
        c1, c2, c3, c4 = STAGE_CHANNELS
        self.enc1 = double_conv(in_channels, c1, batch_norm)
        self.enc2 = double_conv(c1, c2, batch_norm)
        self.enc3 = double_conv(c2, c3, batch_norm)
        self.bottleneck = double_conv(c3, c4, batch_norm)
        self.pool = nn.MaxPool2d(2)
        self.up3, self.dec3 = up_conv(c4, c3), double_conv(2 * c3, c3, batch_norm)
        self.up2, self.dec2 = up_conv(c3, c2), double_conv(2 * c2, c2, batch_norm)
        self.up1, self.dec1 = up_conv(c2, c1), double_conv(2 * c1, c1, batch_norm)
        self.head = nn.Conv2d(c1, out_channels, 1)

    @property
    def arch(self) -> dict:
        """The constructor arguments, stored in checkpoints so that a model can be rebuilt from one."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "batch_norm": self.batch_norm}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x in_channels x H x W with H and W divisible by 8 (the three poolings); returns logits."""
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool(s1))
        s3 = self.enc3(self.pool(s2))
        x = self.bottleneck(self.pool(s3))
        x = self.dec3(torch.cat([self.up3(x), s3], dim=1))
        x = self.dec2(torch.cat([self.up2(x), s2], dim=1))
        x = self.dec1(torch.cat([self.up1(x), s1], dim=1))
        return self.head(x)


def transfer_weights(model: UNet, source: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Initialises ``model`` from another U-Net's state dict (typically the grey-in, RGB-out colorization model).

    Tensors whose name and shape match are loaded. The first convolution of a 1-channel (grey) model is adapted
    to the model's channels by repeating its kernel over them divided by their number, so that a grey frame
    repeated on three channels gives exactly the colorization model's activations. Everything else (the
    32 -> C head, whose output means something else) keeps its fresh initialisation.
    Returns {"loaded": [...], "adapted": [...], "new": [...]}: the tensor names in each case.
    """
    own = model.state_dict()
    report: dict[str, list[str]] = {"loaded": [], "adapted": [], "new": []}
    for name, tensor in own.items():
        src = source.get(name)
        if src is not None and src.shape == tensor.shape:
            own[name] = src
            report["loaded"].append(name)
        elif (name == "enc1.0.weight" and src is not None and src.shape[1] == 1
              and src.shape[0] == tensor.shape[0] and src.shape[2:] == tensor.shape[2:]):
            own[name] = src.repeat(1, tensor.shape[1], 1, 1) / tensor.shape[1]
            report["adapted"].append(name)
        else:
            report["new"].append(name)
    model.load_state_dict(own)
    return report
