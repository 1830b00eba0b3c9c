"""The answers to the assignment's questions, in words, built from one run's numbers (results/summary.json).

hw6.ipynb prints them under each section and report.py lays them out in report.pdf, so both say the same thing
with the same numbers. The phrase builders (``settings``, ``result``, ``convergence``, ``compare``) serve both.
Every comparison rests on the seeds of both sides (``kit.stats.compare``: beyond the spread and Welch p < 0.05,
otherwise "within noise"). Every answer fits ``LINES`` lines at the notebook's width whatever the numbers: its
parts are fixed sentences, and every list in it (seeds, class names) is cut to a bounded form (``listing``).
"""
from __future__ import annotations

import inspect
import math
import textwrap

from hw6 import augment, losses, train_segmentation
from hw6.kit import stats

QUESTIONS = {
    "1a": "Fill in the starter U-Net's missing last layer and activation; implement a soft multi-class Dice loss "
          "and explain it; train until convergence (batch 10, Adam at learning rate 0.001, early stopping); plot "
          "training and validation loss in one figure; report the Dice score on the test split.",
    "1b": "Add meaningful augmentation, show the code that implements it and explain it; train as in 1(a); "
          "plot the losses; report the test Dice and compare with 1(a).",
    "1c": "Tweak the hyper-parameters and re-run: are you able to improve the score? Plot the losses and report "
          "the test Dice.",
    "1d": "Pre-train the same U-Net, adjusted for the task (grey in, colour out), with an MSE loss on "
          "the colorization training images; plot training and validation loss per epoch; save the model.",
    "1e": "Initialise segmentation from the colorization model and train with the same hyper-parameters; plot "
          "the losses, report the test Dice. Do you notice any differences compared to (c)?",
    "2a": "Train torchvision's VGG16 on Fashion-MNIST from random initialisation; plot training loss and test "
          "accuracy per epoch; report the final test accuracy.",
    "2b": "Load the ImageNet weights, freeze every layer but the last, re-initialise the last layer and train "
          "it; plot training loss and test accuracy per epoch; report the test accuracy.",
    "2c": "Try a richer combination (here: all fully connected layers trained at a lower learning rate); "
          "describe the set-up, plot the curves and report the test accuracy.",
}


ASSIGNMENT_BATCH_LR = (train_segmentation.DEFAULTS["batch_size"], train_segmentation.DEFAULTS["lr"])  # 1(a)'s
LINES, WIDTH = 15, 110  # every answer's bound, at the notebook's width (tests/test_answers.py feeds worst cases)
DEPENDS = {"1b": ["1a"], "1c": ["1a"], "1c_recipe": ["1c"], "1e": ["1c", "1d"], "1e_label_efficiency": ["1e"]}


