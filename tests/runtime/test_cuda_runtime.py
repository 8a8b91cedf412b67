"""GPU runtime paths against the slow obvious ones.

CPU (always runs): ``reference_crop`` (numpy, float64) against the OpenCV ``Cropper`` on random and real frames,
boxes partly or wholly outside the frame, rotated crops, both crop mappings, both channel orders, the BGR and
BGRA warp paths, float16 (on OpenCV < 4.11, e.g. JetPack 6's 4.8.0: its fixed-point warp, tests.helpers.crop_parity);
``argmax_reference`` against the codecs' argmax (ties -> first index); missing pycuda/TensorRT raise
MissingDependencyError.
(tests/runtime/test_cuda_emulated.py runs the kernels themselves on the CPU.)
GPU (skipped without pycuda and a CUDA device): the fused crop kernel against ``Cropper`` for 1/8/32 boxes,
float32 and float16; GPU argmax against the reference; the TensorRT backend (skipped without TensorRT).
Tolerances: see tests/helpers/crop_cases.py, and tests/helpers/crop_parity.py for OpenCV < 4.11.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.codecs.utils import argmax_2d
from edgepose.cuda.argmax import argmax_reference
from edgepose.cuda.crop import cpu_parity_levels, opencv_float_warp, reference_crop
from edgepose.errors import InputError, MissingDependencyError
from edgepose.preprocess import Cropper
from tests.helpers.crop_cases import assert_same_crops, frames, make_card, random_affine
from tests.helpers.crop_parity import assert_cpu_parity, assert_within_levels, fixed_point_crop


@pytest.mark.parametrize(("codec", "color"), [("msra", "rgb"), ("udp", "bgr")])
@pytest.mark.parametrize("name", ["noise", "coco", "tiny"])
def test_reference_crop_matches_opencv_cropper(coco_dir, codec, color, name):
    """8 random rotated boxes per frame (Cropper warps a BGRA copy here: the frame is small for 8 crops)."""
    # OpenCV >= 4.11 warps uint8 in floating point, as the kernel and the reference do: within one level. Older
    # releases (JetPack 6's 4.8.0) warp in 1/32-pixel fixed point: exactly tests.helpers.crop_parity's emulation,
    # and within cpu_parity_levels() (9) of the reference
    card = make_card(codec, color)
    frame = frames(coco_dir)[name]
    affine = random_affine(np.random.default_rng(sum(map(ord, codec + name))), frame.shape, 8, card)
    cpu, want = Cropper(card).warp(frame, affine), reference_crop(frame, affine, card)
    if opencv_float_warp():
        assert_same_crops(cpu, want, card)
    else:
        np.testing.assert_array_equal(cpu, fixed_point_crop(frame, affine, card))
        assert_within_levels(cpu, want, card, cpu_parity_levels())


def test_reference_crop_matches_opencv_on_the_bgr_path_and_in_float16():
    """A 1280x720 frame with one upright box takes Cropper's plain BGR warp; float16 output rounds the same."""
    card = make_card()
    rng = np.random.default_rng(5)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (5, 5), 0)
    affine = random_affine(rng, frame.shape, 1, card, rotate=False)
    want = reference_crop(frame, affine, card)
    assert_cpu_parity(want, Cropper(card).warp(frame, affine), card)
    half = Cropper(card, np.float16).warp(frame, affine)
    assert half.dtype == np.float16
    assert_cpu_parity(want.astype(np.float16), half, card)


def test_reference_crop_pixel_convention():
    """Scale 1, integer offset: the crop is the frame block itself; half-pixel offset: the mean of neighbours."""
    card = ModelCard(input_size=(8, 6), mean=(0, 0, 0), std=(1, 1, 1), color="bgr", codec="msra",
                     heatmap_size=(2, 2))
    frame = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    shift = Affine(np.array([[1.0, 0, -5], [0, 1.0, -3]]))  # crop (x, y) <- frame (x + 5, y + 3)
    np.testing.assert_array_equal(reference_crop(frame, shift, card)[0], frame[3:9, 5:13].transpose(2, 0, 1))
    half = Affine(np.array([[1.0, 0, -5.5], [0, 1.0, -3]]))
    want = (frame[3:9, 5:13].astype(float) + frame[3:9, 6:14]) / 2
    np.testing.assert_allclose(reference_crop(frame, half, card, quantize=False)[0], want.transpose(2, 0, 1))
    outside = Affine(np.array([[1.0, 0, 100], [0, 1.0, 100]]))
    assert not reference_crop(frame, outside, card).any()  # all border: 0 (mean 0, std 1 here)
    edge = Affine(np.array([[1.0, 0, 0.5], [0, 1.0, 0]]))  # column 0 samples x = -0.5: half border, half pixel
    np.testing.assert_allclose(reference_crop(frame, edge, card, quantize=False)[0, :, :, 0],
                               frame[:6, 0].T / 2.0)


