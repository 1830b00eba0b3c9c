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

from hw6.engine import read_history  # noqa: E402
from hw6.kit import atomic, cli, stats  # noqa: E402
from hw6.kit import figures as figures_kit  # noqa: E402
from hw6.notebook import answers  # noqa: E402
from hw6.notebook.answers import count, f3, label, series  # noqa: E402
from hw6.notebook.results import slopes  # noqa: E402

TITLES = {"1a": "1(a) U-Net segmentation with the Dice loss", "1b": "1(b) Data augmentation",
          "1c": "1(c) Hyper-parameters", "1c_recipe": "1(c), beyond the hyper-parameters: our recipe step by step",
          "1d": "1(d) Colorization pre-training", "1e": "1(e) Fine-tuning from colorization",
          "1e_label_efficiency": "1(e), beyond the assignment: fewer labelled frames",
          "2a": "2(a) VGG16 from scratch on Fashion-MNIST",
          "2b": "2(b) VGG16, ImageNet weights, all frozen but a new last layer",
          "2c": "2(c) VGG16, ImageNet weights, all fully connected layers trained"}
QUESTIONED = ("1a", "1b", "1c", "1d", "1e", "2a", "2b", "2c")  # the assignment's questions; the rest is ours
# Per section, its figures: (file under the section's folder, caption, how the text refers to it).
FIGURES = {
    "1a": [("loss.png", "1(a): training and validation loss per epoch, every seed.", "the losses per epoch"),
           ("seed0/predictions.png", "1(a): two test frames, ground truth and prediction (seed 0).",
            "two test predictions"),
           ("seed0/confusion.png", "1(a): test confusion matrix, rows normalised (seed 0). The rows of the two classes "
            "absent from the test masks are empty.", "the confusion matrix")],
    "1b": [("loss.png", "1(b): training and validation loss per epoch, every seed.", "the losses per epoch"),
           ("seed0/predictions.png", "1(b): two test frames, ground truth and prediction (seed 0).",
            "two test predictions")],
    "1c": [("../study.png", "1(c): the study, validation strict Dice of each configuration at each round it reached.",
            "the study's rounds"),
           ("loss.png", "1(c): training and validation loss per epoch of the chosen configuration, every seed.",
            "the chosen configuration's losses")],
    "1c_recipe": [("val_dice.png", "1(c), our recipe: validation strict Dice per epoch, the study's choice and the "
                   "Dice + cross-entropy runs, every seed.", "the validation strict Dice per epoch")],
    "1d": [("loss.png", "1(d): training and validation mean squared error per epoch.", "the losses per epoch"),
           ("colorization.png", "1(d): validation frames, grey input, ground truth and prediction.",
            "colorized validation frames")],
    "1e": [("loss.png", "1(e): training and validation loss per epoch, every seed.", "the losses per epoch")],
    "1e_label_efficiency": [("label_efficiency.png", "1(e): test strict Dice against the fraction of labelled "
                             "frames (line: mean over seeds; band: lowest to highest).", "the curve")],
    "2a": [("curves.png", "2(a): training loss, test loss and test accuracy per epoch.", "the curves per epoch"),
           ("confusion.png", "2(a): test confusion matrix, rows normalised.", "the confusion matrix")],
    "2b": [("curves.png", "2(b): training loss, test loss and test accuracy per epoch.", "the curves per epoch")],
    "2c": [("curves.png", "2(c): training loss, test loss and test accuracy per epoch.", "the curves per epoch")],
}
REFERENCE = {"1a": 0.88, "1b": 0.86, "1c": 0.89, "1e": 0.90, "2a": 0.90, "2b": 0.88, "2c": 0.893}


@dataclass
class Block:
    """One piece of the report. kind: heading, text, code, table (``rows``, ``text`` its caption), figure
    (``path``, ``text`` its caption), pagebreak."""
    kind: str
    text: str = ""
    rows: list | None = None
    path: Path | None = None
    bold: bool = False


# ------------------------------------------------------------------------------------------ the longer runs
# Runs of an experiment trained outside the notebook, with the notebook's recipe, at a larger budget.
OUTSIDE = {"1a": ["dice-reading/batch"], "1b": ["1b-seeds-128x160"], "2a": ["2a-full", "2a-full-18ep", "2a-full-24ep"]}


def outside_runs(key: str, summary: dict, results: Path) -> list[dict]:
    """The runs of OUTSIDE[key] that ``results`` holds on this summary's data: options, test scores, budget
    in words, the command that trained them (Appendix A) and, for a segmentation seed set, each seed's fit with
    the slopes of its losses."""
    found = []
    for folder in OUTSIDE.get(key, []):
        if (results / folder / "seeds.json").is_file():
            s = json.loads((results / folder / "seeds.json").read_text())
            if s["data"]["name"] != summary["data"]["name"]:
                continue  # a longer run on other data is never shown beside this summary's
            runs = [json.loads((results / folder / r / "metrics.json").read_text()) for r in s["runs"]]
            size, o = runs[0]["details"]["image_size"], s["options"]
            fits = [{"seed": seed, **m["fit"], **slopes(read_history(results / folder / r))}
                    for seed, r, m in zip(s["seeds"], s["runs"], runs)]
            flags = (" --augment" if o["augment"] == "flips" else "") + ("" if o["dice_batch"] else " --dice-per-frame")
            found.append({"folder": folder, "options": o, "test": s["test"], "fits": fits,
                          "budget": f"{size[0]}x{size[1]}, {count(o['epochs'], 'epoch')}, "
                                    f"{count(len(s['seeds']), 'seed')}",
                          "command": f"python train_segmentation.py --data <data> --out results/{folder} --image-size "
                                     f"{'x'.join(map(str, o['image_size']))} --epochs {o['epochs']}{flags} --seeds "
                                     f"{' '.join(str(f['seed']) for f in fits)}"})
        elif (results / folder / "metrics.json").is_file():
            m = json.loads((results / folder / "metrics.json").read_text())
            o = m["options"]
            schedule = "" if o.get("scheduler", "none") == "none" else f", {o['scheduler']} schedule"
            images, epochs = f"{m['details']['train_images']:,} images", m["fit"]["epochs_run"]
            found.append({"folder": folder, "options": o, "test": m["test"], "epochs": epochs,
                          "setting": f"{images}{schedule}", "budget": f"{images}, {count(epochs, 'epoch')}{schedule}",
                          "command": f"python transfer_vgg.py --data <fashion> --out results/{folder} --mode scratch "
                                     f"--epochs {o['epochs']} --scheduler {o['scheduler']}"})
    return found