def f3(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def listing(values: list, sep: str = ", ") -> str:
    """"3, 5, 8" for up to five values, "3 ... 8 (9 values)" beyond: a bounded length whatever the count."""
    if len(values) <= 5:
        return sep.join(map(str, values))
    return f"{values[0]} ... {values[-1]} ({len(values)} values)"


def series(items: list[str]) -> str:
    """"a", "a and b", "a, b and c": every item, in a sentence."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def count(n: int, word: str) -> str:
    """3, "seed" -> "3 seeds"; 1 -> "1 seed"."""
    return f"{n:,} {word}{'s' * (n != 1)}"


def present(e: dict, split: str = "test") -> dict:
    """The headline spread: strict Dice over the instrument classes present in the split's masks."""
    return e[split]["mean_present_instrument_dice"]


def absent_names(e: dict, split: str = "test", most: int = 70) -> str:
    """The instrument classes with no pixel in the split's masks, by name ("none"); their count alone when the
    names would run over ``most`` characters."""
    names = [e["class_names"][c].replace("_", " ") for c in e[split]["absent_classes"]]
    text = " and ".join(names) or "none"
    return text if len(text) <= most else f"{len(names)} classes named in the report"


def result(e: dict, summary: dict | None = None) -> str:
    """The test scores of a segmentation experiment: the headline with the classes it averages, the share of
    pixels predicted as absent classes, and the assignment's Dice (batch-wide and per frame); with ``summary``,
    beside what predicting background everywhere scores on the same frames (the report's tables carry it for
    every section)."""
    t = e["test"]
    n = len(e["class_names"]) - 1 - len(t["absent_classes"])
    absent = (f"; {t['absent_predicted_share']['mean']:.2%} of the test pixels predicted as absent classes "
              f"({absent_names(e)})" if t["absent_classes"] else "")
    return (f"strict test Dice {stats.describe(present(e))}, each seed's mean over the {n} instrument classes in "
            f"the test masks{absent}; the assignment's Dice {f3(t['assignment_dice']['mean'])} (per frame "
            f"{f3(t['assignment_dice_per_frame']['mean'])}){against_nothing(summary or {})}")


def against_nothing(summary: dict) -> str:
    """The all-background prediction's test scores (``results.baselines``), as a clause; "" when not recorded."""
    b = summary.get("baselines", {}).get("segmentation")
    return "" if b is None else (
        f"; no model (background everywhere): {f3(b['mean_present_instrument_dice'])} strict, "
        f"{f3(b['assignment_dice'])} (per frame {f3(b['assignment_dice_per_frame'])})")


def background_words(summary: dict, e: dict) -> str:
    """"85% of the test pixels (70-93% of a frame's)": the background's share, over the split and per frame."""
    b = summary.get("baselines", {}).get("segmentation")
    if b is None:
        return f"{e['background_share']:.0%} of the test pixels"
    low, high = b["background_share_per_frame"]
    return f"{b['background_share']:.0%} of the test pixels ({100 * low:.0f}-{high:.0%} of a frame's)"


MONITOR_WORDS = {"val_loss": "validation loss", "val_present_dice": "validation strict Dice",
                 "val_mean_instrument_dice": "validation strict Dice over all classes",
                 "val_assignment_dice": "validation assignment Dice"}


def settings(o: dict, frames: int | None = None) -> str:
    """A training's hyper-parameters and budget in words, from its own recorded options."""
    schedule = "constant" if o.get("scheduler", "none") == "none" else f"{o['scheduler']} schedule"
    idle = " (never fires within the cap)" if o["patience"] >= o["epochs"] else ""
    size = f", {'x'.join(map(str, o['image_size']))} frames" if o.get("image_size") else ""
    return (f"batch {o['batch_size']}, Adam learning rate {o['lr']:g} ({schedule}), at most {o['epochs']} epochs, "
            f"early stopping after {o['patience']} epochs without a better "
            f"{MONITOR_WORDS[o.get('monitor', 'val_loss')]}{idle}{size}" +
            (f", {frames:,} training frames" if frames else ""))


def capped(fits: list[dict]) -> list[dict]:
    return [f for f in fits if not f["stop_reason"].startswith("early stop")]


def convergence(fits: list[dict], cap: int) -> str:
    """Whether each run converged: the epoch early stopping fired or the cap, the epoch kept, and how the
    validation loss moved over the last epochs."""
    at_cap = capped(fits)
    kept = f"weights of epochs {listing([f['best_epoch'] for f in fits])} kept"
    slopes = [f["val_loss_slope"] for f in fits if f.get("val_loss_slope") is not None]
    mean = sum(slopes) / len(slopes) if slopes else 0.0
    rose = slopes and all(s > 0 for s in slopes) and round(mean, 4) > 0  # in every seed, not on average
    moved = ("" if not slopes else f"; over the last 3 epochs the validation loss rose {mean:+.4f} per epoch, past "
             "its best" if rose else f"; over the last 3 epochs the validation loss moved {mean:+.4f} per epoch")
    if not at_cap:
        return (f"Converged: early stopping fired in every seed, after epochs "
                f"{listing([f['epochs_run'] for f in fits])} ({kept}){moved}.")
    which = "every seed" if len(at_cap) == len(fits) else f"seed {listing([f['seed'] for f in at_cap])}"
    return f"Not converged: {len(at_cap)} of {len(fits)} runs hit the {cap}-epoch cap ({which}), {kept}{moved}."


def outcome(e: dict, summary: dict | None = None) -> str:
    """A segmentation section's settings, test scores (``result``) and convergence, in the sentences every
    segmentation answer gives them."""
    return (f"Settings: {settings(e['options'], e['train_frames'])}. Result: {result(e, summary)}. "
            + convergence(e["fits"], e["options"]["epochs"]))


def compare(label_a: str, a: dict, label_b: str, b: dict) -> str:
    """Two segmentation experiments compared over their seeds on the headline (``stats.compare``), saying when
    the comparison rests on runs cut by their cap."""
    text = stats.compare(label_a, present(a), label_b, present(b), "strict Dice")
    cut = sum(len(capped(x.get("fits", []))) for x in (a, b))
    return text + (f" It rests on {cut} run{'s' * (cut != 1)} cut by the epoch cap." if cut else "")


def stale(key: str, summary: dict) -> str:
    """Said when a section this one builds on was re-run with other options after this one ran (the option
    hashes recorded with each entry, ``results.record``), or is itself out of date (1(e) after a new 1(a)
    through 1(c))."""
    e, ex = summary["experiments"][key], summary["experiments"]
    inputs = [k for k in e.get("inputs") or {} if k in ex]
    changed = [k for k in inputs if ex[k].get("options_hash") != e["inputs"][k]]
    if changed:
        return ("\nOut of date: " + " and ".join(label(k) for k in changed) + " ran again with other settings after "
                "this section; re-run it.")
    behind = [k for k in inputs if stale(k, summary)]
    return ("\nOut of date: " + " and ".join(label(k) for k in behind) + " that this section builds on "
            f"{'is' if len(behind) == 1 else 'are'} out of date; re-run {'it' if len(behind) == 1 else 'them'}, "
            "then this section.") if behind else ""


def label(key: str) -> str:
    """"1a" (or "1c_recipe") -> "1(a)" ("1(c)")."""
    return f"{key[0]}({key[1]})"


def dice_implementation() -> str:
    """The Dice loss as the assignment asks to see it: the function's code, docstring included."""
    return inspect.getsource(losses.soft_dice_loss).rstrip()


def without_docstring(function: object) -> str:
    source = inspect.getsource(function)
    if not inspect.getdoc(function):
        return source.rstrip()
    start = source.index('"""')
    end = source.index('"""', start + 3) + 3
    return (source[:start].rstrip() + "\n" + source[end:].lstrip("\n")).rstrip()


def augmentation_source(whole: bool = False) -> str:
    """1(b)'s augmentation read from the module: its entry and the flips (a notebook page), or ``whole``: with
    the strong mode's affine, the colour jitter and each of its parts too (the report's appendix: every function
    the entry calls)."""
    parts = (augment.augment_batch, augment.random_flips) + (
        (augment.random_affine, augment.color_jitter, augment.rgb_to_grayscale, augment._blend, augment.adjust_brightness,
         augment.adjust_contrast, augment.adjust_saturation, augment.adjust_hue) if whole else ())
    adjust = ["ADJUST = {" + ", ".join(f'"{k}": {f.__name__}' for k, f in augment.ADJUST.items()) + "}"] if whole else []
    return "\n".join([f"JITTER = {augment.JITTER}"] + [without_docstring(f) for f in parts] + adjust)


def answer(key: str, summary: dict, width: int | None = None) -> str:
    """The answer to section ``key`` in words, with this run's numbers (each paragraph wrapped at ``width``)."""
    e = summary["experiments"].get(key)
    if e is None:
        text = NOT_IN_THIS_RUN.get(key, "Not run in this execution of the notebook.")
    elif e.get("status") == "not run":
        text = vgg_setup(e) + "\nNot run here: " + not_run_reason(e) + "."
    else:
        text = ANSWERS[key](e, summary) + stale(key, summary)
    if width is None:
        return text
    return "\n".join(textwrap.fill(paragraph, width) for paragraph in text.split("\n"))


def not_run_reason(e: dict) -> str:
    """Why a section did not run, in words: its own recorded reason, without the details."""
    return e["reason"].split(" (")[0].split(";")[0]


NOT_IN_THIS_RUN = {"1e_label_efficiency": "Not run in this profile (its label_fractions are empty; the full "
                                          "profile runs the curve)."}


def against(key: str, e: dict, summary: dict, base_key: str, what: str) -> str:
    base = summary["experiments"].get(base_key)
    if not base or base.get("status") != "done" or "test" not in base:
        return ""
    return f"\n{what}: " + clause(compare(label(key), e, label(base_key), base))


def answer_1a(e: dict, summary: dict) -> str:
    return (
        "The starter U-Net lacks its last layer, a 1x1 convolution to one score per class "
        f"({len(e['class_names'])} here), and its activation, a softmax over the classes at each pixel, which gives "
        "the probabilities the Dice loss compares with the one-hot mask. Why Dice: background is "
        f"{background_words(summary, e)}, so a pixel-wise loss is dominated by it, while a class's "
        "Dice is overlap over size and weighs a thin instrument as much as the background. As the assignment "
        "describes it, intersection and sizes are summed over the whole batch per class, smoothed by 1 and "
        "averaged over the classes; the loss is 1 - Dice.\n" + outcome(e, summary))


def answer_1b(e: dict, summary: dict) -> str:
    return ("Augmentation: each training frame and its mask are flipped left-right and up-down, each with "
            "probability 0.5 (an endoscope sees instruments from any side; the labels move with the frame), and "
            "the frame alone gets colour jitter (brightness, contrast, saturation 0.25, hue 0.03: lighting and "
            "tissue colour change between procedures, instrument shapes do not).\n" + outcome(e) +
            against("1b", e, summary, "1a", "Against 1(a)"))


def answer_1c(e: dict, summary: dict) -> str:
    study = e["study"]
    rows, rungs, chosen = study["rows"], study["rungs"], study["chosen"]
    survivors = [sum(1 for r in rows if f"score_at_{epochs}" in r) for epochs in rungs]
    grid = "every pair of " + " and ".join(f"{'learning rates' if k == 'lr' else 'batches'} "
                                           f"{listing([f'{x:g}' for x in v])}" for k, v in study["grid"].items())
    text = (f"The study: {grid}, 1(a)'s loss and checkpoint rule, seed 0, successive halving on the validation "
            f"strict Dice over rounds of {listing(rungs)} epochs ({listing(survivors, ' → ')} configurations); it "
            f"chose learning rate {chosen['lr']:g}, batch {chosen['batch_size']}. " + cuts_note(rows, rungs) +
            "\n" + outcome(e))
    base = summary["experiments"].get("1a")
    if base and base.get("dir") == e["dir"]:
        return "No: the study chose 1(a)'s own values, so 1(a)'s runs stand for it. " + text
    return text + against("1c", e, summary, "1a", "Against 1(a), the improvement asked about") + updates_note(e, base)


def updates_note(e: dict, base: dict | None) -> str:
    """Said when the side that made more optimizer steps an epoch (the smaller batch) leads by a finding
    (``stats.is_finding``) on runs the epoch cap cut: part of its lead may be those steps."""
    if (not base or base.get("status") != "done" or not capped(e["fits"] + base.get("fits", []))
            or not stats.is_finding(present(e), present(base))):
        return ""
    sides = [(math.ceil(x["train_frames"] / x["options"]["batch_size"]), present(x)["mean"], x["options"]["batch_size"])
             for x in (e, base)]
    (steps, score, batch), (other_steps, other_score, other_batch) = sides
    if (steps - other_steps) * (score - other_score) <= 0:
        return ""  # same steps, same score, or the side with fewer steps leads
    return (f" Batch {batch}: {steps:,} updates an epoch, batch {other_batch}: {other_steps:,}; more steps may "
            "explain part of it.")


def cuts_note(rows: list[dict], rungs: list[int]) -> str:
    """How the study's cuts read: a first round short enough to favour fast starters is said, and the
    closest cut (one seed's validation score), so the order of the configurations is not over-read."""
    gaps = []
    for now, later in zip(rungs, rungs[1:]):
        kept = [r[f"score_at_{now}"] for r in rows if f"score_at_{later}" in r]
        dropped = [r[f"score_at_{now}"] for r in rows if f"score_at_{now}" in r and f"score_at_{later}" not in r]
        if kept and dropped:
            gaps.append(min(kept) - max(dropped))
    fast = (f"A first round of {rungs[0]} epoch{'s' * (rungs[0] != 1)} favours the configurations that start fast. "
            if len(rungs) > 1 and rungs[0] * 4 <= rungs[-1] else "")
    return fast + (f"Its closest cut was {min(gaps):.3f} apart on one seed, so the order is not a finding." if gaps
                   else "")


def answer_1c_recipe(e: dict, summary: dict) -> str:
    rows, base = e["rows"], summary["experiments"].get("1c")
    lines = []
    for before, step in zip(rows, rows[1:]):
        line = f"{sentence(step['step'].lstrip('+ '))}: " + clause(
            stats.compare("this step", present(step), "the one before", present(before), "test strict Dice"))
        if step.get("change") == "checkpoint":  # its validation score chose the weights: said by the epochs kept
            line += kept_epochs_note(e)
        lines.append(line)
    seeds = ("one seed" if len(e["seeds"]) == 1 else f"seeds {listing(e['seeds'])}")
    where = f" Otherwise 1(c)'s settings ({settings(base['options'])})." if base and "options" in base else ""
    return (f"Each step on top of the one before, over {seeds}; the steps were chosen in earlier runs on the "
            f"validation split, none on the test split.{where}\n" +
            "\n".join(lines) + validation_end(rows))


def validation_end(rows: list[dict]) -> str:
    """The steps on the validation split, the split they were chosen on, and where the last ends against the first,
    with its test over the seeds (``stats.is_finding``)."""
    means = [present(r, "validation")["mean"] for r in rows]
    if len(means) < 2 or not all(math.isfinite(m) for m in means):
        return ""
    last, first = present(rows[-1], "validation"), present(rows[0], "validation")
    steps = f"\nOn validation the steps read {listing([f3(m) for m in means])}: the last ends"
    if round(means[0], 3) == round(means[-1], 3):
        return f"{steps} level with the first."
    test = ("fewer than three seeds, so no conclusion" if min(last["n"], first["n"]) < 3 else
            f"{stats.p_words(last, first)}, {'a finding' if stats.is_finding(last, first) else 'within noise'}")
    return f"{steps} {'above' if means[-1] > means[0] else 'below'} the first ({test})."


def kept_epochs_note(e: dict) -> str:
    """Which epoch each checkpoint rule kept, per seed (``kept_epochs``: monitor -> epochs, the run's own rule
    first): equal epochs mean equal weights."""
    kept = e.get("kept_epochs")
    if not kept or len(kept) != 2:
        return ""
    (first, first_epochs), (second, second_epochs) = kept.items()
    if first_epochs == second_epochs:
        return f" Both rules kept the same epochs ({listing(first_epochs)}), so the weights are the same."
    return (f" Epochs kept by the {MONITOR_WORDS[first]}: {listing(first_epochs)}; by the "
            f"{MONITOR_WORDS[second]}: {listing(second_epochs)}.")


def answer_1d(e: dict, summary: dict) -> str:
    d, v, o, fit = e["details"], e["validation"] or {}, e["options"], e["fit"]
    curve = e["val_loss_per_epoch"]
    shown = ", ".join(f3(x, 5) for x in curve) if len(curve) <= 8 else (
        f"{f3(curve[0], 5)} after the first, {f3(min(curve), 5)} at best, {f3(curve[-1], 5)} after the last")
    stop = (f"early stopping fired after {fit['epochs_run']} epochs" if fit["stop_reason"].startswith("early stop")
            else f"not converged: it ran to its {o['epochs']}-epoch cap")
    return ("The same U-Net with two layers changed: the first convolution takes the grey frame (1 channel, not "
            "3), and the last 1x1 convolution gives RGB (3 channels) through a sigmoid, not one score per class "
            "through a softmax; the loss is the mean squared error, on the colorization images only.\n"
            f"Settings: {settings(o)}, all {d['train_images']:,} training images. " + (
                "Batch and learning rate are the assignment's defaults: 1(c)'s choice was tuned for another task and "
                "loss, so it is not carried over. " if (o["batch_size"], o["lr"]) == ASSIGNMENT_BATCH_LR else "") +
            f"Result: validation MSE per pixel and channel by epoch {shown}; {stop}, and the weights of epoch "
            f"{fit['best_epoch']}, the lowest (MSE {f3(v.get('loss'), 5)}, PSNR "
            f"{f3(v.get('psnr_db'), 1)} dB), are saved for 1(e)." + no_model_colour(summary, e) + overfit_note(e))


def no_model_colour(summary: dict, e: dict) -> str:
    """What 1(d)'s PSNR stands beside: the grey copy and the constant tint (``results.baselines``), when they
    were scored at 1(d)'s own image size."""
    b = summary.get("baselines", {}).get("colorization")
    if b is None or b["image_size"] != e["details"]["image_size"]:
        return ""
    psnr, gain = (e["validation"] or {}).get("psnr_db"), ""
    if psnr is not None and math.isfinite(psnr):
        delta = psnr - b["constant_tint_psnr_db"]
        gain = (f": the model adds {delta:.1f} dB to the tint" if delta > 0 else
                f": the model is {-delta:.1f} dB below the tint")
    return (f" Without a model, the grey frame copied to R, G and B scores {f3(b['grey_copy_psnr_db'], 1)} dB, and "
            f"the grey frame plus the training images' mean colour offset {f3(b['constant_tint_psnr_db'], 1)} dB{gain}.")


def overfit_note(e: dict) -> str:
    """Said when the validation error rose after its best epoch while the training error kept falling."""
    val, train = e["val_loss_per_epoch"], e.get("train_loss_per_epoch", [])
    best = val.index(min(val))
    if best == len(val) - 1 or len(train) != len(val) or train[-1] >= train[best]:
        return ""
    return (f" After epoch {best + 1} the training error kept falling ({f3(train[best], 5)} to {f3(train[-1], 5)}) "
            "while the validation error rose, as overfitting would show (one run: an indication, not a finding).")


def answer_1e(e: dict, summary: dict) -> str:
    init = e.get("init") or {}
    return ("The segmentation U-Net starts from the colorization weights: every tensor of the same shape is loaded "
            f"({len(init.get('loaded', []))} tensors); the first convolution (1 → 32 channels there) becomes 3 → 32 "
            "by repeating its kernel over R, G and B divided by 3; the last layer starts fresh." +
            pretraining_note(init, summary) + "\n" + outcome(e) +
            against("1e", e, summary, "1c", "Differences compared to (c), from scratch"))


def pretraining_note(init: dict, summary: dict) -> str:
    """How much pre-training the loaded weights hold: the colorization epoch of the checkpoint 1(e) loaded."""
    d, epoch = summary["experiments"].get("1d"), init.get("epoch")
    if epoch is None or not d or d.get("status") != "done":
        return ""
    return f" They are from epoch {epoch} of the colorization run ({d['details']['train_images']:,} grey images an epoch)."


def answer_label_efficiency(e: dict, summary: dict) -> str:
    findings = [f"{c['fraction']:g}" for c in e["comparison"] if c["finding"]]
    verdict = ("Fewer than three seeds, so no conclusion." if len(e["seeds"]) < 3 else
               f"Differences beyond noise at {', '.join(findings)} of the frames." if findings else
               "Every difference is within noise.")
    return (f"Strict test Dice, seeds {listing(e['seeds'])}, at most {e['epochs']} epochs a run: " +
            "; ".join(f"{c['fraction']:g} of the frames: pre-trained {f3(c['pretrained']['mean'])}, scratch "
                      f"{f3(c['scratch']['mean'])}" for c in e["comparison"][:8]) + ". " + verdict)


def vgg_setup(e: dict) -> str:
    s, o = e["setup"], e["setup"]["options"]
    layers = {"scratch": "Every layer is trained from random initialisation",
              "frozen": "Frozen: the 13 convolutional layers and the first two fully connected layers; trained: "
                        "only the re-initialised last layer (4096 → 10)",
              "finetune-fc": "Frozen: the 13 convolutional layers; trained: all three fully connected layers "
                             "(the last one re-initialised for 10 classes)"}[s["mode"]]
    cache = (" The frozen layers are computed once for every image (without their dropout) and the trained layers "
             "learn on that cache." if s["mode"] != "scratch" else " Training images are randomly flipped "
             "left-right and shifted by up to 10% of their side.")
    size = "x".join(map(str, o["image_size"]))
    return (f"{layers}: {s['trainable_parameters']:,} trained and {s['frozen_parameters']:,} frozen parameters. "
            f"The grey 28x28 images are resized to {size} and repeated on three channels; Adam, learning rate "
            f"{o['lr']:g}, batch {o['batch_size']}, {o['epochs']} epoch{'s' if o['epochs'] > 1 else ''}.{cache}")


def vgg_result(e: dict, summary: dict) -> str:
    d, t, curve = e["details"], e["test"], e.get("accuracy_per_epoch", [])
    shown = ", ".join(f"{a:.3f}" for a in curve) if len(curve) <= 10 else f"{curve[0]:.3f} to {curve[-1]:.3f}"
    trend = (f" Test accuracy per epoch: {shown}; " + ("still rising at the last epoch, so not converged."
                                                       if len(curve) > 1 and curve[-1] > max(curve[:-1])
                                                       else "no longer rising at the end.") if curve else "")
    text = (f"{vgg_setup(e)}\nResult on {d['train_images']:,} training and {d['test_images']:,} test images: final "
            f"test accuracy {t['accuracy']:.1%} (no epoch is selected on the test split).{trend}")
    if e["setup"]["mode"] != "scratch" and d.get("imagenet_official") is False:
        text += " The weights file is NOT torchvision's ImageNet file (its SHA-256 differs)."
    return text


ANSWERS = {"1a": answer_1a, "1b": answer_1b, "1c": answer_1c, "1c_recipe": answer_1c_recipe, "1d": answer_1d,
           "1e": answer_1e, "1e_label_efficiency": answer_label_efficiency, "2a": vgg_result, "2b": vgg_result,
           "2c": vgg_result}

WHAT_TO_RUN = ("To run 2(b) and 2(c): download torchvision's VGG16 ImageNet weights (the file vgg16-397923af.pth) "
               "where a network is, then give the notebook its path in the HW6_VGG16_WEIGHTS variable, or pass it "
               "to transfer_vgg.py as --weights; the run checks whether the file is torchvision's own.")


def sentence(text: str) -> str:
    """``text`` starting with a capital (a comparison may begin with its label, "this step raises ...")."""
    return text[:1].upper() + text[1:]


def clause(text: str) -> str:
    """``text`` after a colon: its first word lower-cased, unless it is a label such as "1(b)"."""
    return text[:1].lower() + text[1:] if text[:1].isupper() else text
