"""What the GPU run relies on, tested on a CPU: the precision choice, several trainings at once, the course-data
download, and the benchmark's measuring code on a tiny case."""
from __future__ import annotations

import functools
import http.server
import threading
import zipfile

import pytest
import torch

from hw6 import engine, experiment, label_efficiency, train_segmentation
from hw6.kit import cli
from hw6.kit.errors import DataError
from hw6.tools import bench, fetch_data
import helpers
from helpers import make_root


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_on_cuda_follows_the_compute_capability(capability, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert engine.auto_precision(torch.device("cuda", 0)) == expected  # a T4 (7.5) gets fp16, not emulated bf16


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_needs_native_bf16(native, expected, monkeypatch):
    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: native)
    assert engine.auto_precision(torch.device("cpu")) == expected
    assert engine.auto_precision(torch.device("mps")) == "fp32"


@pytest.mark.parametrize("forced", ["fp32", "bf16"])
def test_hw6_precision_sets_auto_for_every_run_and_a_bad_value_is_one_line(forced, monkeypatch):
    monkeypatch.setenv("HW6_PRECISION", forced)
    assert engine.setup_runtime("cpu").precision == forced
    assert engine.setup_runtime("cpu", "fp16").precision == "fp16"  # an explicit --precision wins
    monkeypatch.setenv("HW6_PRECISION", " AUTO ")
    assert engine.setup_runtime("cpu").precision == engine.auto_precision(torch.device("cpu"))
    monkeypatch.setenv("HW6_PRECISION", "fp64")
    with pytest.raises(cli.UsageError, match="^HW6_PRECISION=fp64: expected auto, fp32, bf16 or fp16$"):
        engine.setup_runtime("cpu")
    with pytest.raises(cli.UsageError, match="^HW6_PRECISION=fp64"):  # where the options enter, before any folder
        train_segmentation.resolve_options()


def test_a_resume_under_another_hw6_precision_is_refused(synthetic_root, tmp_path, monkeypatch):
    options = dict(epochs=1, image_size=(32, 40), limit=4, batch_size=2, progress=False)
    monkeypatch.setenv("HW6_PRECISION", "fp32")
    train_segmentation.train(synthetic_root, tmp_path / "run", **options)
    monkeypatch.setenv("HW6_PRECISION", "bf16")
    with pytest.raises(engine.CheckpointError, match="precision 'fp32' in the checkpoint, 'bf16' now"):
        train_segmentation.train(synthetic_root, tmp_path / "run", resume="latest", **{**options, "epochs": 2})


def test_run_jobs_runs_trainings_at_once_in_their_own_processes(tmp_path):
    jobs = [experiment.Job(helpers.meet_sibling, "", str(tmp_path / name), {"sibling": other})
            for name, other in (("a", "b"), ("b", "a"))]
    results = experiment.run_jobs(jobs, parallel=2)
    assert all(r["saw_sibling"] for r in results) and results[0]["pid"] != results[1]["pid"]
    assert {r["threads"] for r in results} == {max(1, (__import__("os").cpu_count() or 1) // 2)}


def test_two_concurrent_smoke_trainings_write_their_own_complete_runs(synthetic_root, tmp_path):
    options = dict(image_size=(32, 40), epochs=1, batch_size=4, progress=False)
    result = experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path, [0, 1], 2, **options)
    assert [m["options"]["seed"] for m in result["runs"]] == [0, 1]
    assert all(m["fit"]["complete"] and (tmp_path / f"seed{s}" / "best.pt").is_file()
               for s, m in zip([0, 1], result["runs"]))
    assert result["summary"]["test"]["mean_instrument_dice"]["n"] == 2


def _serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_course_data_download_is_verified_and_unpacked_outside_the_repository(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "segmentation" / ".DS_Store").write_bytes(b"\0")  # not data: outside the digest
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "data.zip", "w") as z:
        for path in root.rglob("*"):
            z.write(path, f"HW6_data-abc/{path.relative_to(root)}")
    server = _serve(served)
    url = f"http://127.0.0.1:{server.server_port}/data.zip"
    try:
        with pytest.raises(DataError, match="differ from the pinned copy"):
            fetch_data.course_data(tmp_path / "bad", url, "0" * 64)
        assert not (tmp_path / "bad" / "endo-real").exists()  # nothing kept
        got = fetch_data.course_data(tmp_path / "home", url, fetch_data.digest(root))
        assert got == tmp_path / "home" / "endo-real" and (got / "mapping.json").read_bytes() == (root / "mapping.json").read_bytes()
        assert fetch_data.digest(got) == fetch_data.digest(root)
        (got / "notes.txt").write_text("mine")  # a verified copy with a user's file: kept, and named
        assert fetch_data.course_data(tmp_path / "home", url, fetch_data.digest(root)) == got
        (got / "mapping.json").write_text("{}")  # no longer the course data: refused, nothing deleted
        with pytest.raises(DataError, match="holds other files"):
            fetch_data.course_data(tmp_path / "home", url, fetch_data.digest(root))
        assert (got / "notes.txt").read_text() == "mine"
        (tmp_path / "linked").mkdir()
        (tmp_path / "linked" / "endo-real").symlink_to(got)
        with pytest.raises(DataError, match="is a link"):
            fetch_data.course_data(tmp_path / "linked", url, fetch_data.digest(root))
        with pytest.raises(DataError, match="offline"):
            fetch_data.course_data(tmp_path / "x", f"http://127.0.0.1:{server.server_port}/missing.zip", "0" * 64)
    finally:
        server.shutdown()