def score_cells(t: dict) -> list[str]:
    """A segmentation row's cells: strict Dice over the classes present (range), absent-class pixels, the
    assignment's Dice."""
    return [spread_cell(t["mean_present_instrument_dice"]), f"{t['absent_predicted_share']['mean']:.2%}",
            f3(t["assignment_dice"]["mean"])]


def spread_cell(s: dict) -> str:
    """"0.512 (0.480-0.530)": the mean over seeds (lowest-highest seed); the value alone for one seed."""
    return f3(s["mean"]) if s["n"] < 2 else f"{f3(s['mean'])} ({f3(s['min'])}-{f3(s['max'])})"


SCORE_HEADER = ["Strict Dice, classes present", "Pixels as absent classes", "Assignment Dice"]


def score_row(short: str, t: dict, last: str) -> list[str]:
    """A row of Table 1 or of the longer runs' table: a VGG16 run's test accuracy or a segmentation run's
    ``score_cells``, then ``last`` (how it ended, or its budget)."""
    if "accuracy" in t:
        return [short, "", "", "", f"{t['accuracy']:.1%}", last]
    return [short] + score_cells(t) + ["", last]


def notebook_rows(summary: dict) -> list[list[str]]:
    """The title page's table: this notebook's own runs, all at the profile's one budget, with how each ended."""
    rows = [["Experiment"] + SCORE_HEADER + ["Test accuracy", "Stopped early"]]
    for key in QUESTIONED:
        e, short = summary["experiments"].get(key), label(key)
        if not e or e.get("status") != "done":
            rows.append([short, "", "", "", "", "not run" if not e or e.get("status") == "not run" else "incomplete"])
        elif e["kind"] == "colorization":
            rows.append([short, f"PSNR {f3((e['validation'] or {}).get('psnr_db'), 1)} dB", "", "", "",
                         stopped_words([e["fit"]])])
        else:
            rows.append(score_row(short, e["test"], "fixed epochs" if e["kind"] == "vgg" else stopped_words(e["fits"])))
    return rows + no_model_rows(summary)


def no_model_rows(summary: dict) -> list[list[str]]:
    """The rows of what needs no model (``results.baselines``): background everywhere on the test split, and
    the grey copy and constant tint beside 1(d)'s PSNR."""
    b, rows = summary.get("baselines", {}), []
    if "segmentation" in b:
        s = b["segmentation"]
        rows.append(["No model: background everywhere", f3(s["mean_present_instrument_dice"]),
                     f"{s['absent_predicted_share']:.2%}", f3(s["assignment_dice"]), "", ""])
    if "colorization" in b:
        c = b["colorization"]
        rows.append(["No model: 1(d) grey copy / constant tint",
                     f"PSNR {f3(c['grey_copy_psnr_db'], 1)} / {f3(c['constant_tint_psnr_db'], 1)} dB", "", "", "", ""])
    return rows


def stopped_words(fits: list[dict]) -> str:
    """"3 of 3" runs whose early stopping fired."""
    return f"{sum(f['stop_reason'].startswith('early stop') for f in fits)} of {len(fits)}"


def longer_rows(summary: dict, results: Path) -> list[list[str]]:
    """The later section's table: each experiment's runs trained outside the notebook at a larger budget."""
    return [["Experiment"] + SCORE_HEADER + ["Test accuracy", "Budget"]] + [
        score_row(label(key), run["test"], run["budget"])
        for key in QUESTIONED for run in outside_runs(key, summary, results)]


def per_class_rows(summary: dict) -> list[list[str]] | None:
    seg = [(k, e) for k, e in summary["experiments"].items() if e.get("kind") == "segmentation"]
    if not seg:
        return None
    rows = [["Class"] + [f"{label(k)} Dice / IoU" for k, _ in seg]]
    for i, name in enumerate(seg[0][1]["class_names"]):  # a class absent from the masks has no score of its own
        rows.append([name.replace("_", " ")] + ["absent" if i in e["test"]["absent_classes"] else
                                                f"{f3(e['test']['dice_per_class'][i]['mean'], 2)} / "
                                                f"{f3(e['test']['iou_per_class'][i]['mean'], 2)}" for _, e in seg])
    return rows


def markdown(rows: list[list[str]]) -> str:
    return cli.markdown_table([dict(zip(rows[0], (c.replace("\n", " ") for c in row))) for row in rows[1:]])


