"""report.pdf from results/ alone: ``python notebook/report.py [--results results]`` rebuilds report.pdf and plots/
beside the results folder without training anything.

``layout(results)`` decides what the report says, as a list of blocks (headings, paragraphs, code, tables,
figures with captions); ``render`` flows them onto A4 pages. A block is never split across pages and no
figure is taller than 60% of a page, so no page but the last is less than about a third full.
"""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from hw6.kit import atomic, cli, stats  # noqa: E402
from hw6.notebook import answers  # noqa: E402
from hw6.notebook.answers import f3  # noqa: E402

TITLES = {"1a": "1(a) U-Net segmentation with the Dice loss", "1b": "1(b) Data augmentation",
          "1c": "1(c) Hyper-parameters", "1d": "1(d) Colorization pre-training",
          "1e": "1(e) Fine-tuning from colorization", "2a": "2(a) VGG16 from scratch on Fashion-MNIST",
          "2b": "2(b) VGG16, ImageNet weights, all frozen but a new last layer",
          "2c": "2(c) VGG16, ImageNet weights, all fully connected layers trained"}
# Per section, the figures the assignment asks for: (file under the section's folder, what it shows).
FIGURES = {
    "1a": [("loss.png", "training and validation loss per epoch, every seed"),
           ("seed0/predictions.png", "test frames, ground truth and prediction (seed 0)"),
           ("seed0/confusion.png", "test confusion matrix, rows normalised (seed 0)")],
    "1b": [("loss.png", "training and validation loss per epoch, every seed"),
           ("seed0/predictions.png", "test frames, ground truth and prediction (seed 0)")],
    "1c": [("loss.png", "training and validation loss per epoch of the chosen configuration, every seed"),
           ("seed0/predictions.png", "test frames, ground truth and prediction (seed 0)")],
    "1d": [("loss.png", "training and validation MSE per epoch"),
           ("colorization.png", "validation frames: grey input, ground truth, prediction")],
    "1e": [("loss.png", "training and validation loss per epoch, every seed")],
    "2a": [("curves.png", "training loss, test loss and test accuracy per epoch"),
           ("confusion.png", "test confusion matrix, rows normalised")],
    "2b": [("curves.png", "training loss, test loss and test accuracy per epoch")],
    "2c": [("curves.png", "training loss, test loss and test accuracy per epoch")],
}


@dataclass
class Block:
    """One piece of the report. kind: heading, text, code, table (``rows``), figure (``path``, ``caption``)."""
    kind: str
    text: str = ""
    rows: list | None = None
    path: Path | None = None
    bold: bool = False


def run_label(summary: dict, e: dict | None = None, short: bool = False) -> str:
    """profile, data, device (and seeds) of a run, for captions and (``short``) the headline table."""
    seeds = f", seeds {' '.join(map(str, e['seeds']))}" if e and e.get("seeds") else ""
    device = (e or {}).get("device") or summary["device"]
    vgg = (e or {}).get("kind") == "vgg"  # the VGG16 runs learn Fashion-MNIST, not the segmentation data
    if short:
        device = device.split(" (")[0] + ", " + device.rsplit(", ", 1)[-1].rstrip(")")  # "cpu, fp32"
        return f"{summary['profile']}, {'Fashion-MNIST' if vgg else summary['data']['name']}, {device}{seeds}"
    data = "data: Fashion-MNIST" if vgg else summary["data"]["label"]
    return f"profile {summary['profile']}, {data}, {device}{seeds}"


