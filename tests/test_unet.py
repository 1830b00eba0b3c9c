"""U-Net shapes and the divisibility rule."""
from __future__ import annotations

import pytest
import torch

from hw6.unet import UNet


@pytest.mark.parametrize("size", [(8, 8), (64, 80), (128, 160), (24, 40)])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_output_shape(size, batch_norm):
    model = UNet(3, 8, batch_norm).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, *size)).shape == (2, 8, *size)


def test_colorization_shape_and_channel_counts():
    model = UNet(1, 3)
    assert model(torch.rand(1, 1, 16, 16)).shape == (1, 3, 16, 16)
    assert model.arch == {"in_channels": 1, "out_channels": 3, "batch_norm": True}
    assert [model.enc1[0].out_channels, model.enc2[0].out_channels, model.enc3[0].out_channels,
            model.bottleneck[0].out_channels] == [32, 64, 128, 256]
    assert isinstance(model.up3[0], torch.nn.ConvTranspose2d) and model.up3[0].kernel_size == (4, 4)


def test_train_refuses_a_size_not_divisible_by_8_before_reading_data(tmp_path):
    from hw6 import train_segmentation
    from hw6.kit.errors import UsageError

    with pytest.raises(UsageError, match="divisible by 8"):
        train_segmentation.train(tmp_path / "no-data", tmp_path / "out", image_size=(20, 16))
    assert not (tmp_path / "out").exists()