# ------------------------------------------------------------------------------------------------ layout
def layout(results: Path) -> list[Block]:
    """Every block of the report, in order: the title page (this notebook's runs at one budget), how to read
    the scores, the reference answers, one section per experiment, the longer runs, and the appendix."""
    summary = read_summary(results)
    blocks = [Block("heading", "HW6: U-Net instrument segmentation, colorization pre-training and VGG16 transfer "
                               "learning"),
              Block("text", f"Deep-learning course, homework 6: the assignment's experiments, each answered from "
                            f"one execution of hw6.ipynb. {time.strftime('%d %B %Y', time.gmtime())}.")]
    if summary["data"]["synthetic"]:
        blocks.append(Block("text", "Every segmentation and colorization result below is on synthetic data (the "
                                    "project's generated default), not on the assignment's frames.", bold=True))
    blocks += [Block("text", overview(summary)),
               Block("table", "Table 1. This notebook's runs, all at one budget: test scores, mean over seeds "
                              "(lowest-highest seed), and how many runs early stopping ended.", notebook_rows(summary)),
               Block("text", "In Table 1, the strict Dice (defined on the next page) is " + strict_dice_words(summary)),
               Block("pagebreak")]
    blocks += reading_the_scores(summary) + reference_answers(summary)
    numbers = {"Table": 2, "Figure": 0}  # Tables 1 and 2 are the title page's and the reference answers'
    for key in TITLES:
        blocks += section(key, summary, results, numbers)
    blocks += longer_runs(summary, results, numbers) + appendix(summary, results)
    return blocks


def strict_dice_words(summary: dict) -> str:
    """What the headline averages, and what stands beside it."""
    seg = next((e for e in summary["experiments"].values() if e.get("kind") == "segmentation"), None)
    absent = answers.absent_names(seg, "test") if seg else "none"
    return ("each seed's mean over the instrument classes present in the test masks" +
            ("" if absent == "none" else f" (all but {absent})") +
            "; beside it, the share of test pixels predicted as a class absent from them.")


def overview(summary: dict) -> str:
    """The title page's paragraph: what was run where, how many runs converged, and each comparison."""
    ex = summary["experiments"]
    data = ("synthetic data" if summary["data"]["synthetic"] else
            "the course's EndoVis 2017 instrument-type data (300 training, 50 validation and 50 test frames)")
    text = [f"Every experiment the available data and weights allow was trained, on {data} and Fashion-MNIST, on "
            f"{summary['device'].split(' (')[0].upper()}. The budget: {summary['profile_description']}."]
    fits = [f for k in ("1a", "1b", "1c", "1e") for f in ex.get(k, {}).get("fits", [])]
    if fits:
        text.append(f"{stopped_words(fits)} segmentation runs of 1(a), 1(b), 1(c) and 1(e) stopped early on the "
                    "validation loss; the others ran to their epoch cap.")
    for key, base, what in (("1b", "1a", "Augmentation (1(b)) against 1(a)"),
                            ("1c", "1a", "The hyper-parameter study's choice (1(c)) against 1(a)"),
                            ("1e", "1c", "Pre-training (1(e)) against 1(c)")):
        if ex.get(key, {}).get("status") == "done" and ex.get(base, {}).get("status") == "done":
            text.append(f"{what}: {verdict(ex[key], ex[base])}.")
    if ex.get("2b", {}).get("status") == "not run":
        text.append("2(b) and 2(c) were not run: " + answers.not_run_reason(ex["2b"]) + ".")
    return " ".join(text)


def verdict(a: dict, b: dict) -> str:
    """A comparison in a few words, on the headline score, with its test (the sections give the numbers)."""
    pa, pb = answers.present(a), answers.present(b)
    delta = pa["mean"] - pb["mean"]
    if min(pa["n"], pb["n"]) < 3:
        return f"{delta:+.3f}, fewer than three seeds, so no conclusion"
    words = f"{'higher' if delta > 0 else 'lower'} by {abs(delta):.3f} ({stats.p_words(pa, pb)})"
    return words + (", a finding" if stats.is_finding(pa, pb) else ", within noise")


def reading_the_scores(summary: dict) -> list[Block]:
    seg = next((e for e in summary["experiments"].values() if e.get("kind") == "segmentation"), None)
    if seg is None:
        return []
    size = "x".join(map(str, seg["score_size"]))
    return [Block("heading", "How to read the segmentation scores"), Block("text", (
        f"Every score is computed against the masks at their stored size ({size}), whatever size the model was "
        "trained at. The assignment's Dice is the loss's own formula on the one-hot prediction: per class, summed "
        "over a batch of 10 test frames, smoothed by 1, background included, averaged over the classes and the "
        "batches; its per-frame form (the same formula on one frame at a time) stands beside it. The strict Dice "
        "counts every test pixel once per class, without smoothing, and leaves background out: a model that finds "
        "few instrument pixels scores low there, however high the smoothed scores stay.\n" + worked_example() + "\n"
        f"Absent classes. {absent_sentence(answers.absent_names(seg, 'test'), answers.absent_names(seg, 'validation'))}"
        " Such a class can only score 0 (when stray pixels are predicted as it) or be undefined, so the headline "
        "is each seed's mean over the classes present in the split's masks, and the share of pixels predicted as "
        "an absent class stands beside it as the one measure of those stray pixels.\n"
        "Comparisons. A difference between two recipes is called a finding only when both rest on at least three "
        "seeds, the means differ by more than either side's spread, and Welch's t-test (two-sided) gives p < "
        "0.05; otherwise it is within noise, and the numbers and the p-value are given."))]


