"""``edgepose build-engine MODEL.onnx --out MODEL.engine``: a TensorRT engine (card beside it) from an ONNX model.

    edgepose build-engine pose.onnx --out pose.engine --fp16 --min-batch 1 --opt-batch 4 --max-batch 16
    edgepose build-engine pose_fp16.onnx --out pose_fp16_dla0.engine --dla-core 0 --min-batch 1 --max-batch 1 \
        --opt-batch 1
    edgepose build-engine pose.onnx --out pose.engine --cache-dir ~/.cache/edgepose/engines   # reuse a build
"""

from __future__ import annotations

import argparse
import os

from deploy.tensorrt.build import PRECISIONS
from edgepose.errors import InputError, MissingDependencyError

HELP = "build a TensorRT engine (+ <engine>.card.json) from an ONNX pose model, on the device that runs it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose build-engine``."""
    parser.add_argument("model", help="ONNX pose model with an embedded card")
    parser.add_argument("--out", required=True, help="engine file to write (its card goes to OUT.card.json)")
    parser.add_argument("--precision", choices=PRECISIONS, default="from-graph",
                        help="from-graph (default): the ONNX's own precision; fp16: FP16 kernels (TensorRT 10; on 11 "
                             "convert the ONNX with 'edgepose quantize --mode fp16'); fp32: refuse reduced precision")
    parser.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                        help="same as --precision fp16")
    parser.add_argument("--min-batch", type=int, default=1)
    parser.add_argument("--opt-batch", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit in MiB")
    parser.add_argument("--dla-core", type=int, default=None, metavar="N", help="build for DLA core N (Jetson Orin)")
    parser.add_argument("--no-gpu-fallback", dest="gpu_fallback", action="store_false",
                        help="with --dla-core: fail instead of running unsupported layers on the GPU")
    parser.add_argument("--timing-cache", default=None, metavar="FILE",
                        help="TensorRT timing cache: loaded when present, saved after the build (faster rebuilds)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="engine cache: reuse an engine built from the same ONNX with the same options on this "
                             "TensorRT and GPU, else build it there; then copy it to --out")


def _copy(src: str, dst: str) -> None:
    import shutil

    from edgepose.io import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def run(args: argparse.Namespace) -> int:
    """Build (or fetch from the cache) and print what was written."""
    from deploy.tensorrt.build import BuildOptions, build_engine, trt_version
    from deploy.tensorrt.jetson import trtexec_command

    if not os.path.isfile(args.model):
        raise InputError(f"model file not found: {args.model}")
    options = BuildOptions(precision=args.precision, min_batch=args.min_batch, opt_batch=args.opt_batch,
                           max_batch=args.max_batch, workspace_mib=args.workspace_mib, dla_core=args.dla_core,
                           gpu_fallback=args.gpu_fallback, timing_cache=args.timing_cache)
    if trt_version() is None:
        line = trtexec_command(args.model, args.out, options)
        raise MissingDependencyError(
            "TensorRT is not installed here: it comes with JetPack on a Jetson (python3-libnvinfer) and as NVIDIA's "
            "wheels on an x86 GPU machine. Build the engine with trtexec on the device instead (TensorRT 10 line; "
            f"then save its card: edgepose card {args.model} > {args.out}.card.json):\n  {line}"
        )
    if args.cache_dir:
        from deploy.tensorrt.engine_cache import EngineCache

        entry = EngineCache(args.cache_dir).get_or_build(args.model, options)
        _copy(entry.engine_path, args.out)
        _copy(entry.card_path, args.out + ".card.json")
        print(f"{args.out}: {'from the engine cache' if entry.hit else 'built (' + entry.reason + ')'} "
              f"[{entry.meta['tensorrt']}, {entry.meta['gpu_name']}]")
        return 0
    result = build_engine(args.model, args.out, options)
    print(f"{result.engine_path}: TensorRT {result.tensorrt_version}, {result.engine_precision} engine from a "
          f"{result.graph_precision} graph, {result.size_bytes / 1e6:.1f} MB in {result.seconds:.1f} s; card "
          f"{result.card_path}")
    return 0
