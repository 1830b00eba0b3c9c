"""VGG16 transfer on Fashion-MNIST: modes, which parameters change, the exact feature cache, weights, offline."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import vgg16

from hw6.tools import bench
from hw6.kit import cli
from hw6 import transfer_vgg
from hw6.engine import setup_runtime
from hw6.datasets import TensorItems
from hw6.transfer_vgg import FeatureCache, FrozenThenTrainable, load_vgg16, split_vgg


def write_tiny_fashion(root: Path, n: int = 120, seed: int = 0) -> Path:
    """Fashion-MNIST's raw IDX files with ``n`` learnable images per split (class = a bright band's row)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", n), ("t10k", n)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label: 4 + 2 * label] = 255
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            (2051).to_bytes(4, "big") + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + count.to_bytes(4, "big") + labels.tobytes())
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_fashion(tmp_path_factory.mktemp("fashion"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A VGG16 state dict the test makes (random, not ImageNet): the --weights path with a file on disk."""
    path = tmp_path_factory.mktemp("weights") / "vgg16-random.pth"
    torch.manual_seed(0)
    torch.save(vgg16().state_dict(), path)
    return path


def _run(mode, data, out, **kw):
    return transfer_vgg.train(data, out, mode=mode, epochs=1, batch_size=32, limit=kw.pop("limit", 96), test_limit=64,
                              progress=False, **kw)


@pytest.mark.parametrize("mode", ["scratch", "frozen", "finetune-fc", "finetune-all"])
def test_each_mode_trains_one_epoch_and_writes_outputs(mode, tiny, weights, tmp_path):
    m = _run(mode, tiny, tmp_path, weights=None if mode == "scratch" else weights,
             image_size=(32, 32), precision="fp32")
    for name in ("history.json", "history.csv", "curves.png", "metrics.json", "confusion.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    history = json.loads((tmp_path / "history.json").read_text())
    assert {"train_loss", "test_loss", "test_accuracy", "seconds"} <= set(history[0])
    d = m["details"]
    assert d["train_images"] == 96 and d["test_images"] == 64 and len(m["test"]["per_class_accuracy"]) == 10
    assert d["weights"] == ("random init" if mode == "scratch" else weights.name)
    if mode != "scratch":
        assert d["imagenet_official"] is False  # the random checkpoint is not torchvision's 397923af


@pytest.mark.parametrize("mode, trainable", [("frozen", {"classifier.6"}),
                                             ("finetune-fc", {"classifier.0", "classifier.3", "classifier.6"})])
def test_only_intended_parameters_change(mode, trainable, weights):
    model, _ = load_vgg16(True, weights)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen, head = split_vgg(model, mode)
    net = FrozenThenTrainable(frozen, head).train()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randn(4, 3, 32, 32)
    torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    changed = {k.rsplit(".", 1)[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == trainable


@pytest.mark.parametrize("mode", ["frozen", "finetune-fc"])
def test_cached_features_give_the_full_models_logits(mode, weights):
    model, _ = load_vgg16(True, weights)
    model.eval()
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    frozen, head = split_vgg(model, mode)
    cache = FeatureCache(frozen, TensorItems(images, torch.zeros(6, dtype=torch.long)), (32, 32),
                         setup_runtime("cpu", "fp32"))
    with torch.no_grad():
        full = model(transfer_vgg.preprocess(images.float() / 255, (32, 32), True))
        cached = head.eval()(cache.tensors[0])
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_cached_and_uncached_runs_reach_the_same_accuracy(tiny, weights, tmp_path):
    kwargs = dict(weights=weights, image_size=(32, 32), seed=3, precision="fp32")
    a = _run("frozen", tiny, tmp_path / "cache", **kwargs)
    b = _run("frozen", tiny, tmp_path / "nocache", cache=False, **kwargs)
    assert a["options"]["cache"] and not b["options"]["cache"]
    assert a["test"]["accuracy"] == b["test"]["accuracy"]
    ha = json.loads((tmp_path / "cache" / "history.json").read_text())
    hb = json.loads((tmp_path / "nocache" / "history.json").read_text())
    assert ha[0]["train_loss"] == pytest.approx(hb[0]["train_loss"], abs=1e-4)


def test_cosine_schedule_and_final_scores_of_the_last_epoch(tiny, weights, tmp_path):
    m = transfer_vgg.train(tiny, tmp_path, mode="frozen", epochs=2, batch_size=32, limit=96, test_limit=64, lr=1e-3,
                           weights=weights, image_size=(32, 32), precision="fp32", progress=False, scheduler="cosine")
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["lr"] for r in history] == pytest.approx([1e-3, 5e-4])  # cos annealing over 2 epochs
    assert m["test"]["accuracy"] == history[-1]["test_accuracy"]
    assert sum(map(sum, m["test"]["confusion"])) == 64
    row = bench.long_run_row(tmp_path / "metrics.json")
    assert f"{m['test']['accuracy']:.4f}" in row[2] and "--scheduler cosine" in row[-1]
    assert row[1] == "Fashion-MNIST"  # the data column names the dataset, not its root folder
    with pytest.raises(cli.UsageError, match="scheduler"):
        transfer_vgg.train(tiny, tmp_path / "other", mode="frozen", scheduler="step")


def test_weights_file_hash_is_reported(weights, capsys):
    _, info = load_vgg16(True, weights)
    assert len(info["sha256"]) == 64 and not info["imagenet_official"]
    assert "does NOT match torchvision's 397923af" in capsys.readouterr().out


def test_offline_messages_without_weights_and_without_data(tmp_path, tiny, capsys):
    # TORCH_HOME is an empty folder (conftest) and there is no network: no weights can be had.
    with pytest.raises(SystemExit) as exit_info:
        transfer_vgg.main(["--mode", "frozen", "--data", str(tiny), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "ImageNet VGG16 weights unavailable" in err and "--weights" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        transfer_vgg.main(["--mode", "scratch", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "FashionMNIST/raw" in err and "train-images-idx3-ubyte" in err


def test_real_fashion_mnist_one_epoch(real_fashion, tmp_path):
    m = transfer_vgg.train(real_fashion, tmp_path, mode="scratch", epochs=1, batch_size=64, limit=300, test_limit=200,
                           progress=False)
    assert m["details"]["train_images"] == 300 and m["details"]["test_images"] == 200
    assert (tmp_path / "curves.png").is_file()


def test_fashion_mnist_is_read_from_its_files_or_their_gz_alike(tiny, tmp_path):
    import gzip
    import shutil

    from hw6.datasets import load_fashion_mnist

    zipped = tmp_path / "zipped" / "FashionMNIST" / "raw"
    zipped.mkdir(parents=True)
    for path in (tiny / "FashionMNIST" / "raw").iterdir():
        (zipped / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    for train in (True, False):
        plain, from_gz = load_fashion_mnist(tiny, train), load_fashion_mnist(tmp_path / "zipped", train)
        assert all(torch.equal(a, b) for a, b in zip(plain, from_gz)) and plain[1].dtype == torch.long
    shutil.rmtree(tmp_path / "zipped")


@pytest.mark.parametrize("where", ["the FashionMNIST folder", "its raw folder", "a folder of other files",
                                   "a folder that does not exist"])
def test_no_folder_is_left_in_a_data_root_a_fashion_path_misses(where, tiny, tmp_path, capsys):
    """A wrong Fashion-MNIST path is one line, and nothing is created under it (offline: the download fails)."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny, root)
    data = {"the FashionMNIST folder": root / "FashionMNIST", "its raw folder": root / "FashionMNIST" / "raw",
            "a folder of other files": tmp_path / "other", "a folder that does not exist": tmp_path / "new" / "x"}[where]
    if where == "a folder of other files":
        data.mkdir()
        (data / "notes.txt").write_text("mine")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        transfer_vgg.main(["--mode", "scratch", "--data", str(data), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no folder made, none left behind