def worked_example(frames: int = 10, size: tuple[int, int] = (256, 320)) -> str:
    """Why a model can score below predicting nothing on the assignment's Dice, in numbers computed here with
    its formula, (2 I + 1) / (P + G + 1) per class averaged over 8 classes, on one batch of ``frames`` frames."""
    pixels = frames * size[0] * size[1]
    background, instrument, stray = 0.85 * pixels, 0.15 * pixels, 100

    def dice(intersection: float, predicted: float, truth: float) -> float:
        return (2 * intersection + 1) / (predicted + truth + 1)

    nothing = (dice(background, pixels, background) + dice(0, 0, instrument) + 6 * dice(0, 0, 0)) / 8
    model = (dice(background - 2 * stray, background - 2 * stray + 0.4 * instrument, background)
             + dice(0.6 * instrument, 0.6 * instrument, instrument) + 2 * dice(0, stray, 0) + 4 * dice(0, 0, 0)) / 8
    return ("Below predicting nothing. Take a batch of 10 frames in which background is 85% of the pixels, one "
            "instrument class the other 15%, and six classes are absent. Predicting background everywhere scores "
            f"{nothing:.3f} on the assignment's Dice: background {dice(background, pixels, background):.3f}, the "
            "instrument 0, and each absent class 1, since nothing of it is predicted. A model that finds 60% of the "
            f"instrument's pixels (its Dice {dice(0.6 * instrument, 0.6 * instrument, instrument):.2f}) but "
            f"predicts {stray} stray pixels of each of two absent classes scores {model:.3f}: those two terms fall "
            "from 1 to about 0. On the smoothed, background-including Dice a model can thus score below doing "
            "nothing while finding most of the instrument; its strict Dice, 0 for doing nothing, does not hide it.")


def absent_sentence(test: str, validation: str) -> str:
    if test == "none" and validation == "none":
        return "Every instrument class has pixels in the test and the validation masks here."
    parts = [f"the test masks hold no pixel of {test}" if test != "none" else "",
             f"the validation masks none of {validation}" if validation != "none" else ""]
    return answers.sentence(", and ".join(p for p in parts if p)) + "."


def reference_answers(summary: dict) -> list[Block]:
    """Where each experiment sits against the course's worked answers, and why our readings of Dice differ."""
    ex = summary["experiments"]
    rows = [["Experiment", "Reference", "Ours, per frame", "Ours, batch-wide", "Ours, strict (classes present)"]]
    readings = ("assignment_dice_per_frame", "assignment_dice", "mean_present_instrument_dice")  # the columns
    for key in ("1a", "1b", "1c", "1e"):
        if ex.get(key, {}).get("status") == "done":
            rows.append([label(key), f"{REFERENCE[key]:.2f}"] + [f3(ex[key]["test"][r]["mean"]) for r in readings])
    nothing = summary.get("baselines", {}).get("segmentation")
    if nothing and len(rows) > 1:
        rows.append(["Background everywhere (no model)", ""] + [f3(nothing[r]) for r in readings])
    vgg = []
    for key in ("2a", "2b", "2c"):
        e, name = ex.get(key), label(key)
        if not e or e.get("status") != "done":
            vgg.append(f"{name} not run (reference {REFERENCE[key]:.1%})")
            continue
        side = "above" if e["test"]["accuracy"] > REFERENCE[key] else "below"
        vgg.append(f"{name} {e['test']['accuracy']:.1%}, {side} the reference {REFERENCE[key]:.1%}")
    seg = next((e for e in ex.values() if e.get("kind") == "segmentation"), None)
    background = f"Background is {answers.background_words(summary, seg)}, " if seg else "Background dominates, "
    text = (
        "The course's worked answers report a test Dice of about 0.88 for 1(a), 0.86 for 1(b), 0.89 for 1(c) and "
        "0.90 for 1(e), and VGG16 test accuracies of 90% for 2(a), 88% for 2(b) and 89.3% for 2(c). Their Dice is "
        f"the smoothed formula of the loss with the background class included. {background}so its term is close "
        "to 1 in any batch, and a class absent from a frame and not predicted there also scores 1 through the "
        "smoothing: averaged per frame over eight classes, the score stays high even for a model that finds little "
        "of the instruments. Table 2 sets our three readings of the test Dice beside the reference (this "
        "notebook's runs, mean over seeds). The batch-wide reading is the one the assignment defines; "
        f"{closest_words(rows)}; the strict Dice counts instrument pixels only and is the one to compare recipes "
        "with. Its last row is the prediction that needs no model, background "
        "on every pixel: every smoothed reading of a trained model is to be read against it." +
        below_nothing(ex, summary.get("baselines", {}).get("segmentation")) +
        "\nVGG16 (this notebook's runs): " + "; ".join(vgg) + ".")
    blocks = [Block("heading", "Our numbers and the reference answers"), Block("text", text)]
    if len(rows) > 1:
        blocks.append(Block("table", "Table 2. The test Dice three ways beside the course's reference answers.", rows))
    return blocks


def closest_words(rows: list[list[str]]) -> str:
    """Which of the three readings of Table 2 lies closest to the reference, counted over its sections' rows."""
    readings = ("per-frame", "batch-wide", "strict")  # the order of Table 2's columns
    nearest = [min(range(3), key=lambda k: abs(float(r[2 + k]) - float(r[1]))) for r in rows[1:]
               if r[1] and "n/a" not in r[2:]]
    if not nearest:
        return "no section has all three readings to compare with the reference"
    most = max(map(nearest.count, range(3)))
    tops = [readings[k] for k in range(3) if nearest.count(k) == most]
    return (f"the {' and '.join(tops)} reading{'s sit' if len(tops) > 1 else ' sits'} closest to the reference's "
            f"numbers in {most} of {count(len(nearest), 'section')}{' each' if len(tops) > 1 else ''}")


