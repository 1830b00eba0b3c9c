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
    """One piece of the report. kind: heading, text, code, table (``rows``), figure (``path``, ``text`` its
    caption), pagebreak."""
    kind: str
    text: str = ""
    rows: list | None = None
    path: Path | None = None
    bold: bool = False


# --------------------------------------------------------------------------------------- the longest runs
# Runs of an experiment trained outside the notebook, with the notebook's recipe, at a larger budget.
OUTSIDE = {"1a": ["dice-reading/batch"], "1b": ["1b-seeds-128x160"], "2a": ["2a-full", "2a-full-18ep", "2a-full-24ep"]}


def candidates(key: str, summary: dict, results: Path) -> list[dict]:
    """Every run of experiment ``key`` the results hold: the notebook's and those of OUTSIDE, each with its
    test scores and its training work (frames x pixels x epochs, the one rule the headline table picks by)."""
    found = []
    e = summary["experiments"].get(key)
    if e and e.get("status") == "done" and e["kind"] == "segmentation":
        found.append(segmentation_run("this notebook", e["options"], e["test"], e["train_frames"], e["image_size"],
                                      e["seeds"], e["fits"]))
    if e and e.get("status") == "done" and e["kind"] == "vgg":
        found.append(vgg_run("this notebook", e["setup"]["options"], e["test"], e["details"], e["fit"]["epochs_run"]))
    for folder in OUTSIDE.get(key, []):
        if (results / folder / "seeds.json").is_file():
            s = json.loads((results / folder / "seeds.json").read_text())
            runs = [json.loads((results / folder / r / "metrics.json").read_text()) for r in s["runs"]]
            found.append(segmentation_run("outside the notebook", s["options"], s["test"],
                                          runs[0]["details"]["train_frames"], runs[0]["details"]["image_size"],
                                          s["seeds"], [m["fit"] for m in runs], folder))
        elif (results / folder / "metrics.json").is_file():
            m = json.loads((results / folder / "metrics.json").read_text())
            found.append(vgg_run("outside the notebook", m["options"], m["test"], m["details"],
                                 m["fit"]["epochs_run"], folder))
    return found


def segmentation_run(where: str, options: dict, test: dict, frames: int, size: list[int], seeds: list[int],
                     fits: list[dict], folder: str | None = None) -> dict:
    epochs = sum(f["epochs_run"] for f in fits) / len(fits)
    return {"where": where, "folder": folder, "options": options, "test": test, "seeds": seeds,
            "work": frames * size[0] * size[1] * epochs,
            "budget": f"{size[0]}x{size[1]}, {count(options['epochs'], 'epoch')}, {count(len(seeds), 'seed')}"}


def vgg_run(where: str, options: dict, test: dict, details: dict, epochs: int, folder: str | None = None) -> dict:
    schedule = "" if options.get("scheduler", "none") == "none" else f", {options['scheduler']} schedule"
    return {"where": where, "folder": folder, "options": options, "test": test, "work": details["train_images"] * epochs,
            "budget": f"{details['train_images']:,} images, {count(epochs, 'epoch')}{schedule}"}


def count(n: int, word: str) -> str:
    """3, "epoch" -> "3 epochs"; 1 -> "1 epoch"."""
    return f"{n:,} {word}{'s' * (n != 1)}"


def longest(key: str, summary: dict, results: Path) -> dict | None:
    runs = candidates(key, summary, results)
    return max(runs, key=lambda r: r["work"]) if runs else None


def notebook_rows(summary: dict) -> list[list[str]]:
    """The title page's first table: this notebook's own runs, all at the profile's one budget."""
    rows = [["Experiment", "Strict Dice, classes present", "All classes", "Assignment Dice", "Test accuracy"]]
    for key in ("1a", "1b", "1c", "1e", "2a"):
        e = summary["experiments"].get(key)
        if not e or e.get("status") != "done":
            continue
        t = e["test"]
        if e["kind"] == "vgg":
            rows.append([TITLES[key].split(" ")[0], "", "", "", f"{t['accuracy']:.1%}"])
        else:
            p = t["mean_present_instrument_dice"]
            rows.append([TITLES[key].split(" ")[0], f"{f3(p['mean'])} ({f3(p['min'])}-{f3(p['max'])})",
                         f3(t["mean_instrument_dice"]["mean"]), f3(t["assignment_dice"]["mean"]), ""])
    return rows


