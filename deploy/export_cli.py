"""``edgepose export CHECKPOINT --out model.onnx``: ONNX with the card embedded, then the parity check.

    edgepose export runs/x/best.pth --out model.onnx                 # dynamic batch, opset 17, onnxslim, verified
    edgepose export runs/x/best.pth --out model.onnx --batch 4       # a fixed batch of 4
    edgepose export runs/x/best.pth --out model.ts --torch torchscript
    edgepose export runs/x/best.pth --target jetson --out BUNDLE/ --calib-ann A.json --calib-images DIR
    edgepose export rtmpose-s_coco.pth --arch rtmpose_s --out rtmpose_s.onnx    # an MMPose checkpoint (1.x or 0.x)

The checkpoint is loaded once: the same model is exported and is the reference of the parity check, and its card
is passed down to calibration and the bundle. The export is checked before it is renamed into place
(``deploy.artifact``): a model that fails the parity check is not left under its name: it goes to
``NAME.unverified.SUFFIX`` and the command exits with status 2, naming the first diverging output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable

from edgepose.backends.formats import FORMATS, format_of
from edgepose.card import ModelCard
from edgepose.errors import InputError, ModelError

HELP = "export a checkpoint to ONNX (card embedded, parity-checked), a torch program, or a Jetson bundle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose export``."""
    writable = sorted(s for s, f in FORMATS.items() if f.export)
    parser.add_argument("checkpoint", help="a training checkpoint (edgepose train / distill / prune), or an MMPose "
                                           "checkpoint with --arch")
    add_mmpose_arguments(parser)
    parser.add_argument("--out", required=True,
                        help=f"output file ({', '.join(writable)}; the suffix picks the format) or folder "
                             "(--target jetson)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or newer)")
    parser.add_argument("--batch", type=int, help="fix the batch axis at this size (default: dynamic)")
    parser.add_argument("--no-slim", action="store_true", help="skip onnxslim simplification")
    parser.add_argument("--no-verify", action="store_true", help="skip the PyTorch vs exported parity check")
    parser.add_argument("--torch", choices=("torchscript", "export"), help="write a torch program instead of ONNX")
    parser.add_argument("--target", choices=("onnx", "jetson"), default="onnx",
                        help="jetson: a bundle of ONNX variants + card + build script for the robot to build from")
    parser.add_argument("--calib-ann", help="(jetson) COCO annotations for INT8 calibration")
    parser.add_argument("--calib-images", help="(jetson) image folder for INT8 calibration")
    parser.add_argument("--num", type=int, default=64, help="(jetson) calibration crops")


def add_mmpose_arguments(parser: argparse.ArgumentParser) -> None:
    """--arch / --input-size / --card: read the checkpoint as MMPose's (the card its COCO config implies)."""
    from compress.models.mmpose_cards import MMPOSE_CODECS

    parser.add_argument("--arch", choices=sorted(MMPOSE_CODECS),
                        help="the checkpoint is MMPose's (1.x or 0.x layout) of this architecture")
    parser.add_argument("--input-size", type=_size, metavar="WxH", help="(--arch) model input, default 192x256")
    parser.add_argument("--card", help="(--arch) model card (YAML/JSON) instead of the one MMPose's config implies")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 192x256, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"input size must be at least 32x32, got {text!r}")
    return w, h


def load_source(args: argparse.Namespace) -> tuple[object, ModelCard]:
    """The model to export (loaded once) and its card: an edgepose checkpoint, or MMPose's with --arch."""
    if args.arch is None:
        if args.input_size or args.card:
            raise InputError("--input-size and --card describe an MMPose checkpoint: give its --arch too")
        from compress.checkpoint import load_model

        model, card, _ = load_model(args.checkpoint)
        return model, card
    from compress.models.mmpose_import import load_mmpose_model

    card = ModelCard.from_file(args.card) if args.card else None
    size = args.input_size or (tuple(card.input_size) if card else (192, 256))
    return load_mmpose_model(args.checkpoint, args.arch, size, card)


def parity_check(model, card: ModelCard, checkpoint: str, out: str, no_verify: bool) -> Callable[[str], None] | None:
    """The check the artifact writer runs on the finished export (None with ``no_verify``).

    It compares the already-loaded ``model`` with the written file; on failure the file is kept as
    ``NAME.unverified.SUFFIX`` and ModelError names the first diverging output.
    """
    if no_verify:
        print(f"{out}: parity check skipped (--no-verify)")
        return None

    def check(tmp: str) -> None:
        from deploy.verify import LoadedModel, verify

        report = verify(LoadedModel(model, card, checkpoint), tmp)
        report.b = out
        print(report.summary())
        if not report.passed:
            stem, suffix = os.path.splitext(out)
            aside = f"{stem}.unverified{suffix}"
            shutil.copyfile(tmp, aside)
            raise ModelError(f"{out} does not match {checkpoint}: {report.first_failure} (kept as {aside})")

    return check


def _kind(args: argparse.Namespace) -> str:
    """'onnx', 'torchscript' or 'export' from --torch and the --out suffix (they must agree)."""
    fmt = format_of(args.out)
    if not fmt.export:
        raise InputError(f"edgepose export cannot write '{fmt.suffix}' files ({fmt.backend}); "
                         f"write .onnx and build the engine with 'edgepose build-engine'")
    if args.torch and fmt.backend != "torch":
        raise InputError(f"--torch {args.torch} writes a torch program: give --out a .ts or .pt2 name, not {args.out}")
    return fmt.kind


def run(args: argparse.Namespace) -> int:
    """Export as asked."""
    if args.target != "jetson":
        kind = _kind(args)
    model, card = load_source(args)
    if args.target == "jetson":
        from deploy.export import export_model
        from deploy.quantize.calibration import CalibrationImages
        from deploy.tensorrt.bundle import make_jetson_bundle

        with tempfile.TemporaryDirectory() as tmp:
            fp32 = os.path.join(tmp, "model.onnx")
            export_model(model, card, fp32, opset=args.opset, slim=not args.no_slim,
                         check=parity_check(model, card, args.checkpoint, fp32, args.no_verify))
            calibration = None
            if args.calib_ann and args.calib_images:
                calibration = CalibrationImages(fp32, args.calib_ann, args.calib_images, num=args.num, card=card)
            manifest = make_jetson_bundle(fp32, args.out, calibration=calibration, card=card)
        print(f"wrote bundle {args.out}: {sorted(manifest.get('variants', {}))}")
        return 0
    check = parity_check(model, card, args.checkpoint, args.out, args.no_verify)
    if kind != "onnx":
        from deploy.export_torch import export_torch

        export_torch(model, card, args.out, kind=args.torch or kind, check=check)
    else:
        from deploy.export import export_model

        export_model(model, card, args.out, opset=args.opset, dynamic_batch=args.batch is None,
                     slim=not args.no_slim, batch=args.batch or 1, check=check)
    return 0
