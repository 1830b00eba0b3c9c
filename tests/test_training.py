"""Short real training runs on generated data: the engine, its files, resume, faults, pre-training, sweep."""
from __future__ import annotations

import json
import math
import platform
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from hw6 import train_colorization
from hw6 import train_segmentation
from conftest import ROOT
from hw6.datasets import EndoSegDataset
from hw6.engine import CheckpointError, read_history, setup_runtime
from hw6.inference import evaluate_split, load_pretrained, predict
from hw6.tools.predict import predict_files
from hw6.unet import UNet

SEG_FILES = ["history.json", "history.csv", "best.pt", "last.pt", "metrics.json", "loss.png", "predictions.png",
             "confusion.png"]


@pytest.fixture(scope="module")
def seg_run(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg")
    metrics = train_segmentation.train(synthetic_root, out, epochs=6, batch_size=4, seed=0, progress=False)
    return out, metrics


def test_segmentation_run_lowers_training_loss_and_writes_every_file(seg_run):
    out, metrics = seg_run
    for name in SEG_FILES:
        assert (out / name).stat().st_size > 0, name
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 6
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    test = metrics["test"]
    assert {"assignment_dice", "dice_per_class", "iou_per_class", "mean_instrument_dice", "pixel_accuracy"} <= set(test)
    assert len(test["dice_per_class"]) == 8 and metrics["data"]["synthetic"] is True
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["fit"]["best_epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]


def test_a_single_segmentation_run_is_refused_as_a_long_runs_row(seg_run):
    from hw6.kit import cli
    from hw6.tools import bench

    out, _ = seg_run
    with pytest.raises(cli.UsageError,
                       match="a single segmentation run; give a VGG16 run's metrics.json or a segmentation seed set's"):
        bench.long_run_row(out / "metrics.json")  # BENCHMARKS.md's long runs are seed sets and VGG16 runs


def test_kept_validation_scores_are_those_of_the_restored_weights(seg_run, synthetic_root):
    out, metrics = seg_run
    ckpt = torch.load(out / "best.pt", weights_only=False)
    o = train_segmentation.resolve_options(recipe="assignment", batch_size=4)
    model = UNet(3, 8, o["batch_norm"])
    model.load_state_dict(ckpt["model"])
    validation = EndoSegDataset(synthetic_root, "validation", o["image_size"])
    fresh = evaluate_split(model.eval(), validation, setup_runtime("cpu"), o["batch_size"],
                           train_segmentation.segmentation_loss(o), o["tta"], o["min_region"])
    kept = metrics["validation"]
    assert kept["confusion"] == fresh["confusion"]
    assert kept["loss"] == pytest.approx(fresh["loss"], abs=1e-6)
    best_row = json.loads((out / "history.json").read_text())[metrics["fit"]["best_epoch"] - 1]
    assert best_row["val_loss"] == kept["loss"] and "validation" not in best_row


def test_predict_writes_grey_level_masks_and_overlays(seg_run, synthetic_root, tmp_path):
    out, _ = seg_run
    written = predict_files(out / "best.pt", synthetic_root / "segmentation" / "test", tmp_path / "pred")
    assert len(written) == 4
    mask = np.asarray(Image.open(written[0]))
    assert mask.shape == (64, 80) and set(np.unique(mask)) <= set(range(0, 256, 32))
    assert (tmp_path / "pred" / "0" / "0_overlay.png").is_file()  # the input tree, mirrored
    model = UNet()
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])
    pred = predict(model, torch.rand(2, 3, 64, 80))
    assert pred.shape == (2, 64, 80) and pred.dtype == torch.long


def test_colorization_run_writes_every_file(synthetic_root, tmp_path):
    metrics = train_colorization.train(synthetic_root, tmp_path, epochs=2, batch_size=4, progress=False)
    for name in ["history.json", "history.csv", "best.pt", "loss.png", "colorization.png", "metrics.json"]:
        assert (tmp_path / name).stat().st_size > 0, name
    val = metrics["validation"]
    assert val["loss"] > 0 and val["psnr_db"] == pytest.approx(10 * math.log10(1 / val["loss"]))
    assert metrics["details"]["validation_images"] == 4 and metrics["details"]["train_images"] == 8


