"""TorchBackend and deploy.export_torch: TorchScript and torch.export files of lite_hrnet_tiny against the ONNX
export under ONNX Runtime (outputs and PoseEstimator keypoints on a real COCO frame), the card round trip, bad files,
and that the runtime modules import without torch / TensorRT / pycuda."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgepose.backends import open_backend
from edgepose.card import CARD_KEY, ModelCard
from edgepose.errors import CardError, InputError, ModelError

CARD = ModelCard(input_size=(96, 128), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(24, 32), decode="dark")
# Heatmaps are O(1) (std ~1, peaks ~10) after ``lively``; torch and ONNX Runtime run the same float32 graph with
# different kernels and op fusion: measured max abs difference 1.9e-5. Keypoints (DARK decode, 14 COCO persons):
# measured max difference 0.018 px.
HEATMAP_ATOL = 1e-4
KEYPOINT_ATOL_PX = 0.05
# Positive heatmaps around the peaks, as a trained model's: DARK takes the log of the blurred map there, and where
# a random net's map goes negative MMPose's clip to 1e-10 turns a 2e-5 backend difference into a log difference of
# ~10 (measured: one keypoint in 85 moved 2.2 px).
HEAD_BIAS = 8.0


def lively(model, seed: int = 0):
    """Random weights with real magnitudes and positive maps around the peaks (compress.models.random_init)."""
    from compress.models.random_init import realistic_random_weights

    return realistic_random_weights(model, seed, head_bias=HEAD_BIAS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """One lively lite_hrnet_tiny as ONNX, TorchScript (exported from a checkpoint) and torch.export .pt2."""
    import torch

    from compress.checkpoint import save_checkpoint
    from compress.models import build_model
    from deploy.export import export_model
    from deploy.export_torch import export_torch

    out = tmp_path_factory.mktemp("torch_backend")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's 2 cores are shared with other work
    try:
        torch.manual_seed(0)
        model = lively(build_model("lite_hrnet_tiny", num_keypoints=17, input_size=CARD.input_size))
        save_checkpoint(out / "model.pth", model, CARD)
        paths = {"onnx": out / "model.onnx", "ts": out / "model.ts", "pt2": out / "model.pt2"}
        export_model(model, CARD, paths["onnx"])
        export_torch(out / "model.pth", None, paths["ts"])  # the checkpoint path: model and card rebuilt from it
        export_torch(model, CARD, paths["pt2"], kind="export")
        return paths
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["ts", "pt2"])
def test_outputs_match_onnxruntime(exported, kind):
    batch = np.random.default_rng(1).normal(size=(3, 3, 128, 96)).astype(np.float32)
    with open_backend(exported[kind]) as torch_backend, open_backend(exported["onnx"], threads=1) as ort:
        assert [s.describe() for s in torch_backend.inputs] == ["input float32[?,3,128,96]"]
        assert [s.describe() for s in torch_backend.outputs] == ["heatmaps float32[?,17,32,24]"]
        got, want = torch_backend.infer({"input": batch})["heatmaps"], ort.infer({"input": batch})["heatmaps"]
        assert want.std() > 0.3  # the comparison means something
        np.testing.assert_allclose(got, want, rtol=0, atol=HEATMAP_ATOL)
        assert torch_backend.infer({"input": batch[:0]})["heatmaps"].shape == (0, 17, 32, 24)


def test_pt2_batch_beyond_export_range_runs_in_chunks(exported):
    """The .pt2 accepts N in [1, 64]; 65 crops run as 64 + 1 and give the same numbers."""
    batch = np.random.default_rng(2).normal(size=(65, 3, 128, 96)).astype(np.float32)
    with open_backend(exported["pt2"]) as backend, open_backend(exported["onnx"], threads=1) as ort:
        assert backend.max_batch == 64
        np.testing.assert_allclose(backend.infer({"input": batch})["heatmaps"],
                                   ort.infer({"input": batch})["heatmaps"], rtol=0, atol=HEATMAP_ATOL)


def test_pose_estimator_matches_onnx_on_coco_frames(exported, coco_dir):
    """The TorchScript model through the whole pipeline (card from the file) on the 4 real COCO frames, their 14
    ground-truth boxes: the same keypoints and scores as the ONNX model."""
    from edgepose.io import read_image
    from edgepose.pipeline import PoseEstimator

    gt = json.loads((coco_dir / "test_coco.json").read_text())
    with PoseEstimator(exported["ts"]) as ts, PoseEstimator(exported["onnx"], backend_options={"threads": 1}) as ort:
        assert ts.card == CARD
        for image in gt["images"]:
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in
                              (a["bbox"] for a in gt["annotations"] if a["image_id"] == image["id"])])
            frame = read_image(coco_dir / image["file_name"])
            got, want = ts(frame, boxes=boxes), ort(frame, boxes=boxes)
            assert len(got) == len(boxes) >= 1
            np.testing.assert_allclose(got.xy, want.xy, rtol=0, atol=KEYPOINT_ATOL_PX, err_msg=image["file_name"])
            np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=HEATMAP_ATOL)


def test_card_round_trips_and_can_be_supplied(exported, tmp_path):
    from edgepose.backends.torch_backend import TorchBackend
    from edgepose.pipeline import PoseEstimator

    for kind in ("ts", "pt2"):
        with TorchBackend(exported[kind]) as backend:
            assert ModelCard.from_json(backend.metadata[CARD_KEY]) == CARD
    assert ModelCard.from_file(f"{exported['pt2']}.card.json") == CARD
    bare = tmp_path / "bare.pt2"
    bare.write_bytes(exported["pt2"].read_bytes())  # no sidecar beside it
    with pytest.raises(ModelError, match="carries no edgepose card"):
        TorchBackend(bare)
    other = ModelCard(**{**CARD.to_dict(), "name": "supplied"})
    with PoseEstimator(bare, backend_options={"card": other}) as estimator:  # card= reaches TorchBackend
        assert estimator.card == other and ModelCard.from_json(estimator.backend.metadata[CARD_KEY]) == other
    (tmp_path / "bad.pt2.card.json").write_text("{not json")
    (tmp_path / "bad.pt2").write_bytes(exported["pt2"].read_bytes())
    with pytest.raises(CardError, match="bad.pt2.card.json"):
        TorchBackend(tmp_path / "bad.pt2")


def test_bad_files_feeds_and_options(exported, tmp_path):
    from edgepose.backends.torch_backend import TorchBackend

    data = exported["ts"].read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt, truncated"):
        open_backend(tmp_path / "cut.ts")
    data = exported["pt2"].read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt, truncated"):
        TorchBackend(tmp_path / "cut.pt2", card=CARD)  # a card, so that the load itself is what fails
    with pytest.raises(ModelError, match="not found"):
        open_backend(tmp_path / "missing.torchscript")
    with pytest.raises(ModelError, match="unknown torch option"):
        open_backend(exported["ts"], threads=1)
    with pytest.raises(ModelError, match="CUDA only"):
        TorchBackend(exported["ts"], half=True)
    with pytest.raises(ModelError, match="device must be"):
        TorchBackend(exported["ts"], device="tpu")
    with TorchBackend(exported["ts"]) as backend:
        with pytest.raises(InputError, match="does not cast"):
            backend.infer({"input": np.zeros((1, 3, 128, 96), np.float64)})
        with pytest.raises(InputError, match="shape"):
            backend.infer({"input": np.zeros((1, 3, 96, 128), np.float32)})
        with pytest.raises(ModelError, match="device='cuda'"):
            backend.infer_device(np.zeros((1, 3, 128, 96), np.float32))
    backend.close()
    with pytest.raises(ModelError, match="closed"):
        backend.infer({"input": np.zeros((1, 3, 128, 96), np.float32)})


def test_export_torch_refuses_a_suffix_kind_mismatch(tmp_path):
    from compress.models import build_model
    from deploy.export_torch import export_torch

    model = build_model("lite_hrnet_tiny", num_keypoints=17, input_size=CARD.input_size)
    with pytest.raises(ModelError, match="does not match"):
        export_torch(model, CARD, tmp_path / "m.pt2", kind="torchscript")
    with pytest.raises(ModelError, match="writes"):
        export_torch(model, CARD, tmp_path / "m.pt")
    with pytest.raises(ModelError, match="needs its ModelCard"):
        export_torch(model, None, tmp_path / "m.ts")
    assert not list(tmp_path.iterdir())


BLOCKED = textwrap.dedent(
    """
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {'torch', 'tensorrt', 'pycuda', 'cupy', 'compress', 'deploy'}:
                raise ImportError(f'{name} is blocked for this test')
    sys.meta_path.insert(0, Block())
    """
)


def test_gpu_and_torch_modules_import_without_torch_tensorrt_pycuda(exported):
    """Importing the new runtime modules pulls in none of torch/TensorRT/pycuda; using them says what is missing."""
    code = BLOCKED + textwrap.dedent(
        f"""
        import edgepose.backends.torch_backend, edgepose.backends.tensorrt, edgepose.cuda.crop
        import edgepose.cuda.argmax, edgepose.cuda.session
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in {{'torch', 'tensorrt', 'pycuda', 'cupy'}})
        print('heavy:', heavy)
        from edgepose.backends import open_backend
        from edgepose.card import ModelCard
        from edgepose.errors import MissingDependencyError
        from edgepose.cuda.crop import CudaCropper
        from edgepose.cuda.argmax import GpuArgmax
        card = ModelCard.from_json({CARD.to_json()!r})
        for make in (lambda: open_backend({str(exported['ts'])!r}), lambda: open_backend('x.engine'),
                     lambda: CudaCropper(card, 4), lambda: GpuArgmax()):
            try:
                make()
            except MissingDependencyError as exc:
                print('missing:', exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith("missing:")]
    assert len(lines) == 4, out.stdout
    assert "'torch'" in lines[0] and "tensorrt" in lines[1] and "pycuda" in lines[1]
    assert all("pycuda" in line for line in lines[2:])


def _cuda_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


@pytest.mark.gpu
@pytest.mark.skipif(_cuda_torch() is None, reason="no CUDA GPU")
def test_infer_device_on_cuda_matches_host_infer(exported):
    import torch

    from edgepose.backends.torch_backend import TorchBackend

    batch = np.random.default_rng(3).normal(size=(4, 3, 128, 96)).astype(np.float32)
    with TorchBackend(exported["ts"], device="cuda") as backend, open_backend(exported["onnx"]) as ort:
        want = ort.infer({"input": batch})["heatmaps"]
        np.testing.assert_allclose(backend.infer({"input": batch})["heatmaps"], want, rtol=0, atol=1e-3)
        on_gpu = torch.from_numpy(batch).cuda()
        np.testing.assert_allclose(backend.infer_device(on_gpu)["heatmaps"], want, rtol=0, atol=1e-3)
        with pytest.raises(InputError, match="dtype"):
            backend.infer_device(on_gpu.half())
    with TorchBackend(exported["pt2"], device="cuda", half=True) as half:
        assert half.inputs[0].dtype == np.float16
        got = half.infer_device(torch.from_numpy(batch).cuda().half())["heatmaps"].astype(np.float32)
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max()  # FP16: a few 1e-3 relative