def below_nothing(ex: dict, nothing: dict | None) -> str:
    """How many of the notebook's segmentation sections score below the all-background prediction on each
    smoothed reading (their mean over seeds)."""
    done = [ex[k]["test"] for k in ("1a", "1b", "1c", "1e") if ex.get(k, {}).get("status") == "done"]
    if not nothing or not done:
        return ""
    below = [sum(t[k]["mean"] < nothing[k] for t in done) for k in ("assignment_dice", "assignment_dice_per_frame")]
    above = sum(t["mean_present_instrument_dice"]["mean"] > nothing["mean_present_instrument_dice"] for t in done)
    n = len(done)
    if n == 1:
        words = [("scores " if k else "does not score ") for k in (*below, above)]
        return (f" The one section {words[0]}below it on the batch-wide reading, {words[1]}below it on the per-frame "
                f"one, and {words[2]}above its {f3(nothing['mean_present_instrument_dice'])} on the strict Dice.")
    words = ["all" if k == n else "none" if k == 0 else str(k) for k in (*below, above)]
    return (f" Of these {count(n, 'section')}, {words[0]} score below it on the batch-wide reading and {words[1]} on "
            f"the per-frame one; on the strict Dice {words[2]} score above its "
            f"{f3(nothing['mean_present_instrument_dice'])}.")


def numbered(numbers: dict, kind: str, text: str) -> str:
    """"Table 3. ..." with the next number of ``kind`` (Table or Figure)."""
    numbers[kind] += 1
    return f"{kind} {numbers[kind]}. {text}"


def section(key: str, summary: dict, results: Path, numbers: dict) -> list[Block]:
    """A section: the question (for the assignment's), the answer, its numbered tables and figures, each
    referred to in the text."""
    e = summary["experiments"].get(key)
    if e is None and key not in QUESTIONED:
        return []
    blocks = [Block("heading", TITLES[key])]
    if key in QUESTIONED:
        blocks.append(Block("text", "Question. " + answers.QUESTIONS[key], bold=True))
    blocks.append(Block("text", answers.answer(key, summary)))
    tables = {"1c": ("1(c): the study's validation strict Dice after each round (seed 0).", study_rows,
                     "each configuration's score at each round it reached"),
              "1c_recipe": ("The recipe's steps, mean over seeds (lowest-highest seed).", ablation_rows,
                            "each step's validation and test scores")}
    if key in tables and e and e.get("status") == "done":
        caption, rows, phrase = tables[key]
        caption = numbered(numbers, "Table", caption)
        blocks += [Block("text", f"{caption.split('.')[0]} gives {phrase}."), Block("table", caption, rows(e))]
    if key == "1e":
        blocks += per_class(summary, results, numbers)
    figures = []
    for name, caption, phrase in FIGURES[key] if e and e.get("dir") else []:
        path = (results / e["dir"] / name).resolve()
        if path.is_file():
            figures.append((numbered(numbers, "Figure", caption), phrase, path))
    listing = f" The {'Dice loss' if key == '1a' else 'augmentation code'} is listed in the appendix." \
        if key in ("1a", "1b") else ""
    if figures:
        refs = [f"{c.split('.')[0]}{' shows' if k == 0 else ''} {phrase}" for k, (c, phrase, _) in enumerate(figures)]
        blocks.append(Block("text", f"{series(refs)}.{listing}"))
        blocks += [Block("figure", caption, path=path) for caption, _, path in figures]
    elif listing:
        blocks.append(Block("text", listing.strip()))
    return blocks


def per_class(summary: dict, results: Path, numbers: dict) -> list[Block]:
    """The per-class table of every segmentation section, and what the best one's classes and confusions say."""
    seg = {k: e for k, e in summary["experiments"].items() if e.get("kind") == "segmentation" and e.get("status") == "done"}
    if not seg:
        return []
    best_key = max(seg, key=lambda k: answers.present(seg[k])["mean"])
    best = seg[best_key]
    names = [n.replace("_", " ") for n in best["class_names"]]
    present_classes = [c for c in range(1, len(names)) if c not in best["test"]["absent_classes"]]
    dice = {c: best["test"]["dice_per_class"][c]["mean"] for c in present_classes}
    weakest = sorted(present_classes, key=dice.get)[:2]
    text = (f"Per class, the best section on the strict Dice ({label(best_key)}, its mean over seeds) finds " +
            " and ".join(f"{names[c]} least well ({f3(dice[c], 2)})" if i == 0 else f"{names[c]} ({f3(dice[c], 2)})"
                         for i, c in enumerate(weakest)) + ".")
    metrics = results / best["dir"] / f"seed{best['seeds'][0]}" / "metrics.json"
    if metrics.is_file():
        matrix = json.loads(metrics.read_text())["test"]["confusion"]
        off = [(row[j] / sum(row), i, j) for i, row in enumerate(matrix) if i in present_classes and sum(row)
               for j in range(len(row)) if j != i]
        share, i, j = max(off)
        text += (f" Its largest confusion (seed {best['seeds'][0]}) is {names[i]} predicted as {names[j]}: "
                 f"{share:.0%} of that class's test pixels; instruments of similar shaft and jaw are the ones mixed up.")
    caption = numbered(numbers, "Table", "Strict test Dice / IoU per class, mean over seeds, every segmentation "
                                         "section (absent: no pixel of the class in the test masks).")
    return [Block("text", f"{text} {caption.split('.')[0]} gives every section's scores per class."),
            Block("table", caption, per_class_rows(summary))]


def study_rows(e: dict) -> list[list[str]]:
    rungs = e["study"]["rungs"]
    rows = [["Learning rate", "Batch"] + [f"After {r} epoch{'s' * (r != 1)}" for r in rungs] + ["Chosen"]]
    for r in e["study"]["rows"]:  # a configuration cut before a round has no score there
        rows.append([f"{r['lr']:g}", str(r["batch_size"])] + [f3(r[f"score_at_{n}"]) if f"score_at_{n}" in r else ""
                                                              for n in rungs] + ["yes" if r["chosen"] else ""])
    return rows


