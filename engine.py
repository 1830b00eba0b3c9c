"""The one training engine: every experiment (segmentation, colorization, VGG16) trains through ``fit``.

``fit`` owns the loop: epochs of train steps under autocast, evaluation, per-epoch history (JSON and CSV),
early stopping with patience on any monitored validation quantity, restore of the best weights, atomic
checkpoints every epoch (``last.pt``: everything needed to resume exactly; ``best.pt``: the best weights),
``resume``, progress bars, and DistributedDataParallel under torchrun. A task supplies any iterable of
batches and two functions: ``train_loss(model, batch) -> scalar`` and ``evaluate(model) -> Evaluation``.

Also here: the runtime (device, precision, torchrun ranks), checkpoints, and the output folder's checks.
A checkpoint is a dict: ``meta`` (``kind``, the task; ``options``, every option of the run; and what the task
adds, such as ``arch``, the model's constructor arguments), ``model`` (the state dict), ``epoch``,
``evaluation``, and in last.pt also ``optimizer``, ``scheduler``, ``history``, ``early_stopping``, ``also_kept``
and ``rng``.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import ctypes
import ctypes.util
import fcntl
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from hw6.datasets import InMemoryDataset, InMemoryLoader
from hw6.kit import atomic
from hw6.kit.cli import PRECISIONS
from hw6.kit.errors import CheckpointError, DeviceUnavailable, RunFolderError, UsageError


# ------------------------------------------------------------------------------------------------ runtime
@dataclass
class Runtime:
    """Where and how to compute: device, autocast dtype (None: fp32), and the torchrun rank layout."""
    device: torch.device
    precision: str
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, channels-last (the fast convolution layout), wrapped for torchrun."""
        model = model.to(self.device, memory_format=torch.channels_last)
        return torch.nn.parallel.DistributedDataParallel(model) if self.world_size > 1 else model

    def loader(self, dataset: InMemoryDataset, batch_size: int, shuffle: bool, seed: int = 0,
               indices: Sequence[int] | None = None) -> InMemoryLoader:
        """Batches of ``dataset`` for this process: under torchrun each process gets its own share."""
        return InMemoryLoader(dataset, batch_size, shuffle, seed, self.rank, self.world_size, indices)

    def shard(self, items: Sequence) -> Sequence:
        """This process's items of a sequence, in turn (all of them in a single process)."""
        return items[self.rank::self.world_size]

    def describe(self) -> str:
        name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                else f"{cpu_name()}, {torch.get_num_threads()} threads")  # threads: OMP_NUM_THREADS or --threads
        ranks = f", {self.world_size} processes" if self.world_size > 1 else ""
        return f"{self.device.type} ({name}), {self.precision}{ranks}"


