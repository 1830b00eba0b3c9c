"""The answers to the assignment's questions, in words, built from one run's numbers (results/summary.json).

hw6.ipynb prints them under each section and report.py lays them out in report.pdf, so both say the same thing
with the same numbers. Every comparison rests on the seeds of both sides (``kit.stats.compare``): a difference
is stated as a finding only when it exceeds the spread of the seeds, otherwise it is "within noise".
"""
from __future__ import annotations

import inspect
import math

from hw6 import augment, losses
from hw6.kit import stats

QUESTIONS = {
    "1a": "Fill in the starter U-Net's missing last layer and activation; implement a soft multi-class Dice loss "
          "and explain it; train until convergence (batch 10, Adam 1e-3, early stopping); plot training and "
          "validation loss in one figure; report the Dice score on the test split.",
    "1b": "Add meaningful augmentation, show the code that implements it and explain it; train as in 1(a); "
          "plot the losses; report the test Dice and compare with 1(a).",
    "1c": "Tweak the hyper-parameters and re-run: are you able to improve the score? Plot the losses and report "
          "the test Dice.",
    "1d": "Pre-train the same U-Net, adjusted for the task (grey in, colour out), with an MSE loss on "
          "colorization/train_cor; plot training and validation loss per epoch; save the model.",
    "1e": "Initialise segmentation from the colorization model and train with the same hyper-parameters; plot "
          "the losses, report the test Dice. Do you notice any differences compared to (c)?",
    "2a": "Train torchvision's VGG16 on Fashion-MNIST from random initialisation; plot training loss and test "
          "accuracy per epoch; report the final test accuracy.",
    "2b": "Load the ImageNet weights, freeze every layer but the last, re-initialise the last layer and train "
          "it; plot training loss and test accuracy per epoch; report the test accuracy.",
    "2c": "Try a richer combination (here: all fully connected layers trained at a lower learning rate); "
          "describe the set-up, plot the curves and report the test accuracy.",
}


