"""The answers to the assignment's questions, in words, built from one run's numbers (results/summary.json).

hw6.ipynb prints them under each section and report.py lays them out in report.pdf, so both say the same thing
with the same numbers. Every comparison rests on the seeds of both sides (``kit.stats.compare``): a difference
is stated as a finding only when it exceeds the spread of the seeds, otherwise it is "within noise".
"""
from __future__ import annotations

import inspect
import math
import textwrap

from hw6 import augment, losses
from hw6.kit import stats

QUESTIONS = {
    "1a": "Fill in the starter U-Net's missing last layer and activation; implement a soft multi-class Dice loss "
          "and explain it; train until convergence (batch 10, Adam at learning rate 0.001, early stopping); plot "
          "training and "
          "validation loss in one figure; report the Dice score on the test split.",
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


CLASS_WORDS = "instrument classes"


def sentence(text: str) -> str:
    """``text`` starting with a capital (a comparison may begin with its label, "this step raises ...")."""
    return text[:1].upper() + text[1:]


def clause(text: str) -> str:
    """``text`` after a colon: a leading "The" lower-cased; a label such as "1(b)" stays as it is."""
    return "the" + text[3:] if text.startswith("The ") else text


def f3(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def present(e: dict, split: str = "test") -> dict:
    """The headline spread: strict Dice over the instrument classes present in the split's masks."""
    return e[split]["mean_present_instrument_dice"]


def all_classes(e: dict, split: str = "test") -> dict:
    return e[split]["mean_instrument_dice"]


def absent_names(e: dict, split: str = "test") -> str:
    return " and ".join(e["class_names"][c].replace("_", " ") for c in e[split]["absent_classes"]) or "none"


def seg_scores(e: dict) -> str:
    """The test scores of a segmentation experiment: the headline, the all-class mean and the absent share."""
    t = e["test"]
    n = len(e["class_names"]) - 1 - len(t["absent_classes"])
    absent = (f"; over all {len(e['class_names']) - 1}: {f3(all_classes(e)['mean'])}, with "
              f"{t['absent_predicted_share']['mean']:.2%} of the test pixels predicted as the absent "
              f"{absent_names(e)}" if t["absent_classes"] else " (every instrument class is present)")
    return (f"strict test Dice {stats.describe(present(e))} over the {n} {CLASS_WORDS} present in the test "
            f"masks{absent}; the assignment's Dice {f3(t['assignment_dice']['mean'])} (per frame "
            f"{f3(t['assignment_dice_per_frame']['mean'])})")


MONITOR_WORDS = {"val_loss": "validation loss", "val_present_dice": "validation strict Dice",
                 "val_mean_instrument_dice": "validation strict Dice over all classes",
                 "val_assignment_dice": "validation assignment Dice"}


def settings(e: dict) -> str:
    """The hyper-parameters and budget of a segmentation experiment, in words."""
    o = e["options"]
    schedule = "constant" if o["scheduler"] == "none" else f"{o['scheduler']} schedule"
    cannot = " (longer than the budget)" if o["patience"] >= o["epochs"] else ""
    return (f"batch {o['batch_size']}, Adam learning rate {o['lr']:g} ({schedule}), up to {o['epochs']} epochs, "
            f"early stopping after {o['patience']} epochs without a better {MONITOR_WORDS[o['monitor']]}{cannot}, "
            f"{'x'.join(map(str, e['image_size']))} frames ({e['train_frames']} training frames)")


def convergence(e: dict) -> str:
    """Whether the runs converged: early stopping fired, or how the losses still moved at the end."""
    fits = e["fits"]
    stopped = [f for f in fits if f["stop_reason"].startswith("early stop")]
    if len(stopped) == len(fits):
        return f"Converged: early stopping ended every seed (after {', '.join(str(f['epochs_run']) for f in fits)} epochs)."
    slopes = [f["val_loss_slope"] for f in fits if f.get("val_loss_slope") is not None]
    train = [f["train_loss_slope"] for f in fits if f.get("train_loss_slope") is not None]
    kept = ", ".join(str(f["best_epoch"]) for f in fits)
    text = (f"Not converged: {len(fits) - len(stopped)} of {len(fits)} seeds ran all {e['options']['epochs']} "
            f"epochs (kept epochs {kept})")
    if slopes:
        text += (f"; over the last 3 epochs the validation loss moved {sum(slopes) / len(slopes):+.3f} per epoch, "
                 f"the training loss {sum(train) / len(train):+.3f}")
    return text + "."


def compare(label_a: str, a: dict, label_b: str, b: dict) -> str:
    """Two segmentation experiments compared over their seeds under both class conventions: the headline
    (classes present) first; the mean over all classes agrees, or the disagreement is said with both numbers."""
    first = stats.compare(label_a, present(a), label_b, present(b), "strict Dice over the classes present")
    same = (stats.is_finding(present(a), present(b)) == stats.is_finding(all_classes(a), all_classes(b)) and
            (present(a)["mean"] > present(b)["mean"]) == (all_classes(a)["mean"] > all_classes(b)["mean"]))
    if same:
        return (f"{first} The mean over all classes agrees: {stats.describe(all_classes(a))} against "
                f"{stats.describe(all_classes(b))}.")
    return (f"{first} The two class conventions disagree here: " +
            clause(stats.compare(label_a, all_classes(a), label_b, all_classes(b), "mean over all classes")))


def dice_implementation() -> str:
    """How the Dice loss is implemented: the loss's own docstring, so the answer never drifts from the code."""
    return inspect.getdoc(losses.soft_dice_loss)


def without_docstring(function: object) -> str:
    source = inspect.getsource(function)
    doc = inspect.getdoc(function)
    start = source.index('"""')
    end = source.index('"""', start + 3) + 3
    return (source[:start].rstrip() + "\n" + source[end:].lstrip("\n")) if doc else source


def augmentation_source() -> str:
    """The code of 1(b)'s augmentation, read from the module (what the assignment asks a screenshot of)."""
    return "\n".join([f"JITTER = {augment.JITTER}", without_docstring(augment.augment_batch).rstrip(),
                      without_docstring(augment.random_flips).rstrip()])


def answer(key: str, summary: dict, width: int | None = None) -> str:
    """The answer to section ``key`` in words, with this run's numbers (each paragraph wrapped at ``width``)."""
    e = summary["experiments"].get(key)
    if e is None:
        text = NOT_IN_THIS_RUN.get(key, "Not run in this execution of the notebook.")
    elif e.get("status") == "not run":
        text = vgg_setup(e) + "\nNot run here: " + e["reason"].split(" (")[0].split(";")[0] + "."
    else:
        text = ANSWERS[key](e, summary)
    if width is None:
        return text
    return "\n".join(textwrap.fill(paragraph, width) for paragraph in text.split("\n"))


NOT_IN_THIS_RUN = {"1e_label_efficiency": "Not run in this profile (the quick profile leaves the curve out of its "
                                          "budget; the full profile runs it)."}


def answer_1a(e: dict, summary: dict) -> str:
    return (
        "The starter U-Net stops at its last 32-channel stage: the missing last layer is a 1x1 convolution to one "
        f"score per class ({len(e['class_names'])} here), and the missing activation a softmax over the classes at "
        "each pixel, which turns the scores into the probabilities the Dice loss compares with the one-hot mask. "
        f"Why a Dice loss: background is {e['background_share']:.0%} of the test pixels, so a pixel-wise loss is "
        "dominated by it, while each class's Dice is a ratio of overlap to size, which weighs a thin instrument as "
        "much as the background. As the assignment describes it, intersection and sizes are summed over the whole "
        "batch for each class, smoothed by 1 and averaged over the classes; the loss is 1 - Dice.\n"
        f"Settings: {settings(e)}. Result over {len(e['seeds'])} seeds: {seg_scores(e)}. {convergence(e)}")


def answer_1b(e: dict, summary: dict) -> str:
    base = summary["experiments"].get("1a")
    text = ("Augmentation: each training frame and its mask are flipped left-right and up-down with probability "
            "0.5 each (an endoscope sees instruments from any side; frame and mask move together, so the labels "
            "stay exact), and the frame alone gets colour jitter (brightness, contrast and saturation 0.25, hue "
            "0.03: lighting and tissue colour change between procedures, instrument shapes do not).\n"
            f"Settings: 1(a)'s. Result over {len(e['seeds'])} seeds: {seg_scores(e)}. {convergence(e)}")
    if base and base.get("status") == "done":
        text += "\nAgainst 1(a): " + clause(compare("1(b)", e, "1(a)", base)) + " " + budget_note(e, base)
    return text


def budget_note(e: dict, base: dict) -> str:
    """1(b)'s effect read through its budget: where the training losses of both ended."""
    final = [f.get("final_train_loss") for f in e["fits"]]
    before = [f.get("final_train_loss") for f in base["fits"]]
    if None in final or None in before:
        return ""
    return (f"At this budget augmentation mostly slows the fit: after {e['options']['epochs']} epochs the training "
            f"loss is {sum(final) / len(final):.3f} with augmentation against {sum(before) / len(before):.3f} "
            "without (means over the seeds), each epoch's frames being new variations.")


def answer_1c(e: dict, summary: dict) -> str:
    study, base = e["study"], summary["experiments"].get("1a")
    rows, rungs = study["rows"], study["rungs"]
    survivors = [sum(1 for r in rows if f"score_at_{epochs}" in r) for epochs in rungs]
    chosen = study["chosen"]
    values = f"learning rate {chosen['lr']:g}, batch {chosen['batch_size']}"
    grid = " x ".join(f"{len(v)} {'learning rates' if k == 'lr' else 'batch sizes'} "
                      f"({', '.join(f'{x:g}' for x in v)})" for k, v in study["grid"].items())
    text = (f"The study: {grid}, 1(a)'s loss and checkpoint rule, seed 0 alone; successive halving over rounds of "
            f"{', '.join(map(str, rungs))} epochs (" + " → ".join(map(str, survivors)) + " configurations) on the "
            f"validation strict Dice over the classes present chose {values}. " + cuts_note(rows, rungs))
    if base and base.get("status") == "done":
        better = stats.is_finding(present(e), present(base)) and present(e)["mean"] > present(base)["mean"]
        if e["dir"] == base["dir"]:
            verdict = "No: the study chose 1(a)'s own values, so 1(a)'s runs stand for it. "
        else:
            verdict = (f"{'Yes' if better else 'No'}, on the strict Dice, over {len(e['seeds'])} seeds at 1(a)'s "
                       "budget. " + compare("1(c)", e, "1(a)", base) + " " +
                       assignment_dice_note(e["test"]["assignment_dice"], base["test"]["assignment_dice"]))
        text = verdict + text + steps_note(e, base)
    else:
        return text + f"\nSettings: {settings(e)}. Result: {seg_scores(e)}. {convergence(e)}"
    t = e["test"]  # its strict Dice is in the comparison above; what else the test split says:
    absent = (f"{t['absent_predicted_share']['mean']:.2%} of the test pixels predicted as an absent class; "
              if t["absent_classes"] else "")
    return (text + f"\nSettings: {settings(e)}. Result: {absent}per-frame assignment Dice "
            f"{f3(t['assignment_dice_per_frame']['mean'])}. {convergence(e)}")


def cuts_note(rows: list[dict], rungs: list[int]) -> str:
    """How close the study's cuts were: the smallest gap, at any round, between the last configuration kept
    and the best one dropped (one seed's validation score)."""
    gaps = []
    for now, later in zip(rungs, rungs[1:]):
        kept = [r[f"score_at_{now}"] for r in rows if f"score_at_{later}" in r]
        dropped = [r[f"score_at_{now}"] for r in rows if f"score_at_{now}" in r and f"score_at_{later}" not in r]
        if kept and dropped:
            gaps.append(min(kept) - max(dropped))
    if not gaps:
        return ""
    return (f"Its closest cut was {min(gaps):.3f} apart, so the order of the configurations is not a finding; the "
            "seeds compare the chosen one with 1(a) only. ")


def assignment_dice_note(a: dict, b: dict) -> str:
    """1(c) against 1(a) under the assignment's Dice: a finding in full, otherwise "within noise" and the means."""
    if stats.is_finding(a, b):
        return stats.compare("1(c)", a, "1(a)", b, "assignment's Dice") + " "
    return f"Under the assignment's Dice the difference is within noise: {f3(a['mean'])} against {f3(b['mean'])}. "


def steps_note(e: dict, base: dict) -> str:
    """At a fixed number of epochs a smaller batch takes more optimiser steps: said, with both counts."""
    steps = [math.ceil(x["train_frames"] / x["options"]["batch_size"]) for x in (e, base)]
    if steps[0] == steps[1]:
        return ""
    stopped = all(f["stop_reason"].startswith("early stop") for x in (e, base) for f in x["fits"])
    return (f"Batch {e['options']['batch_size']} takes {steps[0]} optimiser steps per epoch against 1(a)'s "
            f"{steps[1]}" + ("." if stopped else ": with neither converged, part of the difference may be the "
                             "extra steps.") + " ")


def answer_1c_recipe(e: dict, summary: dict) -> str:
    rows = e["rows"]
    lines = []
    for before, step in zip(rows, rows[1:]):
        line = (sentence(step["step"].lstrip("+ ")) + " (test split). " +
                sentence(compare("this step", step, "the step before", before)))
        val, val_before = present(step, "validation")["mean"], present(before, "validation")["mean"]
        test, test_before = present(step)["mean"], present(before)["mean"]
        same = all(round(score(step)["mean"], 3) == round(score(before)["mean"], 3) for score in (present, all_classes))
        if step.get("change") == "checkpoint" and same:  # chosen on validation: said by the epochs it kept
            line = (sentence(step["step"].lstrip("+ ")) + " (test split): the same as the step before to three "
                    f"decimals under both conventions ({f3(present(step)['mean'])} and "
                    f"{f3(all_classes(step)['mean'])})." + kept_epochs_note(e))
        elif step.get("change") == "checkpoint":  # its validation score chose these weights: only the test can tell
            line += kept_epochs_note(e)
        elif (val - val_before) * (test - test_before) < 0:
            line += (f" On the validation split it moves the other way ({f3(val)} against {f3(val_before)} over the "
                     "classes present).")
        lines.append(line)
    base = summary["experiments"].get("1c")
    where = f" Settings otherwise 1(c)'s: {settings(base)}." if base and base.get("status") == "done" else ""
    return (f"Each step on top of the one before, over seeds {', '.join(map(str, e['seeds']))}; no step was chosen "
            f"on the test split.{where}\n" + "\n".join(lines))


def kept_epochs_note(e: dict) -> str:
    """Which epoch each checkpoint rule kept, per seed (``kept_epochs``: monitor -> epochs, the run's own rule
    first): equal epochs mean equal weights."""
    kept = e.get("kept_epochs")
    if not kept or len(kept) != 2:
        return ""
    (first, first_epochs), (second, second_epochs) = kept.items()
    if first_epochs == second_epochs:
        return (f" Both rules kept the same epoch in every seed ({', '.join(map(str, first_epochs))}): at this "
                "budget the step changes nothing.")
    return (f" Epochs kept, seed by seed: by the {MONITOR_WORDS[first]} {', '.join(map(str, first_epochs))}; by the "
            f"{MONITOR_WORDS[second]} {', '.join(map(str, second_epochs))}.")


def answer_1d(e: dict, summary: dict) -> str:
    d, v, o = e["details"], e["validation"] or {}, e["options"]
    curve = e["val_loss_per_epoch"]
    return ("The same U-Net with two layers changed: the first convolution takes 1 channel (the grey frame) "
            "instead of 3, and the last 1x1 convolution gives 3 channels (RGB) through a sigmoid instead of one score "
            "per class through a softmax; the loss is the mean squared error. It learns on the colorization "
            "training images only and is validated on their validation split.\n"
            f"Settings: all {d['train_images']:,} training images at {'x'.join(map(str, d['image_size']))}, batch "
            f"{o['batch_size']} and Adam learning rate {o['lr']:g} as in 1(a), so that only the task changes; "
            f"{o['epochs']} epochs, what this machine's time allows at {d['train_images']:,} images an epoch. "
            f"Result: validation MSE per pixel and channel after each epoch "
            f"{', '.join(f3(x, 5) for x in curve)}; the weights of epoch {e['fit']['best_epoch']}, the lowest "
            f"(validation MSE {f3(v.get('loss'), 5)}, PSNR {f3(v.get('psnr_db'), 1)} dB), are kept and saved for 1(e)."
            + overfit_note(e))


def overfit_note(e: dict) -> str:
    """Said when the validation error rose after its best epoch while the training error kept falling."""
    val, train = e["val_loss_per_epoch"], e.get("train_loss_per_epoch", [])
    best = val.index(min(val))
    if best == len(val) - 1 or len(train) != len(val) or train[-1] >= train[best]:
        return ""
    return (f" After epoch {best + 1} the training error kept falling ({f3(train[best], 5)} to {f3(train[-1], 5)}) "
            "while the validation error rose, as overfitting would show; with one seed, and the training error "
            "averaged over each epoch while the validation error is measured at its end, this is an indication, "
            "not a finding.")


def answer_1e(e: dict, summary: dict) -> str:
    init = e.get("init") or {}
    text = ("The segmentation U-Net starts from the colorization weights: every tensor of the same shape is "
            f"loaded ({len(init.get('loaded', []))} tensors); the first convolution, 1 → 32 channels there, becomes "
            "3 → 32 by repeating its kernel over R, G and B divided by 3; the last layer, whose outputs mean "
            "colours there and classes here, starts fresh." + pretraining_note(init, summary) + "\n"
            f"Settings: 1(c)'s chosen ones, {settings(e)}. Result: {seg_scores(e)}. {convergence(e)}")
    scratch = summary["experiments"].get("1c")
    if scratch and scratch.get("status") == "done":
        text += "\nDifferences compared to (c): " + clause(compare("pre-training", e, "training from scratch (1(c))",
                                                                   scratch))
    return text


def pretraining_note(init: dict, summary: dict) -> str:
    """How much pre-training the loaded weights hold: the colorization epoch of the checkpoint 1(e) loaded
    (``init["epoch"]``), over 1(d)'s training images."""
    d, epoch = summary["experiments"].get("1d"), init.get("epoch")
    if epoch is None or not d or d.get("status") != "done":
        return ""
    return (f" Those weights are from epoch {epoch} of the colorization run, so the pre-training amounts to "
            f"{epoch} epoch{'s' * (epoch != 1)} over {d['details']['train_images']:,} grey images.")


def answer_label_efficiency(e: dict, summary: dict) -> str:
    findings = [f"{c['fraction']:g}" for c in e["comparison"] if c["finding"]]
    verdict = ("Fewer than three seeds, so no conclusion." if len(e["seeds"]) < 3 else
               f"Differences beyond the seeds' spread at {', '.join(findings)} of the frames." if findings else
               "No difference exceeds the seeds' spread.")
    return (f"Strict test Dice over the classes present, seeds {', '.join(map(str, e['seeds']))}, {e['epochs']} "
            "epoch(s) a run: " + "; ".join(f"{c['fraction']:g} of the frames: pre-trained "
                                           f"{stats.describe(c['pretrained'])}, scratch {stats.describe(c['scratch'])}"
                                           for c in e["comparison"]) + ". " + verdict)


def vgg_setup(e: dict) -> str:
    s, o = e["setup"], e["setup"]["options"]
    layers = {"scratch": "Every layer is trained from random initialisation",
              "frozen": "Frozen: the 13 convolutional layers and the first two fully connected layers; trained: "
                        "only the re-initialised last layer (4096 → 10)",
              "finetune-fc": "Frozen: the 13 convolutional layers; trained: all three fully connected layers "
                             "(the last one re-initialised for 10 classes)"}[s["mode"]]
    cache = (" The frozen layers are computed once for every image (without their dropout) and the trained layers "
             "learn on that cache." if s["mode"] != "scratch" else "")
    size = "x".join(map(str, o["image_size"]))
    return (f"{layers}: {s['trainable_parameters']:,} trained and {s['frozen_parameters']:,} frozen parameters. "
            f"The grey 28x28 images are resized to {size} and repeated on three channels; Adam, learning rate "
            f"{o['lr']:g}, batch {o['batch_size']}, {o['epochs']} epoch{'s' if o['epochs'] > 1 else ''}.{cache}")


def vgg_result(e: dict, summary: dict) -> str:
    d, t, curve = e["details"], e["test"], e.get("accuracy_per_epoch", [])
    trend = (f" Test accuracy per epoch: {', '.join(f'{a:.3f}' for a in curve)}; "
             + ("still rising at the last epoch, so not converged." if len(curve) > 1 and curve[-1] > max(curve[:-1])
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
