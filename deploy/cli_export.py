"""``edgepose export CHECKPOINT --out model.onnx``: ONNX with the card embedded, then the parity check.

    edgepose export runs/x/best.pth --out model.onnx                 # dynamic batch, opset 17, onnxslim, verified
    edgepose export runs/x/best.pth --out model.onnx --batch 4       # a fixed batch of 4
    edgepose export runs/x/best.pth --out model.ts --torch torchscript
    edgepose export runs/x/best.pth --target jetson --out BUNDLE/ --calib-ann A.json --calib-images DIR

A model that fails the parity check is not left under its name: it goes to ``NAME.unverified.SUFFIX`` and the
command exits with status 2, naming the first diverging output.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from edgepose.errors import ModelError

HELP = "export a checkpoint to ONNX (card embedded, parity-checked), a torch program, or a Jetson bundle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose export``."""
    parser.add_argument("checkpoint", help="a training checkpoint (edgepose train / distill / prune)")
    parser.add_argument("--out", required=True, help="output file (.onnx, .ts, .pt2) or folder (--target jetson)")
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


def _checked(checkpoint: str, out: str, no_verify: bool) -> None:
    """Run the parity check on ``out``; on failure move it aside and raise."""
    if no_verify:
        print(f"wrote {out} (not verified)")
        return
    from deploy.verify import verify

    report = verify(checkpoint, out)
    print(report.summary())
    if not report.passed:
        stem, suffix = os.path.splitext(out)
        aside = f"{stem}.unverified{suffix}"
        os.replace(out, aside)
        raise ModelError(f"{out} does not match {checkpoint}: {report.first_failure} (kept as {aside})")


def run(args: argparse.Namespace) -> int:
    """Export as asked."""
    from compress.checkpoint import load_model

    model, card, _ = load_model(args.checkpoint)
    if args.target == "jetson":
        from compress.calibration import CalibrationImages
        from deploy.bundle import make_jetson_bundle
        from deploy.export import export_model

        with tempfile.TemporaryDirectory() as tmp:
            fp32 = os.path.join(tmp, "model.onnx")
            export_model(model, card, fp32, opset=args.opset, slim=not args.no_slim)
            _checked(args.checkpoint, fp32, args.no_verify)
            calibration = None
            if args.calib_ann and args.calib_images:
                calibration = CalibrationImages(fp32, args.calib_ann, args.calib_images, num=args.num)
            manifest = make_jetson_bundle(fp32, args.out, calibration=calibration)
        print(f"wrote bundle {args.out}: {sorted(manifest.get('variants', {}))}")
        return 0
    if args.torch:
        from deploy.export_torch import export_torch

        export_torch(model, card, args.out, kind=args.torch)
    else:
        from deploy.export import export_model

        export_model(model, card, args.out, opset=args.opset, dynamic_batch=args.batch is None,
                     slim=not args.no_slim, batch=args.batch or 1)
    _checked(args.checkpoint, args.out, args.no_verify)
    return 0
