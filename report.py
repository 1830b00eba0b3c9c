"""report.pdf from results/ alone: ``python report.py [--results results]`` rebuilds ``report.pdf`` and
``plots/`` beside the results folder without training anything.

The answer texts here are also what hw6.ipynb prints under each section (``answer(key, summary)``), so the
notebook and the report say the same thing with the same numbers, all read from results/summary.json.
"""
from __future__ import annotations

import inspect
import json
import math
import shutil
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

import atomic  # noqa: E402
import augment  # noqa: E402
import cli  # noqa: E402
import losses  # noqa: E402

SECTIONS = {
    "1a": ("1(a) U-Net segmentation with the Dice loss",
           "Train the simplified U-Net with a soft multi-class Dice loss (batch 10, Adam 1e-3, early stopping); plot "
           "training and validation loss in one figure; report the Dice score on the test split; explain how the "
           "Dice score is implemented.", ["loss.png", "predictions.png", "confusion.png"]),
    "1b": ("1(b) Data augmentation",
           "Add meaningful augmentation (joint flips of frame and mask, colour jitter of the frame), show the code, "
           "and compare with 1(a).", ["loss.png", "predictions.png"]),
    "1c": ("1(c) Hyper-parameter sweep",
           "Tweak hyper-parameters to improve the result; report the configurations tried and the test score of the "
           "selected one.", ["loss.png", "predictions.png", "confusion.png"]),
    "1d": ("1(d) Colorization pre-training",
           "Pre-train the same U-Net to colorize grey frames (grey in, RGB out, MSE loss) on colorization/train_cor.",
           ["loss.png", "colorization.png"]),
    "1e": ("1(e) Fine-tuning from colorization",
           "Initialise segmentation from the colorization weights, train with the hyper-parameters chosen in 1(c), "
           "and compare with 1(c) trained from scratch.", ["pretrain_vs_scratch.png", "label_efficiency/label_efficiency.png"]),
    "2a": ("2(a) VGG16 from scratch on Fashion-MNIST",
           "Train torchvision's VGG16 from random initialisation; plot loss and test accuracy per epoch.",
           ["curves.png", "confusion.png"]),
    "2b": ("2(b) VGG16, ImageNet weights, frozen but the last layer",
           "Freeze every ImageNet-pretrained layer, re-initialise and train only the last layer.", ["curves.png"]),
    "2c": ("2(c) VGG16, ImageNet weights, all FC layers fine-tuned",
           "Unfreeze all three fully connected layers and train them at a lower learning rate.", ["curves.png"]),
}
WHY_METRICS_DIFFER = (
    "Why the two scores differ: the assignment's Dice is averaged per image over all eight classes, background "
    "included, with a smoothing of 1, so every class absent from both an image and its prediction scores 1; with "
    "most classes absent from most frames it stays high even when few instrument pixels are found. The strict "
    "Dice and IoU count every pixel of the split, per class, without smoothing, and leave background out of the mean.")


# ------------------------------------------------------------------------------------------ summary entries
def segmentation_entry(metrics: dict, directory: str) -> dict:
    """The summary.json entry of a segmentation run (train_segmentation.train's return value)."""
    test, fit = metrics["test"], metrics["fit"]
    keep = ("lr", "batch_size", "augment", "loss", "monitor", "scheduler", "tta", "epochs", "image_size", "recipe", "seed")
    return {"kind": "segmentation", "status": "done" if fit["complete"] else "incomplete", "dir": directory,
            "class_names": metrics["class_names"], "assignment_dice": test["assignment_dice"],
            "mean_instrument_dice": test["mean_instrument_dice"], "mean_instrument_iou": test["mean_instrument_iou"],
            "pixel_accuracy": test["pixel_accuracy"], "dice_per_class": test["dice_per_class"],
            "iou_per_class": test["iou_per_class"], "best_epoch": fit["best_epoch"], "epochs_run": fit["epochs_run"],
            "monitor": fit["monitor"], "stop_reason": fit["stop_reason"], "train_seconds": fit["train_seconds"],
            "train_frames": metrics["train_frames"], "device": metrics["device"],
            "options": {k: metrics["options"][k] for k in keep}, "init": metrics.get("init")}


