"""The prepared command for a GPU: the whole notebook at the assignment's settings, then the benchmark, with
everything it produces under one folder.

    python tools/full_run.py --out results-gpu                       # full profile on the course data
    python tools/full_run.py --out /tmp/smoke --profile smoke --data "" --no-bench   # the same path on a CPU

Writes OUT/hw6.ipynb (executed), OUT/results/ (summary.json and every run), OUT/report.pdf, OUT/plots/,
OUT/bench.json (unless --no-bench) and OUT/full_run.json (the card, the wall time of each step and the
command). Data: --data (default ../shared/data/endo-real; "" for the synthetic default) and --fashion (default
../shared/data). Independent trainings share the device (the profile's ``parallel``). A step that fails
stops the run with its error; what was written until then stays.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from nbclient.exceptions import CellExecutionError, DeadKernelError

from hw6.kit import atomic, cli
from hw6.notebook import report
from hw6.tools import run_notebook

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def card() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU run)"


def full_run(out: Path, profile: str = "full", data: str = str(SHARED / "endo-real"), fashion: str = str(SHARED),
             bench: bool = True, weights: str = "") -> dict:
    """Runs the notebook, the report and the benchmark; returns (and writes) OUT/full_run.json."""
    out.mkdir(parents=True, exist_ok=True)
    record = {"card": card(), "profile": profile, "data": Path(data).name or "synthetic default",
              "command": " ".join(sys.argv), "steps": {}}
    os.environ.update({"HW6_PROFILE": profile, "HW6_DATA_ROOT": data, "HW6_FASHION_ROOT": fashion,
                       "HW6_OUT": str(out / "results"), "HW6_VGG16_WEIGHTS": weights, "HW6_PROGRESS": "0"})
    t0 = time.perf_counter()
    record["steps"]["notebook_seconds"] = round(run_notebook.execute(ROOT / "hw6.ipynb", out / "hw6.ipynb"), 1)
    atomic.write_json(record, out / "full_run.json")
    report.build(out / "results", out / "report.pdf", out / "plots")
    if bench:
        t = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--json", str(out / "bench.json"),
                        "--data", data, "--fashion-data", fashion], check=True)
        record["steps"]["bench_seconds"] = round(time.perf_counter() - t, 1)
    record["wall_seconds"] = round(time.perf_counter() - t0, 1)
    atomic.write_json(record, out / "full_run.json")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--profile", choices=("full", "quick", "smoke"), default="full", help="(default full)")
    parser.add_argument("--data", default=str(SHARED / "endo-real"), help="segmentation data root; \"\": synthetic")
    parser.add_argument("--fashion", default=str(SHARED), help="folder holding FashionMNIST/raw/")
    parser.add_argument("--weights", default="", help="local vgg16-397923af.pth for 2(b) and 2(c)")
    parser.add_argument("--no-bench", dest="bench", action="store_false", help="skip the benchmark")
    args = parser.parse_args(argv)

    def body() -> int:
        try:
            print(full_run(args.out, args.profile, args.data, args.fashion, args.bench, args.weights))
        except (CellExecutionError, DeadKernelError) as exc:
            print(run_notebook.failure_words(exc, args.out / "hw6.ipynb"), file=sys.stderr)
            return 1
        return 0

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