def test_argmax_reference_matches_the_codec_argmax():
    """Ties (integer maps with many equal maxima, constant maps) resolve to the first row-major index, as
    ``argmax_2d`` (np.argmax) does; float16 maps too."""
    rng = np.random.default_rng(3)
    maps = rng.integers(0, 4, (5, 17, 32, 24)).astype(np.float32)
    maps[0, 0] = 1.0  # constant: index 0
    maps[1, 1] = 0.0
    maps[1, 1, 7, 3] = maps[1, 1, 2, 20] = 5.0  # two maxima: (2, 20) comes first in row-major order
    ref = argmax_reference(maps)
    x, y, vals = argmax_2d(maps.reshape(-1, 32, 24))
    np.testing.assert_array_equal(ref[..., 0].reshape(-1), x)
    np.testing.assert_array_equal(ref[..., 1].reshape(-1), y)
    np.testing.assert_array_equal(ref[..., 2].reshape(-1), vals)
    assert tuple(ref[0, 0]) == (0, 0, 1) and tuple(ref[1, 1]) == (20, 2, 5)
    np.testing.assert_array_equal(argmax_reference(maps.astype(np.float16)), ref)
    assert argmax_reference(np.zeros((0, 17, 4, 4), np.float32)).shape == (0, 17, 3)
    with pytest.raises(InputError, match="shape"):
        argmax_reference(maps[0])


def test_gpu_paths_without_pycuda_or_tensorrt_say_what_is_missing(monkeypatch):
    from edgepose.backends import open_backend
    from edgepose.cuda.argmax import GpuArgmax
    from edgepose.cuda.crop import CudaCropper

    for name in ("pycuda", "pycuda.driver", "tensorrt"):
        monkeypatch.setitem(sys.modules, name, None)  # "import pycuda" now raises ImportError
    with pytest.raises(MissingDependencyError, match="pycuda"):
        CudaCropper(make_card(), 8)
    with pytest.raises(MissingDependencyError, match="pycuda"):
        GpuArgmax()
    with pytest.raises(MissingDependencyError, match="tensorrt.*pycuda"):
        open_backend("pose.engine")
    with pytest.raises(InputError, match="max_batch"):
        CudaCropper(make_card(), 0)


# ---------------------------------------------------------------------------------------------------- GPU part


def _cuda_available() -> bool:
    from edgepose.cuda.session import has_cuda_device

    return has_cuda_device()


def _tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


gpu = pytest.mark.skipif(not _cuda_available(), reason="no CUDA GPU (needs pycuda and a CUDA device)")


@pytest.fixture(scope="module")
def session():
    """One CUDA session for the GPU tests (the device's primary context, one stream)."""
    from edgepose.cuda.session import CudaSession

    s = CudaSession("the GPU tests")
    yield s
    s.close()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(("codec", "color"), [("msra", "rgb"), ("udp", "bgr")])
def test_cuda_crop_matches_opencv_cropper(coco_dir, session, dtype, codec, color):
    from edgepose.cuda.crop import CudaCropper

    card = make_card(codec, color)
    with CudaCropper(card, 32, context=session.context, stream=session.stream, dtype=dtype) as cropper:
        for frame in frames(coco_dir).values():
            for n in (1, 8, 32):
                affine = random_affine(np.random.default_rng(n), frame.shape, n, card)
                batch = cropper.warp(frame, affine)
                assert batch.shape == (n, 3, 256, 192) and batch.dtype == dtype
                assert_cpu_parity(cropper.to_host(), Cropper(card, dtype).warp(frame, affine), card)
                if n == 8:  # the kernel is the exact formula, whatever OpenCV the CPU path has
                    assert_same_crops(cropper.to_host(), reference_crop(frame, affine, card).astype(dtype), card)
        with pytest.raises(InputError, match="max_batch"):
            cropper.warp(frames(coco_dir)["coco"], random_affine(np.random.default_rng(0), (480, 640), 33, card))