def headline_rows(summary: dict, results: Path) -> list[list[str]]:
    """The title page's table: one row per experiment, from its longest run (``longest``), which it names."""
    rows = [["Experiment", "Strict Dice, classes present", "All classes", "Assignment Dice", "Test accuracy",
             "Run"]]
    for key in QUESTIONED:
        e, run, short = summary["experiments"].get(key), longest(key, summary, results), TITLES[key].split(" ")[0]
        if run and "accuracy" in run["test"]:
            rows.append([short, "", "", "", f"{run['test']['accuracy']:.1%}", f"{run['where']}: {run['budget']}"])
        elif run:
            t = run["test"]
            p = t["mean_present_instrument_dice"]
            rows.append([short, f"{f3(p['mean'])} ({f3(p['min'])}-{f3(p['max'])})",
                         f3(t["mean_instrument_dice"]["mean"]), f3(t["assignment_dice"]["mean"]), "",
                         f"{run['where']}: {run['budget']}"])
        elif e and e.get("kind") == "colorization":
            rows.append([short, "", "", "", "", f"this notebook: {e['details']['train_images']:,} images, "
                                                f"{count(e['fit']['epochs_run'], 'epoch')}; PSNR "
                                                f"{f3((e['validation'] or {}).get('psnr_db'), 1)} dB"])
        else:
            rows.append([short, "", "", "", "", "not run: no ImageNet weights" if e else "not run"])
    return rows


def per_class_rows(summary: dict) -> list[list[str]] | None:
    seg = [(k, e) for k, e in summary["experiments"].items() if e.get("kind") == "segmentation"]
    if not seg:
        return None
    rows = [["Class"] + [f"{TITLES[k].split(' ')[0]} Dice / IoU" for k, _ in seg]]
    for i, name in enumerate(seg[0][1]["class_names"]):
        rows.append([name.replace("_", " ")] + [f"{f3(e['test']['dice_per_class'][i]['mean'], 2)} / "
                                                f"{f3(e['test']['iou_per_class'][i]['mean'], 2)}" for _, e in seg])
    return rows


def markdown(rows: list[list[str]]) -> str:
    return cli.markdown_table([dict(zip(rows[0], (c.replace("\n", " ") for c in row))) for row in rows[1:]])


# ------------------------------------------------------------------------------------------------ layout
def layout(results: Path) -> list[Block]:
    """Every block of the report, in order: the title page, how to read the scores, the reference answers,
    one section per experiment, the larger budget, and the appendix (provenance, commands, code)."""
    summary = read_summary(results)
    blocks = [Block("heading", "HW6: U-Net instrument segmentation, colorization pre-training and VGG16 transfer "
                               "learning")]
    if summary["data"]["synthetic"]:
        blocks.append(Block("text", "Every segmentation and colorization result below is on synthetic data (the "
                                    "project's generated default), not on the assignment's frames.", bold=True))
    seg = next((e for e in summary["experiments"].values() if e.get("kind") == "segmentation"), None)
    absent = answers.absent_names(seg, "test") if seg else "none"
    blocks += [Block("text", overview(summary, results)),
               Block("text", "This notebook's runs, at one budget (the comparisons above):", bold=True),
               Block("table", rows=notebook_rows(summary)),
               Block("text", "Each experiment's longest run, by one rule (the most frames x pixels x epochs trained; "
                             "the appendix's commands reproduce those trained outside the notebook):", bold=True),
               Block("table", rows=headline_rows(summary, results)),
               Block("text", "Strict Dice (defined on the next page) over the instrument classes present in the "
                             "test masks" + ("" if absent == "none" else f" (all but {absent})") + ", and over all "
                             "seven. Ranges: lowest and highest seed. Rows of the second table at different budgets "
                             "are not compared with each other."),
               Block("pagebreak")]
    blocks += reading_the_scores(summary) + reference_answers(summary, results)
    number = [0]
    for key in TITLES:
        blocks += section(key, summary, results, number)
    blocks += larger_budget(results, number) + appendix(summary, results)
    return blocks


