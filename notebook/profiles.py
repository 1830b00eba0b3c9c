"""How big each experiment is, in one table: ``full`` (the assignment's settings, for a GPU), ``quick`` (every
experiment end to end on a 2-core CPU in hours, not days) and ``smoke`` (the same path on tiny data in a few
minutes, for tests).

Per profile:
  synthetic   counts and frame size of the generated default data (used when no DATA_ROOT is given)
  seg         segmentation options shared by 1(a), 1(b), 1(c) and 1(e) (keys of train_segmentation.DEFAULTS)
  seeds       every segmentation experiment is trained once per seed; its spread is reported
  sweep       1(c): the grid (trained once, seed 0, with ``--recipe best``) and its epochs
  color       colorization pre-training 1(d) (keys of train_colorization.DEFAULTS)
  label_efficiency  fractions, seeds and epochs of the label-efficiency curve
  vgg         per VGG mode: options of transfer_vgg.train
  parallel    trainings run at a time where they do not depend on each other (on a GPU they share it)
"""
from __future__ import annotations

PROFILES: dict[str, dict] = {
    "full": dict(
        description="the assignment's settings: 256x320 frames, batch 10, Adam 1e-3, early stopping with patience "
                    "20, all data, three seeds per segmentation experiment; for a GPU",
        synthetic=dict(n_train=300, n_val=50, n_test=50, n_color_train=1584, n_color_val=50, size=(256, 320)),
        seg=dict(image_size=None, epochs=200, patience=20, batch_size=10, lr=1e-3),
        seeds=[0, 1, 2],
        sweep=dict(grid={"lr": [1e-3, 3e-4, 1e-4], "batch_size": [10, 4]}),
        color=dict(image_size=None, epochs=100, patience=10, batch_size=10, lr=1e-3),
        label_efficiency=dict(fractions=[0.1, 0.25, 0.5, 1.0], seeds=[0, 1, 2]),
        vgg={"scratch": dict(epochs=15), "frozen": dict(epochs=10, image_size=(112, 112)),
             "finetune-fc": dict(epochs=10, image_size=(112, 112))},
        parallel=6,
    ),
    "quick": dict(
        description="every experiment on a 2-core CPU: 96x120 frames (scored at 256x320), 12 epochs per "
                    "segmentation run, three seeds each, 400 colorization images for 6 epochs, VGG16 on 5,000 "
                    "training and 2,000 test images",
        synthetic=dict(n_train=200, n_val=40, n_test=40, n_color_train=400, n_color_val=40, size=(256, 320)),
        seg=dict(image_size=(96, 120), epochs=12, patience=20, batch_size=10, lr=1e-3),
        seeds=[0, 1, 2],
        sweep=dict(grid={"lr": [1e-3, 3e-4]}, epochs=8),
        color=dict(image_size=(96, 120), epochs=6, patience=10, batch_size=10, lr=1e-3, limit=400),
        label_efficiency=dict(fractions=[0.1, 0.25, 0.5, 1.0], seeds=[0, 1, 2], epochs=4),
        vgg={"scratch": dict(epochs=3, limit=5000, test_limit=2000),
             "frozen": dict(epochs=5, limit=5000, test_limit=2000),
             "finetune-fc": dict(epochs=5, limit=5000, test_limit=2000)},
        parallel=1,
    ),
    "smoke": dict(
        description="the whole path on tiny data in a few minutes, for tests: 32x40 frames, 2 epochs, two seeds",
        synthetic=dict(n_train=12, n_val=4, n_test=4, n_color_train=8, n_color_val=4, size=(64, 80)),
        seg=dict(image_size=(32, 40), epochs=2, patience=20, batch_size=4, lr=1e-3, limit=12),
        seeds=[0, 1],
        sweep=dict(grid={"lr": [1e-3, 3e-4]}),
        color=dict(image_size=(32, 40), epochs=2, patience=10, batch_size=4, lr=1e-3, limit=8),
        label_efficiency=dict(fractions=[0.5, 1.0], seeds=[0], epochs=1),
        vgg={"scratch": dict(epochs=1, limit=200, test_limit=200),
             "frozen": dict(epochs=1, limit=200, test_limit=200),
             "finetune-fc": dict(epochs=1, limit=200, test_limit=200)},
        parallel=1,
    ),
}


def get(name: str) -> dict:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
