"""Atomic file writes: each file is written beside its destination and moved into place with
``os.replace``, so a process killed at any instant leaves either the previous complete file or the new one."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from hw6.kit.errors import DiskFull

# The process's umask, read once: files made by mkstemp are 0600, and are given what open() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)
# In a run folder (engine.prepare_run creates it): the names of the files this project wrote there, one a line.
# --overwrite deletes those and nothing else.
MANIFEST = ".hw6-outputs"


@contextmanager
def replacing(path: str | Path, mode: str = "wb") -> Iterator[io.IOBase]:
    """Opens a temporary file in ``path``'s folder; on success, flushes it to disk and renames it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _record(path)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _no_space(exc):
            raise DiskFull(f"{path.parent}: no space left to write {path.name}; the previous {path.name}, if any, "
                           f"is intact") from None
        raise


def _no_space(exc: BaseException) -> bool:
    """A full disk or quota, as an OSError or as torch.save's RuntimeError around one."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, RuntimeError) and ("No space left" in str(exc) or "error code: 28" in str(exc))


def _record(path: Path) -> None:
    """Lists ``path`` in its folder's manifest, where the folder is a run folder (it has one)."""
    manifest = path.parent / MANIFEST
    if manifest.is_file() and path.name not in manifest.read_text().splitlines():
        with open(manifest, "a", encoding="utf-8") as f:
            f.write(path.name + "\n")


def save_torch(obj: object, path: str | Path) -> None:
    with replacing(path) as f:
        torch.save(obj, f)


def write_text(text: str, path: str | Path) -> None:
    with replacing(path, "w") as f:
        f.write(text)


def write_json(obj: object, path: str | Path) -> None:
    """JSON with NaN written as null (every standard JSON reader accepts it) and paths as strings."""
    write_text(json.dumps(_nan_to_none(obj), indent=2, default=str) + "\n", path)


def write_csv(rows: list[dict], path: str | Path) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with replacing(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """An H x W (grey) or H x W x 3 (RGB) uint8 array as a PNG."""
    with replacing(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def read_json_list(path: str | Path) -> list:
    """The JSON list stored at ``path``; empty when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else []


def savefig(fig, path: str | Path, **kwargs) -> None:
    """Saves a matplotlib figure atomically (the format follows the destination's suffix)."""
    path = Path(path)
    with replacing(path) as f:
        fig.savefig(f, format=path.suffix.lstrip("."), **kwargs)


def _nan_to_none(obj: object) -> object:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj
