"""The data contract: layout, mapping forms, numeric order, lookup table, resize, decode-once cache."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from hw6 import datasets
from hw6.datasets import ColorizationDataset, EndoSegDataset, InMemoryLoader, load_mapping, select_fraction
from hw6.kit import cli
from helpers import GREYS, NAMES, make_root


def test_items_are_float_images_and_class_index_masks(tmp_path):
    root = make_root(tmp_path / "r")
    ds = EndoSegDataset(root, "train")
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 24)
    assert 0 <= image.min() and image.max() <= 1
    assert mask.dtype == torch.long and mask.shape == (16, 24)
    assert ds.images.dtype == torch.uint8 and ds.masks.dtype == torch.uint8
    assert ds.class_names == NAMES and ds.grey_levels == GREYS
    # grey 32 -> class 1, grey 64 -> class 2 (rank of the grey level), 0 -> background
    grey = np.asarray(Image.open(root / "segmentation/train/0/0_mask.png"))
    expected = np.searchsorted(GREYS, grey)
    assert torch.equal(mask, torch.from_numpy(expected).long())


def test_indices_sorted_numerically_from_any_start_with_gaps_and_stray_files(tmp_path):
    root = make_root(tmp_path / "r", first_index=5, n=6)  # 5, 7, 9, 11, 13, 15: "11" sorts before "5" as text
    (root / "segmentation/train/.DS_Store").write_bytes(b"\0\1")
    (root / "segmentation/train/Icon\r").write_bytes(b"")
    (root / "segmentation/train/notes.txt").write_text("hello")
    ds = EndoSegDataset(root, "train")
    assert ds.indices == [5, 7, 9, 11, 13, 15]
    frame = np.array(Image.open(root / "segmentation/train/11/11_input.jpg").convert("RGB"))
    assert torch.equal(ds.images[3], torch.from_numpy(frame).permute(2, 0, 1))


def test_image_size_resizes_frames_bilinear_and_masks_nearest(tmp_path):
    root = make_root(tmp_path / "r", size=(32, 48))
    ds = EndoSegDataset(root, "train", image_size=(16, 24))
    assert ds.images.shape[-2:] == (16, 24) and ds.masks.shape[-2:] == (16, 24)
    assert set(ds.masks.unique().tolist()) <= {0, 1, 2}  # nearest: no blended labels


def test_mapping_forms(tmp_path):
    valid = tmp_path / "a.json"
    valid.write_text(json.dumps({"64": "Other", "0": "Background_Tissue", "32": "Bipolar_Forceps"}))
    assert load_mapping(valid) == (GREYS, NAMES)
    reverse = tmp_path / "b.json"
    reverse.write_text(json.dumps({"Other": 64, "Background_Tissue": 0, "Bipolar_Forceps": 32}))
    assert load_mapping(reverse) == (GREYS, NAMES)
    course = tmp_path / "mapping.json"
    course.write_text('{\n\t"Background_Tissue": 0\n\t"Bipolar_Forceps": 32\n\t"Other": 64\n}')
    with pytest.warns(UserWarning, match="mapping.json: not valid JSON"):
        assert load_mapping(course) == (GREYS, NAMES)


def test_warnings_print_as_one_line_without_the_source(tmp_path, monkeypatch):
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    cli.plain_warnings()  # what the scripts and the notebook's session do
    course = tmp_path / "mapping.json"
    course.write_text('{\n\t"Background_Tissue": 0\n\t"Bipolar_Forceps": 32\n\t"Other": 64\n}')
    with pytest.warns(UserWarning) as caught:
        load_mapping(course)
    w = caught[0]  # printed through formatwarning, as Python's default showwarning does
    assert warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) == (
        f"warning: {tmp_path.name}/mapping.json: not valid JSON (commas missing, as the course ships it); "
        "read it anyway\n")  # the data folder's name, not the machine's path: the notebook saves this line


def test_real_course_mapping(real_endo):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        levels, names = load_mapping(real_endo / "mapping.json")
    assert levels == list(range(0, 256, 32)) and names[0] == "Background_Tissue" and names[-1] == "Other"


def test_real_data_loads_with_its_quirks(real_endo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = EndoSegDataset(real_endo, "test", image_size=(64, 80))
        val_cor = ColorizationDataset(real_endo, "validation", image_size=(64, 80))
    assert len(test) == 50 and test.num_classes == 8
    assert val_cor.indices[0] == 1 and len(val_cor) == 50  # validation_cor is numbered from 1
    present = set(test.masks.unique().tolist())
    assert 5 not in present and 6 not in present  # the README: no Grasping_Retractor nor Scissors in test


def test_second_construction_loads_from_cache_without_decoding(tmp_path, monkeypatch):
    root = make_root(tmp_path / "r")
    first = EndoSegDataset(root, "validation")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(datasets, "open_image", no_decoding)
    second = EndoSegDataset(root, "validation")
    assert torch.equal(first.images, second.images) and torch.equal(first.masks, second.masks)


def test_cache_is_invalidated_when_a_file_changes(tmp_path):
    root = make_root(tmp_path / "r")
    EndoSegDataset(root, "test")
    path = root / "segmentation/test/0/0_mask.png"
    Image.fromarray(np.full((16, 24), 64, dtype=np.uint8)).save(path)
    assert (EndoSegDataset(root, "test").masks[0] == 2).all()


def test_colorization_dataset_contract(tmp_path):
    root = make_root(tmp_path / "r")
    # a grey file stored with three channels is converted, not refused
    rgb_grey = root / "colorization/train_cor/1/1_gray.jpg"
    Image.open(rgb_grey).convert("RGB").save(rgb_grey)
    train = ColorizationDataset(root, "train")
    val = ColorizationDataset(root, "validation")
    grey, rgb = train[1]
    assert grey.shape == (1, 16, 24) and rgb.shape == (3, 16, 24)
    assert val.indices == [1, 2, 3]
    with pytest.raises(ValueError):
        ColorizationDataset(root, "test")  # only train_cor and validation_cor exist for colorization


def test_in_memory_loader_covers_split_once_per_epoch_and_shards_evaluation(tmp_path):
    root = make_root(tmp_path / "r", n=7)
    ds = EndoSegDataset(root, "train")
    loader = InMemoryLoader(ds, 3, shuffle=True, seed=0)
    loader.set_epoch(0)
    seen = torch.cat([images for images, _ in loader])
    assert len(seen) == 7 and len(loader) == 3
    loader.set_epoch(1)
    other = torch.cat([images for images, _ in loader])
    assert not torch.equal(seen, other)  # a new order each epoch
    shards = [torch.cat([m for _, m in InMemoryLoader(ds, 2, shuffle=False, rank=r, world_size=2)]) for r in (0, 1)]
    assert sum(len(s) for s in shards) == 7  # evaluation shards: every frame exactly once, no padding


def test_select_fraction_is_seeded_and_covers_rare_classes():
    masks = torch.zeros(40, 4, 4, dtype=torch.uint8)
    masks[:30, 0, 0] = 1  # a common class, in 30 frames
    masks[30:, :2, :2] = 2  # a less common class, in 10 frames
    masks[38, 3, 3] = 3  # the rarest class, in one frame only
    a = select_fraction(masks, 0.1, seed=3)
    assert a == select_fraction(masks, 0.1, seed=3) and len(a) == 4
    assert 38 in a  # the only frame with class 3 is always picked
    assert any(i >= 30 for i in a) and any(i < 30 for i in a)  # every stratum is represented
    assert {tuple(select_fraction(masks, 0.25, seed=s)) for s in range(5)} != {tuple(a)}  # the seed matters
    assert select_fraction(masks, 1.0, seed=0) == list(range(40))
