"""``edgepose quantize MODEL.onnx --out OUT.onnx --mode int8|fp16``: post-training INT8 (QDQ) or FP16 model.

    edgepose quantize pose.onnx --out pose_int8.onnx --mode int8 --calib-ann ANN.json --calib-images DIR --num 64
    edgepose quantize pose.onnx --out pose_fp16.onnx --mode fp16
"""

from __future__ import annotations

import argparse
import json

from edgepose.errors import InputError

HELP = "post-training INT8 (QDQ, calibrated) or FP16 conversion of an ONNX pose model, card kept"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose quantize``."""
    from deploy.quantize.ptq import METHODS, SCOPES

    parser.add_argument("model", help="ONNX pose model with an embedded card (edgepose export / edgepose card)")
    parser.add_argument("--out", required=True, help="output ONNX file (written atomically)")
    parser.add_argument("--mode", choices=("int8", "fp16"), required=True)
    parser.add_argument("--method", choices=METHODS, default="minmax", help="INT8 calibration method")
    parser.add_argument("--activations", choices=("int8", "uint8"), default="int8",
                        help="INT8 activations: int8 symmetric (TensorRT) or uint8 asymmetric (ONNX Runtime on x86)")
    parser.add_argument("--int8-scope", choices=SCOPES, default="all",
                        help="INT8: ops to quantize: all (TensorRT; default), conv (Convs only) or dense (group-1 "
                             "Convs only, depthwise float); Lite-HRNet on ONNX Runtime CPUs: "
                             "benchmarks/results/int8_lite_hrnet.json")
    parser.add_argument("--calib-ann", help="INT8: COCO keypoint annotation json of the calibration images")
    parser.add_argument("--calib-images", help="INT8: folder of the calibration images")
    parser.add_argument("--num", type=int, default=64, help="INT8: number of person crops to calibrate on")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="NODE", help="node names to keep in float")
    parser.add_argument("--keep-first-conv", dest="keep_first_conv", action="store_true", default=True,
                        help="INT8: keep the first Conv (reading the image) in float (default)")
    parser.add_argument("--quantize-first-conv", dest="keep_first_conv", action="store_false")
    parser.add_argument("--keep-head", dest="keep_head", action="store_true", default=True,
                        help="INT8: keep the head (the Conv producing the outputs) in float (default)")
    parser.add_argument("--quantize-head", dest="keep_head", action="store_false")
    parser.add_argument("--subpixel-deconv", dest="subpixel_deconv", action="store_true", default=None,
                        help="INT8: rewrite each ConvTranspose(k4, s2, p1) into an equivalent sub-pixel Conv so it is "
                             "quantized too (default: on with --activations uint8, off with int8)")
    parser.add_argument("--no-subpixel-deconv", dest="subpixel_deconv", action="store_false")
    parser.add_argument("--sensitivity-db", type=float, default=None, metavar="DB",
                        help="INT8: also keep in float every Conv whose output SQNR is below DB (e.g. 20)")
    parser.add_argument("--no-keep-io-types", dest="keep_io_types", action="store_false",
                        help="FP16: make the inputs and outputs float16 too (default: they stay float32)")
    parser.add_argument("--report", help="write the report as JSON here")


def run(args: argparse.Namespace) -> int:
    """Quantize or convert, print a short summary, optionally write the JSON report."""
    from deploy.quantize.ptq import convert_fp16, quantize_int8
    from edgepose.io import atomic_write_text

    if args.mode == "int8":
        from deploy.quantize.calibration import CalibrationImages

        if not (args.calib_ann and args.calib_images):
            raise InputError("--mode int8 needs calibration images: give --calib-ann ANN.json and --calib-images DIR")
        reader = CalibrationImages(args.model, args.calib_ann, args.calib_images, num=args.num)
        report = quantize_int8(args.model, args.out, reader, card=reader.card, method=args.method, exclude=args.exclude,
                               exclude_first_conv=args.keep_first_conv, exclude_head=args.keep_head,
                               sensitivity_sqnr_db=args.sensitivity_db, activations=args.activations,
                               subpixel_deconv=args.subpixel_deconv, scope=args.int8_scope)
        print(f"{report.dst}: INT8 QDQ ({report.method}, {report.num_calibration} calibration crops, scope "
              f"{report.scope}), "
              f"{report.quantized_convs} Conv quantized, {len(report.excluded)} node(s) kept float, "
              f"{report.size_bytes / 1e6:.2f} MB")
        for node in report.rewritten_deconvs:
            print(f"  sub-pixel Conv: {node} (was ConvTranspose)")
    else:
        report = convert_fp16(args.model, args.out, keep_io_types=args.keep_io_types, exclude=args.exclude)
        print(f"{report.dst}: FP16, {report.quantized_convs} Conv in float16, {len(report.excluded)} node(s) kept "
              f"FP32, {report.size_bytes / 1e6:.2f} MB")
    for node, reason in report.excluded[:10]:
        print(f"  float: {node} ({reason})")
    if len(report.excluded) > 10:
        print(f"  ... and {len(report.excluded) - 10} more" + (" (see --report)" if not args.report else ""))
    if args.report:
        atomic_write_text(args.report, json.dumps(report.to_dict(), indent=2) + "\n")
    return 0