def overview(summary: dict, results: Path) -> str:
    """The title page's paragraph: what was run where, and the answers in one sentence each."""
    ex = summary["experiments"]
    data = ("synthetic data" if summary["data"]["synthetic"] else
            "the course's EndoVis 2017 instrument-type data (300 training, 50 validation and 50 test frames)")
    text = [f"The notebook trains every experiment of the assignment that this machine can run, on {data} and "
            f"Fashion-MNIST, on {summary['device'].split(' (')[0].upper()} ({summary['profile']} profile: "
            f"{summary['profile_description']})."]
    fits = [f for k in ("1a", "1b", "1c", "1e") for f in ex.get(k, {}).get("fits", [])]
    if fits and not any(f["stop_reason"].startswith("early stop") for f in fits):
        text.append("No segmentation run converged within its epochs.")
    if "1a" in ex and "1b" in ex:
        text.append("Augmentation (1(b)) against 1(a): " + verdict(ex["1b"], ex["1a"]) + ".")
    if "1c" in ex and "1a" in ex:
        chosen = ex["1c"]["study"]["chosen"]
        text.append(f"The hyper-parameter study (1(c)) chose learning rate {chosen['lr']:g} and batch "
                    f"{chosen['batch_size']}; against 1(a): " + verdict(ex["1c"], ex["1a"]) + ".")
    if "1e" in ex and "1c" in ex:
        text.append("Pre-training (1(e)) against 1(c): " + verdict(ex["1e"], ex["1c"]) + ".")
    if ex.get("2b", {}).get("status") == "not run":
        text.append("2(b) and 2(c) need ImageNet VGG16 weights, which this machine cannot fetch: set up, not run.")
    return " ".join(text)


def verdict(a: dict, b: dict) -> str:
    """A comparison in a few words, on the headline score (the sections give the numbers and both conventions)."""
    pa, pb = answers.present(a), answers.present(b)
    delta = pa["mean"] - pb["mean"]
    words = f"{'higher' if delta > 0 else 'lower'} by {abs(delta):.3f}"
    both = stats.is_finding(answers.all_classes(a), answers.all_classes(b))
    if stats.is_finding(pa, pb):
        return words + (", beyond the seeds' spread under both class conventions" if both else
                        " on the classes present, beyond the seeds' spread, but within noise over all classes")
    return words + (", within noise" if not both else ", within noise on the classes present (beyond the spread "
                                                       "over all classes)")


def reading_the_scores(summary: dict) -> list[Block]:
    seg = next((e for e in summary["experiments"].values() if e.get("kind") == "segmentation"), None)
    if seg is None:
        return []
    names = seg["class_names"]
    absent_test = answers.absent_names(seg, "test")
    absent_val = answers.absent_names(seg, "validation")
    return [Block("heading", "How to read the segmentation scores"), Block("text", (
        "Every score is computed against the masks at their stored size (256x320 for the course data), whatever "
        "size the model was trained at. The assignment's Dice is the loss's own formula on the one-hot prediction: "
        "per class, summed over a batch of 10 test frames, smoothed by 1, background included, averaged over the "
        "classes and the batches; its per-frame form (the same formula on one frame at a time) stands beside it. "
        "The strict Dice and IoU count every test pixel once per class, without smoothing, and leave background out: "
        "a model that finds few instrument pixels scores low there, however high the smoothed scores stay.\n"
        f"Absent classes. {absent_sentence(absent_test, absent_val)} A class absent from the "
        "masks can only score 0 (when a few pixels are predicted as it) or be left out (when none are), so the "
        "mean over all classes punishes a handful of stray pixels as hard as missing a whole instrument. The "
        "headline is therefore the mean over the classes present in the split's masks (MONAI's ignore-empty "
        "convention, applied to the whole split); the mean over all classes and the share of pixels predicted as "
        "an absent class stand beside it, and every comparison is made under both."))]


def absent_sentence(test: str, validation: str) -> str:
    if test == "none" and validation == "none":
        return "Every instrument class has pixels in the test and the validation masks here."
    return (f"The test masks hold no pixel of {test}" + (f", and the validation masks none of {validation}."
                                                          if validation != "none" else "."))


