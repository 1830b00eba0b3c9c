"""How big each experiment is, in one table: ``full`` (the assignment's settings, for a GPU), ``quick``
(every experiment end to end on this 2-core CPU in about 25 minutes) and ``smoke`` (the same path on
tiny data in about a minute, for tests).

Per profile:
  synthetic   counts and frame size of the generated default data (used when no DATA_ROOT is given)
  seg         segmentation settings shared by 1(a), 1(b), 1(c) and 1(e) (keys of train_segmentation.DEFAULTS)
  sweep_grid  the 1(c) grid (run with ``--recipe best``)
  color       colorization pre-training 1(d) (keys of train_colorization.DEFAULTS)
  label_efficiency  fractions and seeds of the label-efficiency curve
  vgg         per VGG mode: keys of transfer_vgg.run
"""
from __future__ import annotations

PROFILES: dict[str, dict] = {
    "full": dict(
        description="the assignment's settings: 256x320 frames, batch 10, Adam 1e-3, early stopping with "
                    "patience 20, all data; for a GPU",
        synthetic=dict(n_train=300, n_val=50, n_test=50, n_color_train=1584, n_color_val=50, size=(256, 320)),
        seg=dict(image_size=None, epochs=200, patience=20, batch_size=10, lr=1e-3),
        sweep_grid={"lr": [1e-3, 3e-4, 1e-4], "batch_size": [10, 4]},
        color=dict(image_size=None, epochs=100, patience=10, batch_size=10, lr=1e-3),
        label_efficiency=dict(fractions=[0.1, 0.25, 0.5, 1.0], seeds=[0, 1, 2]),
        vgg={"scratch": dict(epochs=15), "frozen": dict(epochs=10, image_size=112),
             "finetune-fc": dict(epochs=10, image_size=112)},
    ),
    "quick": dict(
        description="every experiment on this 2-core CPU in about 25 minutes: 128x160 frames, 15 epochs per "
                    "segmentation run (10 in the sweep), 600 colorization images for 8 epochs, VGG16 on "
                    "5,000 training and 2,000 test images",
        synthetic=dict(n_train=200, n_val=40, n_test=40, n_color_train=400, n_color_val=40, size=(256, 320)),
        seg=dict(image_size=(128, 160), epochs=15, patience=20, batch_size=10, lr=1e-3),
        sweep_grid={"lr": [1e-3, 3e-4], "batch_size": [10, 4]},
        sweep_epochs=10,
        color=dict(image_size=(128, 160), epochs=8, patience=10, batch_size=10, lr=1e-3, limit=600),
        label_efficiency=dict(fractions=[0.25, 1.0], seeds=[0, 1], epochs=8),
        vgg={"scratch": dict(epochs=3, limit=5000, test_limit=2000),
             "frozen": dict(epochs=5, limit=5000, test_limit=2000),
             "finetune-fc": dict(epochs=5, limit=5000, test_limit=2000)},
    ),
    "smoke": dict(
        description="the whole path on tiny data in about a minute, for tests: 64x80 frames, 2 epochs",
        synthetic=dict(n_train=12, n_val=4, n_test=4, n_color_train=8, n_color_val=4, size=(64, 80)),
        seg=dict(image_size=(64, 80), epochs=2, patience=20, batch_size=4, lr=1e-3, limit=12),
        sweep_grid={"lr": [1e-3, 3e-4], "batch_size": [4]},
        color=dict(image_size=(64, 80), epochs=2, patience=10, batch_size=4, lr=1e-3, limit=8),
        label_efficiency=dict(fractions=[0.5, 1.0], seeds=[0, 1], epochs=1),
        vgg={"scratch": dict(epochs=1, limit=200, test_limit=200),
             "frozen": dict(epochs=1, limit=200, test_limit=200),
             "finetune-fc": dict(epochs=1, limit=200, test_limit=200)},
    ),
}


def get(name: str) -> dict:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
