"""A fixed batch of 1 made dynamic at load time: same outputs as one call per person, the loop kept (with the reason)
where the graph bakes the batch in, a checked cache, and a runtime that still imports without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.backends import batch_axis, batch_cache
from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions
from edgepose.card import ModelCard
from edgepose.pipeline import PoseEstimator
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="dark")
FRAME = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
BOXES = np.array([[10, 20, 120, 300], [200, 40, 330, 350], [300, 10, 470, 200], [50, 50, 250, 340]], float)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Each test its own empty cache folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDGEPOSE_CACHE_DIR", str(folder))
    return folder / batch_cache.SUBFOLDER


def batch(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 256, 192)).astype(np.float32)


def one_by_one(path, x: np.ndarray) -> np.ndarray:
    """The reference: the original model run once per sample."""
    with OnnxRuntimeBackend(path, OrtOptions(batch_rewrite=False)) as looped:
        assert looped.batch_mode == "loop"
        return np.concatenate([looped.infer({"input": x[i:i + 1]})["heatmaps"] for i in range(len(x))])


def save(nodes, inits, path, out_shape, extra_outputs=()) -> str:
    """A batch-1 graph: input (1,3,256,192) -> nodes -> 'heatmaps' of ``out_shape``, with CARD embedded."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, out_shape), *extra_outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "edgepose.card", CARD.to_json()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def conv_nodes(seed: int = 0) -> tuple[list, dict]:
    w = np.random.default_rng(seed).normal(0, 0.05, (17, 3, 4, 4)).astype(np.float32)
    return [helper.make_node("Conv", ["input", "w"], ["logits"], kernel_shape=[4, 4], strides=[4, 4])], {"w": w}


def softmax_model(path, shape_from_concat: bool = False) -> str:
    """Conv -> Reshape to [1, 17, 3072] -> Softmax -> Reshape to [1, 17, 64, 48]: the batch of 1 is baked into the
    Reshape constants (or, with ``shape_from_concat``, into a shape Concat computes from constants)."""
    nodes, inits = conv_nodes()
    if shape_from_concat:
        inits.update(one=np.array([1], np.int64), rest=np.array([17, 3072], np.int64), hw=np.array([17, 64, 48]))
        nodes += [helper.make_node("Concat", ["one", "rest"], ["flat"], axis=0),
                  helper.make_node("Concat", ["one", "hw"], ["back"], axis=0)]
    else:
        inits.update(flat=np.array([1, 17, 3072], np.int64), back=np.array([1, 17, 64, 48], np.int64))
    nodes += [helper.make_node("Reshape", ["logits", "flat"], ["rows"], name="rows"),
              helper.make_node("Softmax", ["rows"], ["soft"], axis=-1),
              helper.make_node("Reshape", ["soft", "back"], ["heatmaps"])]
    return save(nodes, inits, path, [1, 17, 64, 48])


def test_rewrite_gives_the_per_person_outputs(tmp_path, cache):
    path = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    x = batch(5)
    with OnnxRuntimeBackend(path, OrtOptions(threads=1)) as backend:
        assert backend.batch_mode == "rewritten" and backend.fixed_batch is None
        assert backend.inputs[0].shape == (None, 3, 256, 192) and backend.outputs[0].shape == (None, 17, 64, 48)
        assert "probe batch of 3" in backend.batch_note and "edgepose.card" in backend.metadata
        got = backend.infer({"input": x})["heatmaps"]
        assert backend.infer({"input": x[:0]})["heatmaps"].shape == (0, 17, 64, 48)
    np.testing.assert_array_equal(got, one_by_one(path, x))  # same kernels here: exactly equal
    assert len(list(cache.glob("*.onnx"))) == 1 and len(list(cache.glob("*.json"))) == 1