def ablation_rows(e: dict) -> list[list[str]]:
    table = [["Step", "Validation strict Dice", "Test strict Dice", "Test pixels as absent classes"]]
    for r in e["rows"]:
        v, t = r["validation"], r["test"]
        table.append([r["step"], spread_cell(v["mean_present_instrument_dice"]),
                      spread_cell(t["mean_present_instrument_dice"]), f"{t['absent_predicted_share']['mean']:.2%}"])
    return table


def longer_runs(summary: dict, results: Path, numbers: dict) -> list[Block]:
    """The runs trained outside the notebook at a larger budget, on the same data (OUTSIDE): their table,
    how each ended, their curves, and the one comparison between two of them at one budget."""
    runs = {key: found for key in QUESTIONED if (found := outside_runs(key, summary, results))}
    if not runs:
        return []
    text = ["Trained outside the notebook with each section's settings but a larger budget, on the same data "
            "(Appendix A gives their commands). Their budget differs from Table 1's, so they are compared only "
            "with each other, at one budget."]
    figures = []
    for key, found in runs.items():
        for run in (r for r in found if "fits" in r):
            text.append(f"{label(key)} at {run['budget']}. " +
                        answers.convergence(run["fits"], run["options"]["epochs"]))
            figures.append((run["folder"], "loss.png", f"{label(key)} at {run['budget']}: training and "
                            "validation loss per epoch, every seed."))
        fixed = [r for r in found if "fits" not in r]
        if fixed:
            same = len({r["setting"] for r in fixed}) == 1  # then said once, with each run's epochs
            epochs = (count(fixed[0]["epochs"], "epoch") if len(fixed) == 1 else
                      series([str(r["epochs"]) for r in fixed]) + " epochs")
            phrase = f"on {fixed[0]['setting']}, for {epochs}" if same else "at " + "; at ".join(
                r["budget"] for r in fixed)
            text.append(f"{label(key)} {phrase}: fixed schedules without early stopping, each reporting its last "
                        "epoch's test accuracy, so that no epoch is chosen on the test split.")
        if key == "2a":
            figures.append((found[-1]["folder"], "curves.png", f"2(a) at {found[-1]['budget']}: training loss, "
                            "test loss and test accuracy per epoch."))
    if "1a" in runs and "1b" in runs and runs["1a"][0]["budget"] == runs["1b"][0]["budget"]:
        text.append("1(b) against 1(a) at this budget: " + answers.clause(answers.compare(
            "1(b)", runs["1b"][0], "1(a)", runs["1a"][0])))
    caption = numbered(numbers, "Table", "The longer runs' test scores (a seed set: mean over seeds, lowest-highest "
                                         "seed).")
    shown = [f"Figure {numbers['Figure'] + k}{' shows' if k == 1 else ''} {c.split(' at ')[0]}'s curves"
             for k, (_, _, c) in enumerate(figures, 1)]
    text.append(f"{caption.split('.')[0]} gives their test scores" + ("; " + series(shown) if shown else "") + ".")
    blocks = [Block("heading", "Longer runs, outside the notebook"), Block("text", "\n".join(text)),
              Block("table", caption, longer_rows(summary, results))]
    for folder, name, caption in figures:
        path = results / folder / name
        if not path.is_file():  # a seed set records no figure of its own: drawn from its seeds' histories
            seeds = json.loads((results / folder / "seeds.json").read_text())["seeds"]
            figures_kit.curves({f"seed {s}": read_history(results / folder / f"seed{s}") for s in seeds},
                               ["train_loss", "val_loss"], "Dice loss",
                               caption.split(":")[0] + ": training and validation loss", path)
        blocks.append(Block("figure", numbered(numbers, "Figure", caption), path=path.resolve()))
    return blocks


def appendix(summary: dict, results: Path) -> list[Block]:
    """Provenance, the commands that reproduce every result, and the code listings, once."""
    v = summary["versions"]
    resumed = (" This execution continued an earlier one: trainings that had finished were kept and scored again, "
               "unfinished ones continued from their last epoch." if summary.get("resumed") else "")
    weights = summary["vgg16_weights"]
    weights = "looked for in torchvision's cache" if weights == "torchvision cache" else f"the local file {weights}"
    commands = [f"HW6_DATA_ROOT=<data> HW6_FASHION_ROOT=<folder holding FashionMNIST/raw> HW6_PROFILE="
                f"{summary['profile']} make run"]
    if "added_utc" in summary.get("baselines", {}):
        commands.append("python tools/baselines.py --data <data> --results results")
    commands += [run["command"] for key in OUTSIDE for run in outside_runs(key, summary, results)]
    return [Block("pagebreak"), Block("heading", "Appendix A. Provenance and commands"), Block("text", (
        f"The {summary['profile']} profile: {summary['profile_description']}. Data: {summary['data']['name']}"
        f"{' (synthetic)' if summary['data']['synthetic'] else ' (the course data)'}; Fashion-MNIST from the data "
        f"root named {summary['fashion']}; VGG16 ImageNet weights: {weights}. Device: {summary['device']}, "
        f"{count(summary['parallel'], 'training')} at a time.{resumed} Started {summary['started_utc']} UTC, "
        f"{summary['train_seconds'] / 60:.0f} "
        f"min of training. Python {v['python']}, torch {v['torch']}, torchvision {v['torchvision']}, numpy "
        f"{v['numpy']}. Built by notebook/report.py from results/summary.json on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}.{baselines_added(summary)}")),
        Block("text", "Commands (from the project folder):", bold=True), Block("code", "\n".join(commands)),
        Block("text", answers.WHAT_TO_RUN),
        Block("heading", "Appendix B. The Dice loss (losses.py)"), Block("code", answers.dice_implementation()),
        Block("heading", "Appendix C. The augmentation code (augment.py)"), Block("code", answers.augmentation_source(whole=True))]


