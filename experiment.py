"""What the three experiments share: one set-up path, one results schema, seeds, concurrency, one CLI shape.

Each experiment module (``train_segmentation``, ``train_colorization``, ``transfer_vgg``) has the same shape:

    DEFAULTS                               every option and its default (COMMON_DEFAULTS among them)
    train(data, out, **options) -> dict    one run; returns what it writes to OUT/metrics.json
    main(argv)                             its command line: the common flags (kit.cli) and its own

metrics.json, the same keys for every experiment (``record``):

    experiment   "segmentation", "colorization" or "vgg16"
    data         {"path", "name", "synthetic", "label"}: the data root and how results name it
    options      every option the run used (a resume can only be made with the same ones)
    device       the device, precision and threads, in words
    fit          {"monitor", "best_epoch", "best_value", "epochs_run", "stop_reason", "complete", "train_seconds"}
    validation   the evaluation of the kept weights on the validation split (None when there is none)
    test         the same on the test split (None when the run does not look at it)
    details      what only this experiment has (class names, sizes, parameter counts, ...)
    wall_seconds
"""
from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hw6.datasets import data_label, is_synthetic
from hw6.engine import (FOLDERS, FitResult, Runtime, claim_folder, forced_precision, is_main_process, keep_freed_memory,
                        load_checkpoint, prepare_run, read_history, release_folder, run_files, seed_everything,
                        setup_runtime, undo_empty_folders)
from hw6.kit import atomic, cli, stats
from hw6.kit.errors import EXPECTED_ERRORS, CheckpointError, RunFolderError
from hw6.unet import DOWNSAMPLING

COMMON_DEFAULTS = dict(seed=0, device="auto", precision="auto", threads=0, limit=None, scheduler="none",
                       resume=None, overwrite=False, progress=True)


