"""Parts of benchmarks/gpu_check.py: the runtime's CUDA kernels through CuPy (when pycuda is missing) and the
TensorRT section (when TensorRT is installed)."""

from __future__ import annotations

import os
import time

import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="dark", name="gpu_check")


def timed(call, runs: int, warmup: int, sync=None) -> dict:
    """Median and p90 milliseconds of ``call`` (followed by ``sync`` when given)."""
    samples = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        call()
        if sync is not None:
            sync()
        if i >= warmup:
            samples.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(samples)), "p90_ms": float(np.percentile(samples, 90)), "runs": runs}


def have_pycuda() -> bool:
    """pycuda imports and sees a CUDA device."""
    from edgepose.cuda.session import has_cuda_device

    return has_cuda_device()


def _raw_module(source: str):
    """Compile with NVRTC, or with nvcc where NVRTC lacks cuda_fp16.h."""
    import cupy as cp

    try:
        module = cp.RawModule(code=source)
        module.compile()
        return module
    except Exception:  # CompileException: header not found under NVRTC
        module = cp.RawModule(code=source, backend="nvcc")
        module.compile()
        return module


class CupyKernels:
    """The crop and argmax kernels (the runtime's own CUDA C source) launched through CuPy, as CudaCropper and
    GpuArgmax launch them (same block and grid)."""

    def __init__(self) -> None:
        import cupy as cp

        from edgepose.cuda import argmax, crop

        self.cp = cp
        self._crop = _raw_module(crop.KERNEL_SOURCE)
        self._argmax = _raw_module(argmax.KERNEL_SOURCE)

    def crop(self, frame: np.ndarray, affine: Affine, card: ModelCard, dtype) -> object:
        """Upload the frame and matrices, launch; returns the (N, 3, H, W) CuPy batch (not synchronized)."""
        from edgepose.cuda.crop import BLOCK, KERNELS, channel_tables

        cp, i32 = self.cp, np.int32
        source, tables = channel_tables(card)
        width, height = card.input_size
        n = len(affine)
        inverse = cp.asarray(affine.inverse().matrices.reshape(n, 6).astype(np.float32))
        out = cp.empty((n, 3, height, width), dtype)
        grid = ((width + BLOCK[0] - 1) // BLOCK[0], (height + BLOCK[1] - 1) // BLOCK[1], n)
        kernel = self._crop.get_function(KERNELS[np.dtype(dtype)])
        kernel(grid, BLOCK, (cp.asarray(frame), i32(frame.shape[1]), i32(frame.shape[0]), inverse,
                             cp.asarray(tables), i32(source[0]), i32(source[1]), i32(source[2]), out, i32(width),
                             i32(height)))
        return out

    def to_host(self, out) -> np.ndarray:
        return self.cp.asnumpy(out)

    def synchronize(self) -> None:
        self.cp.cuda.get_current_stream().synchronize()

    def argmax(self, maps: np.ndarray) -> np.ndarray:
        """(N, K, h, w) host maps -> (N, K, 3) [x, y, maxval] through the GPU kernel."""
        from edgepose.cuda.argmax import KERNELS, THREADS

        cp = self.cp
        n, k, h, w = maps.shape
        out = cp.empty((n * k, 3), cp.float32)
        kernel = self._argmax.get_function(KERNELS[maps.dtype])
        kernel((n * k,), (THREADS,), (cp.asarray(maps), np.int32(h * w), np.int32(w), out), shared_mem=THREADS * 8)
        return cp.asnumpy(out).reshape(n, k, 3)


def build_engine(onnx_path: str, engine_path: str, card: ModelCard, max_batch: int, fp16: bool) -> str:
    """A TensorRT 10 engine with batch profile 1..max_batch (FP16 builder flag only where the version has it)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        raise RuntimeError([str(parser.get_error(i)) for i in range(parser.num_errors)])
    config = builder.create_builder_config()
    w, h = card.input_size
    profile = builder.create_optimization_profile()
    profile.set_shape(card.input_name, (1, 3, h, w), (max_batch // 4, 3, h, w), (max_batch, 3, h, w))
    config.add_optimization_profile(profile)
    if fp16 and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError("TensorRT could not build the engine")
    with open(engine_path, "wb") as fh:
        fh.write(bytes(data))
    card.save(engine_path + ".card.json")
    return engine_path


def check_tensorrt(paths: dict[str, str], frame, boxes, runs: int, warmup: int) -> dict:
    """TensorRT FP32/FP16 engines vs ONNX Runtime: heatmaps, keypoints, per-frame latency, zero-copy GPU crop."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"skipped": "TensorRT not installed"}
    if "onnx" not in paths:
        return {"skipped": f"no ONNX export ({paths.get('onnx_error', 'not made')})"}
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    from edgepose.backends.tensorrt import TensorRTBackend
    from edgepose.pipeline import PoseEstimator
    from edgepose.preprocess import Cropper

    batch, _ = Cropper(CARD)(frame, boxes)
    with OnnxRuntimeBackend(paths["onnx"]) as ort, PoseEstimator(ort) as ort_estimator:
        want = ort.infer({"input": batch})["heatmaps"]
        want_xy = ort_estimator(frame, boxes=boxes).xy
    out = {}
    for fp16 in (False, True):
        name = "fp16" if fp16 else "fp32"
        t0 = time.perf_counter()
        engine = build_engine(paths["onnx"], os.path.join(os.path.dirname(paths["onnx"]), f"{name}.engine"), CARD,
                              32, fp16)
        row = {"build_s": time.perf_counter() - t0}
        with TensorRTBackend(engine) as backend, PoseEstimator(backend) as estimator:
            got = backend.infer({"input": batch})["heatmaps"]
            row["max_heatmap_diff_vs_ort"] = float(np.abs(got - want).max())
            row["max_keypoint_px_vs_ort"] = float(np.abs(estimator(frame, boxes=boxes).xy - want_xy).max())
            row["per_frame_cpu_crop"] = timed(lambda e=estimator: e(frame, boxes=boxes), runs, warmup)
            if have_pycuda():
                from edgepose.cuda.crop import CudaCropper

                with CudaCropper(CARD, 32, context=backend.context, stream=backend.stream) as cropper:
                    def gpu_infer(c=cropper, b=backend):
                        device_batch, _ = c(frame, boxes)
                        return b.infer_device(device_batch, len(boxes))["heatmaps"]

                    row["max_heatmap_diff_gpu_crop_vs_ort"] = float(np.abs(gpu_infer() - want).max())
                    row["crop_and_infer_gpu_crop"] = timed(gpu_infer, runs, warmup)
        out[name] = row
    return out
