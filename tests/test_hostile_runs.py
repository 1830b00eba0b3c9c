"""Hostile arguments and output folders: every case ends with a non-zero exit and at most three lines on stderr
naming the option or path, no traceback, no file of the data root changed, and no stale result left behind."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hw6.tools import fetch_data, predict
from hw6.notebook import results
from hw6 import synthetic_endo
from hw6 import train_colorization
from hw6 import train_segmentation
from hw6 import transfer_vgg
from hw6.datasets import DataError, EndoSegDataset
from conftest import ROOT
import helpers
from helpers import make_root
from test_vgg import write_tiny_fashion


def _run(module, argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _fingerprint(root: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _assert_refused(code: int, err: str, fragment: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert fragment in err, err


@pytest.fixture()
def root(tmp_path):
    return make_root(tmp_path / "root", size=(16, 24))


def _seg(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "2", "--no-progress", *extra]


ARGUMENT_CASES = {
    "negative seed": (["--seed", "-1"], "--seed"),
    "unknown device": (["--device", "foo"], "--device"),
    "label fraction above 1": (["--label-fraction", "2"], "--label-fraction"),
    "label fraction 0": (["--label-fraction", "0"], "--label-fraction"),
    "min region 2": (["--min-region", "2"], "--min-region"),
    "negative min region": (["--min-region", "-0.1"], "--min-region"),
    "negative workers": (["--workers", "-3"], "--workers"),
    "infinite lr": (["--lr", "inf"], "--lr"),
    "nan lr": (["--lr", "nan"], "--lr"),
    "zero patience": (["--patience", "0"], "--patience"),
    "negative full-size epochs": (["--full-size-epochs", "-1"], "--full-size-epochs"),
    "full-size epochs without a smaller size": (["--full-size-epochs", "1"], "full_size_epochs"),
    "batch norm on one value": (["--image-size", "8x8", "--limit", "1"], "--image-size 8x8"),
    "resume and overwrite": (["--resume", "--overwrite"], "--overwrite"),
}


@pytest.mark.parametrize("case", ARGUMENT_CASES)
def test_bad_segmentation_arguments(case, root, tmp_path, capsys):
    argv, fragment = ARGUMENT_CASES[case]
    before = _fingerprint(root)
    code, err = _run(train_segmentation, _seg(root, tmp_path / "out", *argv), capsys)
    _assert_refused(code, err, fragment)
    assert _fingerprint(root) == before and not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it(root, tmp_path, capsys):
    code, err = _run(train_segmentation, _seg(root, tmp_path / "out", "--device", "cuda"), capsys)
    _assert_refused(code, err, "--device cuda")


def test_out_that_is_a_file(root, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    for module, argv in ((train_segmentation, _seg(root, tmp_path / "taken")),
                         (train_colorization, _seg(root, tmp_path / "taken"))):
        code, err = _run(module, argv, capsys)
        _assert_refused(code, err, "taken")
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_that_is_read_only(root, tmp_path, capsys):
    (tmp_path / "locked").mkdir(mode=0o555)
    code, err = _run(train_segmentation, _seg(root, tmp_path / "locked" / "run"), capsys)
    _assert_refused(code, err, "locked")


@pytest.fixture()
def earlier(root, tmp_path, capsys):
    """A finished run in tmp_path/out, with a file from an even older sweep beside it."""
    out = tmp_path / "out"
    code, err = _run(train_segmentation, _seg(root, out, "--epochs", "2"), capsys)
    assert code == 0, err
    (out / "sweep.csv").write_text("stale")
    return out


def test_out_holding_an_earlier_run_is_refused_without_resume_or_overwrite(root, earlier, capsys):
    before = _fingerprint(earlier)
    code, err = _run(train_segmentation, _seg(root, earlier), capsys)
    _assert_refused(code, err, "--overwrite")
    assert _fingerprint(earlier) == before


def test_overwrite_replaces_the_earlier_run_and_keeps_what_the_user_put_there(root, earlier, capsys):
    (earlier / "mine").mkdir()
    (earlier / "mine" / "notes.md").write_text("precious")
    with pytest.warns(UserWarning, match="kept 2 entries this project did not write: mine, sweep.csv"):
        code, err = _run(train_segmentation, _seg(root, earlier, "--overwrite", "--lr", "1e-4"), capsys)
    assert code == 0, err
    assert (earlier / "sweep.csv").read_text() == "stale" and (earlier / "mine" / "notes.md").read_text() == "precious"
    assert json.loads((earlier / "metrics.json").read_text())["options"]["lr"] == 1e-4


def test_overwrite_of_a_set_removes_the_seeds_it_no_longer_trains(root, tmp_path, capsys):
    out = tmp_path / "set"
    assert _run(train_segmentation, _seg(root, out, "--seeds", "0", "1"), capsys)[0] == 0
    assert _run(train_segmentation, _seg(root, out, "--seeds", "0", "--overwrite"), capsys)[0] == 0
    assert (out / "seed0" / "metrics.json").is_file() and not (out / "seed1").exists()


@pytest.mark.parametrize("where", ["segmentation/train/99", "."])
def test_out_inside_the_data_root_is_refused_without_a_trace(where, root, capsys):
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, err = _run(train_segmentation, _seg(root, root / where, "--overwrite"), capsys)
    _assert_refused(code, err, "inside the data root")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_out_holding_the_data_root_is_refused(root, capsys):
    code, err = _run(train_segmentation, _seg(root, root.parent, "--overwrite"), capsys)
    _assert_refused(code, err, "around the data root")
    assert (root / "mapping.json").is_file()


def test_repeated_seeds_are_refused_before_any_training(root, tmp_path, capsys):
    code, err = _run(train_segmentation, _seg(root, tmp_path / "s", "--seeds", "0", "0"), capsys)
    _assert_refused(code, err, "seed 0 is given twice")
    assert not (tmp_path / "s").exists()


HOLD = """
import sys
from pathlib import Path
from hw6 import engine
engine.hold_folder(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.readline()
"""


def test_one_run_per_folder_and_a_killed_holder_leaves_no_stale_lock(root, tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = _run(train_segmentation, _seg(root, out), capsys)
        _assert_refused(code, err, f"another run is writing there (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    assert _run(train_segmentation, _seg(root, out), capsys)[0] == 0  # the lock died with its process


def test_overwrite_of_a_set_refuses_while_one_of_its_runs_is_held(root, tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "set"
    assert _run(train_segmentation, _seg(root, out, "--seeds", "0", "1"), capsys)[0] == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "seed1")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = _run(train_segmentation, _seg(root, out, "--seeds", "0", "1", "--overwrite"), capsys)
        _assert_refused(code, err, f"another run is writing its seed1/ (pid {holder.pid})")
        assert (out / "seed0" / "metrics.json").is_file() and (out / "seed1" / "metrics.json").is_file()  # kept
    finally:
        holder.kill()
        holder.wait()


SIGNAL_AT = r"""
import os, signal, sys
import torch
from hw6 import datasets, engine, train_segmentation

moment, sig = sys.argv[1], getattr(signal, sys.argv[2])


def firing(original, before):
    def wrapped(*args, **kwargs):  # the process signals itself at this exact moment: no timing involved
        if before:
            os.kill(os.getpid(), sig)
        result = original(*args, **kwargs)
        if not before:
            os.kill(os.getpid(), sig)
        return result
    return wrapped


if moment == "while parsing the arguments":
    from hw6.kit import cli
    cli.positive_int = firing(cli.positive_int, True)
elif moment == "while loading data":
    datasets.EndoSegDataset._decode = firing(datasets.EndoSegDataset._decode, True)
elif moment == "in the first epoch":
    torch.optim.Adam.step = firing(torch.optim.Adam.step, True)
else:  # after the first checkpoint: last.pt and the history of epoch 1 written
    engine.write_history = firing(engine.write_history, False)
train_segmentation.main(sys.argv[3:])
"""


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
@pytest.mark.parametrize("moment", ["while parsing the arguments", "while loading data", "in the first epoch",
                                    "after a checkpoint"])
def test_a_signal_at_any_moment_stops_a_training_with_one_true_line(moment, signame, code, root, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    argv = _seg(root, out, "--epochs", "2")
    env = {**os.environ, "HW6_CACHE_DIR": str(tmp_path / "cache")}  # a fresh cache: the frames decode here
    stopped = subprocess.run([sys.executable, "-c", SIGNAL_AT, moment, signame, *argv], capture_output=True,
                             text=True, timeout=300, env=env, preexec_fn=helpers.ctrl_c_enabled)
    lines = [line for line in stopped.stderr.splitlines() if not line.startswith("warning:")]
    assert stopped.returncode == code and len(lines) == 1 and "Traceback" not in stopped.stderr, stopped.stderr
    if moment == "after a checkpoint":
        assert lines[0] == (f"interrupted: epoch 1 is kept in {out / 'last.pt'}; the same command with --resume "
                            "continues it")
        resumed = subprocess.run([sys.executable, "train_segmentation.py", *argv, "--resume"], capture_output=True,
                                 text=True, timeout=300, env=env, cwd=ROOT)
        assert resumed.returncode == 0, resumed.stderr
        assert [row["epoch"] for row in json.loads((out / "history.json").read_text())] == [1, 2]
    elif moment == "while parsing the arguments":
        assert lines[0] == "interrupted before it started: nothing was written" and not out.exists()
    else:
        assert lines[0] == "interrupted before an epoch of the run finished: nothing of it was kept"
        assert not (out / "last.pt").exists() and not (out / "metrics.json").exists()


def test_sigterm_stops_a_command_with_one_line():
    import subprocess
    import sys

    code = "import os, signal\nfrom hw6.kit import cli\ncli.main(lambda: os.kill(os.getpid(), signal.SIGTERM))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143 and result.stderr.strip().startswith("interrupted:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_and_the_previous_file_stays(tmp_path, monkeypatch):
    import errno

    from hw6.kit import atomic
    from hw6.kit.errors import DiskFull

    atomic.save_torch({"epoch": 1}, tmp_path / "last.pt")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(DiskFull, match="no space left to write last.pt"):
        atomic.save_torch({"epoch": 2}, tmp_path / "last.pt")
    assert torch.load(tmp_path / "last.pt")["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_resume_after_the_training_files_changed_is_refused(root, tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(train_segmentation, _seg(root, out, "--epochs", "1"), capsys)[0] == 0
    frame = next((root / "segmentation" / "train").glob("*/*_input.jpg"))
    Image.open(frame).rotate(90).save(frame)  # same name, other content
    code, err = _run(train_segmentation, _seg(root, out, "--epochs", "2", "--resume"), capsys)
    _assert_refused(code, err, "training files")


def test_resume_on_the_same_data_rewritten_continues(root, tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(train_segmentation, _seg(root, out, "--epochs", "1"), capsys)[0] == 0
    first = json.loads((out / "history.json").read_text())
    for path in (root / "segmentation" / "train").rglob("*.*"):  # the data provisioned again: new times, same bytes
        path.write_bytes(path.read_bytes())
        os.utime(path, (1e9, 1e9))
    code, err = _run(train_segmentation, _seg(root, out, "--epochs", "2", "--resume"), capsys)
    assert code == 0, err
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]  # continued, not started again


def test_a_mapping_with_one_class_is_refused(tmp_path, capsys):
    root = make_root(tmp_path / "one", mapping={"0": "Background_Tissue"})
    code, err = _run(train_segmentation, _seg(root, tmp_path / "o"), capsys)
    _assert_refused(code, err, "at least two classes")


def test_a_16_bit_frame_is_refused_not_read_as_white(root, tmp_path, capsys):
    frame = next((root / "segmentation" / "train").glob("*/*_input.jpg"))
    Image.fromarray(np.full((16, 24), 40000, dtype=np.uint16)).save(frame.with_suffix(".png"), format="PNG")
    frame.with_suffix(".png").replace(frame)  # a 16-bit PNG under the .jpg name
    code, err = _run(train_segmentation, _seg(root, tmp_path / "o"), capsys)
    _assert_refused(code, err, "16-bit")


def test_a_swapped_decode_cache_entry_is_decoded_again(root, tmp_path, monkeypatch):
    monkeypatch.setenv("HW6_CACHE_DIR", str(tmp_path / "cache"))
    train, test = EndoSegDataset(root, "train"), EndoSegDataset(root, "test")
    entries = {p.stat().st_mtime_ns: p for p in (tmp_path / "cache").glob("*.pt")}
    first, second = sorted(entries.values(), key=lambda p: p.stat().st_mtime_ns)
    second.write_bytes(first.read_bytes())  # the test split's entry now holds the training frames
    again = EndoSegDataset(root, "test")
    assert torch.equal(again.images, test.images) and not torch.equal(again.images, train.images)


def test_fashion_labels_that_do_not_fit_their_images_are_refused(tmp_path, capsys):
    fashion = write_tiny_fashion(tmp_path / "f", 64)
    labels = fashion / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8] = 12  # a label out of range
    labels.write_bytes(bytes(data))
    code, err = _run(transfer_vgg, ["--mode", "scratch", "--data", str(fashion), "--out", str(tmp_path / "o")], capsys)
    _assert_refused(code, err, "labels must lie in 0-9")
    labels.write_bytes(bytes(data[:8]) + b"\x01" * 10)
    header = bytearray(labels.read_bytes())
    header[4:8] = (10).to_bytes(4, "big")
    labels.write_bytes(bytes(header))
    code, err = _run(transfer_vgg, ["--mode", "scratch", "--data", str(fashion), "--out", str(tmp_path / "o")], capsys)
    _assert_refused(code, err, "labels for the 64 images")


def test_a_pickle_in_torchvisions_weights_cache_never_runs(tmp_path, monkeypatch):
    import pickle

    from hw6.transfer_vgg import load_vgg16

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "code ran"))
    cache = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "vgg16-397923af.pth").write_bytes(pickle.dumps(Payload()))
    try:
        with pytest.raises(DataError, match="is not torchvision's 397923af"):
            load_vgg16(True, None)
        assert not marker.exists()
        # a file whose SHA-256 does match is read (tensors only) and recorded as torchvision's
        state = cache / "vgg16-397923af.pth"
        torch.save(__import__("torchvision").models.vgg16().state_dict(), state)
        monkeypatch.setattr(fetch_data, "IMAGENET_SHA256_PREFIX", hashlib.sha256(state.read_bytes()).hexdigest()[:8])
        _, info = load_vgg16(True, None)
        assert info["imagenet_official"] is True and info["weights"] == "vgg16-397923af.pth"
    finally:
        (cache / "vgg16-397923af.pth").unlink()


def test_out_holding_other_files_is_never_deleted(root, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    code, err = _run(train_segmentation, _seg(root, tmp_path / "notes", "--overwrite"), capsys)
    _assert_refused(code, err, "not a run")
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("argv, fragment", [
    (["--lr", "0.5"], "lr 0.001 in the checkpoint, 0.5 now"),
    (["--image-size", "8x16"], "image_size"),
    (["--batch-size", "3"], "batch_size"),
    (["--augment"], "augment"),
    (["--seed", "4"], "seed"),
    (["--epochs", "1"], "may only grow"),
])
def test_resume_with_other_options_is_refused(argv, fragment, root, earlier, capsys):
    before = _fingerprint(earlier)
    code, err = _run(train_segmentation, [*_seg(root, earlier, "--epochs", "2"), "--resume", *argv], capsys)
    _assert_refused(code, err, fragment)
    assert _fingerprint(earlier) == before


def test_resume_may_grow_the_epoch_budget(root, earlier, capsys):
    code, err = _run(train_segmentation, [*_seg(root, earlier), "--epochs", "3", "--resume"], capsys)
    assert code == 0, err
    assert len(json.loads((earlier / "history.json").read_text())) == 3


def test_colorization_resume_with_another_learning_rate_is_refused(root, tmp_path, capsys):
    out = tmp_path / "color"
    assert _run(train_colorization, _seg(root, out), capsys)[0] == 0
    code, err = _run(train_colorization, [*_seg(root, out, "--lr", "0.01"), "--resume"], capsys)
    _assert_refused(code, err, "lr")


def test_vgg_image_size_too_small_and_resume_with_other_options(tmp_path, capsys):
    fashion = write_tiny_fashion(tmp_path / "fashion", 20)
    base = ["--mode", "scratch", "--data", str(fashion), "--out", str(tmp_path / "v"), "--epochs", "1", "--no-progress"]
    code, err = _run(transfer_vgg, [*base, "--image-size", "16x16"], capsys)
    _assert_refused(code, err, "--image-size 16x16")
    assert _run(transfer_vgg, base, capsys)[0] == 0
    code, err = _run(transfer_vgg, [*base, "--resume", "--batch-size", "7"], capsys)
    _assert_refused(code, err, "batch_size")


@pytest.mark.parametrize("text", ['[["Background", 0], ["Other", 32]]', "[0, 32]", '"0 32"'])
def test_mapping_that_is_not_an_object(text, root, tmp_path, capsys):
    (root / "mapping.json").write_text(text)
    code, err = _run(train_segmentation, _seg(root, tmp_path / "out"), capsys)
    _assert_refused(code, err, "mapping.json")


@pytest.mark.parametrize("name", ["\u0663", "\u00b2", "3a"])
def test_folders_not_named_by_ascii_digits_are_ignored_with_one_warning(name, root):
    (root / "segmentation" / "train" / name).mkdir()
    with pytest.warns(UserWarning, match="ignored 1 folder"):
        ds = EndoSegDataset(root, "train")
    assert ds.indices == [0, 2, 4]


def test_two_folders_of_one_index_are_refused(root):
    twin = root / "segmentation" / "train" / "002"
    twin.mkdir()
    for suffix in ("_input.jpg", "_mask.png"):
        (twin / f"002{suffix}").write_bytes((root / "segmentation" / "train" / "2" / f"2{suffix}").read_bytes())
    with pytest.raises(DataError, match="index 2"):
        EndoSegDataset(root, "train")


def test_size_check_names_the_odd_frame_and_passes_after_the_requested_resize(root, capsys, tmp_path):
    odd = root / "segmentation" / "train" / "0"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(odd / "0_input.jpg")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(odd / "0_mask.png")
    code, err = _run(train_segmentation, _seg(root, tmp_path / "a"), capsys)
    _assert_refused(code, err, "train/0/0_input.jpg")  # frame 0 is the odd one, not frame 2
    code, err = _run(train_segmentation, _seg(root, tmp_path / "b", "--image-size", "16x24"), capsys)
    assert code == 0, err


def test_output_files_follow_the_umask(root, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert _run(train_segmentation, _seg(root, tmp_path / "out"), capsys)[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "metrics.json").stat().st_mode & 0o777 == 0o644


def test_synthetic_generator_refuses_a_file_and_other_settings(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = _run(synthetic_endo, ["--out", str(tmp_path / "file")], capsys)
    _assert_refused(code, err, "file")
    small = ["--n-train", "2", "--n-val", "1", "--n-test", "1", "--n-color-train", "1", "--n-color-val", "1",
             "--size", "16x24"]
    assert _run(synthetic_endo, ["--out", str(tmp_path / "s"), *small], capsys)[0] == 0
    code, err = _run(synthetic_endo, ["--out", str(tmp_path / "s"), *small[:-2], "--size", "32x40"], capsys)
    _assert_refused(code, err, "other settings")


def test_notebook_refuses_a_data_root_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="typo"):
        results.data_root(str(tmp_path / "typo"), "smoke", tmp_path / "results")
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


# ------------------------------------------------------------------------------------------------ predict.py
@pytest.fixture()
def model(root, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("model")
    assert _run(train_segmentation, _seg(root, out, "--overwrite"), capsys)[0] == 0
    return out / "best.pt"


def test_predict_mirrors_the_tree_and_skips_masks_and_its_own_outputs(root, model, tmp_path, capsys):
    before = _fingerprint(root)
    frame = root / "segmentation" / "test" / "2" / "frame_masked.jpg"  # a frame whose name contains "_mask"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(frame)
    before = _fingerprint(root)
    out = tmp_path / "pred"
    code, err = _run(predict, ["--weights", str(model), "--input", str(root / "segmentation"), "--out", str(out)], capsys)
    assert code == 0, err
    masks = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_pred.png"))
    assert len(masks) == 3 * 3 + 1 and "train/2/2_pred.png" in masks and "test/2/2_pred.png" in masks
    assert "test/2/frame_masked_pred.png" in masks and not list(out.rglob("*_mask.png"))
    overlay = np.asarray(Image.open(out / "test/2/2_overlay.png"))
    assert overlay.shape[0] >= 16 and overlay.shape[1] == 2 * (24 + 4) + 190  # overlay, colour mask, legend
    assert _fingerprint(root) == before
    code, err = _run(predict, ["--weights", str(model), "--input", str(out), "--out", str(tmp_path / "again")], capsys)
    assert code != 0 and "no frame to segment" in err  # its own outputs are never read as frames


@pytest.mark.parametrize("where", ["inside the input", "inside the data root", "over a foreign file"])
def test_predict_never_writes_into_data_or_over_foreign_files(where, root, model, tmp_path, capsys):
    frame = root / "segmentation" / "test" / "2" / "2_input.jpg"
    out = {"inside the input": root / "segmentation" / "test" / "preds", "inside the data root": frame.parent,
           "over a foreign file": tmp_path / "mine"}[where]
    if where == "over a foreign file":
        out.mkdir()
        (out / "2_pred.png").write_bytes(b"my own file")
    before = _fingerprint(root) | _fingerprint(tmp_path / "mine") if out.parent == tmp_path else _fingerprint(root)
    inputs = root / "segmentation" / "test" if where == "inside the input" else frame
    code, err = _run(predict, ["--weights", str(model), "--input", str(inputs), "--out", str(out)], capsys)
    _assert_refused(code, err, str(out.resolve()) if where != "over a foreign file" else "2_pred.png")
    after = _fingerprint(root) | _fingerprint(tmp_path / "mine") if out.parent == tmp_path else _fingerprint(root)
    assert after == before


def test_predict_takes_several_inputs_and_refuses_two_frames_with_one_output(root, model, tmp_path, capsys):
    test, validation = root / "segmentation" / "test", root / "segmentation" / "validation"
    out = tmp_path / "pred"
    code, err = _run(predict, ["--weights", str(model), "--input", str(test / "2" / "2_input.jpg"),
                               str(validation), "--out", str(out)], capsys)
    assert code == 0, err
    assert {p.relative_to(out).as_posix() for p in out.rglob("*_pred.png")} == {"2_pred.png"} | {
        f"{p.name}/{p.name}_pred.png" for p in validation.iterdir()}
    code, err = _run(predict, ["--weights", str(model), "--input", str(test), str(validation), "--out",
                               str(tmp_path / "both")], capsys)
    _assert_refused(code, err, "both would write")
    assert not (tmp_path / "both").exists()  # refused before any output


def test_predict_refuses_a_decompression_bomb(model, tmp_path, capsys, monkeypatch):
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 2000 pixels: more than twice the limit
    code, err = _run(predict, ["--weights", str(model), "--input", str(tmp_path / "huge.png"), "--out",
                               str(tmp_path / "p")], capsys)
    _assert_refused(code, err, "huge.png")


def test_predict_bad_device_and_min_region(model, tmp_path, capsys):
    base = ["--weights", str(model), "--input", str(tmp_path), "--out", str(tmp_path / "p")]
    for argv, fragment in ((["--device", "tpu"], "--device"), (["--min-region", "2"], "--min-region")):
        code, err = _run(predict, [*base, *argv], capsys)
        _assert_refused(code, err, fragment)


NOTEBOOK_PARAMETERS = [
    ({"HW6_PROFILE": "huge"}, "HW6_PROFILE=huge"),
    ({"HW6_PARALLEL": "abc"}, "HW6_PARALLEL=abc"),
    ({"HW6_PARALLEL": "0"}, "HW6_PARALLEL=0"),
    ({"HW6_PARALLEL": "-1"}, "HW6_PARALLEL=-1"),
    ({"HW6_PARALLEL": "1000"}, "HW6_PARALLEL=1000"),
    ({"HW6_DEVICE": "tpu"}, "HW6_DEVICE=tpu"),
    ({"HW6_DATA_ROOT": "/no/such/root"}, "HW6_DATA_ROOT=/no/such/root"),
    ({"HW6_VGG16_WEIGHTS": "/no/such.pth"}, "HW6_VGG16_WEIGHTS=/no/such.pth"),
] + ([({"HW6_DEVICE": "cuda"}, "HW6_DEVICE=cuda")] if not torch.cuda.is_available() else [])


@pytest.mark.parametrize("env, fragment", NOTEBOOK_PARAMETERS)
def test_bad_notebook_parameters_are_one_line_before_a_kernel_starts(env, fragment, tmp_path, monkeypatch, capsys):
    from hw6.tools import run_notebook

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(run_notebook, "execute", lambda *a, **k: pytest.fail("a kernel was started"))
    code, err = _run(run_notebook, ["--output", str(tmp_path / "nb.ipynb")], capsys)
    _assert_refused(code, err, fragment)


def test_bad_notebook_files_and_out_are_one_line(tmp_path, monkeypatch, capsys):
    from hw6.tools import run_notebook

    monkeypatch.setattr(run_notebook, "execute", lambda *a, **k: pytest.fail("a kernel was started"))
    (tmp_path / "notjson.ipynb").write_text("{ not json")
    (tmp_path / "file").write_text("x")
    for argv, fragment in ((["--notebook", str(tmp_path / "missing.ipynb")], "no such file"),
                           (["--notebook", str(tmp_path / "notjson.ipynb")], "not a Jupyter notebook")):
        _assert_refused(*_run(run_notebook, argv, capsys), fragment)
    monkeypatch.setenv("HW6_OUT", str(tmp_path / "file"))
    _assert_refused(*_run(run_notebook, ["--output", str(tmp_path / "o.ipynb")], capsys), "HW6_OUT=")


def test_predict_refuses_a_truncated_frame_before_writing_anything(model, root, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, path in enumerate(sorted((root / "segmentation" / "test").glob("*/*_input.jpg"))):
        (frames / f"{k}.jpg").write_bytes(path.read_bytes())
    (frames / "1.jpg").write_bytes((frames / "1.jpg").read_bytes()[:60])
    code, err = _run(predict, ["--weights", str(model), "--input", str(frames), "--out", str(tmp_path / "pred")], capsys)
    _assert_refused(code, err, "1.jpg")
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").rglob("*.png"))


def test_report_never_replaces_a_pdf_it_did_not_write(tmp_path):
    from hw6.notebook import report

    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 the user's own")
    with pytest.raises(report.cli.UsageError, match="not written by this project"):
        report.render([report.Block("text", "x")], tmp_path / "report.pdf")
    assert (tmp_path / "report.pdf").read_bytes() == b"%PDF-1.4 the user's own"
    report.render([report.Block("text", "x")], tmp_path / "ours.pdf")
    report.render([report.Block("text", "y")], tmp_path / "ours.pdf")  # its own report it replaces


def test_a_run_refused_while_reading_its_data_leaves_no_folder(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    next((root / "segmentation" / "train").glob("*/*_mask.png")).write_bytes(b"not a png")
    code, err = _run(train_segmentation, _seg(root, tmp_path / "runs" / "new"), capsys)
    _assert_refused(code, err, "_mask.png")
    assert not (tmp_path / "runs").exists()


def test_repeated_fractions_of_the_label_efficiency_curve_are_refused(root, tmp_path):
    from hw6 import label_efficiency
    from hw6.kit.errors import UsageError

    with pytest.raises(UsageError, match="fraction 0.5 is given twice"):
        label_efficiency.run(root, tmp_path / "le", tmp_path / "init.pt", fractions=[0.5, 0.5], seeds=[0])
    assert not (tmp_path / "le").exists()


def test_a_resume_says_which_trainings_start_from_scratch(root, tmp_path, capsys):
    from hw6 import experiment

    options = dict(epochs=1, batch_size=2, progress=False)
    experiment.train_over_seeds(train_segmentation.train, root, tmp_path / "set", [0], **options)
    (tmp_path / "set" / "seed0" / "last.pt").unlink()  # as in a fresh clone: results without checkpoints
    capsys.readouterr()
    experiment.train_over_seeds(train_segmentation.train, root, tmp_path / "set", [0, 1], resume=True, **options)
    said = [line for line in capsys.readouterr().out.splitlines() if "starts from scratch" in line]
    assert said == [f"{tmp_path / 'set' / 'seed0'}: no last.pt to continue, so this training starts from scratch "
                    "and replaces the earlier best.pt, history.json, metrics.json",
                    f"{tmp_path / 'set' / 'seed1'}: no last.pt to continue, so this training starts from scratch"]


INTERRUPT_PARALLEL = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import helpers
from hw6 import experiment

root, out = Path(sys.argv[1]), Path(sys.argv[2])
jobs = [experiment.Job(helpers.interrupt_after_an_epoch, root, out / "a", {"seed": 0}),
        experiment.Job(helpers.wait_to_be_stopped, root, out / "b", {}),
        experiment.Job(helpers.wait_to_be_stopped, root, out / "queued", {})]
try:
    experiment.run_jobs(jobs, parallel=2)
except KeyboardInterrupt:
    print(experiment.interrupted_words())
"""


def test_ctrl_c_with_parallel_trainings_cancels_the_queue_and_says_what_each_run_kept(root, tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", INTERRUPT_PARALLEL, str(root), str(tmp_path / "set"),
                             str(ROOT / "tests")], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            preexec_fn=helpers.ctrl_c_enabled)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("interrupted: each run keeps its last.pt (a epoch 1, b nothing); the same "
                                     "command with --resume continues them")
    assert (tmp_path / "set" / "b" / "started").is_file() and not (tmp_path / "set" / "queued").exists()