def reference_answers(summary: dict, results: Path) -> list[Block]:
    """Where each experiment sits against the course's worked answers, and why our readings of Dice differ."""
    ex = summary["experiments"]
    rows = [["Experiment", "Reference", "Ours, per frame", "Ours, batch-wide", "Ours, strict (classes present)"]]
    for key in ("1a", "1b", "1c", "1e"):
        e = ex.get(key)
        if e and e.get("status") == "done":
            t = e["test"]
            rows.append([TITLES[key].split(" ")[0], f"{REFERENCE[key]:.2f}", f3(t["assignment_dice_per_frame"]["mean"]),
                         f3(t["assignment_dice"]["mean"]), f3(t["mean_present_instrument_dice"]["mean"])])
    vgg = []
    for key in ("2a", "2b", "2c"):
        run, name = longest(key, summary, results), TITLES[key].split(" ")[0]
        if run is None:
            vgg.append(f"{name} not run (reference {REFERENCE[key]:.1%})")
            continue
        side = "above" if run["test"]["accuracy"] > REFERENCE[key] else "below"
        vgg.append(f"{name} {run['test']['accuracy']:.1%}, {side} the reference {REFERENCE[key]:.1%} "
                   f"({run['where'].split(' (')[0]}, {run['budget']})")
    text = (
        "The course's worked answers report a test Dice of about 0.88 for 1(a), 0.86 for 1(b), 0.89 for 1(c) and "
        "0.90 for 1(e), and VGG16 test accuracies of 90% for 2(a), 88% for 2(b) and 89.3% for 2(c). Their Dice is "
        "the smoothed formula of the loss with the background class included. Background is 85% of the pixels of "
        "every frame, so its term is close to 1 in any batch, and a class that is absent from a frame and not "
        "predicted there also scores 1 through the smoothing: averaged per frame over eight classes, the score "
        "stays high even for a model that finds little of the instruments. The table below sets our three readings of the test Dice beside "
        "the reference (this notebook's runs, mean over seeds). The batch-wide reading is the one the assignment "
        "defines (sums over the whole batch); the per-frame reading sits closest to the reference's numbers, "
        "higher because a class missing from a frame and not predicted there scores 1 in it; the strict Dice "
        "counts instrument pixels only, without smoothing or background, and is the one to compare recipes with. "
        + budget_gap(summary, results) + "\n"
        "VGG16: " + "; ".join(vgg) + ".")
    blocks = [Block("heading", "Our numbers and the reference answers"), Block("text", text)]
    if len(rows) > 1:
        blocks.append(Block("table", rows=rows))
    return blocks


def budget_gap(summary: dict, results: Path) -> str:
    """What 1(a)'s longer run says about the gap to the reference: both readings compared over the seeds."""
    e, run = summary["experiments"].get("1a"), longest("1a", summary, results)
    if not e or e.get("status") != "done" or run is None or run["folder"] is None:
        return ("How much of the gap a larger budget would close is not measured here (smaller frames, fewer "
                "epochs, runs not converged).")
    now, longer = e["test"], run["test"]
    per_frame, batch_wide = (stats.compare("the longer run", longer[key], "the notebook's", now[key], what)
                             for key, what in (("assignment_dice_per_frame", "per-frame Dice"),
                                               ("assignment_dice", "batch-wide Dice")))
    return (f"How much of the gap a larger budget closes is not settled. 1(a)'s longer run ({run['budget']}) against "
            f"this notebook's: {answers.clause(per_frame)} {batch_wide}")


def longer_run(key: str, summary: dict, results: Path) -> str:
    """A sentence for a section whose title-page row is a longer run outside the notebook: that run's settings
    and result, so the two numbers a reader sees for one experiment are explained side by side."""
    run = longest(key, summary, results)
    if run is None or run["folder"] is None:
        return ""
    o, t, short = run["options"], run["test"], TITLES[key].split(" ")[0]
    text = (f"\nThe title page's row for {short} is its longest run, trained outside the notebook at a "
            f"larger budget ({run['budget']}; Adam, learning rate {o['lr']:g}, batch {o['batch_size']}): ")
    if "accuracy" in t:
        return text + f"final test accuracy {t['accuracy']:.1%}."
    p = t["mean_present_instrument_dice"]
    return (text + f"strict test Dice {stats.describe(p)} over the classes present, "
            f"{f3(t['mean_instrument_dice']['mean'])} over all; the last section compares it.")