def cpu_info() -> str:
    """The text of /proc/cpuinfo; empty where there is none (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    models = [line.split(":", 1)[1].strip() for line in cpu_info().splitlines() if line.startswith("model name")]
    return f"{models[0]}, {os.cpu_count()} cores" if models else f"{os.cpu_count()} cores"


def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    flags = cpu_info()
    return "avx512_bf16" in flags or "amx_bf16" in flags


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Lets glibc keep large freed blocks in the process instead of returning them to the OS at once.

    By default glibc serves every allocation above 32 MB with a fresh mmap and unmaps it on free, so each
    training step page-faults (and zero-fills) every full-resolution activation again: at 256x320 a U-Net
    step allocates dozens of such tensors. Served from the heap and kept, they are reused without faults
    (the gain is bench.py's seg_allocator_speedup, measured side by side). Threads other than the main one
    still fall back to mmap for blocks their arena cannot hold, so no allocation can fail for it. glibc's
    own adaptive defaults cannot be restored afterwards: this is for the whole process, so it is opt-in: the
    training scripts call it once at start (``experiment.main``), the notebook in its set-up cell. Returns False
    where the C library is not glibc (macOS, Windows, musl): nothing changes there.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_MMAP_MAX, 0))


def auto_precision(device: torch.device) -> str:
    """bf16 where the hardware computes it natively (CUDA compute capability 8.0 and up; CPUs with AVX512-BF16
    or AMX), fp16 on older CUDA GPUs (with a gradient scaler: a T4, Colab's free GPU, emulates bf16 slowly and
    says it supports it), fp32 elsewhere (MPS, and CPUs that would emulate bf16 many times slower)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def setup_runtime(device: str = "auto", precision: str = "auto", threads: int = 0) -> Runtime:
    """Picks the device (cuda, then mps, then cpu for "auto"; one line naming it when it does not exist), the
    precision ("auto": ``forced_precision``, else ``auto_precision``), and joins the torchrun process group when
    launched under torchrun. Sets nothing else for the process; see ``keep_freed_memory`` for the one
    process-wide setting."""
    if threads > 0:
        torch.set_num_threads(threads)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    dev = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
    if dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        raise DeviceUnavailable(f"--device {device}: no such CUDA device on this machine "
                                f"({torch.cuda.device_count()} visible); use --device cpu or auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"--device {device}: MPS is not available on this machine; use --device cpu or auto")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        # Left to interpreter shutdown, a rank that finishes first (rank 0 still writes files) can abort in the
        # group's destructor ("terminate called without an active exception"), failing the whole torchrun.
        atexit.register(dist.destroy_process_group)
    if precision == "auto":
        precision = forced_precision() or auto_precision(dev)
    return Runtime(dev, precision, rank, world_size)


def forced_precision() -> str | None:
    """$HW6_PRECISION, what "auto" means for every run of a process tree (a test suite, a notebook): fp32, bf16 or
    fp16, or None when unset or "auto"; anything else is one line."""
    value = os.environ.get("HW6_PRECISION", "").strip().lower()
    if value and value not in PRECISIONS:
        raise UsageError(f"HW6_PRECISION={os.environ['HW6_PRECISION']}: expected {', '.join(PRECISIONS[:-1])} or "
                         f"{PRECISIONS[-1]}")
    return value if value not in ("", "auto") else None


def is_main_process() -> bool:
    """False in the processes of a torchrun job other than the first, which write and print nothing."""
    return int(os.environ.get("RANK", 0)) == 0


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sums tensors in place across torchrun ranks (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def sync_buffers(model: torch.nn.Module) -> None:
    """Copies rank 0's buffers (BatchNorm running statistics) to every rank. DDP keeps parameters equal, but
    each rank updates its running statistics on its own batches; evaluation needs one model everywhere."""
    if dist.is_available() and dist.is_initialized():
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for the parameters' device (CPU since torch 2.4):
    one pass over each tensor instead of several; on VGG16's 134M parameters a CPU step takes 0.07 s
    instead of 0.76 s (measured on the 2-core EPYC, torch 2.14). Same update, same state_dict format."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # older torch: fused Adam is CUDA-only
        return torch.optim.Adam(params, lr=lr)


def lr_scheduler(optimizer: torch.optim.Optimizer, name: str,
                 epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule ``fit`` steps once per epoch: "cosine" anneals to 0 over ``epochs``,
    "none" keeps the rate constant (no scheduler)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if name == "cosine" else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------- checkpoints
def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------- run folders
RUN_FILES = ("metrics.json", "history.json", "last.pt", "best.pt", "seeds.json", "study.csv", "sweep.csv",
             "ablation.json")
UNSHAPING_OPTIONS = ("device", "workers", "progress", "resume", "overwrite")  # change nothing a run computes
LOCK = ".hw6-lock"  # flock'ed by the process writing a run folder; holds its pid


@dataclass
class ProcessFolders:
    """The run folders of this process, in one place: locks and created folders belong to the process (a lock
    dies with it), whichever of its fits or sets took them.

    ``latest``/``saved_epoch``: the folder of the latest fit and the epoch its last.pt holds (0: none);
    ``held``: the folders this process writes, to their lock files' descriptors; ``created``: the folders it
    created (``undo_empty_folders`` removes them if unused); ``kept_by_jobs``: after an interrupt of
    trainings run in parallel processes (``experiment.run_jobs``), the epoch each one's last.pt holds."""
    latest: Path = Path(".")
    saved_epoch: int = 0
    held: dict[Path, int] = field(default_factory=dict)
    created: list[Path] = field(default_factory=list)
    kept_by_jobs: dict[Path, int] = field(default_factory=dict)


FOLDERS = ProcessFolders()


def run_files(folder: Path) -> list[str]:
    """The files of this project's runs found in ``folder`` or one level below it (seed and sweep folders)."""
    found = [p for name in RUN_FILES for p in (folder / name, *folder.glob(f"*/{name}")) if p.is_file()]
    if (folder / atomic.MANIFEST).is_file():
        found.append(folder / atomic.MANIFEST)
    return sorted(str(p.relative_to(folder)) for p in found)


def prepare_run(out: str | Path, resume: str | Path | None, overwrite: bool, kind: str,
                options: dict) -> Path | None:
    """Checks (and with ``overwrite`` clears) the output folder before any data is read, and takes it for this
    process (``hold_folder``); returns the checkpoint to resume from (``resume``: "latest" for OUT/last.pt, or
    a path), or None.

    Refused, each with one line and before anything is written: ``out`` an existing file or not writable; a
    folder that another process is writing; a folder that holds an earlier run, unless ``resume`` continues it
    or ``overwrite`` replaces it; a folder of other files; a resume whose checkpoint was trained with other
    ``options`` (every option that shapes the run must be equal; ``epochs`` may only grow, and not under a
    schedule that depends on it). ``overwrite`` deletes only the files this project wrote (``remove_outputs``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out}: is an existing file, not a folder")
    checkpoint = None
    if resume is not None:
        if overwrite:
            raise RunFolderError("--resume continues a run and --overwrite replaces it: give one of them")
        checkpoint = out / "last.pt" if resume == "latest" else Path(resume)
        check_resume(checkpoint, kind, options)
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        earlier = run_files(out)
        if not earlier:
            raise RunFolderError(f"--out {out}: holds files that are not a run of this project; choose a new or "
                                 f"empty folder")
        if not overwrite:
            raise RunFolderError(f"--out {out}: holds an earlier run ({', '.join(earlier[:3])}); pass --resume to "
                                 f"continue it or --overwrite to replace it")
    claim_folder(out, clear=overwrite and checkpoint is None)
    return checkpoint


def claim_folder(out: Path, clear: bool) -> None:
    """Creates ``out`` if needed and takes it for this process (``hold_folder``); ``clear`` first deletes what
    this project wrote there (``remove_outputs``). Leaves the folder's manifest, so that every file written
    into it is listed; refuses (one line) a folder it cannot write."""
    try:
        FOLDERS.created.extend(p for p in (out, *out.parents) if not p.exists())
        out.mkdir(parents=True, exist_ok=True)
        hold_folder(out)
        if clear and is_main_process():
            check_unheld(out)
            remove_outputs(out)
        (out / atomic.MANIFEST).touch()
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise RunFolderError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def hold_folder(out: Path) -> None:
    """Takes ``out`` for this process: an exclusive ``flock`` on OUT/.hw6-lock, or one line naming the process
    that holds it. The OS drops the lock when its process ends, so a killed run never blocks the next one.
    Only the first process of a torchrun job takes it; a process holding the folder already keeps it."""
    if not is_main_process() or out.resolve() in FOLDERS.held:
        return
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"--out {out}: another run is writing there (pid {holder}); wait for it to end or "
                             f"choose another folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    FOLDERS.held[out.resolve()] = fd


def check_unheld(out: Path) -> None:
    """Refuses (one line naming it and its holder) to clear a set whose subfolder another process is writing."""
    for lock in sorted(out.glob(f"*/{LOCK}")):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise RunFolderError(f"--out {out}: another run is writing its {lock.parent.name}/ (pid {holder}); wait "
                                 "for it to end before --overwrite replaces the set") from None
        finally:
            os.close(fd)  # closing drops the lock taken just to test it


def undo_empty_folders() -> None:
    """Removes the run folders this process created that hold nothing but their lock and manifest: a run
    refused after it took its folder (bad data found while reading it) leaves no trace."""
    for folder in sorted(FOLDERS.created, key=lambda p: -len(p.parts)):
        if folder.is_dir() and {p.name for p in folder.iterdir()} <= {LOCK, atomic.MANIFEST}:
            release_folder(folder)
            for name in (LOCK, atomic.MANIFEST):
                (folder / name).unlink(missing_ok=True)
            folder.rmdir()
    FOLDERS.created.clear()


def release_folder(out: Path) -> None:
    """Gives up ``out`` (``hold_folder``) at the end of its run."""
    fd = FOLDERS.held.pop(Path(out).resolve(), None)
    if fd is not None:
        os.close(fd)


def remove_outputs(folder: Path) -> None:
    """Deletes the files this project wrote in ``folder`` and its subfolders (each folder's manifest lists
    them, kit.atomic.MANIFEST), then the subfolders left empty. Links are never followed and nothing else is
    touched: a user's own files stay, and a warning names them."""
    for top, dirs, _ in sorted(os.walk(folder), key=lambda entry: -len(Path(entry[0]).parts)):
        top = Path(top)
        manifest = top / atomic.MANIFEST
        if manifest.is_file() and not manifest.is_symlink():
            for name in manifest.read_text().splitlines():
                target = top / name
                if name and "/" not in name and (target.is_symlink() or target.is_file()):
                    target.unlink()
            manifest.unlink()
        if top != folder and not top.is_symlink() and not [p for p in top.iterdir() if p.name != LOCK]:
            (top / LOCK).unlink(missing_ok=True)
            top.rmdir()
    kept = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if kept:
        warnings.warn(f"{folder}: kept {len(kept)} entries this project did not write: {', '.join(kept[:5])}",
                      stacklevel=3)


def check_resume(path: Path, kind: str, options: dict) -> None:
    """Refuses (one line naming every difference) to resume a checkpoint trained with other options."""
    saved = load_checkpoint(path, kind, mmap=True)["meta"].get("options")
    if saved is None:
        raise CheckpointError(f"{path}: checkpoint records no options, so a resume cannot be checked")
    now = json.loads(json.dumps(options, default=str))
    keys = sorted((set(saved) | set(now)) - set(UNSHAPING_OPTIONS) - {"epochs", "data_fingerprint"})
    problems = [f"{k} {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now" for k in keys if saved.get(k) != now.get(k)]
    if now.get("epochs", 0) < saved.get("epochs", 0):
        problems.append(f"epochs {now['epochs']} is below the checkpoint's budget {saved['epochs']} (it may only grow)")
    elif now.get("epochs") != saved.get("epochs") and saved.get("scheduler", "none") != "none":
        problems.append(f"epochs {now['epochs']} differs from {saved['epochs']}, which the {saved['scheduler']} "
                        f"schedule depends on")
    if problems:
        raise CheckpointError(f"{path}: cannot resume with other options: {'; '.join(problems)}")


def load_checkpoint(path: str | Path, kind: str | None = None, mmap: bool = False) -> dict:
    """Loads a checkpoint written by this project (tensors and plain values only: no code is unpickled).
    ``kind``: the task it must come from ("segmentation", "colorization", ...), checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or of another format ({reason})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "meta" not in ckpt:
        raise CheckpointError(f"{path}: not a checkpoint of this project (no model/meta entries)")
    if kind is not None and ckpt["meta"].get("kind") != kind:
        raise CheckpointError(f"{path}: checkpoint is from a {ckpt['meta'].get('kind')} run, expected {kind}")
    return ckpt


def load_weights(model: torch.nn.Module, ckpt: dict, path: Path) -> None:
    """Loads a checkpoint's weights, refusing (one line) a checkpoint of another architecture."""
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: weights do not fit this model ({reason})") from None


# ------------------------------------------------------------------------------------------------- fit
@dataclass
class Evaluation:
    """What a task's ``evaluate(model)`` returns: ``scalars`` go into the epoch's history row (the monitored
    quantity among them); ``details`` (per-class lists, confusion matrices, ...) are kept whole for the
    weights the model ends with, so that callers need not evaluate them again."""
    scalars: dict[str, float]
    details: dict = field(default_factory=dict)


@dataclass
class FitConfig:
    """Plain values that steer ``fit``. ``kind`` names the task ("segmentation", ...): every checkpoint
    records it and a resume or pre-training checks it. ``monitor`` names a key of ``Evaluation.scalars``;
    ``patience`` counts epochs without improvement before stopping (None: never stop early)."""
    kind: str
    out: Path
    epochs: int
    patience: int | None = 20
    monitor: str = "val_loss"
    maximize: bool = False
    resume: Path | None = None
    progress: bool = True
    restore_best: bool = True  # False: keep the last epoch's weights and write no best.pt (nothing to select)
    also_keep: tuple[str, ...] = ()  # more monitors: the best weights by each go to best-<monitor>.pt too


@dataclass
class FitResult:
    history: list[dict]
    monitor: str
    best_epoch: int
    best_value: float
    stop_reason: str
    complete: bool = True
    evaluation: Evaluation | None = None  # of the weights the model ends with (None: no epoch finished)
    kept_epochs: dict = field(default_factory=dict)  # monitor -> the epoch of the weights kept by it (monitor first)


@dataclass
class _State:
    """Everything ``fit`` carries from epoch to epoch (and restores on resume)."""
    history: list[dict]
    best_value: float
    best_epoch: int = 0
    bad_epochs: int = 0
    start: int = 1
    best_state: dict | None = None
    best_eval: Evaluation | None = None
    last_eval: Evaluation | None = None
    also_kept: dict = field(default_factory=dict)  # monitor of FitConfig.also_keep -> [best value, its epoch]


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[tuple[torch.Tensor, ...]],
        train_loss: Callable, evaluate: Callable[[torch.nn.Module], Evaluation], config: FitConfig, runtime: Runtime,
        meta: dict, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> FitResult:
    """Trains ``model`` and leaves it holding the best weights by ``config.monitor`` (or the last ones).

    ``batches``: any iterable of batches (tuples of tensors), one pass per epoch. If it has ``set_epoch(epoch)``
    (as ``datasets.InMemoryLoader`` and a DistributedSampler's loader do), it is called before each epoch, so
    that the epoch's order depends on the epoch alone (and a resumed run is exact).
    ``train_loss(model, batch) -> scalar`` gets a batch on the device (called under autocast);
    ``evaluate(model) -> Evaluation`` runs under no_grad after each epoch, in eval mode, in the precision it
    chooses. ``meta``: plain values stored in every checkpoint (architecture, class names, the run's options).
    Writes ``out/last.pt`` after every epoch (all a resume needs), ``out/best.pt`` when the monitored value
    improves, and ``out/history.json|csv``. A non-finite loss stops training; the result is then marked
    incomplete and the files of the last good epoch stay on disk.
    """
    sign = -1.0 if config.maximize else 1.0  # compare sign * value: lower is better
    state = _State(history=[], best_value=math.inf * sign,
                   best_state=copy.deepcopy(unwrap(model).state_dict()) if config.restore_best else None)
    FOLDERS.latest, FOLDERS.saved_epoch = Path(config.out), 0
    if config.resume is not None:
        _restore(state, config, model, optimizer, scheduler)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
    stop_reason, complete = f"reached {config.epochs} epochs", True
    show = config.progress and runtime.is_main
    epochs = tqdm(range(state.start, config.epochs + 1), desc=config.kind, unit="epoch", disable=not show,
                  initial=state.start - 1, total=config.epochs, file=sys.stderr, dynamic_ncols=True)
    if state.bad_epochs >= (config.patience or math.inf):
        epochs, stop_reason = [], f"early stop already reached at epoch {state.start - 1}"
    for epoch in epochs:
        t0 = time.perf_counter()
        losses = _train_epoch(model, optimizer, scaler, batches, train_loss, runtime, epoch, show)
        if not torch.isfinite(losses).all():
            batch_no = int((~torch.isfinite(losses)).nonzero()[0]) + 1
            stop_reason, complete = f"non-finite training loss at epoch {epoch}, batch {batch_no}", False
            break
        model.eval()
        sync_buffers(model)
        with torch.no_grad():
            state.last_eval = evaluate(model)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        state.history.append({"epoch": epoch, "train_loss": float(losses.mean()), **state.last_eval.scalars,
                              "lr": lr, "seconds": round(time.perf_counter() - t0, 3)})
        value = state.last_eval.scalars[config.monitor]
        if not math.isfinite(value):
            stop_reason, complete = f"non-finite {config.monitor} at epoch {epoch}", False
            break
        _keep_if_best(state, sign * value < sign * state.best_value, value, epoch, model, config, runtime, meta)
        _keep_also(state, epoch, model, config, runtime, meta)
        if runtime.is_main:
            _save_last(state, epoch, model, optimizer, scheduler, config, meta)
            epochs.set_postfix({"train": f"{state.history[-1]['train_loss']:.4f}", config.monitor: f"{value:.4f}",
                                "best": f"{state.best_value:.4f}@{state.best_epoch}"})
        if config.patience is not None and state.bad_epochs >= config.patience:
            stop_reason = f"early stop: no better {config.monitor} for {config.patience} epochs"
            break
    return _finish(state, model, config, runtime, show, stop_reason, complete)


def _finish(state: _State, model: torch.nn.Module, config: FitConfig, runtime: Runtime, show: bool,
            stop_reason: str, complete: bool) -> FitResult:
    """The end of ``fit``: the best weights back into the model, the history written, one closing line."""
    if config.restore_best:
        unwrap(model).load_state_dict(state.best_state)
    if runtime.is_main:
        write_history(state.history, Path(config.out))
    if runtime.is_main and (show or not complete):  # a quiet run (a notebook's saved log) tells only of trouble
        print(f"{config.kind}: {stop_reason}; best {config.monitor} {state.best_value:.4f} at epoch "
              f"{state.best_epoch}", file=sys.stdout if complete else sys.stderr)
    return FitResult(state.history, config.monitor, state.best_epoch, state.best_value, stop_reason, complete,
                     state.best_eval if config.restore_best else state.last_eval if complete else None,
                     {config.monitor: state.best_epoch, **{m: epoch for m, (_, epoch) in state.also_kept.items()}})


def _train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 batches: Iterable, train_loss: Callable, runtime: Runtime, epoch: int, show: bool) -> torch.Tensor:
    """One pass over ``batches``; returns the per-batch losses on the CPU (the epoch's one host sync)."""
    model.train()
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(epoch)
    losses = []
    # Batch bars only on a terminal: in a notebook or a log they would add a line per update.
    for batch in tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False,
                      disable=not (show and sys.stderr.isatty()), file=sys.stderr, dynamic_ncols=True):
        batch = runtime.to_device(batch)
        with runtime.autocast():
            loss = train_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.detach())
    return torch.stack(losses).float().cpu()