@pytest.mark.gpu
@gpu
def test_cuda_crop_writes_into_a_given_buffer(session):
    from edgepose.cuda.crop import CudaCropper

    card = make_card()
    frame = np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[50.0, 40, 250, 400], [300, 100, 500, 460]])
    with CudaCropper(card, 4, context=session.context, stream=session.stream) as cropper:
        target = session.alloc(2 * 3 * 256 * 192 * 4)
        batch, affine = cropper(frame, boxes, out=target)
        assert int(batch.gpudata) == int(target)
        assert_cpu_parity(cropper.to_host(), Cropper(card)(frame, boxes)[0], card)
        target.free()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gpu_argmax_matches_reference(session, dtype):
    from pycuda import gpuarray

    from edgepose.cuda.argmax import GpuArgmax

    rng = np.random.default_rng(6)
    maps = rng.integers(0, 4, (9, 17, 64, 48)).astype(dtype)
    maps[0, 0] = 1
    maps[1, 2, 10, 3] = maps[1, 2, 50, 40] = 9
    maps[2] = rng.normal(size=(17, 64, 48)).astype(dtype)
    with GpuArgmax(context=session.context, stream=session.stream) as gpu_argmax:
        np.testing.assert_array_equal(gpu_argmax(maps), argmax_reference(maps))  # uploaded from the host
        with session:
            on_device = gpuarray.to_gpu(maps)
        np.testing.assert_array_equal(gpu_argmax(on_device), argmax_reference(maps))
        assert gpu_argmax(maps[:0]).shape == (0, 17, 3)


@pytest.mark.gpu
@pytest.mark.tensorrt
@gpu
@pytest.mark.skipif(not _tensorrt_available(), reason="TensorRT not installed")
def test_tensorrt_backend(tmp_path, session):
    from edgepose.backends import open_backend
    from edgepose.backends.tensorrt import TensorRTBackend
    from edgepose.cuda.crop import CudaCropper
    from edgepose.errors import ModelError
    from tests.helpers.onnx_builders import conv_heatmap_model

    card = make_card()
    onnx_path = conv_heatmap_model(tmp_path / "m.onnx", card)
    engine = build_test_engine(onnx_path, tmp_path / "m.engine", max_batch=4)
    card.save(f"{engine}.card.json")
    batch = np.random.default_rng(7).normal(size=(9, 3, 256, 192)).astype(np.float32)
    with open_backend(onnx_path) as ort, TensorRTBackend(engine, context=session.context,
                                                         stream=session.stream) as trt_backend:
        assert [s.describe() for s in trt_backend.inputs] == ["input float32[?,3,256,192]"]
        assert ModelCard.from_json(trt_backend.metadata["edgepose.card"]) == card
        assert trt_backend.max_batch == 4
        want = ort.infer({"input": batch})["heatmaps"]
        np.testing.assert_allclose(trt_backend.infer({"input": batch})["heatmaps"], want, atol=1e-3)  # 4+4+1
        with pytest.raises(InputError, match="dtype"):
            trt_backend.infer({"input": batch.astype(np.float64)})
        frame = np.random.default_rng(8).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        boxes = np.array([[50.0, 40, 250, 400], [300, 100, 500, 460], [0, 0, 640, 480]])
        with CudaCropper(card, 4, context=session.context, stream=session.stream) as cropper:
            on_device, _ = cropper(frame, boxes)
            got = trt_backend.infer_device(on_device, len(boxes))["heatmaps"]
        host_batch, affine = Cropper(card)(frame, boxes)
        if not opencv_float_warp():  # the fixed-point CPU crop is up to 9 levels off: compare with the exact one
            host_batch = reference_crop(frame, affine, card)
        np.testing.assert_allclose(got, ort.infer({"input": host_batch})["heatmaps"], atol=1e-3)
    data = Path(engine).read_bytes()
    (tmp_path / "cut.engine").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt or truncated"):
        TensorRTBackend(tmp_path / "cut.engine", context=session.context)


def build_test_engine(onnx_path: str, engine_path, max_batch: int) -> str:
    """A plain FP32 engine with a batch profile 1..max_batch (TensorRT 10 API, no edgepose build code)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 256, 192), (max_batch, 3, 256, 192), (max_batch, 3, 256, 192))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None
    with open(engine_path, "wb") as fh:
        fh.write(bytes(serialized))
    return str(engine_path)
