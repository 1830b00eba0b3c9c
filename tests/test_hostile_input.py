"""Malformed data roots and arguments: each ends with one line naming the offending path, a non-zero exit
and no traceback, before any training starts; nothing inside the data root is modified."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hw6 import train_colorization
from hw6 import train_segmentation
from hw6 import transfer_vgg
from hw6.datasets import FASHION_IDX_FILES
from conftest import run_script
from helpers import make_root


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


SEG = "segmentation/train/2"
CASES = {
    # name: (damage(root) -> None, fragment the error must name)
    "root missing": (lambda r: None, "nowhere"),
    "root is a file": (lambda r: (r / "file").write_text("x"), "file"),
    "split missing": (lambda r: os.rename(r / "segmentation/test", r / "segmentation/test_old"), "segmentation/test"),
    "empty split": (lambda r: [p.unlink() for p in (r / "segmentation/validation").rglob("*.*")]
                    and [p.rmdir() for p in sorted((r / "segmentation/validation").glob("*"))], "segmentation/validation"),
    "frame without mask": (lambda r: (r / SEG / "2_mask.png").unlink(), SEG),
    "mask without frame": (lambda r: (r / SEG / "2_input.jpg").unlink(), SEG),
    "split with only masks": (lambda r: [p.unlink() for p in (r / "segmentation/train").rglob("*_input.jpg")], "segmentation/train/"),
    "frame and mask of different sizes": (lambda r: _save(r / SEG / "2_mask.png", np.zeros((8, 8), np.uint8)), "2_mask.png"),
    "grey level missing from mapping": (lambda r: _save(r / SEG / "2_mask.png", np.full((16, 24), 99, np.uint8)), "2_mask.png"),
    "truncated jpeg": (lambda r: _truncate(r / SEG / "2_input.jpg"), "2_input.jpg"),
    "zero-byte png": (lambda r: (r / SEG / "2_mask.png").write_bytes(b""), "2_mask.png"),
    "rgb mask": (lambda r: _save(r / SEG / "2_mask.png", np.zeros((16, 24, 3), np.uint8)), "2_mask.png"),
    "16-bit mask": (lambda r: Image.fromarray(np.zeros((16, 24), np.uint16)).save(r / SEG / "2_mask.png"), "2_mask.png"),
    "mapping missing": (lambda r: (r / "mapping.json").unlink(), "mapping.json"),
    "mapping malformed": (lambda r: (r / "mapping.json").write_text("{this is not: json"), "mapping.json"),
    "mapping duplicate keys": (lambda r: (r / "mapping.json").write_text('{"0": "a", "0": "b", "32": "c"}'), "mapping.json"),
    "mapping non-integer keys": (lambda r: (r / "mapping.json").write_text('{"zero": "a", "32": "b"}'), "mapping.json"),
    "mapping value out of range": (lambda r: (r / "mapping.json").write_text('{"a": 0, "b": 300}'), "mapping.json"),
    "mapping duplicate grey level": (lambda r: (r / "mapping.json").write_text('{"a": 0, "b": 0}'), "mapping.json"),
    "non-numeric folder holding the only frames": (
        lambda r: [os.rename(r / "segmentation/train" / str(i), r / "segmentation/train" / f"extra{i}") for i in (0, 2, 4)],
        "segmentation/train"),
    "frames of different sizes": (lambda r: [_save(r / SEG / "2_input.jpg", np.zeros((8, 8, 3), np.uint8)),
                                             _save(r / SEG / "2_mask.png", np.zeros((8, 8), np.uint8))], "2_input.jpg"),
    "frame file is a folder": (lambda r: (r / SEG / "2_input.jpg").unlink() or (r / SEG / "2_input.jpg").mkdir(), SEG),
}


def _run_main(module, argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _fingerprint(root: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_malformed_segmentation_root(case, tmp_path, capsys):
    damage, fragment = CASES[case]
    root = make_root(tmp_path / "root")
    damage(root)
    data = {"root missing": tmp_path / "nowhere", "root is a file": root / "file"}.get(case, root)
    before = _fingerprint(root)
    code, err = _run_main(train_segmentation, ["--data", str(data), "--out", str(tmp_path / "out"), "--epochs", "1",
                                               "--no-progress"], capsys)
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], err
    assert "Traceback" not in err
    assert _fingerprint(root) == before  # nothing inside the data root is modified
    assert not (tmp_path / "out" / "last.pt").exists()  # refused before any training


def test_colorization_pair_of_different_sizes(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    _save(root / "colorization/train_cor/1/1_gray.jpg", np.zeros((8, 8), np.uint8))
    code, err = _run_main(train_colorization, ["--data", str(root), "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert code == 2 and "colorization/train_cor/1/1_gray.jpg" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    (root / SEG / "2_input.jpg").chmod(0)
    code, err = _run_main(train_segmentation, ["--data", str(root), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "2_input.jpg" in err


@pytest.mark.parametrize("name, magic, damage", [
    ("train-images-idx3-ubyte", 2051, lambda b: b"\x00\x00\x08\x01" + b[4:]),  # a labels magic on images
    ("t10k-labels-idx1-ubyte", 2049, lambda b: b[:-10]),                      # truncated body
])
def test_fashion_idx_faults(name, magic, damage, tmp_path, capsys):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for file, m in FASHION_IDX_FILES.items():
        n = 4
        body = bytes(n) if m == 2049 else bytes(n * 28 * 28)
        header = m.to_bytes(4, "big") + n.to_bytes(4, "big") + (b"" if m == 2049 else (28).to_bytes(4, "big") * 2)
        (raw / file).write_bytes(header + body)
    (raw / name).write_bytes(damage((raw / name).read_bytes()))
    code, err = _run_main(transfer_vgg, ["--mode", "scratch", "--data", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and name in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--image-size", "100x160"], "divisible by 8"),
    (["--epochs", "0"], "positive integer"),
    (["--epochs", "-3"], "positive integer"),
    (["--batch-size", "0"], "positive integer"),
])
def test_bad_arguments(argv, message, tmp_path, capsys):
    code, err = _run_main(train_segmentation, ["--data", str(tmp_path), "--out", str(tmp_path / "o"), *argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("content", ["empty", "text", "truncated", "other task"])
def test_bad_checkpoint_for_init_from_and_resume(content, tmp_path, capsys):
    import torch

    root = make_root(tmp_path / "root", size=(16, 24))
    ckpt = tmp_path / "bad.pt"
    if content in ("truncated", "other task"):
        torch.save({"meta": {"kind": "vgg16-frozen"}, "model": {"w": torch.zeros(1000)}}, ckpt)
        if content == "truncated":
            _truncate(ckpt)
    else:
        ckpt.write_bytes(b"" if content == "empty" else b"not a checkpoint at all")
    for flag in ("--init-from", "--resume"):
        code, err = _run_main(train_segmentation, ["--data", str(root), "--out", str(tmp_path / "o"), flag, str(ckpt),
                                                   "--epochs", "1", "--no-progress"], capsys)
        assert code == 2 and str(ckpt) in err and "Traceback" not in err, (flag, err)


def test_batch_size_larger_than_split_works_with_a_warning(tmp_path):
    root = make_root(tmp_path / "root")
    result = run_script("train_segmentation.py", "--data", str(root), "--out", str(tmp_path / "o"), "--epochs", "1",
                        "--batch-size", "50", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "batch size 50 is larger than the 3 training frames" in result.stderr
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["fit"]["epochs_run"] == 1


def test_cli_error_is_one_line_without_traceback_in_a_real_process(tmp_path):
    root = make_root(tmp_path / "root")
    _truncate(root / SEG / "2_input.jpg")
    result = run_script("train_segmentation.py", "--data", str(root), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "2_input.jpg" in result.stderr, result.stderr
