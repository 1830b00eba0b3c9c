"""torchrun with two CPU processes (gloo): DDP training, rank-0-only files, and test metrics that equal a
single-process evaluation of the same weights on the whole split."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import torch

from conftest import ROOT
from hw6.datasets import EndoSegDataset
from hw6.engine import setup_runtime
from hw6.inference import evaluate_split
from hw6.losses import soft_dice_loss
from hw6.unet import UNet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_single_process_evaluation(synthetic_root, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "train_segmentation.py", "--data", str(synthetic_root), "--out", str(out),
           "--epochs", "2", "--batch-size", "2", "--precision", "fp32", "--threads", "1", "--no-progress"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("test: strict Dice") == 1  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert "2 processes" in metrics["device"] and len(json.loads((out / "history.json").read_text())) == 2
    assert not list(out.glob(".*.tmp"))  # no half-written files left behind

    model = UNet()
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])
    # the run's batches of 2: the batch-wide loss depends on them
    single = evaluate_split(model, EndoSegDataset(synthetic_root, "test"), setup_runtime("cpu", "fp32"), 2,
                            soft_dice_loss)
    assert metrics["test"]["confusion"] == single["confusion"]
    assert abs(metrics["test"]["assignment_dice"] - single["assignment_dice"]) < 1e-9
    assert abs(metrics["test"]["loss"] - single["loss"]) < 1e-5