def resolve(defaults: dict, options: dict, size_multiple: int = 1) -> dict:
    """``defaults`` updated by ``options``, every common value checked once, here, where it enters (one line
    each): an unknown option name is a TypeError (a mistyped keyword); ``image_size`` becomes an (H, W)
    tuple of positive ints divisible by ``size_multiple`` (or stays None: the frames' stored size)."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    resolved = {**defaults, **options}
    for key, allowed in (("scheduler", cli.SCHEDULERS), ("precision", cli.PRECISIONS)):
        if resolved[key] not in allowed:
            raise cli.UsageError(f"{key} must be one of {', '.join(allowed)}, got {resolved[key]!r}")
    forced_precision()  # a bad HW6_PRECISION is refused here, before a folder is cleared
    if resolved.get("image_size") is not None:
        resolved["image_size"] = image_size(resolved["image_size"], size_multiple)
    return resolved


def image_size(value: object, multiple: int) -> tuple[int, int]:
    """``value`` as an (H, W) tuple: two positive ints, each divisible by ``multiple``; else one line."""
    size = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise cli.UsageError(f"image_size must be (height, width) in pixels, got {value!r}")
    if size[0] % multiple or size[1] % multiple:
        raise cli.UsageError(f"--image-size {size[0]}x{size[1]}: height and width must be divisible by {multiple}")
    return size


def check_batch_norm(frames: int, batch_size: int, size: tuple[int, int]) -> None:
    """Refuses (one line) U-Net training that would leave BatchNorm one value per channel: the bottleneck has
    (H / 8) x (W / 8) values per frame, and an epoch's last batch may hold a single frame."""
    smallest = min(frames, batch_size) if frames % batch_size == 0 or frames < batch_size else frames % batch_size
    values = smallest * (size[0] // DOWNSAMPLING) * (size[1] // DOWNSAMPLING)
    if values < 2:
        raise cli.UsageError(f"--image-size {size[0]}x{size[1]} with a batch of {smallest} frame(s) leaves BatchNorm "
                             f"{values} value per channel at the U-Net's bottleneck; use a larger image or batch, "
                             f"or --no-batch-norm")


@dataclass
class Run:
    """One run being set up: where it reads and writes, its options, its device, and the checkpoint it
    resumes (None for a fresh run)."""
    kind: str
    data: Path
    out: Path
    options: dict
    shaping: dict  # the options as stored in checkpoints (with the data root), the ones a resume must match
    runtime: Runtime
    resume: Path | None
    started: float

    def check_data(self, fingerprint: str) -> None:
        """Records the training files' fingerprint (``datasets.fingerprint``) with the run's options; a resume
        whose checkpoint was trained on other files is refused (one line) before any step."""
        if self.resume is not None:
            saved = load_checkpoint(self.resume, mmap=True)["meta"]["options"].get("data_fingerprint")
            if saved not in (None, fingerprint):
                raise CheckpointError(f"{self.resume}: the training files in {self.data} differ in content from "
                                      "those this checkpoint trained on (or it predates content fingerprints); "
                                      "start a new run")
        self.shaping["data_fingerprint"] = fingerprint

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files and figures (only the first of a torchrun job does)."""
        return self.runtime.is_main

    def record(self, result: FitResult, validation: dict | None, test: dict | None, details: dict) -> dict:
        """The metrics.json content (module docstring), written by the process that ``writes``."""
        metrics = {
            "experiment": self.kind,
            "data": {"path": str(self.data.resolve()), "name": self.data.name, "synthetic": is_synthetic(self.data),
                     "label": data_label(self.data)},
            "options": jsonable(self.options), "device": self.runtime.describe(),
            "fit": {"monitor": result.monitor, "best_epoch": result.best_epoch,
                    "best_value": result.best_value, "epochs_run": len(result.history),
                    "stop_reason": result.stop_reason, "complete": result.complete,
                    "kept_epochs": result.kept_epochs,
                    "train_seconds": round(sum(r["seconds"] for r in result.history), 1)},
            "validation": validation, "test": test, "details": jsonable(details),
            "wall_seconds": round(time.perf_counter() - self.started, 1),
        }
        if self.writes:
            atomic.write_json(metrics, self.out / "metrics.json")
        release_folder(self.out)
        return metrics


def start(kind: str, data: str | Path, out: str | Path, options: dict) -> Run:
    """The one set-up path: the device and precision are chosen, then the output folder is checked (apart from
    the data root, as a set of runs checks it too; and a resume's options compared, the precision as resolved)
    before any data is read, and every random generator seeded."""
    t0 = time.perf_counter()
    data, out = Path(data), Path(out)
    check_apart(data, out)
    runtime = setup_runtime(options["device"], options["precision"], options["threads"])
    shaping = jsonable({**options, "precision": runtime.precision, "data": str(data.resolve())})
    resume = prepare_run(out, options["resume"], options["overwrite"], kind, shaping)
    seed_everything(options["seed"])
    return Run(kind, data, out, options, shaping, runtime, resume, t0)


def jsonable(value: object) -> object:
    """Tuples as lists and paths as strings, recursively: what JSON and a checkpoint's meta store."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


# --------------------------------------------------------------------------------------------- many runs
@dataclass
class Job:
    """One training run for ``run_jobs``: ``train(data, out, **options)``, a module-level function (another
    process imports it by its module and name)."""
    train: Callable[..., dict]
    data: Path
    out: Path
    options: dict


def _run_job(job: Job) -> dict:
    return job.train(job.data, job.out, **job.options)


def run_jobs(jobs: list[Job], parallel: int = 1) -> list[dict]:
    """Runs independent trainings, ``parallel`` at a time, and returns their metrics in order.

    One at a time runs in this process. Several run in fresh processes ("spawn": CUDA cannot be forked)
    sharing the one device, which is how a GPU too large for one small model gets used: each process keeps
    its data on the device and steps its own model. On a CPU each process gets its share of the cores."""
    if parallel <= 1 or len(jobs) <= 1:
        return [_run_job(job) for job in jobs]
    threads = max(1, (os.cpu_count() or 1) // parallel)
    jobs = [Job(j.train, j.data, j.out, {**j.options, "progress": False,
                                         "threads": j.options.get("threads") or threads}) for j in jobs]
    FOLDERS.kept_by_jobs = {}  # an earlier interrupted set's record is not this one's
    pool = ProcessPoolExecutor(min(parallel, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_run_job, job) for job in jobs]
        results = [future.result() for future in futures]
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: no queued job starts, each started one stops where it is
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()  # its files are written whole or not at all (kit.atomic)
        FOLDERS.kept_by_jobs = {job.out: kept_epoch(job.out) for job in jobs if job.out.is_dir()}
        raise
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()
    return results


def kept_epoch(out: Path) -> int:
    """The epoch a run folder's last.pt holds (its history is written just after it), 0 when none."""
    return len(read_history(out)) if (out / "last.pt").is_file() and (out / "history.json").is_file() else 0


def spreads(evaluations: list[dict]) -> dict:
    """The spread over runs (``stats.spread``) of each scalar of an evaluation dict, and of each entry of its
    flat lists of floats (per-class scores); lists of class indices are kept as they are."""
    out = {}
    for key, value in evaluations[0].items():
        values = [e[key] for e in evaluations]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = stats.spread([float(v) for v in values])
        elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            out[key] = value  # class indices (absent_classes): set by the split, the same in every run
        elif isinstance(value, list) and all(isinstance(v, (int, float)) or v is None for v in value):
            out[key] = [stats.spread([float("nan") if v is None else float(v) for v in per_run])
                        for per_run in zip(*values)]
    return out


def check_apart(data: Path, out: Path) -> None:
    """Refuses (one line, before anything is created) an output folder inside the data a run reads, or one that
    holds it: nothing a run writes or clears may touch its data."""
    data, out = Path(data).resolve(), Path(out).resolve()
    if out.is_relative_to(data) or data.is_relative_to(out):
        where = "inside the data root" if out.is_relative_to(data) else "around the data root"
        raise RunFolderError(f"--out {out} lies {where} {data}; runs never write into their data")


def check_distinct(flag: str, what: str, values: list) -> None:
    """Refuses (one line) a value given twice in a set's list (seeds, fractions): its run would be trained
    twice into one folder."""
    repeated = [v for k, v in enumerate(values) if v in values[:k]]
    if repeated:
        raise cli.UsageError(f"{flag} {' '.join(map(str, values))}: {what} {repeated[0]} is given twice")


def check_set_options(resume: str | bool | None, overwrite: bool) -> None:
    """The ``resume``/``overwrite`` of a set of runs: a set takes no checkpoint, and not both."""
    if resume not in (None, False, True, "latest"):
        raise cli.UsageError("--resume for a set of runs takes no checkpoint: each run resumes its own last.pt")
    if resume and overwrite:
        raise cli.UsageError("--resume continues a run and --overwrite replaces it: give one of them")


def start_set(out: Path, data: Path, resume: str | bool | None, overwrite: bool) -> bool:
    """Checks and takes the folder of a set of runs (seeds, a grid, a curve) once, before any of them starts:
    a fresh set clears it (``overwrite``), a resumed one (``resume``: True or "latest"; a set takes no
    checkpoint) keeps it. Returns whether the set resumes."""
    check_set_options(resume, overwrite)
    check_apart(data, out)
    if resume:
        claim_folder(out, clear=False)
    else:
        prepare_run(out, None, overwrite, "set", {})
    return bool(resume)


def continuation(out: Path, resume: bool) -> dict:
    """The ``resume``/``overwrite`` options of one run of a set (seeds, a grid): in a resumed set, a run with a
    last.pt continues it and a run that never finished an epoch starts afresh; in a fresh set (whose folder was
    checked and cleared once), every run starts."""
    started = resume and (Path(out) / "last.pt").is_file()
    if resume and not started and is_main_process():  # said, never silent: a resume that cannot continue this one
        earlier = [f for f in run_files(Path(out)) if not f.startswith(".")] if Path(out).is_dir() else []
        print(f"{out}: no last.pt to continue, so this training starts from scratch" +
              (f" and replaces the earlier {', '.join(earlier[:3])}" if earlier else ""))
    return {"resume": "latest" if started else None, "overwrite": resume and not started}


def train_over_seeds(train: Callable[..., dict], data: str | Path, out: str | Path, seeds: list[int],
                     parallel: int = 1, **options) -> dict:
    """Trains ``train`` (an experiment's ``train`` function) once per seed into OUT/seed<s>/ and writes OUT/seeds.json: the
    spread over the seeds of every number each run reports for its validation and test splits. Returns
    {"runs": [metrics per seed], "summary": the content of seeds.json}."""
    out = Path(out)
    check_distinct("--seeds", "seed", seeds)
    resume = start_set(out, Path(data), options.pop("resume", None), options.pop("overwrite", False))
    try:
        runs = run_jobs([Job(train, Path(data), out / f"seed{s}", {**options, "seed": s,
                                                                   **continuation(out / f"seed{s}", resume)})
                         for s in seeds], parallel)
    finally:
        release_folder(out)  # the set's folder; a failed set leaves it to the next command
    first = runs[0]
    summary = {"experiment": first["experiment"], "seeds": seeds, "runs": [f"seed{s}" for s in seeds],
               "data": first["data"], "device": first["device"],
               "options": {k: v for k, v in first["options"].items() if k != "seed"},
               "train_seconds": [m["fit"]["train_seconds"] for m in runs],
               **{split: spreads([m[split] for m in runs]) for split in ("validation", "test")
                  if all(m.get(split) for m in runs)}}
    if is_main_process():
        atomic.write_json(summary, out / "seeds.json")
    return {"runs": runs, "summary": summary}


def successive_halving(train: Callable[..., dict], data: str | Path, out: str | Path, grid: dict, rungs: list[int],
                       options: dict, score: str, parallel: int = 1) -> tuple[list[dict], list[dict], int, dict]:
    """A hyper-parameter study by successive halving: every combination of ``grid`` trains ``rungs[0]``
    epochs into OUT/<name>/ (``parallel`` at a time); the better half by ``score`` (a key of the validation
    evaluation of the weights each run keeps, higher is better) continues from its last epoch to
    ``rungs[1]`` epochs, and so on; the best of the last rung is chosen. Nothing but the validation split is
    looked at. Writes OUT/study.csv and OUT/study.md (one row per configuration: its score at each rung it
    reached); returns (configurations, rows, index of the chosen one, its metrics). ``options["resume"]``
    (any value) continues an interrupted study, each run from its own last.pt."""
    if not rungs or any(not isinstance(r, int) or r < 1 for r in rungs) or sorted(set(rungs)) != list(rungs):
        raise cli.UsageError(f"rungs {rungs}: epochs per rung must be positive whole numbers, increasing")
    out = Path(out)
    resume = start_set(out, Path(data), options.get("resume"), options.get("overwrite", False))
    configs = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    names = ["_".join(f"{k}={v}" for k, v in c.items()) for c in configs]
    progress = out / "study-progress.json"  # each finished rung's scores: what a resumed study replays
    saved = json.loads(progress.read_text()) if resume and progress.is_file() else {}
    known = saved.get("scores", {}) if saved.get("names") == names and saved.get("rungs") == list(rungs) else {}
    alive, last = list(range(len(configs))), {}
    scores = {k: known.get(names[k], []) for k in range(len(configs))}
    try:
        for rung, epochs in enumerate(rungs):
            if any(len(scores[k]) <= rung for k in alive):
                later = {"resume": "latest", "overwrite": False}  # a later rung continues the run's last epoch
                runs = run_jobs([Job(train, Path(data), out / names[k], {
                    **options, **configs[k], "epochs": epochs,
                    **(continuation(out / names[k], resume) if rung == 0 else later)}) for k in alive], parallel)
                for k, m in zip(alive, runs):
                    scores[k][rung:] = [m["validation"][score]]
                    last[k] = m
                atomic.write_json({"names": names, "rungs": list(rungs), "scores": {names[k]: v for k, v in
                                                                                    scores.items()}}, progress)
            if rung < len(rungs) - 1:
                alive = sorted(alive, key=lambda k: -scores[k][rung])[:math.ceil(len(alive) / 2)]
        for k in set(range(len(configs))) - set(last):  # replayed from the progress file: its last run's metrics
            last[k] = json.loads((out / names[k] / "metrics.json").read_text())
    finally:
        release_folder(out)
    chosen = max(alive, key=lambda k: scores[k][-1])
    rows = [{"config": names[k], **configs[k], "epochs": rungs[len(scores[k]) - 1],
             **{f"score_at_{r}": round(v, 4) for r, v in zip(rungs, scores[k])},
             "best_epoch": last[k]["fit"]["best_epoch"], "train_seconds": last[k]["fit"]["train_seconds"],
             "chosen": k == chosen} for k in range(len(configs))]
    atomic.write_csv(rows, out / "study.csv")
    atomic.write_text(cli.markdown_table(rows), out / "study.md")
    return configs, rows, chosen, last[chosen]


# ------------------------------------------------------------------------------------------- command line
OPTION_WORDS = {"lr": "learning rate", "batch_size": "batch"}


def config_words(config: dict) -> str:
    """{"lr": 0.001, "batch_size": 4} -> "learning rate 0.001, batch 4" (a study's legend)."""
    return ", ".join(f"{OPTION_WORDS.get(key, key.replace('_', ' '))} "
                     f"{format(value, 'g') if isinstance(value, float) else value}" for key, value in config.items())


def parse(parser: cli.ArgumentParser, argv: list[str] | None) -> tuple[Path, Path, dict, list[int] | None]:
    """(data, out, the options given on the command line, the seeds of --seeds or None)."""
    given = vars(parser.parse_args(argv))
    data, out, seeds = given.pop("data"), given.pop("out"), given.pop("seeds", None)
    return data, out, given, seeds


def interrupted_words() -> str:
    """The one line of an interrupted command: the epoch each started run keeps and how to continue."""
    kept = FOLDERS.kept_by_jobs or {FOLDERS.latest: FOLDERS.saved_epoch}  # the latest fit's folder and saved epoch
    if not any(kept.values()):
        return "interrupted before an epoch of the run finished: nothing of it was kept"
    if len(kept) == 1:
        ((folder, epoch),) = kept.items()
        return (f"interrupted: epoch {epoch} is kept in {folder / 'last.pt'}; the same command with --resume "
                "continues it")
    runs = ", ".join(f"{folder.name} epoch {epoch}" if epoch else f"{folder.name} nothing"
                     for folder, epoch in kept.items())
    return f"interrupted: each run keeps its last.pt ({runs}); the same command with --resume continues them"


def run_cli(train: Callable[..., dict], data: Path, out: Path, options: dict, seeds: list[int] | None,
            summarize: Callable[[dict], str]) -> None:
    """An experiment's command line after parsing (``guarded``): trains once or once per seed, prints a one-line
    summary per run, and exits with 0, 1 (a run incomplete) or 2 (bad input, one line)."""

    def train_once_or_over_seeds() -> int:
        if seeds is None:
            metrics = train(data, out, **options)
            return cli.finish(f"{summarize(metrics)}; outputs in {out}", metrics["fit"]["complete"],
                              metrics["fit"]["stop_reason"], is_main_process())
        runs = train_over_seeds(train, data, out, seeds, **options)["runs"]
        if is_main_process():
            print("\n".join(f"seed {s}: {summarize(m)}" for s, m in zip(seeds, runs)))
        return cli.finish(f"spread over seeds in {out / 'seeds.json'}", all(m["fit"]["complete"] for m in runs),
                          "a seed's run is incomplete", is_main_process())

    guarded(train_once_or_over_seeds)


def guarded(work: Callable[[], int]) -> None:
    """Runs a training command's ``work`` (its exit status) under ``cli.main``: freed memory kept on a CPU
    (``keep_freed_memory``, the one process-wide setting), folders it created empty removed on bad input, and
    an interruption said in one line with the epoch each run keeps."""

    def body() -> int:
        keep_freed_memory()
        try:
            return work()
        except EXPECTED_ERRORS:
            undo_empty_folders()
            raise
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (cli.main turns it into cli.Terminated)
            print(interrupted_words(), file=sys.stderr)
            return 143 if isinstance(stop, cli.Terminated) else 130

    cli.main(body)