def baselines_added(summary: dict) -> str:
    """Said when the no-model baselines were added to a finished run's summary (tools/baselines.py)."""
    added = summary.get("baselines", {}).get("added_utc")
    return "" if added is None else (f" The no-model baselines (background everywhere, the grey copy and the "
                                     f"constant tint) were computed from the data alone on {added[:10]}, after "
                                     "the trainings, by the command below; they involve no model.")


# ------------------------------------------------------------------------------------------------ render
class PageWriter:
    """Flows blocks down A4 pages. Text and code flow line by line onto the next page; a heading, a table or a
    figure that does not fit starts the next one, except that a figure is shrunk (to no less than 60% of its
    height) onto a page not yet half full. Records each page's filled fraction and every font size used."""
    WIDTH, HEIGHT, MARGIN = 8.27, 11.69, 0.6
    USABLE = HEIGHT - 2 * MARGIN  # the text height
    TEXT, CODE, TABLE = 10.0, 8.0, 9.0

    def __init__(self, pdf: PdfPages, pages: Path | None = None) -> None:
        self.pdf, self.fig, self.y, self.pages = pdf, None, 0.0, pages
        self.fills: list[float] = []  # per page, the fraction of the text height used
        self.sizes: dict[str, set[float]] = {}  # block kind -> font sizes used
        self.broken: list[int] = []  # the pages a page break ended (numbered from 1)

    @property
    def filled(self) -> float:
        return 0.0 if self.fig is None else (self.HEIGHT - self.MARGIN - self.y) / self.USABLE

    def close(self) -> None:
        if self.fig is not None:
            self.fills.append(self.filled)
            self.fig.text(0.5, self.MARGIN / 2 / self.HEIGHT, str(len(self.fills)), fontsize=self.TEXT, ha="center")
            self.pdf.savefig(self.fig)
            if self.pages is not None:  # each page as a picture too, for a reader without a PDF viewer
                atomic.savefig(self.fig, self.pages / f"page-{len(self.fills):02d}.png", dpi=80)
            plt.close(self.fig)
            self.fig = None

    def _room(self, inches: float) -> None:
        if self.fig is None or self.y - inches < self.MARGIN:
            self.close()
            self.fig = plt.figure(figsize=(self.WIDTH, self.HEIGHT))
            self.y = self.HEIGHT - self.MARGIN

    def _lines(self, kind: str, lines: list[str], size: float, **style) -> None:
        height = size * 1.45 / 72
        self.sizes.setdefault(kind, set()).add(size)
        for line in lines:
            self._room(height)
            self.fig.text(self.MARGIN / self.WIDTH, self.y / self.HEIGHT, line, fontsize=size, va="top", **style)
            self.y -= height
        self.y -= height * 0.6

    def block(self, b: Block) -> None:
        if b.kind == "pagebreak":
            if self.fig is not None:
                self.broken.append(len(self.fills) + 1)
            self.close()
        elif b.kind == "heading":
            self._room(1.6)  # a heading never ends a page
            self.y -= 0.1
            self._lines("heading", textwrap.wrap(b.text, 64), 13, weight="bold")
        elif b.kind == "text":
            width = 82 if b.bold else 88  # characters per line of 10 pt on the page's 7 inches
            for paragraph in b.text.split("\n"):  # each with the space below it that sets blocks apart
                self._lines("text", textwrap.wrap(paragraph, width) or [""], self.TEXT,
                            weight="bold" if b.bold else "normal")
        elif b.kind == "code":
            # about 105 characters of 8 pt monospace fit the text width; a longer line continues under its own
            # indent, four further in
            lines = [part for line in b.text.split("\n") for part in textwrap.wrap(
                line, 104, subsequent_indent=line[:len(line) - len(line.lstrip())] + "    ", break_on_hyphens=False,
                drop_whitespace=False) or [""]]
            self._lines("code", lines, self.CODE, family="monospace")
        elif b.kind == "table":
            self.table(b.rows, b.text)
        else:
            self.figure(b.path, b.text)

    def table(self, rows: list[list[str]], caption: str) -> None:
        """A table at the text width, 9 pt, columns as wide as their content allows, long cells wrapped, under
        its caption (bold, on the same page)."""
        size, chars = self.TABLE, 85  # about 88 characters of 9 pt fit the text width; 3 spare for wide letters
        longest = [max(len(str(r[k])) for r in rows) + 2 for k in range(len(rows[0]))]  # the header row at least
        # the header is bold, about a fifth wider than the body text: its longest word must fit unbroken
        # and no body cell's word may break either ("(0.598-0.669)" is one)
        shortest = [max(round(max(len(word) for word in str(rows[0][k]).split()) * 1.2) + 5,
                        max((len(word) for r in rows[1:] for word in str(r[k]).split()), default=0) + 5)
                    for k in range(len(rows[0]))]
        widths = [max(low, round(n * chars / max(sum(longest), chars))) for n, low in zip(longest, shortest)]
        cells = [[textwrap.fill(str(c), max(w - 4, 4), break_long_words=False, break_on_hyphens=False) or " "
                  for c, w in zip(r, widths)] for r in rows]
        line = size * 1.5 / 72
        heights = [max(c.count("\n") + 1 for c in r) * line + 0.06 for r in cells]
        height = sum(heights)
        caption_lines = textwrap.wrap(caption, 82)
        self._room(height + 0.2 + (len(caption_lines) + 0.6) * self.TEXT * 1.45 / 72)
        self._lines("text", caption_lines, self.TEXT, weight="bold")
        self.sizes.setdefault("table", set()).add(size)
        ax = self.fig.add_axes([self.MARGIN / self.WIDTH, (self.y - height) / self.HEIGHT,
                                1 - 2 * self.MARGIN / self.WIDTH, height / self.HEIGHT])
        ax.axis("off")
        table = ax.table(cellText=cells[1:], colLabels=cells[0], cellLoc="left",
                         colWidths=[w / sum(widths) for w in widths], bbox=[0, 0, 1, 1])
        table.auto_set_font_size(False)
        table.set_fontsize(size)
        for (row, _), cell in table.get_celld().items():
            cell.PAD = 0.04  # matplotlib's 0.1 is of the cell's width: a wide column would lose a fifth of it
            cell.set_height(heights[row] / height)
            if row == 0:
                cell.set_text_props(weight="bold")
        self.y -= height + 0.25

    def figure(self, path: Path, caption: str) -> None:
        """A figure at the text width (at most 45% of the page's height) and its caption below it."""
        picture = mpimg.imread(path)
        h, w = picture.shape[:2]
        height = min(0.45 * self.USABLE, (self.WIDTH - 2 * self.MARGIN) * h / w)
        caption_lines = textwrap.wrap(caption, 90)
        below = 0.15 + len(caption_lines) * self.TEXT * 1.45 / 72
        if self.fig is not None and self.y - height - below < self.MARGIN and self.filled < 0.5:
            height = max(0.6 * height, self.y - self.MARGIN - below)  # fill this page rather than leave it
        self._room(height + below)
        ax = self.fig.add_axes([(self.WIDTH - height * w / h) / 2 / self.WIDTH, (self.y - height) / self.HEIGHT,
                                height * w / h / self.WIDTH, height / self.HEIGHT])
        ax.imshow(picture)
        ax.axis("off")
        self.y -= height + 0.08
        self._lines("caption", caption_lines, self.TEXT, style="italic")


