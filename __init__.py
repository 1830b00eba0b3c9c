"""hw6: U-Net instrument segmentation, colorization pre-training and VGG16 transfer learning.

The repository root is this package (``pip install -e .`` makes it importable as ``hw6`` from anywhere):

    from hw6 import train_segmentation, inference
    metrics = train_segmentation.train("data/endo", "runs/1a", image_size=(128, 160), epochs=20)
    model, meta = inference.load_segmentation_model("runs/1a/best.pt")

The design, one concept a module: ``unet`` (the model), ``datasets`` (the data on disk, in memory, in batches),
``losses`` (the Dice loss and every score), ``augment``, ``engine`` (the one training loop), ``inference`` (frames
to masks to scores), ``experiment`` (what the three experiments share), the experiments ``train_segmentation``,
``train_colorization`` and ``transfer_vgg``, ``label_efficiency`` and the default data ``synthetic_endo``;
``kit/`` holds the low-level helpers, ``notebook/`` the notebook's glue and ``tools/`` the standalone commands.
"""