def _colorization_checkpoint(path, batch_norm=True):
    torch.manual_seed(1)
    model = UNet(1, 3, batch_norm).eval()
    for module in model.modules():  # non-trivial running statistics, so BatchNorm is really compared
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"meta": {"kind": "colorization", "arch": model.arch}, "model": model.state_dict()}, path)
    return model


def test_grey_to_rgb_adaptation_gives_identical_activations(tmp_path):
    colour = _colorization_checkpoint(tmp_path / "c.pt")
    seg = UNet(3, 8).eval()
    report = load_pretrained(seg, tmp_path / "c.pt")
    assert report["adapted"] == ["enc1.0.weight"] and report["new"] == ["head.weight", "head.bias"]
    assert len(report["loaded"]) == len(seg.state_dict()) - 3
    grey = torch.rand(2, 1, 32, 40)
    features = {}
    for name, model in (("colour", colour), ("seg", seg)):
        model.dec1.register_forward_hook(lambda m, i, o, name=name: features.__setitem__(name, o))
        model(grey.expand(-1, 3, -1, -1) if name == "seg" else grey)
    torch.testing.assert_close(features["seg"], features["colour"], atol=1e-5, rtol=0)


def test_pretrained_checkpoint_of_another_architecture_is_refused(tmp_path):
    _colorization_checkpoint(tmp_path / "c.pt", batch_norm=False)
    with pytest.raises(CheckpointError, match="c.pt"):
        load_pretrained(UNet(3, 8, batch_norm=True), tmp_path / "c.pt")


def test_fine_tuning_records_what_was_loaded(synthetic_root, tmp_path):
    _colorization_checkpoint(tmp_path / "c.pt")
    metrics = train_segmentation.train(synthetic_root, tmp_path / "ft", init_from=tmp_path / "c.pt", epochs=1,
                                       batch_size=4, label_fraction=0.5, progress=False)
    init = metrics["details"]["init"]
    assert init["adapted"] == ["enc1.0.weight"] and "head.weight" in init["new"]
    assert metrics["details"]["train_frames"] == 6