def section(key: str, summary: dict, results: Path, number: list[int]) -> list[Block]:
    """A section: the question (for the assignment's), the answer, its tables, and its numbered figures, each
    referred to in the text."""
    e = summary["experiments"].get(key)
    if e is None and key not in QUESTIONED:
        return []
    blocks = [Block("heading", TITLES[key])]
    if key in QUESTIONED:
        blocks.append(Block("text", "Question. " + answers.QUESTIONS[key], bold=True))
    blocks.append(Block("text", answers.answer(key, summary) + longer_run(key, summary, results)))
    if key == "1c" and e and e.get("study"):
        blocks.append(Block("table", rows=study_rows(e["study"])))
    if key == "1c_recipe" and e:
        blocks.append(Block("table", rows=ablation_rows(e["rows"])))
    figures = []
    for name, caption, phrase in FIGURES[key] if e and e.get("dir") else []:
        path = (results / e["dir"] / name).resolve()
        if path.is_file():
            number[0] += 1
            figures.append((number[0], caption, phrase, path))
    listing = f" The {'Dice loss' if key == '1a' else 'augmentation code'} is listed in the appendix." \
        if key in ("1a", "1b") else ""
    if figures:
        refs = [f"Figure {n}{' shows' if k == 0 else ''} {phrase}" for k, (n, _, phrase, _) in enumerate(figures)]
        said = refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]
        blocks.append(Block("text", f"{said}.{listing}"))
        blocks += [Block("figure", f"Figure {n}. {caption}", path=path) for n, caption, _, path in figures]
    elif listing:
        blocks.append(Block("text", listing.strip()))
    return blocks


def study_rows(study: dict) -> list[list[str]]:
    rungs = study["rungs"]
    rows = [["Learning rate", "Batch"] + [f"After {r} epoch{'s' * (r != 1)}" for r in rungs] + ["Chosen"]]
    for r in study["rows"]:
        rows.append([f"{r['lr']:g}", str(r["batch_size"])] + [f3(r.get(f"score_at_{e}")) if f"score_at_{e}" in r
                                                              else "" for e in rungs] + ["yes" if r["chosen"] else ""])
    return rows


def ablation_rows(rows: list[dict]) -> list[list[str]]:
    table = [["Step", "Validation, classes present", "Test, classes present", "Test, all classes",
              "Test pixels as absent classes"]]
    for r in rows:
        v, t = r["validation"], r["test"]
        table.append([r["step"], stats.describe(v["mean_present_instrument_dice"]).split(" over")[0] + ")",
                      stats.describe(t["mean_present_instrument_dice"]).split(" over")[0] + ")",
                      f3(t["mean_instrument_dice"]["mean"]), f"{t['absent_predicted_share']['mean']:.2%}"])
    return table


# Seed sets trained outside the notebook at a larger budget than the quick profile's: folder under results/,
# and what differs between them. Each is one train_segmentation.py --seeds call.
LARGER_BUDGET = {"dice-reading/batch": "1(a), batch-wide Dice loss",
                 "dice-reading/image": "1(a), per-frame Dice loss",
                 "1b-seeds-128x160": "1(b), flips + colour jitter"}
COMPARED_OPTIONS = ("image_size", "epochs", "batch_size", "lr", "loss", "monitor", "recipe", "precision")


def larger_budget_runs(results: Path) -> dict[str, dict]:
    """The seeds.json of each LARGER_BUDGET folder that results holds, by folder."""
    return {folder: json.loads(path.read_text()) for folder in LARGER_BUDGET
            if (path := results / folder / "seeds.json").is_file()}


def final_train_loss(results: Path, folder: str, seeds: list[int]) -> float:
    losses = [json.loads((results / folder / f"seed{s}" / "history.json").read_text())[-1]["train_loss"] for s in seeds]
    return sum(losses) / len(losses)


def larger_budget_rows(results: Path, runs: dict[str, dict]) -> list[list[str]]:
    rows = [["Run", "Frames, epochs", "Strict Dice, classes present", "All classes", "Per-frame Dice",
             "Final training loss"]]
    for folder, s in runs.items():
        o, t = s["options"], s["test"]
        p = t["mean_present_instrument_dice"]
        rows.append([LARGER_BUDGET[folder], f"{'x'.join(map(str, o['image_size']))}, {o['epochs']}",
                     f"{f3(p['mean'])} ({f3(p['min'])}-{f3(p['max'])})", f3(t["mean_instrument_dice"]["mean"]),
                     f3(t["assignment_dice_per_frame"]["mean"]), f"{final_train_loss(results, folder, s['seeds']):.3f}"])
    return rows


