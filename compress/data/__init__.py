"""Datasets for training and evaluation: COCO-format keypoint data (``coco``), augmentation (``transforms``) and
the procedural synthetic person dataset (``synthetic``, figures in ``synth_figure``)."""
