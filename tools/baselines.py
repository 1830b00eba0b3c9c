"""Adds the no-model baselines to a finished run folder's summary.json: what predicting background everywhere
scores on the test split, and the colorization PSNR of the grey copy and of a constant tint fitted on the
training images (``notebook.results.baselines``, which a notebook execution records at its set-up).

    python tools/baselines.py --data ../shared/data/endo-real --results results

For a summary written before the set-up recorded them. They depend on the data alone, never on a model, so
adding them changes no other number; the data must be the summary's own (its name, and 1(d)'s image size).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hw6.datasets import check_root
from hw6.kit import atomic, cli
from hw6.notebook import results


def add_baselines(data: Path, folder: Path) -> dict:
    """Writes ``results.baselines`` of ``data`` into FOLDER/summary.json and returns them."""
    path = folder / "summary.json"
    if not path.is_file():
        raise cli.UsageError(f"--results {folder}: no summary.json")
    summary = json.loads(path.read_text())
    data = check_root(data)
    if data.name != summary["data"]["name"]:
        raise cli.UsageError(f"--data {data}: the summary's runs are on {summary['data']['name']}, not {data.name}")
    color_size = summary["experiments"].get("1d", {}).get("options", {}).get("image_size")
    summary["baselines"] = {**results.baselines(data, tuple(color_size) if color_size else None),
                            "added_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}  # said in the report
    atomic.write_json(summary, path)
    return summary["baselines"]


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the data the summary's runs trained on")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the folder of summary.json")
    args = parser.parse_args(argv)
    cli.main(lambda: print(json.dumps(add_baselines(args.data, args.results), indent=1)))


if __name__ == "__main__":
    main(sys.argv[1:])