def _keep_if_best(state: _State, improved: bool, value: float, epoch: int, model: torch.nn.Module,
                  config: FitConfig, runtime: Runtime, meta: dict) -> None:
    if not improved:
        state.bad_epochs += 1
        return
    state.best_value, state.best_epoch, state.bad_epochs = value, epoch, 0
    if config.restore_best:  # otherwise the best weights are never used: skip the copy and the file
        state.best_state, state.best_eval = copy.deepcopy(unwrap(model).state_dict()), state.last_eval
        if runtime.is_main:
            _save(Path(config.out) / "best.pt", config, meta, state.best_state, epoch, state.last_eval)


def _keep_also(state: _State, epoch: int, model: torch.nn.Module, config: FitConfig, runtime: Runtime,
               meta: dict) -> None:
    """best-<monitor>.pt for each monitor of ``config.also_keep`` that improved (lowest loss, else highest)."""
    for name in config.also_keep:
        value, sign = state.last_eval.scalars[name], 1.0 if name.endswith("loss") else -1.0
        best = state.also_kept.get(name)
        if best is None or sign * value < sign * best[0]:
            state.also_kept[name] = [value, epoch]
            if runtime.is_main:
                _save(Path(config.out) / f"best-{name}.pt", config, meta, unwrap(model).state_dict(), epoch,
                      state.last_eval)


