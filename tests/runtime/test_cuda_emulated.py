"""The CUDA kernels and the GPU classes' own code, checked on the CPU (no GPU needed).

- nvcc compiles both kernel sources for Jetson Orin (sm_87) and Hopper (sm_90), as pycuda would (skipped without
  nvcc);
- the kernels' own source, compiled by g++ with a shim and looped over the launch grid (tests.helpers.cuda_emulation),
  matches OpenCV's ``Cropper`` (crop; within the bound of the installed OpenCV, tests.helpers.crop_parity) and the
  exact ``reference_crop``, and ``argmax_reference`` (argmax: ties across threads and the reduction,
  NaN, maps smaller than a block) (skipped without g++);
- ``CudaCropper``, ``GpuArgmax`` and ``TensorRTBackend`` run on host-memory stand-ins for pycuda and TensorRT that
  execute those kernels: buffer sizes, staging, launch geometry, ``out=``, profiles, chunks and padding.
What this cannot show (the real pycuda/TensorRT APIs, device memory, streams) is
tests/runtime/test_cuda_runtime.py's GPU part and benchmarks/gpu_check.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgepose.card import ModelCard
from edgepose.cuda.argmax import argmax_reference
from edgepose.cuda.crop import channel_tables, opencv_float_warp, reference_crop
from edgepose.errors import InputError, MissingDependencyError
from edgepose.preprocess import Cropper
from tests.helpers import cuda_emulation, fake_pycuda
from tests.helpers.crop_cases import assert_same_crops, frames, make_card, random_affine
from tests.helpers.crop_parity import assert_cpu_parity

needs_gxx = pytest.mark.skipif(cuda_emulation.compiler() is None, reason="no g++ to run the CUDA kernels on the CPU")


@pytest.fixture(scope="module")
def kernels_on_cpu(tmp_path_factory):
    return cuda_emulation.build(tmp_path_factory.mktemp("kernels_on_cpu"))


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_crop_kernel_source_run_on_cpu_matches_cropper(kernels_on_cpu, coco_dir, dtype):
    """The CUDA crop kernel's own source, compiled by g++ and looped over its launch grid, against OpenCV."""
    for codec, color in (("msra", "rgb"), ("udp", "bgr")):
        card = make_card(codec, color)
        source, tables = channel_tables(card)
        for name, frame in frames(coco_dir).items():
            affine = random_affine(np.random.default_rng(len(name)), frame.shape, 8, card)
            got = cuda_emulation.crop(kernels_on_cpu, frame, affine.inverse().matrices, tables, source,
                                      card.input_size, dtype)
            assert_cpu_parity(got, Cropper(card, dtype).warp(frame, affine), card)
            assert_same_crops(got, reference_crop(frame, affine, card).astype(dtype), card)  # the exact formula


@needs_gxx
@pytest.mark.parametrize("threads", [64, 256])
def test_argmax_kernel_source_run_on_cpu_matches_reference(kernels_on_cpu, threads):
    """Ties across threads' strided shares and across the tree reduction, maps smaller than the block, NaN."""
    rng = np.random.default_rng(threads)
    maps = rng.integers(0, 3, (2, 5, 32, 24)).astype(np.float32)
    maps[0, 0] = 1.0
    maps[0, 1, 31, 23] = maps[0, 1, 0, 65 % 24] = 7.0
    maps[0, 2].flat[[10, 266, 301]] = np.nan  # the first NaN wins, as in np.argmax (266: same thread as 10)
    maps[1] = rng.normal(size=(5, 32, 24))
    for dtype in (np.float32, np.float16):
        batch = maps.astype(dtype)
        np.testing.assert_array_equal(cuda_emulation.argmax(kernels_on_cpu, batch, threads), argmax_reference(batch))
    small = rng.integers(0, 2, (1, 3, 3, 5)).astype(np.float32)  # 15 values, fewer than the threads
    np.testing.assert_array_equal(cuda_emulation.argmax(kernels_on_cpu, small, threads), argmax_reference(small))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc (CUDA toolkit) to compile the kernels")
