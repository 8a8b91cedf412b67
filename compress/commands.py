"""The ``edgepose`` verbs this package adds (registered under the ``edgepose.commands`` entry point group).

verb -> (module with add_arguments(parser) and run(args), one-line help). Importing this file loads no torch: the
module is imported only when its verb runs.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("compress.train.loop", "train a pose model from a YAML config (DDP under torchrun)"),
    "distill": ("compress.train.distill_cli", "train a student from a teacher checkpoint (Fast Pose Distillation)"),
    "evaluate": ("compress.train.evaluate_cli", "COCO keypoint AP and PCK of a training checkpoint"),
    "data": ("compress.data.cli", "make datasets: 'edgepose data synth --out DIR --train N --val M'"),
    "prune": ("compress.prune.job", "prune a checkpoint to a FLOPs target, fine-tuning with distillation"),
}
