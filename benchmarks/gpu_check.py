"""One-shot GPU verification: CUDA crop kernel parity and speed, GPU argmax parity, TorchBackend on CUDA FP32/FP16
vs ONNX Runtime on the CPU, the zero-copy GPU path, and TensorRT when installed. Needs no network.

    python -m benchmarks.gpu_check --out runs/gpu_check.json                # lite_hrnet_18 at 256x192
    python -m benchmarks.gpu_check --arch lite_hrnet_tiny --runs 20 --out /tmp/gpu_check.json

Every section runs on its own; one that cannot (no pycuda, no onnxruntime, no TensorRT) records why and the rest
go on. Without pycuda the crop and argmax kernels still run, from the same CUDA C source, through CuPy
(``RawModule``); then only ``CudaCropper``/``GpuArgmax`` themselves are untested. Times are medians (and p90) of
``--runs`` synchronized runs after ``--warmup``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks.gpu_check_parts import CARD, CupyKernels, check_tensorrt, have_pycuda, timed
from edgepose.affine import Affine
from edgepose.bench.environment import environment
from edgepose.card import ModelCard
from edgepose.cuda.argmax import argmax_reference
from edgepose.io import atomic_write_text, read_image
from edgepose.preprocess import Cropper

ROOT = Path(__file__).resolve().parents[1]

COCO = ROOT / "tests" / "data" / "coco_val_samples"
def grey_diff(got: np.ndarray, want: np.ndarray, card: ModelCard) -> dict:
    """Max |difference| in grey levels (0-255: normalised difference times std) and the share that differ at all."""
    diff = np.abs((got.astype(np.float64) - want.astype(np.float64)) * np.array(card.std)[:, None, None])
    return {"max_grey_levels": float(diff.max()) if diff.size else 0.0, "share_differing": float((diff > 1e-3).mean())}


def lively(model, seed: int = 0):
    """Random weights with real magnitudes and positive maps around the peaks (compress.models.random_init)."""
    from compress.models.random_init import realistic_random_weights

    return realistic_random_weights(model, seed, head_bias=8.0)


def frame_and_boxes(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The COCO sample with the most persons and ``n`` boxes: its ground-truth boxes, cycled with a jitter."""
    gt = json.loads((COCO / "test_coco.json").read_text())
    counts = {img["id"]: sum(a["image_id"] == img["id"] for a in gt["annotations"]) for img in gt["images"]}
    image = max(gt["images"], key=lambda img: counts[img["id"]])
    boxes = np.array([[x, y, x + w, y + h] for a in gt["annotations"] if a["image_id"] == image["id"]
                      for x, y, w, h in [a["bbox"]]])
    rng = np.random.default_rng(0)
    picked = boxes[np.arange(n) % len(boxes)] + rng.normal(0, 4, (n, 4)) * (np.arange(n) >= len(boxes))[:, None]
    return read_image(COCO / image["file_name"]), picked, image["file_name"]


def crop_cases(frame: np.ndarray, card: ModelCard) -> dict[int, Affine]:
    """1/8/32 rotated boxes, some partly outside the frame."""
    rng = np.random.default_rng(1)
    height, width = frame.shape[:2]
    out = {}
    for n in (1, 8, 32):
        x1, y1 = rng.uniform(-0.2 * width, 0.8 * width, n), rng.uniform(-0.2 * height, 0.8 * height, n)
        boxes = np.stack([x1, y1, x1 + rng.uniform(40, 0.5 * width, n), y1 + rng.uniform(60, 0.7 * height, n)], 1)
        out[n] = Affine.from_boxes(boxes, card.input_size, card.bbox_padding, rotation=rng.uniform(-30, 30, n))
    return out


def crop_runner(frame: np.ndarray, dtype):
    """(run(affine), synchronize(), fetch(result) -> host batch, close()) for the GPU crop: CudaCropper, or the
    same kernel through CuPy when pycuda is missing."""

    if have_pycuda():
        from edgepose.cuda.crop import CudaCropper

        cropper = CudaCropper(CARD, 32, dtype=dtype)
        return (lambda a: cropper.warp(frame, a)), cropper.synchronize, (lambda _: cropper.to_host()), cropper.close
    kernels = CupyKernels()
    return (lambda a: kernels.crop(frame, a, CARD, dtype)), kernels.synchronize, kernels.to_host, (lambda: None)