@pytest.mark.parametrize("arch", ["sm_87", "sm_90"])  # Jetson Orin, H100/H200
def test_kernels_compile_with_nvcc(tmp_path, arch):
    """The sources compile as pycuda compiles them (nvcc --cubin, extern "C" entry points); no GPU needed."""
    from edgepose.cuda import argmax, crop

    for module in (crop, argmax):
        source = tmp_path / f"{module.__name__.split('.')[-1]}.cu"
        source.write_text(module.KERNEL_SOURCE)
        cubin = tmp_path / f"{source.stem}.cubin"
        done = subprocess.run(["nvcc", "--cubin", f"-arch={arch}", "-O3", str(source), "-o", str(cubin)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        for name in module.KERNELS.values():
            assert name.encode() in cubin.read_bytes()


@pytest.fixture()
def stand_in_pycuda(kernels_on_cpu, monkeypatch, tmp_path):
    """pycuda replaced by tests.helpers.fake_pycuda's strict host-memory stand-in running the kernels through g++;
    after the test, no context is left current and every retained primary context is released."""
    modules = fake_pycuda.install(monkeypatch, kernels_on_cpu, tmp_path)
    yield modules
    state = modules["pycuda.driver"].state
    assert state.driver_stack == [] and all(count == 0 for count in state.retained.values()), vars(state)


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_cuda_cropper_logic_on_a_stand_in_pycuda(stand_in_pycuda, coco_dir, dtype):
    """CudaCropper's own code (staging, buffer reuse, launch geometry, ``out=``, empty and oversized batches)."""
    from edgepose.cuda.crop import CudaCropper

    card = make_card() if dtype == np.float32 else make_card("udp", "bgr")
    boxes = np.array([[50.0, 40, 250, 400], [300, 100, 500, 460], [-80, -60, 120, 300], [600, 10, 700, 200]])
    with CudaCropper(card, 8, dtype=dtype) as cropper:
        for frame in frames(coco_dir).values():  # the device frame buffer grows, then is reused
            batch, affine = cropper(frame, boxes)
            assert batch.shape == (4, 3, 256, 192) and batch.dtype == dtype and len(affine) == 4
            want = Cropper(card, dtype)(frame, boxes)[0]
            assert_cpu_parity(cropper.to_host(), want, card)
            with cropper.session:  # pycuda calls need the context current
                assert_cpu_parity(batch.get(), want, card)
        with cropper.session:  # cuMemAlloc needs a current context
            target = stand_in_pycuda["pycuda.driver"].mem_alloc(2 * 3 * 256 * 192 * np.dtype(dtype).itemsize)
        batch, _ = cropper(frame, boxes[:2], out=target)
        assert int(batch.gpudata) == int(target)
        assert_cpu_parity(cropper.to_host(), Cropper(card, dtype)(frame, boxes[:2])[0], card)
        empty, _ = cropper(frame, np.zeros((0, 4)))
        assert empty.shape == (0, 3, 256, 192) and cropper.to_host().shape == (0, 3, 256, 192)
        with pytest.raises(InputError, match="max_batch 8"):
            cropper(frame, np.repeat(boxes, 3, axis=0))


@needs_gxx
def test_gpu_argmax_logic_on_a_stand_in_pycuda(stand_in_pycuda):
    from edgepose.cuda.argmax import GpuArgmax

    rng = np.random.default_rng(9)
    with GpuArgmax() as gpu_argmax:
        for shape in ((2, 5, 8, 6), (3, 5, 32, 24)):  # the second call grows the buffers
            maps = rng.integers(0, 3, shape).astype(np.float32)
            np.testing.assert_array_equal(gpu_argmax(maps), argmax_reference(maps))
            with gpu_argmax.session:
                on_device = stand_in_pycuda["pycuda.gpuarray"].to_gpu(maps.astype(np.float16))
            np.testing.assert_array_equal(gpu_argmax(on_device), argmax_reference(maps))
        assert gpu_argmax(np.zeros((0, 17, 8, 6), np.float32)).shape == (0, 17, 3)
        with pytest.raises(InputError, match="float32 or float16"):
            gpu_argmax(np.zeros((1, 1, 4, 4)))
        with pytest.raises(InputError, match="shape"):
            gpu_argmax(np.zeros((4, 4), np.float32))


@needs_gxx
def test_tensorrt_backend_logic_on_stand_ins(stand_in_pycuda, monkeypatch, tmp_path):
    """Profiles, chunks, zero-padding below the profile minimum, fixed-batch looping, device input, sidecar card,
    bad files, on stand-ins for TensorRT and pycuda (tests.helpers.cuda_emulation)."""
    from edgepose.backends import open_backend
    from edgepose.backends.tensorrt import TensorRTBackend
    from edgepose.errors import ModelError

    monkeypatch.setitem(sys.modules, "tensorrt", cuda_emulation.fake_tensorrt())
    card = ModelCard(input_size=(6, 8), mean=(0, 0, 0), std=(1, 1, 1), color="bgr", codec="msra",
                     heatmap_size=(3, 4), keypoints=("a", "b"))
    (tmp_path / "dyn.engine").write_bytes(b"FAKE-ENGINE 2 4")
    card.save(tmp_path / "dyn.engine.card.json")
    (tmp_path / "fixed.plan").write_bytes(b"FAKE-ENGINE 3 fixed")
    x = np.random.default_rng(10).normal(size=(9, 3, 8, 6)).astype(np.float32)
    want = x[:, :2].reshape(9, 2, 4, 2, 3, 2).mean(axis=(3, 5))
    with open_backend(tmp_path / "dyn.engine") as backend:
        assert [s.describe() for s in backend.inputs] == ["input float32[?,3,8,6]"]
        assert [s.describe() for s in backend.outputs] == ["heatmaps float32[?,2,4,3]"]
        assert (backend.min_batch, backend.max_batch, backend.batch_mode) == (2, 4, "dynamic")
        assert ModelCard.from_json(backend.metadata["edgepose.card"]) == card
        np.testing.assert_allclose(backend.infer({"input": x})["heatmaps"], want, rtol=1e-6)
        assert backend._engine.runs == [4, 4, 2]  # 9 = 4 + 4 + 1, the last padded to the profile minimum
        assert backend.infer({"input": x[:0]})["heatmaps"].shape == (0, 2, 4, 3)
        with pytest.raises(InputError, match="does not cast"):
            backend.infer({"input": x.astype(np.float64)})
        with backend.session:
            on_device = stand_in_pycuda["pycuda.gpuarray"].to_gpu(x[:3])
        np.testing.assert_allclose(backend.infer_device(on_device)["heatmaps"], want[:3], rtol=1e-6)  # n from it
        kept = backend.infer_device(on_device.gpudata, 3, to_host=False)["heatmaps"]
        with backend.session:
            np.testing.assert_allclose(kept.get(), want[:3], rtol=1e-6)
        np.testing.assert_allclose(backend.infer_device(on_device, 1)["heatmaps"], want[:1], rtol=1e-6)
        assert backend._engine.runs[-1] == 2  # one crop, padded to the profile minimum as the host path pads
        with pytest.raises(InputError, match="at most 4 crops"):
            backend.infer_device(on_device.gpudata, 5)
        with pytest.raises(InputError, match="give n"):
            backend.infer_device(int(on_device.gpudata))
    with pytest.raises(ModelError, match="closed"):
        backend.infer({"input": x})
    with TensorRTBackend(tmp_path / "fixed.plan") as fixed:
        assert fixed.batch_mode == "loop" and fixed.metadata == {}
        np.testing.assert_allclose(fixed.infer({"input": x[:7]})["heatmaps"], want[:7], rtol=1e-6)
        assert fixed._engine.runs == [3, 3, 3]
    (tmp_path / "cut.engine").write_bytes(b"FAKE-ENG")
    with pytest.raises(ModelError, match="corrupt or truncated"):
        TensorRTBackend(tmp_path / "cut.engine")
    (tmp_path / "empty.engine").write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        TensorRTBackend(tmp_path / "empty.engine")
    with pytest.raises(ModelError, match="not found"):
        TensorRTBackend(tmp_path / "missing.engine")
    with pytest.raises(ModelError, match="unknown TensorRT option"):
        open_backend(tmp_path / "dyn.engine", threads=2)
    monkeypatch.setitem(sys.modules, "tensorrt", cuda_emulation.fake_tensorrt("8.6.1"))
    with pytest.raises(MissingDependencyError, match="TensorRT >= 10"):
        TensorRTBackend(tmp_path / "dyn.engine")


@needs_gxx
def test_pose_estimator_crops_on_the_gpu_in_profile_sized_chunks(stand_in_pycuda, coco_dir, tmp_path):
    """PoseEstimator(crop="cuda") on a stand-in pycuda and a backend that reads the device batch: same poses as the
    OpenCV path, more boxes than the profile's max batch split into chunks."""
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    from edgepose.pipeline import PoseEstimator
    from tests.helpers.onnx_builders import conv_heatmap_model

    card = make_card()
    path = conv_heatmap_model(tmp_path / "m.onnx", card)

    class DeviceBackend(OnnxRuntimeBackend):
        """ONNX Runtime behind the TensorRT-style device entry point (profile max batch 4)."""

        max_batch = 4
        calls: list[int] = []

        def infer_device(self, batch):
            host = self.cropper.to_host()
            self.calls.append(len(host))
            assert len(host) == batch.shape[0]
            return self.infer({self.inputs[0].name: host})

    frame = next(iter(frames(coco_dir).values()))
    boxes = np.array([[40.0 + 30 * i, 30 + 10 * i, 200 + 30 * i, 380 + 5 * i] for i in range(10)])
    with (OnnxRuntimeBackend(path) as plain_backend, DeviceBackend(path) as device_backend,
          PoseEstimator(plain_backend) as cpu, PoseEstimator(device_backend, crop="cuda") as gpu):
        device_backend.cropper = gpu.gpu_cropper
        if not opencv_float_warp():  # OpenCV < 4.11 crops in fixed point: give the CPU path the exact crops
            cpu.cropper.warp = lambda frame, affine, reuse=False: reference_crop(frame, affine, card)
        want, got = cpu(frame, boxes), gpu(frame, boxes)
    assert device_backend.calls == [4, 4, 2]
    assert np.abs(got.xy - want.xy).max() < 0.5  # crops agree within one grey level (see the crop tests)
    assert got.meta["seconds"]["crop"] > 0 and got.meta["seconds"]["infer"] > 0
    with pytest.raises(InputError, match="reads device memory"):
        PoseEstimator(path, crop="cuda")
    with pytest.raises(InputError, match="crop must be"):
        PoseEstimator(path, crop="gpu")