def test_non_finite_loss_stops_and_keeps_the_last_good_files(synthetic_root, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train_segmentation.LOSSES["dice"]

    def poisoned(logits, target, **options):
        calls["n"] += 1
        loss = real(logits, target, **options)
        # epoch 1: 3 training batches + 1 validation batch; call 6 is batch 2 of epoch 2
        return loss * math.nan if calls["n"] == 6 else loss

    monkeypatch.setitem(train_segmentation.LOSSES, "dice", poisoned)
    metrics = train_segmentation.train(synthetic_root, tmp_path, epochs=4, batch_size=4, progress=False)
    assert metrics["fit"]["complete"] is False
    assert metrics["fit"]["stop_reason"] == "non-finite training loss at epoch 2, batch 2"
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    assert (tmp_path / "best.pt").is_file()


def test_study_halves_on_validation_continues_the_better_half_and_tests_only_the_choice(synthetic_root, tmp_path):
    grid = {"lr": [1e-3, 1e-5, 3e-4], "batch_size": [4]}
    metrics = train_segmentation.sweep(synthetic_root, tmp_path, grid, rungs=[1, 2], progress=False)
    assert (tmp_path / "study.csv").read_text().count("\n") == 4 and (tmp_path / "study.md").is_file()
    rows = metrics["details"]["study"]["rows"]
    first = sorted(rows, key=lambda r: -r["score_at_1"])
    survivors, dropped = first[:2], first[2]
    assert all(r["epochs"] == 2 and "score_at_2" in r for r in survivors)
    assert dropped["epochs"] == 1 and "score_at_2" not in dropped
    assert [len(read_history(tmp_path / r["config"])) for r in (*survivors, dropped)] == [2, 2, 1]
    chosen = [r for r in rows if r["chosen"]]
    assert chosen == [max(survivors, key=lambda r: r["score_at_2"])]
    for row in survivors:  # the score is the validation present-class Dice of the weights the run keeps
        run = json.loads((tmp_path / row["config"] / "metrics.json").read_text())
        assert round(run["validation"]["mean_present_instrument_dice"], 4) == row["score_at_2"]
        assert (run["test"] is not None) == row["chosen"]
    assert metrics["test"] is not None and metrics["details"]["study"]["chosen"] == {
        "lr": chosen[0]["lr"], "batch_size": 4}

    # a finished study resumed replays its rungs; one stopped after its first rung trains only the second again
    again = train_segmentation.sweep(synthetic_root, tmp_path, grid, rungs=[1, 2], progress=False, resume="latest")
    assert again["details"]["study"]["rows"] == rows
    progress = json.loads((tmp_path / "study-progress.json").read_text())
    (tmp_path / "study-progress.json").write_text(json.dumps(
        {**progress, "scores": {name: v[:1] for name, v in progress["scores"].items()}}))
    again = train_segmentation.sweep(synthetic_root, tmp_path, grid, rungs=[1, 2], progress=False, resume="latest")
    assert [{k: v for k, v in r.items() if k != "train_seconds"} for r in again["details"]["study"]["rows"]] == [
        {k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert [len(read_history(tmp_path / r["config"])) for r in (*survivors, dropped)] == [2, 2, 1]


def _train_cmd(data, out, *extra):
    return [sys.executable, "train_segmentation.py", "--data", str(data), "--out", str(out), "--epochs", "8",
            "--batch-size", "4", "--augment", "--precision", "fp32", "--no-progress", *extra]


def test_resume_after_sigkill_is_bit_identical(synthetic_root, tmp_path):
    subprocess.run(_train_cmd(synthetic_root, tmp_path / "whole"), cwd=ROOT, check=True, capture_output=True)
    victim = subprocess.Popen(_train_cmd(synthetic_root, tmp_path / "killed"), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "history.json"
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        if history.is_file() and len(json.loads(history.read_text() or "[]")) >= 2:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert victim.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = subprocess.run(_train_cmd(synthetic_root, tmp_path / "killed", "--resume"), cwd=ROOT,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    assert strip(json.loads(history.read_text())) == strip(whole)
    for name in ("best.pt", "last.pt"):
        a = torch.load(tmp_path / "whole" / name, weights_only=True)["model"]
        b = torch.load(tmp_path / "killed" / name, weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_drop_small_classes_reassigns_tiny_regions_to_the_next_class():
    from inference import drop_small_classes

    probs = torch.zeros(2, 3, 10, 10)
    probs[:, 0] = 0.5  # background elsewhere
    probs[:, 1, :3] = 0.9  # class 1 on 30 pixels of both images
    probs[0, 2, 9, :2] = 0.95  # class 2 on 2 pixels of image 0 only, where class 1 is next (0.6 > 0.5)
    probs[0, 1, 9, :2] = 0.6
    plain = drop_small_classes(probs, 0.0)
    assert (plain[0, 9, :2] == 2).all()
    cleaned = drop_small_classes(probs, 0.05)  # 5% of 100 pixels: class 2's 2 pixels are dropped, class 1's 30 kept
    assert (cleaned[0, 9, :2] == 1).all() and (cleaned[:, :3] == 1).all() and (cleaned[0, 5:9] == 0).all()
    assert torch.equal(drop_small_classes(probs, 0.5)[:, :3], torch.zeros(2, 3, 10, dtype=torch.long))  # 30% < 50%


FAULTS_OF_64_MB_TENSORS = """
import resource, sys, torch
from hw6 import engine
def faults(count):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        torch.empty(16 * 2 ** 20).fill_(1.0)  # allocated, touched, freed, as activations are in a step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
if sys.argv[1] == "keep":
    assert engine.keep_freed_memory()
faults(32)  # the heap grows (for up to ~10 blocks here) until freed blocks fit the requests
print(faults(8))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keep_freed_memory acts on glibc only")
def test_keep_freed_memory_reuses_large_blocks_without_page_faults():
    def faults(mode: str) -> int:  # a fresh process each: glibc's defaults cannot be restored in this one
        done = subprocess.run([sys.executable, "-c", FAULTS_OF_64_MB_TENSORS, mode], cwd=ROOT, capture_output=True,
                              text=True, check=True)
        return int(done.stdout)

    default, kept = faults("default"), faults("keep")
    assert default > 8 * 4000  # each mmap'd 64 MB block faults in its 16,384 pages (fewer with huge pages)
    assert kept < default / 4