# ------------------------------------------------------------------------------------------------ tables
def headline_rows(summary: dict, results: Path) -> list[list[str]]:
    """One row per experiment, from its most faithful run (a full-data run over the notebook's)."""
    rows = [["exp.", "run (profile, data, device, seeds)", "assignment Dice", "strict instr. Dice (range)",
             "instr. IoU", "test acc.", "status"]]
    for key, title in TITLES.items():
        e = summary["experiments"].get(key)
        short = title.split(" ", 1)[0]
        long_run = full_data_vgg(results, key)
        if long_run:
            rows.append([short, long_run["label"], "", "", "", f3(long_run["accuracy"], 4), "done (full data)"])
        elif e is None or e["status"] == "not run":
            rows.append([short, "", "", "", "", "", "not run" + (": no weights" if e else "")])
        elif e["kind"] == "segmentation":
            t = e["test"]
            dice = t["mean_instrument_dice"]
            rows.append([short, run_label(summary, e, True), f3(t["assignment_dice"]["mean"]),
                         f"{f3(dice['mean'])} ({f3(dice['min'])}-{f3(dice['max'])})",
                         f3(t["mean_instrument_iou"]["mean"]), "", e["status"]])
        elif e["kind"] == "colorization":
            rows.append([short, run_label(summary, e, True), "", "", "", "",
                         f"{e['status']}; PSNR {f3((e['validation'] or {}).get('psnr_db'), 1)} dB"])
        else:
            rows.append([short, run_label(summary, e, True), "", "", "", f3(e["test"]["accuracy"], 4), e["status"]])
    return rows


def full_data_vgg(results: Path, key: str) -> dict | None:
    """The VGG16 run in results/<key>-full*/ with the most training images (longest on a tie), if any: these
    are transfer_vgg.py runs on all of Fashion-MNIST, made outside the notebook (docs/BENCHMARKS.md)."""
    found = []
    for path in sorted(results.glob(f"{key}-full*/metrics.json")):
        m = json.loads(path.read_text())
        flat = "final_test_accuracy" in m  # written before the shared schema (experiment.py)
        d = m if flat else m["details"]
        accuracy = m["final_test_accuracy"] if flat else m["test"]["accuracy"]
        epochs = m["epochs"] if flat else m["options"]["epochs"]
        found.append({"accuracy": accuracy, "images": d["train_images"], "epochs": epochs, "folder": path.parent.name,
                      "label": f"{path.parent.name}: all {d['train_images']:,} training images, {epochs} epochs, "
                               f"{m['device'].split(' (')[0]}"})
    return max(found, key=lambda r: (r["images"], r["epochs"])) if found else None


def per_class_rows(summary: dict) -> list[list[str]] | None:
    seg = [(k, e) for k, e in summary["experiments"].items() if e.get("kind") == "segmentation"]
    if not seg:
        return None
    rows = [["class"] + [f"{k} Dice / IoU" for k, _ in seg]]
    for i, name in enumerate(seg[0][1]["class_names"]):
        rows.append([name.replace("_", " ")] + [f"{f3(e['test']['dice_per_class'][i]['mean'], 2)} / "
                                                f"{f3(e['test']['iou_per_class'][i]['mean'], 2)}" for _, e in seg])
    return rows


def markdown(rows: list[list[str]]) -> str:
    return cli.markdown_table([dict(zip(rows[0], (c.replace("\n", " ") for c in row))) for row in rows[1:]])


# ------------------------------------------------------------------------------------------------ layout
def layout(results: Path) -> list[Block]:
    """Every block of the report, in order."""
    summary = read_summary(results)
    blocks = [Block("heading", "HW6: U-Net instrument segmentation, colorization pre-training, VGG16 transfer")]
    if summary["data"]["synthetic"]:
        blocks.append(Block("text", "EVERY SEGMENTATION AND COLORIZATION RESULT BELOW IS ON SYNTHETIC DATA (the "
                                    "project's generated default), not on the assignment's EndoVis frames.", bold=True))
    blocks += [Block("text", provenance(summary)),
               Block("text", "Results: each experiment's most faithful run (test split; segmentation: mean over "
                             "seeds, the strict Dice with its range).", bold=True),
               Block("table", rows=headline_rows(summary, results))]
    per_class = per_class_rows(summary)
    if per_class:
        blocks += [Block("text", "Strict per-class test Dice / IoU (mean over seeds; n/a: the class is in neither "
                                 "the test masks nor the predictions):", bold=True), Block("table", rows=per_class)]
    blocks.append(Block("text", READING_THE_SCORES))
    for key, title in TITLES.items():
        blocks += section(key, title, summary, results)
    blocks += larger_budget(results) + ablation(results)
    return blocks