def check_crop(frame: np.ndarray, runs: int, warmup: int) -> dict:
    """Kernel vs OpenCV Cropper (float32 and float16), and time: CUDA (upload + kernel, synchronized) vs OpenCV."""

    result = {"via": "pycuda CudaCropper" if have_pycuda() else "CuPy RawModule (same kernel source; pycuda missing)"}
    for dtype in (np.float32, np.float16):
        cpu = Cropper(CARD, dtype)
        run, sync, fetch, close = crop_runner(frame, dtype)
        try:
            for n, affine in crop_cases(frame, CARD).items():
                row = {"parity": grey_diff(fetch(run(affine)), cpu.warp(frame, affine), CARD),
                       "cuda": timed(lambda a=affine, r=run: r(a), runs, warmup, sync),
                       "opencv": timed(lambda a=affine, c=cpu: c.warp(frame, a), runs, warmup)}
                row["opencv_over_cuda"] = row["opencv"]["median_ms"] / row["cuda"]["median_ms"]
                result[f"{np.dtype(dtype).name}_{n}_boxes"] = row
        finally:
            close()
    return result


def check_argmax(runs: int, warmup: int) -> dict:
    """GPU argmax vs the numpy reference on maps with many ties, float32 and float16, and its time."""

    rng = np.random.default_rng(2)
    maps = rng.integers(0, 4, (32, 17, 64, 48)).astype(np.float32)
    maps[0, 0] = 1.0
    maps[1] = rng.normal(size=(17, 64, 48))
    if have_pycuda():
        from edgepose.cuda.argmax import GpuArgmax

        argmax, via = GpuArgmax(), "pycuda GpuArgmax"
    else:
        argmax, via = CupyKernels().argmax, "CuPy RawModule (same kernel source; pycuda missing)"
    out = {"via": via}
    for dtype in (np.float32, np.float16):
        batch = maps.astype(dtype)
        got = argmax(batch)
        out[np.dtype(dtype).name] = {"equal_to_reference": bool(np.array_equal(got, argmax_reference(batch))),
                                     "time_incl_upload": timed(lambda b=batch: argmax(b), runs, warmup)}
    return out


def export_models(arch: str, folder: str) -> dict[str, str]:
    """The lively model as TorchScript, .pt2 and (when onnx is installed) ONNX."""
    import torch

    from compress.models import build_model
    from deploy.export_torch import export_torch

    torch.manual_seed(0)
    model = lively(build_model(arch, num_keypoints=17, input_size=CARD.input_size))
    paths = {"ts": export_torch(model, CARD, os.path.join(folder, "model.ts")),
             "pt2": export_torch(model, CARD, os.path.join(folder, "model.pt2"))}
    try:
        from deploy.export import export_model

        try:
            paths["onnx"] = export_model(model, CARD, os.path.join(folder, "model.onnx"))
        except ImportError:  # onnxslim missing
            paths["onnx"] = export_model(model, CARD, os.path.join(folder, "model.onnx"), slim=False)
    except Exception as exc:  # onnx / onnxruntime missing: the ORT comparisons are skipped
        paths["onnx_error"] = f"{type(exc).__name__}: {exc}"
    return paths