def test_bench_measures_a_tiny_case(synthetic_root):
    runtime = engine.setup_runtime("cpu", "fp32")
    figures = bench.bench_segmentation_training(synthetic_root, runtime, 2, 1, 1, compiled=False, allocator=False)
    assert figures["seg_train_images_per_s"] > 0 and figures["seg_baseline_train_images_per_s"] > 0
    assert figures["seg_frame_size"] == [64, 80] and figures["seg_flops_per_image"] > 1e8
    assert bench.matmul_peak(runtime, repeats=1, rounds=1) > 0


def test_an_interrupted_set_of_seeds_resumes_each_seed_where_it_stopped(synthetic_root, tmp_path):
    options = dict(image_size=(32, 40), batch_size=4, progress=False)
    whole = experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path / "whole", [0, 1],
                                        epochs=2, **options)
    experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path / "cut", [0], epochs=2,
                                **options)  # seed 0 finished, seed 1 never started
    resumed = experiment.train_over_seeds(train_segmentation.train, synthetic_root, tmp_path / "cut", [0, 1],
                                          epochs=2, resume="latest", **options)
    assert [m["test"]["confusion"] for m in resumed["runs"]] == [m["test"]["confusion"] for m in whole["runs"]]
    assert resumed["summary"]["test"]["mean_instrument_dice"]["n"] == 2


def test_an_interrupted_grid_and_label_efficiency_curve_resume_as_if_never_stopped(synthetic_root, tmp_path):
    """What HW6_RESUME=1 relies on beyond seeds: the 1(c) grid and the 1(e) curve continue run by run."""
    options = dict(image_size=(32, 40), batch_size=4, epochs=1, progress=False, seed=0)
    grid = {"lr": [1e-3, 3e-4]}
    whole = train_segmentation.sweep(synthetic_root, tmp_path / "whole", grid, **options)
    train_segmentation.sweep(synthetic_root, tmp_path / "cut", {"lr": [1e-3]}, **options)  # lr 3e-4 never ran
    resumed = train_segmentation.sweep(synthetic_root, tmp_path / "cut", grid, resume="latest", **options)
    assert resumed["details"]["study"]["rows"] == [
        {**row, "train_seconds": mine["train_seconds"]}
        for row, mine in zip(whole["details"]["study"]["rows"], resumed["details"]["study"]["rows"])]
    assert resumed["test"]["confusion"] == whole["test"]["confusion"]

    init = tmp_path / "whole" / "lr=0.001" / "best.pt"
    curve = dict(fractions=[0.5, 1.0], seeds=[0], image_size=(32, 40), batch_size=4, epochs=1, progress=False)
    full = label_efficiency.run(synthetic_root, tmp_path / "le", init, **curve)
    label_efficiency.run(synthetic_root, tmp_path / "le-cut", init, **{**curve, "fractions": [0.5]})
    again = label_efficiency.run(synthetic_root, tmp_path / "le-cut", init, resume=True, **curve)
    assert again["rows"] == full["rows"]


@pytest.mark.parametrize("resume, overwrite, fragment", [("runs/x/last.pt", False, "takes no checkpoint"),
                                                          ("latest", True, "give one of them")])
def test_a_set_of_runs_refuses_a_checkpoint_path_or_resume_with_overwrite(resume, overwrite, fragment, tmp_path):
    with pytest.raises(cli.UsageError, match=fragment):
        label_efficiency.run(tmp_path, tmp_path / "le", tmp_path / "init.pt", resume=resume, overwrite=overwrite)
    with pytest.raises(cli.UsageError, match=fragment):
        experiment.train_over_seeds(train_segmentation.train, tmp_path, tmp_path / "s", [0], resume=resume,
                                    overwrite=overwrite)