def larger_budget(results: Path, number: list[int]) -> list[Block]:
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
    text = [f"Trained outside the notebook with 1(a)'s settings but a larger budget: {'x'.join(map(str, o['image_size']))}"
            f" frames, up to {o['epochs']} epochs, batch {o['batch_size']}, Adam learning rate {o['lr']:g}, the "
            f"weights kept by the validation loss, seeds {', '.join(map(str, first['seeds']))}; on "
            f"{first['device'].split(' (')[0].upper()}, the commands are in the appendix."]
    entries = {folder: {"test": s["test"]} for folder, s in runs.items()}
    if "dice-reading/batch" in runs and "1b-seeds-128x160" in runs:
        text.append("1(b) against 1(a) at this budget: " + answers.compare(
            "1(b)", entries["1b-seeds-128x160"], "1(a)", entries["dice-reading/batch"]) + " Read by budget: the "
            "final training loss with augmentation stays above the one without at both budgets (this table, and the "
            "1(b) section for the notebook's), so within these epochs augmentation slows the fit more than it "
            "improves what the model generalises.")
    if "dice-reading/batch" in runs and "dice-reading/image" in runs:
        text.append(answers.compare("The batch-wide Dice loss", entries["dice-reading/batch"], "the per-frame one",
                                    entries["dice-reading/image"]) +
                    " Why: in the per-frame form a class absent from a frame scores 1 as long as none of it is "
                    "predicted, so most terms of the mean reward predicting nothing, and the model drifts towards "
                    "background; summed over a batch, every class present in any of its frames asks for its pixels.")
    return [Block("heading", "1(a) and 1(b) at a larger budget"), Block("text", "\n".join(text)),
            Block("table", rows=larger_budget_rows(results, runs))]


def appendix(summary: dict, results: Path) -> list[Block]:
    """Provenance, the commands that reproduce every result, and the code listings, once."""
    v = summary["versions"]
    resumed = (" This execution continued an earlier one: trainings that had finished were kept and scored again, "
               "unfinished ones continued from their last epoch." if summary.get("resumed") else "")
    weights = summary["vgg16_weights"]
    weights = "looked for in torchvision's cache" if weights == "torchvision cache" else f"the local file {weights}"
    commands = [f"HW6_DATA_ROOT=<data> HW6_FASHION_ROOT=<folder holding FashionMNIST/raw> HW6_PROFILE="
                f"{summary['profile']} make run"]
    for folder, s in larger_budget_runs(results).items():
        o = s["options"]
        flags = (" --augment" if o["augment"] == "flips" else "") + ("" if o["dice_batch"] else " --dice-per-frame")
        commands.append(f"python train_segmentation.py --data <data> --out results/{folder} --image-size "
                        f"{'x'.join(map(str, o['image_size']))} --epochs {o['epochs']}{flags} --seeds "
                        f"{' '.join(map(str, s['seeds']))}")
    for folder in OUTSIDE["2a"]:
        if (results / folder / "metrics.json").is_file():
            o = json.loads((results / folder / "metrics.json").read_text())["options"]
            commands.append(f"python transfer_vgg.py --data <fashion> --out results/{folder} --mode scratch --epochs "
                            f"{o['epochs']} --scheduler {o['scheduler']}")
    return [Block("pagebreak"), Block("heading", "Appendix A. Provenance and commands"), Block("text", (
        f"Profile {summary['profile']}: {summary['profile_description']}. Data: {summary['data']['name']}"
        f"{' (synthetic)' if summary['data']['synthetic'] else ' (the course data)'}; Fashion-MNIST from the folder "
        f"{summary['fashion']}; VGG16 ImageNet weights: {weights}. Device: {summary['device']}, {summary['parallel']} "
        f"training(s) at a time.{resumed} Started {summary['started_utc']} UTC, {summary['train_seconds'] / 60:.0f} "
        f"min of training. Python {v['python']}, torch {v['torch']}, torchvision {v['torchvision']}, numpy "
        f"{v['numpy']}. Built by notebook/report.py from results/summary.json on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}.")),
        Block("text", "Commands (from the project folder):", bold=True), Block("code", "\n".join(commands)),
        Block("text", answers.WHAT_TO_RUN),
        Block("heading", "Appendix B. The Dice loss (losses.py, its docstring)"), Block("code", answers.dice_implementation()),
        Block("heading", "Appendix C. The augmentation code (augment.py)"), Block("code", answers.augmentation_source())]


