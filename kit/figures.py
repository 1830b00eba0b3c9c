"""Every figure the experiments write; each is saved atomically and the figure closed (no GUI needed)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hw6.kit import atomic  # noqa: E402

# One colour per class index (background first): distinct, readable on the reddish tissue.
CLASS_COLOURS = np.array([[0, 0, 0], [255, 225, 25], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                          [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
                         dtype=np.uint8)


def class_colours(num_classes: int) -> np.ndarray:
    return CLASS_COLOURS[np.arange(num_classes) % len(CLASS_COLOURS)]


def save(fig: plt.Figure, path: Path) -> Path:
    atomic.savefig(fig, path, dpi=200, bbox_inches="tight")  # text of 7 pt and more stays legible in the PDF
    plt.close(fig)
    return Path(path)


# How a history key reads in a legend.
KEY_WORDS = {"train_loss": "training loss", "val_loss": "validation loss", "test_loss": "test loss",
             "val_present_dice": "validation strict Dice"}


def curves(histories: dict[str, list[dict]], keys: Sequence[str], ylabel: str, title: str, path: Path,
           right: tuple[str, str] | None = None, labels: dict[str, str] | None = None,
           epoch_label: str = "epoch") -> Path:
    """Lines of ``keys`` against epoch for each labelled history, in one axes: one colour per history, one line
    style per key (solid, dashed, ...), named in the legend by the history's label and ``labels`` (key ->
    words; default the key), or by the label alone when there is one key (the y label names it);
    ``right`` = (key, label) adds a second y axis (for example test accuracy beside the loss). The legend sits
    below the axes, where it hides no line; epochs are whole numbers on the axis."""
    labels = {**KEY_WORDS, **(labels or {})}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles, handles = ["-", "--", ":", "-."], []
    for colour, (label, history) in enumerate(histories.items()):
        epochs = [row["epoch"] for row in history]
        for style, key in zip(styles, keys):
            # one key over several runs: the y label names it, the legend only the runs
            name = label if len(keys) == 1 and label else f"{label} {labels.get(key, key)}".strip()
            handles += ax.plot(epochs, [row.get(key, math.nan) for row in history], style, marker=".",
                               color=f"C{colour % 10}", label=name)
    ax.set(xlabel=epoch_label, ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if right is not None:
        twin = ax.twinx()
        for label, history in histories.items():
            handles += twin.plot([r["epoch"] for r in history], [r[right[0]] for r in history], "-.", color="tab:red",
                                 marker="o", label=f"{label} {right[1]}".strip())
        twin.set_ylabel(right[1])
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(len(handles), 3),
              fontsize=9, frameon=False)
    return save(fig, path)


def predictions(images: torch.Tensor, truth: Sequence[torch.Tensor], pred: Sequence[torch.Tensor],
                class_names: Sequence[str], path: Path, title: str) -> Path:
    """Rows of frame | ground truth | prediction, with a colour legend of the class names. ``images``:
    N x 3 x h x w (uint8, or float in [0, 1]); ``truth`` and ``pred``: N class-index masks of any size each
    (shown at the frame's extent)."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(11, 3.0 * n + 0.6), squeeze=False)
    frames = images.permute(0, 2, 3, 1).float().cpu().numpy()
    frames = frames / 255 if images.dtype == torch.uint8 else frames
    colours = class_colours(len(class_names))
    for row, (frame, gt, pr) in enumerate(zip(frames, truth, pred)):
        for ax, picture, name in zip(axes[row], (frame, colours[gt.cpu().numpy()], colours[pr.cpu().numpy()]),
                                     ("frame", "ground truth", "prediction")):
            ax.imshow(picture, extent=(0, frame.shape[1], frame.shape[0], 0))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name, fontsize=12)
    fig.legend(handles=[Patch(color=colours[i] / 255, label=name.replace("_", " "))
                        for i, name in enumerate(class_names)],
               loc="lower center", ncol=4, fontsize=11, bbox_to_anchor=(0.5, 0), frameon=False)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0.9 / (3.0 * n + 0.6) + 0.04, 1, 1))
    return save(fig, path)


def confusion(matrix: Sequence[Sequence[float]], class_names: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), counts as fractions."""
    m = np.asarray(matrix, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = m / m.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(1 + 0.75 * len(class_names), 0.6 * len(class_names) + 1))
    ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(norm):
        if not math.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "black")
    ticks = range(len(class_names))
    short = [name.replace("_", " ") for name in class_names]
    ax.set_xticks(ticks, short, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, short, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return save(fig, path)


def image_grid(columns: dict[str, torch.Tensor], path: Path, title: str) -> Path:
    """Side-by-side columns of images (N x C x H x W float in [0, 1], C = 1 or 3), one row per sample."""
    names = list(columns)
    n = len(columns[names[0]])
    fig, axes = plt.subplots(n, len(names), figsize=(3 * len(names), 2.4 * n), squeeze=False)
    for col, name in enumerate(names):
        for row, image in enumerate(columns[name]):
            picture = image.float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            axes[row, col].imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_axis_off()
            if row == 0:
                axes[row, col].set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def lines_with_spread(x: Sequence[float], series: dict[str, tuple[list[float], list[float], list[float]]],
                      xlabel: str, ylabel: str, path: Path, title: str) -> Path:
    """For each label: (mean, low, high) against x, the band showing the spread across seeds."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, (mean, low, high) in series.items():
        ax.plot(x, mean, marker="o", label=label)
        ax.fill_between(x, low, high, alpha=0.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)