READING_THE_SCORES = (
    "How to read the scores. Every segmentation score is computed against the masks at the size they are stored at "
    "(256x320 for the course data), whatever size the model was trained at: its logits are upsampled before the argmax, by the same "
    "code that predict.py uses. The assignment's Dice is the loss's definition on the one-hot prediction (per class, "
    "summed over batches of 10 test frames, smoothed by 1, background included, averaged over classes and batches); "
    "its per-frame form is shown beside it. The strict Dice and IoU count every test pixel once per class without "
    "smoothing and leave background out of their mean: a model that finds few instrument pixels scores low there, "
    "however high the smoothed scores stay.")


def provenance(summary: dict) -> str:
    v = summary["versions"]
    resumed = ("This execution resumed an interrupted one: trainings finished before the interruption were kept "
               "and scored again, the others continued from their last epoch. " if summary.get("resumed") else "")
    weights = summary["vgg16_weights"]
    weights = "looked for in torchvision's cache" if weights == "torchvision cache" else f"the local file {weights}"
    return (f"Profile {summary['profile']}: {summary['profile_description']}. Data: {summary['data']['name']}"
            f"{' (synthetic)' if summary['data']['synthetic'] else ' (the course data, real)'}; Fashion-MNIST from "
            f"the folder {summary['fashion']}; VGG16 ImageNet weights: {weights}. Device: {summary['device']}, "
            f"{summary['parallel']} training(s) at a time. {resumed}Started {summary['started_utc']} UTC, "
            f"{summary['wall_seconds'] / 60:.0f} min. Python {v['python']}, torch {v['torch']}. Built by "
            f"notebook/report.py from results/summary.json on {time.strftime('%Y-%m-%d', time.gmtime())}.")


def section(key: str, title: str, summary: dict, results: Path) -> list[Block]:
    e = summary["experiments"].get(key) or {}
    blocks = [Block("heading", title), Block("text", "Question. " + answers.QUESTIONS[key], bold=True),
              Block("text", answers.answer(key, summary))]
    if key == "1a":
        blocks += [Block("text", "The Dice loss (losses.soft_dice_loss), its docstring:", bold=True),
                   Block("code", answers.dice_implementation())]
    if key == "1b":
        blocks += [Block("text", "The augmentation code (augment.py, read from the module):", bold=True),
                   Block("code", answers.augmentation_source())]
    if key == "1c" and e.get("sweep_rows"):
        cols = ["config", "best_value", "best_epoch", "val_assignment_dice", "val_mean_instrument_dice", "selected"]
        blocks.append(Block("table", rows=[["configuration", "best monitored value", "epoch", "val assignment Dice",
                                            "val strict Dice", "chosen"]] + [[str(r[c]) for c in cols]
                                                                             for r in e["sweep_rows"]]))
    if key in ("2b", "2c") and e.get("status") == "not run":
        blocks.append(Block("text", answers.WHAT_TO_RUN))
    for name, what in FIGURES[key] if e.get("dir") else []:
        path = results / e["dir"] / name
        if path.is_file():
            blocks.append(Block("figure", f"{key}: {what}; {run_label(summary, e)}.", path=path))
    if key == "1e" and "1e_label_efficiency" in summary["experiments"]:
        le = summary["experiments"]["1e_label_efficiency"]
        blocks.append(Block("figure", f"1e: label efficiency, test strict mean instrument Dice against the fraction "
                                      f"of labelled frames (line: mean over seeds {le['seeds']}, band: min to max); "
                                      f"{run_label(summary)}.", path=results / le["dir"] / "label_efficiency.png"))
    long_run = full_data_vgg(results, key)
    if long_run:
        blocks += [Block("text", f"The headline run for {key}: {long_run['label']} (transfer_vgg.py, outside the "
                                 f"notebook): final test accuracy {f3(long_run['accuracy'], 4)} on the 10,000 test "
                                 "images."),
                   Block("figure", f"{key}: {long_run['folder']}, training loss, test loss and test accuracy per "
                                   "epoch.", path=results / long_run["folder"] / "curves.png")]
    return blocks