def check_end_to_end(paths: dict[str, str], frame, boxes, runs: int, warmup: int) -> dict:
    """Per-frame PoseEstimator latency and keypoint agreement: torch CUDA FP32/FP16 vs ONNX Runtime CPU."""
    import torch

    from edgepose.pipeline import PoseEstimator

    configs = {"torch_cuda_fp32_ts": (paths["ts"], {"device": "cuda"}),
               "torch_cuda_fp32_pt2": (paths["pt2"], {"device": "cuda"}),
               "torch_cuda_fp16_ts": (paths["ts"], {"device": "cuda", "half": True}),
               "torch_cuda_fp16_pt2": (paths["pt2"], {"device": "cuda", "half": True})}
    if "onnx" in paths:
        configs["onnxruntime_cpu"] = (paths["onnx"], {"providers": ("CPUExecutionProvider",)})
    out, poses = {}, {}
    for name, (path, options) in configs.items():
        try:
            with PoseEstimator(path, backend_options=options) as estimator:
                poses[name] = estimator(frame, boxes=boxes)
                sync = torch.cuda.synchronize if "cuda" in name else None
                out[name] = {"per_frame": timed(lambda e=estimator: e(frame, boxes=boxes), runs, warmup, sync)}
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    reference = "onnxruntime_cpu" if "onnxruntime_cpu" in poses else "torch_cuda_fp32_ts"
    for name, p in poses.items():
        if name != reference and reference in poses:
            out[name][f"max_keypoint_px_vs_{reference}"] = float(np.abs(p.xy - poses[reference].xy).max())
    if "onnxruntime_cpu" in out and "per_frame" in out["onnxruntime_cpu"]:
        base = out["onnxruntime_cpu"]["per_frame"]["median_ms"]
        for row in out.values():
            if "per_frame" in row:
                row["speedup_vs_onnxruntime_cpu"] = base / row["per_frame"]["median_ms"]
    out["persons"] = len(boxes)
    return out


def check_gpu_path(paths: dict[str, str], frame, boxes, runs: int, warmup: int) -> dict:
    """CudaCropper -> TorchBackend.infer_device (zero copy) -> decode, against the CPU-crop pipeline."""

    if not have_pycuda():
        return {"skipped": "pycuda not installed"}
    import torch

    from edgepose.backends.torch_backend import TorchBackend
    from edgepose.cuda.crop import CudaCropper
    from edgepose.pipeline import PoseEstimator, decode_to_frame

    out = {}
    for half in (False, True):
        with TorchBackend(paths["ts"], device="cuda", half=half) as backend, \
                PoseEstimator(backend) as estimator, \
                CudaCropper(CARD, 32, dtype=np.float16 if half else np.float32) as cropper:
            def gpu_frame(c=cropper, b=backend, e=estimator):
                batch, affine = c(frame, boxes)
                raw = b.infer_device(batch, stream=c.stream)
                return decode_to_frame(e.codec, e.binding.rename(raw), affine)

            xy, _ = gpu_frame()
            cpu_poses = estimator(frame, boxes=boxes)
            out["fp16" if half else "fp32"] = {
                "max_keypoint_px_vs_cpu_crop": float(np.abs(xy - cpu_poses.xy).max()),
                "gpu_crop_per_frame": timed(gpu_frame, runs, warmup, torch.cuda.synchronize),
                "cpu_crop_per_frame": timed(lambda e=estimator: e(frame, boxes=boxes), runs, warmup,
                                            torch.cuda.synchronize)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="lite_hrnet_18", help="compress.models network (random, rescaled)")
    parser.add_argument("--persons", type=int, default=8)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", required=True, help="JSON results path")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: crop argmax end_to_end gpu_path "
                                                              "tensorrt")
    args = parser.parse_args(argv)
    frame, boxes, frame_name = frame_and_boxes(args.persons)
    record = {"check": "gpu_check", "arch": f"{args.arch} (random weights, rescaled)", "frame": frame_name,
              "frame_shape": list(frame.shape),
              "environment": environment(None, ["CUDAExecutionProvider", "CPUExecutionProvider"])}
    print(json.dumps(record["environment"]))
    with tempfile.TemporaryDirectory() as tmp:
        sections = {"crop": lambda: check_crop(frame, args.runs, args.warmup),
                    "argmax": lambda: check_argmax(args.runs, args.warmup)}
        paths: dict = {}
        sections["export"] = lambda: paths.update(export_models(args.arch, tmp)) or dict(paths)
        sections["end_to_end"] = lambda: check_end_to_end(paths, frame, boxes, args.runs, args.warmup)
        sections["gpu_path"] = lambda: check_gpu_path(paths, frame, boxes, args.runs, args.warmup)

        sections["tensorrt"] = lambda: check_tensorrt(paths, frame, boxes, args.runs, args.warmup)
        for name, run in sections.items():
            if name in args.skip:
                continue
            t0 = time.perf_counter()
            try:
                record[name] = run()
            except Exception as exc:
                record[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            print(f"--- {name} ({time.perf_counter() - t0:.1f} s)\n{json.dumps(record[name], indent=1)[:4000]}")
            atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")  # partial results survive a timeout
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