def colorization_entry(metrics: dict, directory: str) -> dict:
    fit = metrics["fit"]
    return {"kind": "colorization", "status": "done" if fit["complete"] else "incomplete", "dir": directory,
            "validation_mse": metrics["validation_mse"], "validation_psnr_db": metrics["validation_psnr_db"],
            "best_epoch": fit["best_epoch"], "epochs_run": fit["epochs_run"], "train_images": metrics["train_images"],
            "train_seconds": fit["train_seconds"], "image_size": metrics["image_size"]}


# ------------------------------------------------------------------------------------------------ answers
def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _data(summary: dict) -> str:
    return "SYNTHETIC data" if summary["synthetic"] else f"the assignment's data ({Path(summary['data_root']).name})"


def _seg_scores(e: dict) -> str:
    return (f"assignment-style Dice {_f(e['assignment_dice'])}, strict mean instrument Dice "
            f"{_f(e['mean_instrument_dice'])}, mean instrument IoU {_f(e['mean_instrument_iou'])}, pixel accuracy "
            f"{_f(e['pixel_accuracy'])}")


def _not_run(e: dict | None) -> str | None:
    if e is None:
        return "Not run in this session."
    if e.get("status") == "not run":
        return f"Not run: {e['reason']}"
    return None


def dice_implementation() -> str:
    """How the Dice score is implemented: the loss's own docstring, so the answer never drifts from the code."""
    return inspect.getdoc(losses.soft_dice_loss)


def augmentation_source() -> str:
    """The lines that define 1(b)'s augmentation, read from the module."""
    return f"JITTER = {augment.JITTER}\n\n" + inspect.getsource(augment.augment_batch)


def answer(key: str, summary: dict) -> str:
    """The answer to section ``key``, with the numbers of this run."""
    ex = summary["experiments"]
    e = ex.get(key)
    missing = _not_run(e)
    if missing:
        return missing
    data = _data(summary)
    if key == "1a":
        return (f"On {data}, trained {e['epochs_run']} epochs ({e['stop_reason']}); best validation loss at epoch "
                f"{e['best_epoch']}. Test split: {_seg_scores(e)}. {WHY_METRICS_DIFFER}")
    if key == "1b":
        base = ex.get("1a")
        delta = "" if base is None or base.get("status") == "not run" else (
            f" Without augmentation (1(a)) the strict mean instrument Dice was {_f(base['mean_instrument_dice'])} and the "
            f"assignment-style Dice {_f(base['assignment_dice'])}: a change of "
            f"{e['mean_instrument_dice'] - base['mean_instrument_dice']:+.3f} strict Dice.")
        return (f"On {data}, with joint flips and colour jitter, {e['epochs_run']} epochs, best at epoch "
                f"{e['best_epoch']}. Test split: {_seg_scores(e)}.{delta}{_augmentation_verdict(e, base)}")
    if key == "1c":
        rows = e.get("sweep_rows", [])
        o = e["options"]
        return (f"On {data}, recipe '{o['recipe']}' (loss {o['loss']}, augmentation {o['augment']}, schedule "
                f"{o['scheduler']}, checkpoints selected on {e['monitor']}); {len(rows)} configurations of the grid "
                f"were trained and compared on the validation split only; selected: learning rate {o['lr']}, batch "
                f"size {o['batch_size']}. Test split, looked at once for the selection: {_seg_scores(e)}.")
    if key == "1d":
        return (f"On {data}, {e['train_images']} colorization training images at {e['image_size'][0]}x"
                f"{e['image_size'][1]}, {e['epochs_run']} epochs: validation MSE {e['validation_mse']:.5f} per pixel "
                f"and channel (PSNR {_f(e['validation_psnr_db'], 2)} dB). Colorizing asks for features that tell metal "
                f"from tissue without labels, which is why it is tried as pre-training for segmentation in 1(e).")
    if key == "1e":
        scratch = ex.get("1c")
        text = (f"On {data}, fine-tuned from the colorization weights with 1(c)'s hyper-parameters and seed: "
                f"{_seg_scores(e)}; best validation value at epoch {e['best_epoch']}.")
        if scratch and scratch.get("status") != "not run":
            text += (f" From scratch (1(c)): strict mean instrument Dice {_f(scratch['mean_instrument_dice'])}, "
                     f"assignment-style Dice {_f(scratch['assignment_dice'])}, best at epoch {scratch['best_epoch']}. "
                     f"Difference (pre-trained - scratch): "
                     f"{e['mean_instrument_dice'] - scratch['mean_instrument_dice']:+.3f} strict Dice, one seed.")
        rows = e.get("label_efficiency", [])
        if rows:
            text += " Label efficiency (test strict mean instrument Dice, mean over seeds): " + "; ".join(
                f"{frac:g} of the labels: scratch {_f(_mean(rows, 'scratch', frac))}, pre-trained "
                f"{_f(_mean(rows, 'pretrained', frac))}" for frac in sorted({r['fraction'] for r in rows})) + "."
        return text
    return vgg_text(e)