# ------------------------------------------------------------------------------------------------ render
class PageWriter:
    """Flows blocks down A4 pages. Text and code flow line by line onto the next page; a heading, a table or a
    figure that does not fit starts the next one, except that a figure is shrunk (to no less than 60% of its
    height) onto a page not yet half full. Records each page's filled fraction and every font size used."""
    WIDTH, HEIGHT, MARGIN = 8.27, 11.69, 0.6
    TEXT, CODE, TABLE = 9.5, 8.0, 9.0

    def __init__(self, pdf: PdfPages, pages: Path | None = None) -> None:
        self.pdf, self.fig, self.y, self.pages = pdf, None, 0.0, pages
        self.fills: list[float] = []  # per page, the fraction of the text height used
        self.sizes: dict[str, set[float]] = {}  # block kind -> font sizes used
        self.broken: list[int] = []  # the pages a page break ended (numbered from 1)

    @property
    def usable(self) -> float:
        return self.HEIGHT - 2 * self.MARGIN

    @property
    def filled(self) -> float:
        return 0.0 if self.fig is None else (self.HEIGHT - self.MARGIN - self.y) / self.usable

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
            width = 86 if b.bold else 92  # characters per line on the page's 7 inches
            lines = [line for para in b.text.split("\n") for line in textwrap.wrap(para, width) or [""]]
            self._lines("text", lines, self.TEXT, weight="bold" if b.bold else "normal")
        elif b.kind == "code":
            lines = [part for line in b.text.split("\n") for part in textwrap.wrap(line, 100, subsequent_indent="    ",
                                                                              drop_whitespace=False) or [""]]
            self._lines("code", lines, self.CODE, family="monospace")
        elif b.kind == "table":
            self.table(b.rows)
        else:
            self.figure(b.path, b.text)

    def table(self, rows: list[list[str]]) -> None:
        """A table at the text width, 9 pt, columns as wide as their content allows, long cells wrapped."""
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
        self._room(height + 0.2)
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
        height = min(0.45 * self.usable, (self.WIDTH - 2 * self.MARGIN) * h / w)
        caption_lines = textwrap.wrap(caption, 96)
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


def build(results: str | Path = "results", pdf_path: str | Path | None = None, plots: str | Path | None = None,
          pages: str | Path | None = None) -> Path:
    """Writes report.pdf and plots/ (each figure of the report) beside ``results``, or where given; with
    ``pages``, each page as a PNG in that folder too."""
    results = Path(results).resolve()
    blocks = layout(results)
    pdf_path = Path(pdf_path) if pdf_path else results.parent / "report.pdf"
    plots = Path(plots) if plots else results.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for b in blocks:
        if b.kind == "figure":
            shutil.copyfile(b.path, plots / "_".join(b.path.relative_to(results).parts))
    if pages:
        Path(pages).mkdir(parents=True, exist_ok=True)
    render(blocks, pdf_path, Path(pages) if pages else None)
    return pdf_path


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(results: Path, readme: Path) -> None:
    """Rewrites the README's results block from summary.json (between the two marker comments)."""
    summary = read_summary(results)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise cli.UsageError(f"{readme}: no {README_START} ... {README_END} block to fill")
    seg = next((e for e in summary["experiments"].values() if e.get("kind") == "segmentation"), None)
    absent = (f" The test masks hold no pixel of {answers.absent_names(seg)}: the strict Dice is averaged over the "
              "instrument classes present, the mean over all classes beside it." if seg else "")
    block = "\n".join([
        README_START,
        f"Generated by `notebook/report.py` from `results/summary.json`: profile {summary['profile']} "
        f"({summary['profile_description']}), data {summary['data']['label'].removeprefix('data: ')}, "
        f"{summary['device']}, started {summary['started_utc']} UTC. Test split; each row is the experiment's "
        f"longest run.{absent} `report.pdf` has the figures and every answer.", "",
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
            markdown(larger_budget_rows(results, runs))]


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
        print(f"wrote {build(args.results, args.pdf, args.plots, args.pages)}")
        if args.readme:
            update_readme(args.results, args.readme)
            print(f"updated the results block of {args.readme}")

    cli.main(body)


if __name__ == "__main__":
    main(sys.argv[1:])
