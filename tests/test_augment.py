"""The batched augmentation: joint geometry, frame-only colour, torchvision's colour arithmetic per image."""
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from hw6 import augment


def encoded_batch(n: int = 16, h: int = 24, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose red channel spells out the mask (class / 8), so any geometric mismatch shows."""
    gen = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 8, (n, h, w), generator=gen)
    images = torch.rand(n, 3, h, w, generator=gen)
    images[:, 0] = masks / 8
    return images, masks


def test_flips_move_frame_and_mask_together_and_differ_per_image() -> None:
    images, masks = encoded_batch()
    torch.manual_seed(0)
    out_images, out_masks = augment.random_flips(images, masks)
    assert torch.equal(out_images[:, 0], out_masks / 8)
    # every image is one of its four flips, and a batch of 16 sees more than one of them
    seen = set()
    for i in range(len(images)):
        variants = [images[i].flip(dims) if dims else images[i] for dims in ((), (-1,), (-2,), (-2, -1))]
        kind = [k for k, v in enumerate(variants) if torch.equal(out_images[i], v)]
        assert kind, f"image {i} is not a flip of its input"
        seen.add(kind[0])
    assert len(seen) > 1


def test_augment_batch_keeps_shapes_range_and_mask_values() -> None:
    images, masks = encoded_batch()
    torch.manual_seed(1)
    out_images, out_masks = augment.augment_batch(images, masks)
    assert out_images.shape == images.shape and out_masks.shape == masks.shape and out_masks.dtype == masks.dtype
    assert 0 <= out_images.min() and out_images.max() <= 1
    assert torch.equal(out_masks.flatten(1).sort(dim=1).values, masks.flatten(1).sort(dim=1).values)
    assert not torch.allclose(out_images[:, 1:], images[:, 1:])  # colours changed


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation", "hue"])
def test_each_adjustment_matches_torchvision_per_image(name: str) -> None:
    images, _ = encoded_batch(n=6)
    factors = torch.tensor([0.75, 0.9, 1.0, 1.1, 1.25, 1.05]) if name != "hue" else \
        torch.tensor([-0.03, -0.5, 0.0, 0.01, 0.03, 0.49])
    ours = augment.ADJUST[name](images, factors)
    reference = getattr(TF, f"adjust_{name}")
    expected = torch.stack([reference(image, factor.item()) for image, factor in zip(images, factors)])
    torch.testing.assert_close(ours, expected, atol=2e-6, rtol=0)


def test_hue_leaves_grey_pixels_alone() -> None:
    grey = torch.rand(2, 1, 8, 8).expand(2, 3, 8, 8)
    torch.testing.assert_close(augment.adjust_hue(grey, torch.tensor([0.2, -0.4])), grey)


def test_augmentation_runs_inside_training_on_both_strengths(tmp_path, synthetic_root) -> None:
    import train_segmentation

    for strength in ("flips", "strong"):
        m = train_segmentation.train(synthetic_root, tmp_path / strength, augment=strength, epochs=1, batch_size=4,
                                     image_size=(32, 40), limit=8, precision="fp32", progress=False)
        assert m["options"]["augment"] == strength and m["fit"]["epochs_run"] == 1


def test_random_affine_moves_frame_and_mask_together_and_never_mixes_classes() -> None:
    images = torch.zeros(8, 3, 32, 40)
    masks = torch.zeros(8, 32, 40, dtype=torch.long)
    masks[:, 8:24, 10:30] = 3
    images[:, 0, 8:24, 10:30] = 1.0
    torch.manual_seed(0)
    out_images, out_masks = augment.random_affine(images, masks)
    assert out_masks.dtype == masks.dtype and set(out_masks.unique().tolist()) <= {0, 3}
    assert (out_masks[:, 16, 20] == 3).all()  # the centre stays inside the block under every draw
    assert not torch.equal(out_masks, masks)  # the draws moved something
    inside = out_masks == 3
    assert out_images[:, 0][inside].mean() > 0.9 and out_images[:, 0][~inside].mean() < 0.1