def seg_run_text(m: dict) -> str:
    """One train_segmentation run (its metrics.json) in a sentence or three."""
    o, fit = m["options"], m["fit"]
    data = "SYNTHETIC data" if m["synthetic"] else m["data_root"]
    return (f"{data}, {m['train_frames']} training frames at {m['image_size'][0]}x{m['image_size'][1]}, batch "
            f"{o['batch_size']}, Adam lr {o['lr']:g}, augmentation {o['augment']}, loss {o['loss']}; "
            f"{fit['epochs_run']} epochs ({fit['stop_reason']}; best epoch {fit['best_epoch']} by {fit['monitor']}), "
            f"{fit['train_seconds']:.0f} s of training on {m['device']}. Test split: {_seg_scores(m['test'])}.")


def vgg_text(e: dict) -> str:
    """One VGG16 run (transfer_vgg's metrics) in a sentence or three."""
    weights = e.get("weights", "")
    schedule = ", cosine schedule" if e.get("scheduler") == "cosine" else ""
    return (f"Fashion-MNIST, {e['train_images']} training and {e['test_images']} test images at {e['image_size']}x"
            f"{e['image_size']}, {e['epochs']} epochs, batch {e['batch_size']}, Adam lr {e['lr']:g}{schedule}, "
            f"{e['trainable_parameters']:,} trainable parameters, weights: {weights}"
            f"{'' if e.get('imagenet_official', True) else ' (NOT the official ImageNet file)'}. Final test accuracy "
            f"{_f(e['final_test_accuracy'], 4)} (highest over epochs {_f(e['best_epoch_test_accuracy'], 4)}, "
            f"shown for reference, not used for selection). Training took {e['train_seconds']:.0f} s on {e['device']}.")


def _augmentation_verdict(augmented: dict, base: dict | None) -> str:
    if base is None or base.get("status") == "not run":
        return ""
    delta = augmented["mean_instrument_dice"] - base["mean_instrument_dice"]
    if abs(delta) < 0.02:
        return " The difference is within what a change of seed gives at these split sizes."
    if delta > 0:
        return " Augmentation raised the strict Dice in this run (one seed)."
    return (" Augmentation cost accuracy here: with the same epoch budget the network sees a harder, more varied "
            "training set and fits it more slowly; its gain in robustness needs a longer run to show.")


def _mean(rows: list[dict], init: str, fraction: float) -> float:
    values = [r["test_mean_instrument_dice"] for r in rows if r["init"] == init and r["fraction"] == fraction]
    return sum(values) / len(values) if values else math.nan


def results_table(summary: dict) -> list[list[str]]:
    """One row per experiment: segmentation scores side by side, VGG test accuracy, or 'not run'."""
    rows = [["experiment", "assignment Dice", "strict instr. Dice", "instr. IoU", "test accuracy", "status"]]
    for key, (title, _, _) in SECTIONS.items():
        e = summary["experiments"].get(key)
        short = title.split(" ", 1)[0]
        if e is None or e.get("status") == "not run":
            rows.append([short, "", "", "", "", "not run (see its section)" if e else "not run"])
        elif e["kind"] == "segmentation":
            rows.append([short, _f(e["assignment_dice"]), _f(e["mean_instrument_dice"]), _f(e["mean_instrument_iou"]),
                         "", e["status"]])
        elif e["kind"] == "colorization":
            rows.append([short, "", "", "", "", f"done; val PSNR {_f(e['validation_psnr_db'], 1)} dB"])
        else:
            rows.append([short, "", "", "", _f(e["final_test_accuracy"], 4), e["status"]])
    return rows