# Seed sets trained outside the notebook at a larger budget than the quick profile's (issue 16's targets):
# folder under results/, and what differs between them. Each is one ``train_segmentation.py --seeds`` call.
LARGER_BUDGET = {"dice-reading/batch": "1(a), batch-wide Dice loss",
                 "dice-reading/image": "1(a), per-frame Dice loss",
                 "1b-seeds-128x160": "1(b), flips + colour jitter"}
COMPARED_OPTIONS = ("image_size", "epochs", "batch_size", "lr", "loss", "monitor", "recipe", "precision")


def larger_budget_runs(results: Path) -> dict[str, dict]:
    """The seeds.json of each LARGER_BUDGET folder that results holds, by folder."""
    return {folder: json.loads(path.read_text()) for folder in LARGER_BUDGET
            if (path := results / folder / "seeds.json").is_file()}


def larger_budget_rows(runs: dict[str, dict]) -> list[list[str]]:
    rows = [["run", "results/ folder", "size, epochs", "strict instr. Dice (range)", "assignment Dice",
             "per-frame assign. Dice", "training min per seed"]]
    for folder, s in runs.items():
        o, t = s["options"], s["test"]
        dice = t["mean_instrument_dice"]
        rows.append([LARGER_BUDGET[folder], folder, f"{'x'.join(map(str, o['image_size']))}, {o['epochs']}",
                     f"{f3(dice['mean'])} ({f3(dice['min'])}-{f3(dice['max'])})", f3(t["assignment_dice"]["mean"]),
                     f3(t["assignment_dice_per_frame"]["mean"]),
                     " / ".join(f"{seconds / 60:.0f}" for seconds in s["train_seconds"])])
    return rows


def larger_budget(results: Path) -> list[Block]:
    """1(a), its per-frame-loss variant and 1(b) at a larger budget, over seeds, when results hold them."""
    runs = larger_budget_runs(results)
    if not runs:
        return []
    first = next(iter(runs.values()))
    unequal = [k for k in COMPARED_OPTIONS if len({json.dumps(s["options"][k]) for s in runs.values()}) > 1]
    unequal += ["seeds"] if len({tuple(s["seeds"]) for s in runs.values()}) > 1 else []
    if unequal:
        raise ValueError(f"{results}: the larger-budget runs differ in {', '.join(unequal)}, so they cannot be "
                         "compared; train them with the same options")
    o = first["options"]
    size, seeds = "x".join(map(str, o["image_size"])), " ".join(map(str, first["seeds"]))
    text = [f"Trained by train_segmentation.py outside the notebook, the rest as in 1(a): {first['data']['label']}, "
            f"{size}, {o['epochs']} epochs, batch {o['batch_size']}, Adam "
            f"{o['lr']:g}, checkpoint chosen on the validation loss, scored on the test split at the masks' stored "
            f"size, {first['device']}, seeds {seeds}."]
    batch, image, augmented = (runs[folder]["test"]["mean_instrument_dice"] if folder in runs else None
                               for folder in ("dice-reading/batch", "dice-reading/image", "1b-seeds-128x160"))
    if batch and augmented:
        text.append(stats.compare("1(b)", augmented, "1(a)", batch, "test strict mean instrument Dice"))
    if batch and image:
        text.append(stats.compare("The batch-wide Dice loss", batch, "the per-frame one", image,
                                  "test strict mean instrument Dice")
                    + " Why: in the per-frame form a class absent from a frame scores 1 as long as none of it is "
                      "predicted, so most terms of the mean reward predicting nothing, and the model drifts "
                      "towards background; summed over a batch, every class present in any of its frames asks for "
                      "its pixels to be found.")
    elif batch:
        text.append("The per-frame Dice loss was not trained at this budget in these results; python "
                    f"train_segmentation.py --data DATA --out {results.name}/dice-reading/image --image-size "
                    f"{size} --epochs {o['epochs']} --dice-per-frame --seeds {seeds} adds it here.")
    return [Block("heading", "1(a) and 1(b) at a larger budget, and the Dice reading"),
            Block("text", " ".join(text)), Block("table", rows=larger_budget_rows(runs))]


