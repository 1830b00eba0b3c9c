"""The official-release converter on a tiny fake release that the test writes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hw6.tools import endovis2017
from hw6.datasets import ColorizationDataset, DataError, EndoSegDataset


def fake_release(root, sequences=(1, 2, 3), frames=2):
    for k in sequences:
        seq = root / f"instrument_dataset_{k}"
        (seq / "left_frames").mkdir(parents=True)
        for f in range(frames):
            frame = np.zeros((1080, 1920, 3), np.uint8)
            frame[28:1052, 320:1600] = (200, 80, 60)  # the content area; black borders outside
            Image.fromarray(frame).save(seq / "left_frames" / f"frame{f:03d}.png")
            for name, rows in (("Maryland_Bipolar_Forceps_labels", slice(100, 300)),
                               ("Right_Prograsp_Forceps_labels", slice(600, 800))):
                mask = np.zeros((1080, 1920), np.uint8)
                mask[rows, 400:1000] = 255
                (seq / "ground_truth" / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(seq / "ground_truth" / name / f"frame{f:03d}.png")
    return root


def test_converter_crops_merges_types_and_splits_by_sequence(tmp_path):
    release = fake_release(tmp_path / "release")
    counts = endovis2017.convert(release, tmp_path / "out", val=[2], test=[3])
    assert counts == {"train": 2, "validation": 2, "test": 2, "train_cor": 2, "validation_cor": 2}
    train = EndoSegDataset(tmp_path / "out", "train")
    assert train.images.shape == (2, 3, 256, 320)
    assert train.images[0, :, 0, 0].tolist() == pytest.approx([200, 80, 60], abs=3)  # border cropped away
    mask = train.masks[0]
    assert set(mask.unique().tolist()) == {0, 1, 2}  # background, Bipolar (1), Prograsp (2)
    # rows 100..300 of 1080 -> crop offset 28 -> rows 72..272 of 1024 -> x 0.25 -> 18..68 of 256
    assert (mask[20:66, 30:100] == 1).all() and (mask[148:190, 30:100] == 2).all()
    assert len(ColorizationDataset(tmp_path / "out", "train")) == 2


def test_converter_refuses_unknown_instrument_and_missing_sequence(tmp_path):
    release = fake_release(tmp_path / "release", sequences=(1,), frames=1)
    with pytest.raises(DataError, match="instrument_dataset_5"):
        endovis2017.convert(release, tmp_path / "o", val=[5], test=[1])
    (release / "instrument_dataset_1" / "ground_truth" / "Mystery_Tool_labels").mkdir()
    with pytest.raises(DataError, match="Mystery_Tool_labels: unknown instrument type"):
        endovis2017.convert(release, tmp_path / "o2", val=[], test=[])


def test_converter_refuses_a_used_or_nested_target_and_leaves_nothing_half_written(tmp_path):
    from hw6.kit.errors import UsageError

    release = fake_release(tmp_path / "release", sequences=(1, 2), frames=1)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="not empty"):
        endovis2017.convert(release, tmp_path / "root", val=[2], test=[])
    with pytest.raises(UsageError, match="inside"):
        endovis2017.convert(release, release / "converted", val=[2], test=[])
    assert not (release / "converted").exists() and (tmp_path / "root" / "mine.txt").read_text() == "keep"
    bad = release / "instrument_dataset_2" / "left_frames" / "frame000.png"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated: the second sequence fails after the first was written
    with pytest.raises(DataError, match="frame000.png"):
        endovis2017.convert(release, tmp_path / "new", val=[2], test=[])
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.partial-*"))