def test_resize_to_constant_sizes_becomes_scales(tmp_path):
    """tf2onnx-style upsampling (Resize to sizes [1, C, H, W], as in the packaged BlazePose) is rewritten to scales."""
    nodes, inits = conv_nodes()
    inits.update(roi=np.zeros(0, np.float32), scales=np.zeros(0, np.float32), sizes=np.array([1, 17, 64, 48]))
    nodes = [helper.make_node("Conv", ["input", "w"], ["logits"], kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("Resize", ["logits", "roi", "scales", "sizes"], ["heatmaps"], mode="linear")]
    inits["w"] = np.random.default_rng(2).normal(0, 0.05, (17, 3, 8, 8)).astype(np.float32)
    path = save(nodes, inits, tmp_path / "resize.onnx", [1, 17, 64, 48])
    x = batch(4, seed=3)
    with PoseEstimator(path) as est:
        assert est.backend.batch_mode == "rewritten"
        got = est.backend.infer({"input": x})["heatmaps"]
    np.testing.assert_array_equal(got, one_by_one(path, x))


@pytest.mark.parametrize(("shape_from_concat", "reason"),
                         [(False, "Reshape node 'rows' has the constant shape [1, 17, 3072]: it fixes the batch at 1"),
                          (True, "Reshape node 'rows' turns the batch axis into a fixed size")],
                         ids=["constant", "inferred"])
def test_reshape_to_batch_one_keeps_the_loop_and_says_why(tmp_path, monkeypatch, shape_from_concat, reason):
    path = softmax_model(tmp_path / "reshape.onnx", shape_from_concat)
    with PoseEstimator(path) as est:
        poses = est(FRAME, BOXES)
    assert poses.meta["batch_mode"] == "loop" and len(poses) == 4
    assert poses.meta["batch_note"].startswith("per-person loop: " + reason), poses.meta["batch_note"]
    monkeypatch.setattr(batch_axis, "make_dynamic", None)  # the finding is cached: no second analysis
    with OnnxRuntimeBackend(path) as again:
        assert again.batch_mode == "loop" and again.batch_note.endswith("(cached finding)")
        assert again.batch_note.startswith("per-person loop: " + reason)
    with PoseEstimator(path, backend_options={"batch_rewrite": False}) as est:
        plain = est(FRAME, BOXES)
    np.testing.assert_array_equal(poses.xy, plain.xy)
    assert plain.meta["batch_note"] == "per-person loop: batch rewrite turned off (batch_rewrite=False)"


def test_graph_that_passes_the_checks_but_mixes_samples_fails_the_probe(tmp_path):
    """heatmaps = logits + logits[0:1] by Gather: shapes say 'batch' throughout, only running it shows sample 0
    leaking into the others."""
    nodes, inits = conv_nodes()
    inits["first"] = np.array([0], np.int64)
    nodes += [helper.make_node("Gather", ["logits", "first"], ["zero"], axis=0),
              helper.make_node("Add", ["logits", "zero"], ["heatmaps"])]
    path = save(nodes, inits, tmp_path / "mix.onnx", [1, 17, 64, 48])
    with OnnxRuntimeBackend(path) as backend:
        assert backend.batch_mode == "loop"
        assert "fails the probe" in backend.batch_note and "'heatmaps'" in backend.batch_note


def test_second_load_is_a_cache_hit_without_rewriting(tmp_path, monkeypatch):
    path = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    with OnnxRuntimeBackend(path) as first:
        assert first.batch_mode == "rewritten" and "not cached yet" in first.batch_note

    def no_rewrite(model):
        raise AssertionError("a cache hit must not rewrite")

    monkeypatch.setattr(batch_axis, "make_dynamic", no_rewrite)
    with PoseEstimator(path) as est:
        assert est.backend.batch_mode == "rewritten" and "from the cache" in est.backend.batch_note
        assert "from the cache" in est(FRAME, BOXES).meta["batch_note"]
        x = batch(3)
        np.testing.assert_array_equal(est.backend.infer({"input": x})["heatmaps"], one_by_one(path, x))


def tampered_model(tmp_path) -> bytes:
    """A valid rewritten model of other weights: what an attacker (or a stale copy) could put in the cache."""
    other = conv_heatmap_model(tmp_path / "other.onnx", CARD, fixed_batch=1, seed=7)
    return batch_axis.make_dynamic(onnx.load(other)).SerializeToString()


@pytest.mark.parametrize("damage", ["model swapped", "model truncated", "record garbled", "record says other"])
def test_tampered_cache_entry_is_detected_and_redone(tmp_path, cache, damage):
    path = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    with OnnxRuntimeBackend(path):
        pass
    (model_file,), (record_file,) = cache.glob("*.onnx"), cache.glob("*.json")
    good = model_file.read_bytes()
    if damage == "model swapped":
        model_file.write_bytes(tampered_model(tmp_path))
    elif damage == "model truncated":
        model_file.write_bytes(good[:100])
    elif damage == "record garbled":
        record_file.write_text("{not json")
    else:
        record = json.loads(record_file.read_text())
        record_file.write_text(json.dumps({**record, "source_sha256": "0" * 64}))
    x = batch(3)
    with OnnxRuntimeBackend(path) as backend:
        assert backend.batch_mode == "rewritten" and "rewritten and checked" in backend.batch_note
        assert "redone" in backend.batch_note, backend.batch_note
        np.testing.assert_array_equal(backend.infer({"input": x})["heatmaps"], one_by_one(path, x))
    assert model_file.read_bytes() == good  # the entry is written again, and trusted again
    with OnnxRuntimeBackend(path) as again:
        assert "from the cache" in again.batch_note


def test_unwritable_cache_still_rewrites(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    monkeypatch.setenv("EDGEPOSE_CACHE_DIR", str(tmp_path / "file"))
    path = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    with OnnxRuntimeBackend(path) as backend:
        assert backend.batch_mode == "rewritten" and "not cached: cannot write" in backend.batch_note


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE_DIR", str(tmp_path / "a"))
    assert batch_cache.cache_root() == str(tmp_path / "a")
    monkeypatch.delenv("EDGEPOSE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert batch_cache.cache_root() == str(tmp_path / "xdg" / "edgepose")
    entry = batch_cache.CacheEntry.of(b"model", 1)
    name = f"{batch_cache.sha256(b'model')}.v1.onnx"
    assert entry.model_path == str(tmp_path / "xdg" / "edgepose" / "batch_axis" / name)


def test_batch_axis_rejects_models_without_a_batch_of_one(tmp_path):
    dynamic = onnx.load(conv_heatmap_model(tmp_path / "dyn.onnx", None))
    with pytest.raises(batch_axis.NotBatchable, match="no fixed leading batch of 1"):
        batch_axis.make_dynamic(dynamic)
    nodes, inits = conv_nodes()
    inits.update(starts=np.array([0]), ends=np.array([1]), axes=np.array([0]))
    nodes.append(helper.make_node("Slice", ["logits", "starts", "ends", "axes"], ["heatmaps"]))
    sliced = onnx.load(save(nodes, inits, tmp_path / "slice.onnx", [1, 17, 64, 48]))
    with pytest.raises(batch_axis.NotBatchable, match="Slice node .* slices axis 0 up to 1"):
        batch_axis.make_dynamic(sliced)


BLOCK = textwrap.dedent(
    """
    import sys, importlib.abc
    BLOCKED = set(sys.argv[2].split(','))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ImportError(f'{name} is blocked')
    sys.meta_path.insert(0, Block())
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    backend = OnnxRuntimeBackend(sys.argv[1])
    heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'compress', 'deploy'})
    print(backend.batch_mode, backend.batch_note, heavy, sep=chr(10))
    """
)


@pytest.mark.parametrize("blocked", ["torch,torchvision,compress,deploy", "torch,torchvision,compress,deploy,onnx"])
def test_runtime_rewrites_without_torch_and_loops_without_onnx(tmp_path, blocked):
    path = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    out = subprocess.run([sys.executable, "-c", BLOCK, path, blocked], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    mode, note, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]"
    if blocked.endswith("onnx"):
        assert mode == "loop" and "batch rewrite needs the onnx package" in note
    else:
        assert mode == "rewritten", note