def f3(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def spread(entry: dict, metric: str = "mean_instrument_dice") -> dict:
    return entry["test"][metric]


def seg_scores(e: dict) -> str:
    """The test scores of a segmentation experiment, mean over seeds with the range."""
    t, n = e["test"], len(e["seeds"])
    return (f"strict mean instrument Dice {stats.describe(t['mean_instrument_dice'])}, mean instrument IoU "
            f"{f3(t['mean_instrument_iou']['mean'])}, the assignment's Dice {f3(t['assignment_dice']['mean'])} "
            f"(per frame {f3(t['assignment_dice_per_frame']['mean'])}), pixel accuracy "
            f"{f3(t['pixel_accuracy']['mean'])}; means over {n} seed{'s' if n > 1 else ''}")


def trained(e: dict) -> str:
    epochs = ", ".join(str(fit["epochs_run"]) for fit in e["fits"])
    best = ", ".join(str(fit["best_epoch"]) for fit in e["fits"])
    size = "x".join(map(str, e["image_size"]))
    return (f"trained at {size} ({e['train_frames']} frames), scored at {'x'.join(map(str, e['score_size']))}; "
            f"epochs run per seed {epochs}, kept epoch (by {e['options']['monitor']}) {best}")


def dice_implementation() -> str:
    """How the Dice loss is implemented: the loss's own docstring, so the answer never drifts from the code."""
    return inspect.getdoc(losses.soft_dice_loss)


def augmentation_source() -> str:
    """The code of 1(b)'s augmentation, read from the module (what the assignment asks a screenshot of)."""
    return "\n".join([f"JITTER = {augment.JITTER}", "", inspect.getsource(augment.augment_batch),
                      inspect.getsource(augment.random_flips)])


def answer(key: str, summary: dict) -> str:
    """The answer to section ``key`` in words, with this run's numbers."""
    e = summary["experiments"].get(key)
    if e is None:
        return "Not run in this execution of the notebook."
    if e.get("status") == "not run":
        return vgg_setup(e) + f" NOT RUN here: {e['reason']}"
    return ANSWERS[key](e, summary)


def answer_1a(e: dict, summary: dict) -> str:
    return (
        "The starter U-Net stops at its last 32-channel stage: the missing last layer is a 1x1 convolution from 32 "
        f"channels to one score per class ({len(e['class_names'])} here), and the missing activation a softmax over "
        "the classes at each pixel, which turns the scores into the probabilities that the Dice loss compares with "
        "the one-hot mask (unet.py returns the scores; the loss and the prediction apply the softmax). "
        f"Why a Dice loss: background is {e['background_share']:.0%} of the test pixels here, so a pixel-wise "
        "loss is dominated by it, while the Dice of each class is a ratio of overlap to size, which weighs a thin "
        "instrument as much as the background. As the assignment describes it, intersection and cardinalities "
        "are summed over every element of the batch for each class, smoothed by 1, averaged over the classes, and "
        "the loss is 1 - Dice. Read per frame instead, a class absent from a frame scores 1 when nothing of it is "
        "predicted, and that form collapses towards predicting background (report.pdf, the Dice-reading page). "
        f"Result, {trained(e)}: {seg_scores(e)}. The assignment's test Dice is the loss's own definition on the "
        "one-hot prediction, in batches of 10 test frames; the strict scores count every pixel of the test split "
        "once per class, without smoothing, background left out of the mean.")


def answer_1b(e: dict, summary: dict) -> str:
    base = summary["experiments"].get("1a")
    text = ("Augmentation: each training frame and its mask are flipped left-right and up-down with probability "
            "0.5 each (an endoscope sees instruments from any side; a flip moves frame and mask together, so "
            "labels stay exact), and the frame alone gets colour jitter (brightness, contrast, saturation 0.25, "
            "hue 0.03: lighting and tissue colour change between procedures, instrument shapes do not). The "
            "code is below. It runs on whole batches of tensors, each frame with its own draws. "
            f"Result, {trained(e)}: {seg_scores(e)}.")
    if base and base.get("status") == "done":
        text += " " + stats.compare("1(b)", spread(e), "1(a)", spread(base), "test strict mean instrument Dice")
    return text


def answer_1c(e: dict, summary: dict) -> str:
    o, rows = e["options"], e.get("sweep_rows", [])
    grid = ", ".join(r["config"] for r in rows)
    text = (f"Three changes against 1(a), chosen on the validation split: the loss is Dice plus cross-entropy "
            f"({o['loss']}), the kept weights are those of the best validation strict instrument Dice "
            f"({o['monitor']}), and at prediction an instrument class covering under {o['min_region']:.0%} of a frame is dropped from it "
            f"(its pixels go to their next most probable class); learning-rate schedule {o['scheduler']}, "
            f"augmentation {o['augment']}. The grid ({grid}) was trained once (seed 0) and compared on the "
            f"validation split only; chosen: {e['chosen']}. The chosen configuration, {trained(e)}: {seg_scores(e)}.")
    base = summary["experiments"].get("1a")
    if base and base.get("status") == "done":
        text += " Against 1(a): " + stats.compare("1(c)", spread(e), "1(a)", spread(base),
                                                  "test strict mean instrument Dice")
    return text


def answer_1d(e: dict, summary: dict) -> str:
    d, v = e["details"], e["validation"] or {}
    return ("The same U-Net with two layers changed: the first convolution takes 1 channel (the grey frame) "
            "instead of 3, and the last 1x1 convolution gives 3 channels (RGB) instead of one per class, "
            "through a sigmoid instead of a softmax (each colour channel in [0, 1], independent of the others); "
            "the loss is the mean squared error. It learns on colorization/train_cor only and is validated on "
            f"validation_cor. Result: {d['train_images']} training images at {'x'.join(map(str, d['image_size']))}, "
            f"{e['fit']['epochs_run']} epochs (kept epoch {e['fit']['best_epoch']}): validation MSE "
            f"{f3(v.get('loss'), 5)} per pixel and channel, PSNR {f3(v.get('psnr_db'), 2)} dB. The weights are "
            "saved (best.pt) for 1(e).")


def answer_1e(e: dict, summary: dict) -> str:
    init = e.get("init") or {}
    text = ("The segmentation U-Net starts from the colorization weights: every tensor of the same shape is "
            f"loaded ({len(init.get('loaded', []))} tensors); the first convolution, 1 -> 32 channels in "
            "colorization, becomes 3 -> 32 by repeating its kernel over R, G and B divided by 3 (a grey frame "
            "repeated on three channels then gives exactly the colorization model's activations); the last layer, "
            "whose outputs mean colours there and classes here, starts fresh. Trained with 1(c)'s recipe and "
            f"chosen hyper-parameters, {trained(e)}: {seg_scores(e)}.")
    scratch = summary["experiments"].get("1c")
    if scratch and scratch.get("status") == "done":
        text += " Differences compared to (c): " + stats.compare(
            "pre-training", spread(e), "training from scratch (1(c))", spread(scratch), "test strict mean instrument Dice")
    le = summary["experiments"].get("1e_label_efficiency")
    if le:
        findings = [f"{c['fraction']:g}" for c in le["comparison"] if c["finding"]]
        verdict = ("Fewer than three seeds, so no conclusion." if len(le["seeds"]) < 3 else
                   f"Differences beyond the seeds' spread at {', '.join(findings)} of the frames." if findings else
                   "No difference exceeds the seeds' spread.")
        text += (f" With fewer labels (label-efficiency curve, seeds {le['seeds']}, {le['epochs']} epoch(s) a run): "
                 + "; ".join(f"{c['fraction']:g} of the frames: pre-trained {stats.describe(c['pretrained'])}, "
                             f"scratch {stats.describe(c['scratch'])}" for c in le["comparison"]) + ". " + verdict)
    return text


def vgg_setup(e: dict) -> str:
    s, o = e["setup"], e["setup"]["options"]
    layers = {"scratch": "Every layer is trained from random initialisation",
              "frozen": "Frozen: the 13 convolutional layers and the first two fully connected layers (with their "
                        "ReLU and Dropout); trained: only the re-initialised last layer, Linear(4096, 10)",
              "finetune-fc": "Frozen: the 13 convolutional layers; trained: all three fully connected layers "
                             "(the last one re-initialised for 10 classes)"}[s["mode"]]
    probe = ", the standard linear-probe protocol." if s["mode"] == "frozen" else "."
    cache = (" The frozen layers are computed once for every image (in eval mode, so without their dropout) and "
             "the trained layers learn on that cache" + probe if s["mode"] != "scratch" else "")
    size = "x".join(map(str, o["image_size"]))
    return (f"{layers}: {s['trainable_parameters']:,} trainable and {s['frozen_parameters']:,} frozen parameters. "
            f"Fashion-MNIST's grey 28x28 images are resized to {size} and repeated on three channels; Adam, "
            f"learning rate {o['lr']:g}, batch {o['batch_size']}, {o['epochs']} epochs.{cache}")


def vgg_result(e: dict, summary: dict) -> str:
    d, t = e["details"], e["test"]
    text = (f"{vgg_setup(e)} Result on {d['train_images']:,} training and {d['test_images']:,} test images: final "
            f"test accuracy {f3(t['accuracy'], 4)} (the highest over the epochs was "
            f"{f3(d['best_epoch_test_accuracy'], 4)}; no epoch is selected on the test split).")
    if e["setup"]["mode"] != "scratch" and d.get("imagenet_official") is False:
        text += " The weights file is NOT torchvision's ImageNet file (its SHA-256 differs)."
    return text


ANSWERS = {"1a": answer_1a, "1b": answer_1b, "1c": answer_1c, "1d": answer_1d, "1e": answer_1e,
           "2a": vgg_result, "2b": vgg_result, "2c": vgg_result}

WHAT_TO_RUN = ("To run 2(b) and 2(c): download vgg16-397923af.pth (torchvision's VGG16_Weights.IMAGENET1K_V1) where a "
               "network is, then set HW6_VGG16_WEIGHTS=/path/vgg16-397923af.pth for the notebook, or pass --weights "
               "to tools' and transfer_vgg.py's command line; the run reports whether the file is torchvision's.")
