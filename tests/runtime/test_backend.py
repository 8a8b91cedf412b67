"""ONNX Runtime backend: specs, validation before running, fixed-batch looping, providers, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepose.backends import open_backend
from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions
from edgepose.errors import InputError, ModelError
from tests.helpers.onnx_builders import conv_heatmap_model


@pytest.fixture()
def dynamic_model(tmp_path):
    return conv_heatmap_model(tmp_path / "dyn.onnx", card=None)


def test_specs_and_infer(dynamic_model):
    with open_backend(dynamic_model, threads=1) as backend:
        assert [s.describe() for s in backend.inputs] == ["input float32[?,3,256,192]"]
        assert backend.outputs[0].shape == (None, 17, 64, 48) and backend.batch_mode == "dynamic"
        assert backend.providers[-1] == "CPUExecutionProvider"
        out = backend.infer({"input": np.zeros((3, 3, 256, 192), np.float32)})
        assert out["heatmaps"].shape == (3, 17, 64, 48)


@pytest.mark.parametrize(
    ("feeds", "message"),
    [({"x": np.zeros((1, 3, 256, 192), np.float32)}, "missing \\['input'\\]"),
     ({"input": np.zeros((1, 3, 256, 192), np.float64)}, "does not cast"),
     ({"input": np.zeros((1, 3, 128, 192), np.float32)}, "shape \\[1, 3, 128, 192\\]"),
     ({"input": np.zeros((3, 256, 192), np.float32)}, "shape"),
     ({"input": [[0.0]]}, "numpy array")],
)
def test_feeds_are_validated(dynamic_model, feeds, message):
    with OnnxRuntimeBackend(dynamic_model) as backend, pytest.raises(InputError, match=message):
        backend.infer(feeds)


@pytest.mark.parametrize("fixed", [1, 2])
def test_fixed_batch_is_looped_and_matches_dynamic(tmp_path, dynamic_model, fixed):
    fixed_model = conv_heatmap_model(tmp_path / "fixed.onnx", card=None, fixed_batch=fixed)
    batch = np.random.default_rng(0).normal(size=(5, 3, 256, 192)).astype(np.float32)
    with OnnxRuntimeBackend(fixed_model, OrtOptions(batch_rewrite=False)) as looped, \
            OnnxRuntimeBackend(dynamic_model) as dyn:
        assert looped.batch_mode == "loop" and looped.fixed_batch == fixed
        np.testing.assert_allclose(looped.infer({"input": batch})["heatmaps"], dyn.infer({"input": batch})["heatmaps"],
                                   atol=1e-6)
        assert looped.infer({"input": batch[:0]})["heatmaps"].shape == (0, 17, 64, 48)


def test_bad_files_and_options(tmp_path, dynamic_model):
    with pytest.raises(ModelError, match="not found"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")
    data = Path(dynamic_model).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="corrupt, truncated"):
        OnnxRuntimeBackend(tmp_path / "cut.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError):
        OnnxRuntimeBackend(tmp_path / "empty.onnx")
    with pytest.raises(ModelError, match="not in this onnxruntime build"):
        OnnxRuntimeBackend(dynamic_model, OrtOptions(providers=("NoSuchExecutionProvider",)))
    with pytest.raises(ModelError, match="optimization"):
        OnnxRuntimeBackend(dynamic_model, OrtOptions(optimization="max"))
    with pytest.raises(ModelError, match="no backend for '.pt'"):
        open_backend(tmp_path / "model.pt")


def test_closed_backend_refuses(dynamic_model):
    backend = OnnxRuntimeBackend(dynamic_model)
    backend.close()
    with pytest.raises(ModelError, match="closed"):
        backend.infer({"input": np.zeros((1, 3, 256, 192), np.float32)})


def test_one_format_table_drives_backends_bench_and_export():
    """Backends, the benchmark and `edgepose export` read the same suffix table (edgepose.backends.formats)."""
    from edgepose.backends import BACKENDS, FACTORIES, FORMATS, format_of
    from edgepose.backends.formats import suffixes
    from edgepose.bench.measure import Config

    assert set(BACKENDS) == set(FORMATS)
    for suffix, fmt in FORMATS.items():
        assert BACKENDS[suffix] is FACTORIES[fmt.backend]
        assert Config(f"m{suffix.upper()}", 1).backend == fmt.backend  # the suffix is case-insensitive
        assert format_of(f"/x/model{suffix}") is fmt
    assert Config("m.xyz", 1).backend == "unknown"
    assert suffixes(backend="torch") == (".ts", ".torchscript", ".pt2")
    assert [s for s, f in FORMATS.items() if f.threads] == [".onnx"]
    assert sorted(s for s, f in FORMATS.items() if not f.export) == [".engine", ".plan"]
    with pytest.raises(ModelError, match=r"no backend for '.xyz' files; supported suffixes: \['.engine'"):
        format_of("model.xyz")