REPORT_CREATOR = "hw6 notebook/report.py"  # in the PDF's metadata: a report.pdf without it is not ours to replace


def render(blocks: list[Block], pdf_path: Path, pages: Path | None = None) -> PageWriter:
    """Writes the blocks as a PDF; refuses (one line) to replace a file of that name this project did not write.
    Returns the writer: each page's fill and the font sizes used."""
    if pdf_path.exists() and f"/Creator ({REPORT_CREATOR})".encode() not in pdf_path.read_bytes():
        raise cli.UsageError(f"{pdf_path}: exists and was not written by this project's report; move it or pass "
                             f"another --pdf")
    with atomic.replacing(pdf_path) as f, PdfPages(f, metadata={"Creator": REPORT_CREATOR}) as pdf:
        writer = PageWriter(pdf, pages)
        for b in blocks:
            writer.block(b)
        writer.close()
    return writer


FIGURE_LIST = ".report-figures"  # in plots/: the figures the last build copied there


def build(results: str | Path = "results", pdf_path: str | Path | None = None, plots: str | Path | None = None,
          pages: str | Path | None = None) -> Path:
    """Writes report.pdf and plots/ (each figure of the report) beside ``results``, or where given; with
    ``pages``, each page as a PNG in that folder too."""
    results = Path(results).resolve()
    blocks = layout(results)
    pdf_path = Path(pdf_path) if pdf_path else results.parent / "report.pdf"
    plots = Path(plots) if plots else results.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    names = {"_".join(b.path.relative_to(results).parts): b.path for b in blocks if b.kind == "figure"}
    listed = plots / FIGURE_LIST  # the figures an earlier build wrote: those it no longer writes are removed
    earlier = listed.read_text().split() if listed.is_file() else [p.name for p in plots.glob("*.png")]
    for stale in set(earlier) - set(names):
        (plots / stale).unlink(missing_ok=True)
    for name, path in names.items():
        shutil.copyfile(path, plots / name)
    atomic.write_text("\n".join(sorted(names)) + "\n", listed)
    render(blocks, pdf_path, Path(pages) if pages else None)
    return pdf_path


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(results: Path, readme: Path) -> None:
    """Rewrites the README's results block from summary.json (between the two marker comments)."""
    summary, text = read_summary(results), readme_text(readme, "")
    longer = longer_rows(summary, results)
    block = "\n".join([
        README_START,
        f"Generated by `notebook/report.py` from `{results.name}/summary.json`: {summary['profile_description']}; "
        f"{'synthetic data' if summary['data']['synthetic'] else 'the course data (' + summary['data']['name'] + ')'}; "
        f"{summary['device']}; started {summary['started_utc']} UTC. Test split, this notebook's runs at one "
        f"budget. Strict Dice: {strict_dice_words(summary)} `report.pdf` has the figures and every answer.", "",
        markdown(notebook_rows(summary)), "",
        "Strict per-class test Dice / IoU (mean over seeds), the same runs (absent: no pixel of the class in the test "
        "masks):", "",
        markdown(per_class_rows(summary) or [["Class", "none run"]])] +
        (["", "Longer runs outside the notebook, on the same data (the report's last section says how each ended):", "",
          markdown(longer)] if len(longer) > 1 else []) + [README_END])
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    atomic.write_text(text[:start] + block + text[end:], readme)


def readme_text(readme: Path, named: str = "--readme ") -> str:
    """The README to fill; one line (``named`` says where the path came from) when it is missing or has no
    results block."""
    if not readme.is_file():
        raise cli.UsageError(f"{named}{readme}: not a file")
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise cli.UsageError(f"{named}{readme}: no {README_START} ... {README_END} block to fill")
    return text


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
    parser.add_argument("--pages", type=Path, help="also write each page as a PNG into this folder")
    args = parser.parse_args(argv)

    def body() -> None:
        if args.readme:
            readme_text(args.readme)  # refused before the report is built
        print(f"wrote {build(args.results, args.pdf, args.plots, args.pages)}")
        if args.readme:
            update_readme(args.results, args.readme)
            print(f"updated the results block of {args.readme}")

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