def ablation(results: Path) -> list[Block]:
    path = results / "ablation" / "ablation.json"
    if not path.is_file():
        return []
    a = json.loads(path.read_text())
    cols = ["step", "val_mean_instrument_dice", "val_spread", "gain", "gain_vs_spread", "kept", "train_seconds"]
    rows = [r for r in a["rows"] if "val_mean_instrument_dice" in r]
    c = a["confirmation"]
    return [Block("heading", "The recipe ablation (tools/ablation.py)"),
            Block("text", f"{a['data']['label']}; {a['description']} Each step is added to the best configuration so "
                          "far and kept only if it raises the mean validation strict Dice over the seeds; the test "
                          f"split is scored once, for the kept recipe {a['kept']}: test strict mean instrument Dice "
                          f"{stats.describe(c['test_mean_instrument_dice'])}."),
            Block("table", rows=[["step", "val strict Dice", "range", "gain", "vs spread", "kept", "train s"]] +
                  [[str(r.get(k, "")) for k in cols] for r in rows])]


# ------------------------------------------------------------------------------------------------ render
class PageWriter:
    """Flows blocks down A4 pages; a block that does not fit on the rest of a page starts the next one."""
    WIDTH, HEIGHT, MARGIN = 8.27, 11.69, 0.6
    TEXT, CODE = 9.0, 6.8

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf, self.fig, self.y = pdf, None, 0.0

    def close(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def _room(self, inches: float) -> None:
        if self.fig is None or self.y - inches < self.MARGIN:
            self.close()
            self.fig = plt.figure(figsize=(self.WIDTH, self.HEIGHT))
            self.y = self.HEIGHT - self.MARGIN

    def _lines(self, lines: list[str], size: float, **style) -> None:
        height = size * 1.4 / 72
        self._room(height * len(lines) + height * 0.6)
        for line in lines:
            self.fig.text(self.MARGIN / self.WIDTH, self.y / self.HEIGHT, line, fontsize=size, va="top", **style)
            self.y -= height
        self.y -= height * 0.6

    def block(self, b: Block) -> None:
        if b.kind == "heading":
            self._room(1.4)  # a heading never ends a page
            self._lines(textwrap.wrap(b.text, 68), 13, weight="bold")
        elif b.kind == "text":
            width = 88 if b.bold else 96  # characters per line at 9 pt on the page's 7 inches
            lines = [line for para in b.text.split("\n") for line in textwrap.wrap(para, width) or [""]]
            self._lines(lines, self.TEXT, weight="bold" if b.bold else "normal")
        elif b.kind == "code":
            self._lines([line[:118] for line in b.text.split("\n")], self.CODE, family="monospace")
        elif b.kind == "table":
            self.table(b.rows)
        else:
            self.figure(b.path, b.text)

    def table(self, rows: list[list[str]], size: float = 7.0) -> None:
        """A table filling the text width, columns as wide as their longest cell."""
        height = len(rows) * size * 1.9 / 72
        self._room(height + 0.2)
        ax = self.fig.add_axes([self.MARGIN / self.WIDTH, (self.y - height) / self.HEIGHT,
                                1 - 2 * self.MARGIN / self.WIDTH, height / self.HEIGHT])
        ax.axis("off")
        longest = [max(len(str(r[k])) for r in rows) + 3 for k in range(len(rows[0]))]
        size = max(5.5, min(size, size * 118 / sum(longest)))  # about 118 characters fit the width at 7 pt
        table = ax.table(cellText=[[str(c) for c in r] for r in rows[1:]], colLabels=rows[0], cellLoc="left",
                         colWidths=[n / sum(longest) for n in longest], bbox=[0, 0, 1, 1])
        table.auto_set_font_size(False)
        table.set_fontsize(size)
        self.y -= height + 0.2

    def figure(self, path: Path, caption: str) -> None:
        """A figure at the text width (or at 45% of the page's height if that is smaller), and its caption."""
        picture = mpimg.imread(path)
        h, w = picture.shape[:2]
        height = min(0.45 * (self.HEIGHT - 2 * self.MARGIN), (self.WIDTH - 2 * self.MARGIN) * h / w)
        caption_lines = textwrap.wrap("Figure: " + caption, 110)
        self._room(height + 0.3 + len(caption_lines) * 0.15)
        ax = self.fig.add_axes([(self.WIDTH - height * w / h) / 2 / self.WIDTH, (self.y - height) / self.HEIGHT,
                                height * w / h / self.WIDTH, height / self.HEIGHT])
        ax.imshow(picture)
        ax.axis("off")
        self.y -= height + 0.08
        self._lines(caption_lines, 7.5, style="italic")


REPORT_CREATOR = "hw6 notebook/report.py"  # in the PDF's metadata: a report.pdf without it is not ours to replace


def render(blocks: list[Block], pdf_path: Path) -> None:
    """Writes the blocks as a PDF; refuses (one line) to replace a file of that name this project did not write."""
    if pdf_path.exists() and f"/Creator ({REPORT_CREATOR})".encode() not in pdf_path.read_bytes():
        raise cli.UsageError(f"{pdf_path}: exists and was not written by this project's report; move it or pass "
                             f"another --pdf")
    with atomic.replacing(pdf_path) as f, PdfPages(f, metadata={"Creator": REPORT_CREATOR}) as pdf:
        pages = PageWriter(pdf)
        for b in blocks:
            pages.block(b)
        pages.close()


def build(results: str | Path = "results", pdf_path: str | Path | None = None, plots: str | Path | None = None) -> Path:
    """Writes report.pdf and plots/ (each figure of the report) beside ``results``, or where given."""
    results = Path(results)
    blocks = layout(results)
    pdf_path = Path(pdf_path) if pdf_path else results.parent / "report.pdf"
    plots = Path(plots) if plots else results.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for b in blocks:
        if b.kind == "figure":
            shutil.copyfile(b.path, plots / "_".join(b.path.relative_to(results).parts))
    render(blocks, pdf_path)
    return pdf_path


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(results: Path, readme: Path) -> None:
    """Rewrites the README's results block from summary.json (between the two marker comments)."""
    summary = read_summary(results)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise cli.UsageError(f"{readme}: no {README_START} ... {README_END} block to fill")
    block = "\n".join([
        README_START,
        f"Generated by `notebook/report.py` from `results/summary.json`: {provenance(summary)} Test split; "
        "`report.pdf` has the figures and every answer.", "",
        markdown(headline_rows(summary, results)), "Strict per-class test Dice / IoU (mean over seeds):", "",
        markdown(per_class_rows(summary) or [["none"]])] + larger_budget_readme(results) + [README_END])
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    atomic.write_text(text[:start] + block + text[end:], readme)


def larger_budget_readme(results: Path) -> list[str]:
    runs = larger_budget_runs(results)
    if not runs:
        return []
    first = next(iter(runs.values()))
    return ["At a larger budget, outside the notebook (`train_segmentation.py --seeds`; the report's last pages say "
            f"how): {first['data']['label']}, {first['device']}.", "",
            markdown(larger_budget_rows(runs))]


def read_summary(results: Path) -> dict:
    path = Path(results) / "summary.json"
    if not path.is_file():
        raise cli.UsageError(f"{path}: no summary; run hw6.ipynb (make run) first")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results)")
    parser.add_argument("--pdf", type=Path, help="output PDF (default: report.pdf beside the results folder)")
    parser.add_argument("--plots", type=Path, help="figure folder (default: plots/ beside the results folder)")
    parser.add_argument("--readme", type=Path, help="also rewrite this README's results block")
    args = parser.parse_args(argv)

    def body() -> None:
        print(f"wrote {build(args.results, args.pdf, args.plots)}")
        if args.readme:
            update_readme(args.results, args.readme)
            print(f"updated the results block of {args.readme}")

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
