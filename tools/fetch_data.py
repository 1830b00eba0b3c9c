"""Downloads the course's segmentation and colorization data from its public repository, pinned to one commit,
and checks every file against the digest of the copy this project was developed on.

    python tools/fetch_data.py [--out ~/hw6-data]

The archive is unpacked outside the repository (default ``~/hw6-data/endo-real``). The digest covers every
frame, mask, grey image and mapping.json (sha256 of each file, listed in path order), so a changed, missing or
extra file is found; macOS ``.DS_Store`` and ``Icon\\r`` files are not data and are left out of it. Offline, it says
what to do instead. The other downloads live here too: Fashion-MNIST (``fashion_mnist``) and torchvision's
ImageNet VGG16 weights (``vgg16_imagenet_weights``), each refused in one line when it cannot be had.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import torch

from hw6.datasets import FASHION_IDX_FILES
from hw6.kit import cli
from hw6.kit.errors import DataError

REPOSITORY = "https://github.com/keshuaixu/HW6_data"
COMMIT = "f59ed8c79e85a30dde429ff84d870bf4c8696464"
ARCHIVE_URL = f"{REPOSITORY}/archive/{COMMIT}.zip"
DIGEST = "d3233a6a80f763107305b5c8a8c8f653bc849a619878c273d67fda96c1ecff1b"  # of shared/data/endo-real, 4069 files
DEFAULT_OUT = Path.home() / "hw6-data"
IMAGENET_SHA256_PREFIX = "397923af"  # torchvision's vgg16-397923af.pth


def data_files(root: Path) -> list[Path]:
    """The files the digest covers: mapping.json and the images under segmentation/ and colorization/."""
    found = [root / "mapping.json"] + [p for top in ("segmentation", "colorization") for p in (root / top).rglob("*")
                                       if p.is_file() and p.suffix in (".jpg", ".png")]
    return sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def digest(root: Path) -> str:
    """sha256 over "<relative path>\\t<sha256 of the file>\\n" for each of ``data_files``."""
    total = hashlib.sha256()
    for path in data_files(root):
        total.update(f"{path.relative_to(root).as_posix()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return total.hexdigest()


def course_data(out: str | Path = DEFAULT_OUT, url: str = ARCHIVE_URL, expected: str = DIGEST) -> Path:
    """OUT/endo-real, downloaded and verified (kept and re-verified if it is already there)."""
    root = Path(out).expanduser() / "endo-real"
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise DataError(f"{root}: is a link or a file, not a folder this command made; move it or choose another --out")
    if root.is_dir() and any(root.iterdir()):
        if digest(root) == expected:
            covered = set(data_files(root))
            others = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                            and p not in covered and p.name != ".DS_Store")  # .DS_Store files come with the course's
            print(f"course data already in {root}, verified" + (f"; {len(others)} other file(s) there are not part "
                                                                 f"of it: {', '.join(others[:3])}" if others else ""))
            return root
        raise DataError(f"{root}: holds other files than the verified course data; move it or choose another --out "
                        f"(nothing was changed)")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "data.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as exc:
            raise DataError(f"{url}: cannot download the course data ({exc}); offline, copy its segmentation/, "
                            f"colorization/ and mapping.json into a folder and set DATA_ROOT to it") from None
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(Path(tmp) / "unpacked")
        except zipfile.BadZipFile:
            raise DataError(f"{url}: the download is not a zip archive") from None
        unpacked = [p for p in (Path(tmp) / "unpacked").iterdir() if p.is_dir()]
        if len(unpacked) != 1 or digest(unpacked[0]) != expected:
            raise DataError(f"{url}: the downloaded files differ from the pinned copy (digest {expected[:12]}...); "
                            f"nothing was kept")
        if root.exists():
            root.rmdir()  # the empty folder checked above
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked[0]), root)
    print(f"course data downloaded to {root}, every file verified")
    return root


def fashion_mnist(root: str | Path) -> Path:
    """ROOT, to hold FashionMNIST/raw/: downloaded there by torchvision only when ROOT does not exist yet or is
    empty (a folder holding anything else is never written into), and removed again if the download fails.
    Otherwise ROOT is returned as it is, and ``datasets.load_fashion_mnist`` names what it lacks."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        return root
    # what a failed download removes: that folder, or every one it made above
    created = root / "FashionMNIST" if root.exists() else next(p for p in [root, *root.parents] if p.parent.exists())
    from torchvision.datasets import FashionMNIST  # only here: the rest of the project reads the files itself

    try:
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as exc:  # no network, a refused or partial download: nothing of it is kept
        shutil.rmtree(created, ignore_errors=True)
        raise DataError(f"{root / 'FashionMNIST' / 'raw'}: Fashion-MNIST not found and its download failed "
                        f"({type(exc).__name__}); put {', '.join(FASHION_IDX_FILES)} (or their .gz) there") from None
    return root


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, computed once per unchanged file (the 528 MB weights are checked before a run
    takes its folder and again when they are loaded)."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vgg16_imagenet_weights() -> Path:
    """torchvision's cached vgg16-397923af.pth, downloaded first when absent (its hash checked by the download),
    refused (one line) unless its SHA-256 starts with the prefix in its name: a replaced file is never read."""
    from torchvision.models import VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=IMAGENET_SHA256_PREFIX, progress=False)
        except Exception as exc:
            raise DataError(f"ImageNet VGG16 weights unavailable (not in torchvision's cache and the download failed: "
                            f"{type(exc).__name__}); fetch {url} where a network is, then pass --weights PATH") from None
    sha256 = file_sha256(path)
    if not sha256.startswith(IMAGENET_SHA256_PREFIX):
        raise DataError(f"{path}: SHA-256 {sha256[:12]}... is not torchvision's {IMAGENET_SHA256_PREFIX}: a damaged "
                        f"or replaced file; delete it, or pass --weights PATH to use it anyway")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to unpack (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    cli.main(lambda: print(course_data(args.out)))


if __name__ == "__main__":
    main(sys.argv[1:])