def per_class_table(summary: dict) -> list[list[str]] | None:
    """Strict per-class Dice / IoU of every segmentation experiment (NaN: class absent from test and prediction)."""
    seg = [(k, e) for k, e in summary["experiments"].items() if e.get("kind") == "segmentation"]
    if not seg:
        return None
    rows = [["class"] + [f"{k} Dice / IoU" for k, _ in seg]]
    for i, name in enumerate(seg[0][1]["class_names"]):
        rows.append([name.replace("_", " ")] + [f"{_f(e['dice_per_class'][i], 2)} / {_f(e['iou_per_class'][i], 2)}"
                                                for _, e in seg])
    return rows


def markdown(rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] +
                     ["| " + " | ".join(r) + " |" for r in rows[1:]]) + "\n"


# ---------------------------------------------------------------------------------------------------- PDF
class PageWriter:
    """Flows headings, wrapped text, tables and images down A4 pages of a PdfPages."""
    WIDTH, HEIGHT, MARGIN = 8.27, 11.69, 0.6

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf, self.fig, self.y = pdf, None, 0.0

    def new_page(self) -> None:
        self.close()
        self.fig = plt.figure(figsize=(self.WIDTH, self.HEIGHT))
        self.y = self.HEIGHT - self.MARGIN

    def close(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def _need(self, inches: float) -> None:
        if self.fig is None or self.y - inches < self.MARGIN:
            self.new_page()

    def text(self, text: str, size: float = 9, weight: str = "normal", family: str = "sans-serif",
             color: str = "black") -> None:
        width = int(100 * 9 / size)  # characters per line that fit the page at this font size
        lines = []
        for paragraph in text.split("\n"):
            if family == "monospace":  # code keeps its line breaks and indentation
                lines.append(paragraph[:110])
            else:
                lines += textwrap.wrap(paragraph, width) or [""]
        line_height = size * 1.45 / 72
        for line in lines:
            self._need(line_height)
            self.fig.text(self.MARGIN / self.WIDTH, self.y / self.HEIGHT, line, fontsize=size, weight=weight,
                          family=family, va="top", color=color)
            self.y -= line_height
        self.y -= line_height * 0.5

    def heading(self, text: str) -> None:
        self.text(text, size=14, weight="bold")

    def table(self, rows: list[list[object]], size: float = 7.5, widths: list[float] | None = None) -> None:
        """A table with a header row; ``widths``: relative column widths (default equal); None cells are blank."""
        height = (len(rows) + 1) * size * 1.9 / 72
        self._need(height)
        ax = self.fig.add_axes([self.MARGIN / self.WIDTH, (self.y - height) / self.HEIGHT,
                                1 - 2 * self.MARGIN / self.WIDTH, height / self.HEIGHT])
        ax.axis("off")
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        if widths is not None:
            widths = [w / sum(widths) for w in widths]
        table = ax.table(cellText=cells[1:], colLabels=cells[0], loc="upper left", cellLoc="left", colWidths=widths)
        table.auto_set_font_size(False)
        table.set_fontsize(size)
        self.y -= height + 0.15

    def image(self, path: Path, max_height: float = 5.2) -> None:
        picture = mpimg.imread(path)
        h, w = picture.shape[:2]
        width = self.WIDTH - 2 * self.MARGIN
        height = min(max_height, width * h / w)
        width = height * w / h
        self._need(height)
        ax = self.fig.add_axes([(self.WIDTH - width) / 2 / self.WIDTH, (self.y - height) / self.HEIGHT,
                                width / self.WIDTH, height / self.HEIGHT])
        ax.imshow(picture)
        ax.axis("off")
        self.y -= height + 0.15


def build(results: str | Path = "results", pdf_path: str | Path | None = None, plots: str | Path | None = None) -> Path:
    """Writes report.pdf and plots/ beside ``results`` (or where given) from results/summary.json."""
    results = Path(results)
    summary = read_summary(results)
    pdf_path = Path(pdf_path) if pdf_path else results.parent / "report.pdf"
    plots = Path(plots) if plots else results.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(pdf_path) as f, PdfPages(f) as pdf:
        pages = PageWriter(pdf)
        title_page(pages, summary)
        for key, (title, question, figure_names) in SECTIONS.items():
            pages.new_page()
            pages.heading(title)
            pages.text("Question: " + question, weight="bold")
            pages.text("Answer: " + answer(key, summary))
            e = summary["experiments"].get(key) or {}
            if key == "1a":
                pages.text("How the Dice score is implemented (losses.soft_dice_loss, its docstring):", weight="bold")
                pages.text(dice_implementation(), size=8)
            if key == "1b":
                pages.text("The augmentation code (augment.augment_batch, read from the module):", weight="bold")
                pages.text(augmentation_source(), size=7, family="monospace")
            if key == "1c" and e.get("sweep_rows"):
                cols = ["config", "best_value", "best_epoch", "val_assignment_dice", "val_mean_instrument_dice", "selected"]
                pages.table([cols] + [[r.get(c) for c in cols] for r in e["sweep_rows"]], size=7,
                            widths=[2.2, 1, 1, 1.4, 1.6, 0.8])
            if e.get("kind") == "segmentation":
                pages.table([["class", "test Dice", "test IoU"]] + [
                    [n.replace("_", " "), _f(d), _f(i)] for n, d, i in zip(e["class_names"], e["dice_per_class"],
                                                                           e["iou_per_class"])])
            for name in figure_names:
                source = results / e.get("dir", key) / name
                if source.is_file():
                    shutil.copyfile(source, plots / f"{key}_{name.replace('/', '_')}")
                    pages.image(source)
            for full_run in sorted(results.glob(f"{key}-full*/metrics.json")):  # longer runs, outside the notebook
                full = json.loads(full_run.read_text())
                if key.startswith("2"):
                    pages.text(f"Full-data run (transfer_vgg.py, outside the notebook): {vgg_text(full)}")
                    pages.image(full_run.with_name("curves.png"), max_height=3.6)
                else:
                    pages.text(f"Full-profile run (train_segmentation.py, outside the notebook): {seg_run_text(full)}")
                    pages.image(full_run.with_name("loss.png"), max_height=3.6)
        ablation_page(pages, results / "ablation" / "ablation.json",
                      sorted(results.glob("recipe-best-seeds*/seeds.json")))
        pages.close()
    return pdf_path


def ablation_page(pages: PageWriter, path: Path, seeds_paths: list[Path]) -> None:
    """The recipe ablation and its confirmations over seeds (ablation.py), when results/ holds them."""
    if not path.is_file():
        return
    ablation = json.loads(path.read_text())
    pages.new_page()
    pages.heading("Recipe ablation: what earns the better segmentation scores")
    pages.text(f"Data: {ablation.get('data_root', '')}; {ablation.get('description', '')} Each step is added to the "
               f"best configuration so far and kept only if it raises the validation strict mean instrument Dice; "
               f"the test split is scored once, for the final choice: {ablation['kept']}.")
    cols = ["step", "val_mean_instrument_dice", "val_assignment_dice", "kept", "best_epoch", "train_seconds"]
    rows = [r for r in ablation["rows"] if "val_mean_instrument_dice" in r]
    pages.table([["step", "val strict Dice", "val assignment Dice", "kept", "best epoch", "train s"]] +
                [[r.get(c) for c in cols] for r in rows], size=7, widths=[4.2, 1.2, 1.4, 0.7, 0.9, 0.9])
    test = ablation["test"]
    pages.text(f"Final recipe on the test split: {_seg_scores(test)}.")
    names = ablation["class_names"]
    pages.table([["class", "test Dice", "test IoU"]] + [[n.replace("_", " "), _f(d), _f(i)] for n, d, i in
                                                        zip(names, test["dice_per_class"], test["iou_per_class"])])
    for seeds_path in seeds_paths:
        seeds = json.loads(seeds_path.read_text())
        score = seeds["test_mean_instrument_dice"]
        pages.text(f"--recipe best ({seeds['recipe']}, {seeds['options']}) over seeds {seeds['seeds']} on "
                   f"{'SYNTHETIC data' if seeds['synthetic'] else seeds['data_root']}, {seeds['device']}: test strict mean "
                   f"instrument Dice {score['mean']:.3f} (min {score['min']:.3f}, max {score['max']:.3f}; per seed "
                   f"{', '.join(f'{v:.3f}' for v in score['per_seed'])}); training "
                   f"{', '.join(f'{t:.0f}' for t in seeds['train_seconds_per_seed'])} s per seed.")
        pages.table([["class"] + [f"seed {s}" for s in seeds["seeds"]]] +
                    [[n.replace("_", " ")] + [_f(v, 2) for v in vals] for n, vals in seeds["dice_per_class"].items()])


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(summary: dict, readme: Path) -> None:
    """Rewrites the README's results block from summary.json (between the two marker comments)."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise cli.UsageError(f"{readme}: no {README_START} ... {README_END} block to fill")
    data = "SYNTHETIC data" if summary["synthetic"] else f"the assignment's data (`{Path(summary['data_root']).name}`)"
    block = "\n".join([
        README_START,
        f"Generated by `report.py` from `results/summary.json`: profile `{summary['profile']}` on {data}, "
        f"device {summary['device']}, wall time {summary['wall_seconds'] / 60:.0f} min, started {summary['started_utc']} UTC. "
        f"Test split; see `report.pdf` for the figures and every answer.", "",
        markdown(results_table(summary)), "Strict per-class test Dice / IoU:", "",
        markdown(per_class_table(summary) or [["none"]]), README_END])
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    atomic.write_text(text[:start] + block + text[end:], readme)


def read_summary(results: Path) -> dict:
    path = results / "summary.json"
    if not path.is_file():
        raise cli.UsageError(f"{path}: no summary; run hw6.ipynb (make run) first")
    return json.loads(path.read_text())


def title_page(pages: PageWriter, summary: dict) -> None:
    pages.new_page()
    pages.heading("HW6: U-Net instrument segmentation, colorization pre-training, VGG16 transfer")
    if summary["synthetic"]:
        pages.text("ALL SEGMENTATION AND COLORIZATION RESULTS BELOW ARE ON SYNTHETIC DATA generated by "
                   "synthetic_endo.py, not on the assignment's EndoVis data.", size=10, weight="bold", color="darkred")
    v = summary["versions"]
    pages.text(f"Profile: {summary['profile']} ({summary['profile_description']}).\n"
               f"Device: {summary['device']}.\nSegmentation data: {summary['data_root']} "
               f"({'synthetic' if summary['synthetic'] else 'the assignment data'}).\n"
               f"Fashion-MNIST: {summary['fashion_root']}. VGG16 weights: {summary['vgg16_weights']}.\n"
               f"Started {summary['started_utc']} UTC; wall time {summary['wall_seconds'] / 60:.1f} min. "
               f"Python {v['python']}, torch {v['torch']}, torchvision {v['torchvision']}.\n"
               f"Report built {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC by report.py from results/summary.json.")
    pages.text("Results (test split; strict scores exclude background and skip classes absent from both test "
               "and prediction):", weight="bold")
    pages.table(results_table(summary), widths=[1, 1.3, 1.3, 1, 1.1, 2.6])
    per_class = per_class_table(summary)
    if per_class:
        pages.text("Strict per-class test Dice / IoU:", weight="bold")
        pages.table(per_class, size=6.5)
    pages.text(WHY_METRICS_DIFFER)


def main() -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results)")
    parser.add_argument("--pdf", type=Path, help="output PDF (default: report.pdf beside the results folder)")
    parser.add_argument("--plots", type=Path, help="figure folder (default: plots/ beside the results folder)")
    parser.add_argument("--readme", type=Path, help="also rewrite this README's results block")
    args = parser.parse_args()

    def body() -> None:
        print(f"wrote {build(args.results, args.pdf, args.plots)}")
        if args.readme:
            update_readme(read_summary(args.results), args.readme)
            print(f"updated the results block of {args.readme}")

    cli.main(body)


if __name__ == "__main__":
    main()