def _save_last(state: _State, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler, config: FitConfig, meta: dict) -> None:
    _save(Path(config.out) / "last.pt", config, meta, unwrap(model).state_dict(), epoch, state.last_eval,
          optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict() if scheduler is not None else None,
          history=state.history, early_stopping=(state.best_value, state.best_epoch, state.bad_epochs),
          also_kept=state.also_kept, rng=rng_state())
    FOLDERS.saved_epoch = epoch
    write_history(state.history, Path(config.out))


def _save(path: Path, config: FitConfig, meta: dict, weights: dict, epoch: int, evaluation: Evaluation,
          **resume_state) -> None:
    """A checkpoint (the module docstring's layout): best.pt and best-<monitor>.pt hold the weights,
    last.pt also ``resume_state``."""
    atomic.save_torch({"meta": {"kind": config.kind, **meta}, "model": weights, "epoch": epoch,
                       "evaluation": asdict(evaluation), **resume_state}, path)


def _restore(state: _State, config: FitConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler) -> None:
    """Loads last.pt (and best.pt beside it) into ``state``, the model, the optimizer and the RNGs."""
    ckpt = load_checkpoint(config.resume, config.kind)
    load_weights(unwrap(model), ckpt, config.resume)
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    state.history, state.start = ckpt["history"], ckpt["epoch"] + 1
    state.best_value, state.best_epoch, state.bad_epochs = ckpt["early_stopping"]
    state.also_kept = ckpt.get("also_kept", {})
    best_path = Path(config.resume).with_name("best.pt")
    if config.restore_best and best_path.is_file():
        best = load_checkpoint(best_path, config.kind)
        state.best_state, state.best_eval = best["model"], Evaluation(**best["evaluation"])
    state.last_eval = Evaluation(**ckpt["evaluation"])
    set_rng_state(ckpt["rng"])
    FOLDERS.saved_epoch = ckpt["epoch"]


def read_history(out: str | Path) -> list[dict]:
    """The per-epoch history a run wrote to ``out/history.json``."""
    return json.loads((Path(out) / "history.json").read_text())


def write_history(history: list[dict], out: Path) -> None:
    atomic.write_json(history, out / "history.json")
    atomic.write_csv(history, out / "history.csv")
