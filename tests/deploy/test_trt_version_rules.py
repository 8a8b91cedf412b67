"""The TensorRT 10 / 11 rules a first Jetson run meets, against the strict builder fake (tests.helpers.fake_tensorrt)
and the trtexec flag model (tests.helpers.trtexec_rules): DLA builds, FP16 requests on TensorRT 11, timing caches.

The ONNX files here only need what the build code reads (input shape, card, graph precision), so they are tiny:
an FP32 conv model, the same with a float16 weight (an FP16 graph) and with a QuantizeLinear node (a Q/DQ graph).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy.tensorrt.build import BuildOptions, build_engine, graph_precision
from deploy.tensorrt.jetson import trtexec_command
from edgepose.card import ModelCard
from edgepose.errors import ConfigError
from tests.helpers.fake_tensorrt import fake_builder_trt, timing_cache_bytes
from tests.helpers.onnx_builders import conv_heatmap_model
from tests.helpers.trtexec_rules import TrtexecRefused, trtexec_outcome

CARD = ModelCard(input_size=(96, 128), mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec="msra",
                 heatmap_size=(24, 32), decode="dark")
DLA = BuildOptions(min_batch=1, opt_batch=1, max_batch=1, dla_core=0)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    """{"fp32": ..., "fp16": ..., "int8": ...} ONNX files with CARD embedded."""
    folder = tmp_path_factory.mktemp("graphs")
    fp32 = Path(conv_heatmap_model(folder / "fp32.onnx", CARD, input_size=(96, 128)))
    model = onnx.load(fp32)  # input -> Cast(fp16) -> Conv(fp16 weight) -> Cast(fp32) -> Sigmoid
    weight = numpy_helper.to_array(model.graph.initializer[0])
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight.astype(np.float16), "w"))
    model.graph.node[0].input[0], model.graph.node[0].output[0] = "input16", "logits16"
    model.graph.node.insert(0, helper.make_node("Cast", ["input"], ["input16"], to=TensorProto.FLOAT16))
    model.graph.node.insert(2, helper.make_node("Cast", ["logits16"], ["logits"], to=TensorProto.FLOAT))
    onnx.save(model, folder / "fp16.onnx")
    model = onnx.load(fp32)  # input -> QuantizeLinear -> DequantizeLinear -> Conv -> Sigmoid
    model.graph.initializer.extend([numpy_helper.from_array(np.float32(0.1), "s"),
                                    numpy_helper.from_array(np.int8(0), "z")])
    model.graph.node[0].input[0] = "dq"
    model.graph.node.insert(0, helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]))
    model.graph.node.insert(1, helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]))
    onnx.save(model, folder / "int8.onnx")
    out = {name: folder / f"{name}.onnx" for name in ("fp32", "fp16", "int8")}
    assert {name: graph_precision(path) for name, path in out.items()} == {"fp32": "fp32", "fp16": "fp16",
                                                                          "int8": "int8"}
    return out


def _built(trt) -> dict:
    return next(entry[1] for entry in trt.log if entry[0] == "built")


# ---------------------------------------------------------------------------------------------- 1: DLA


@pytest.mark.parametrize("graph", ["fp16", "int8"])
def test_dla_on_tensorrt_10_is_weakly_typed_in_both_paths(graphs, tmp_path, monkeypatch, graph):
    """trtexec 10.3 turns on FP16 itself for --useDLACore (unless --int8), which a strongly typed network rejects:
    the DLA line and build_engine both build a weakly typed network with the FP16 (and, for Q/DQ, INT8) flag."""
    trt = fake_builder_trt("10.3.0", dla_cores=2)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    result = build_engine(graphs[graph], tmp_path / "d.engine", DLA)
    built = _built(trt)
    assert result.engine_precision == graph and not built["strongly_typed"] and built["device"] == "DLA"
    assert {"FP16", "GPU_FALLBACK"} <= set(built["flags"]) and ("INT8" in built["flags"]) == (graph == "int8")
    with pytest.raises(TrtexecRefused, match="kFP16"):  # the rules the bundle's old DLA lines broke
        trtexec_outcome("trtexec --onnx=d.onnx --stronglyTyped --useDLACore=0 --allowGPUFallback", "10.3.0", graph)
    line = trtexec_command(graphs[graph], "d.engine", DLA, card=CARD, trt_major=10)
    outcome = trtexec_outcome(line, "10.3.0", graph)
    assert "--stronglyTyped" not in line and outcome["precision"] == graph
    assert outcome["config"] == built


def test_dla_on_tensorrt_11_needs_11_4_1(graphs, tmp_path, monkeypatch):
    """NVIDIA: DLA is absent in TensorRT 11.0-11.3 and back in 11.4.1 (JetPack 7.2.2+) as strongly typed networks."""
    for version in ("11.0.0", "11.3.0"):
        trt = fake_builder_trt(version, dla_cores=2)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        with pytest.raises(ConfigError, match=rf"TensorRT {version} has no DLA.*11\.4\.1"):
            build_engine(graphs["fp16"], tmp_path / "d.engine", DLA)
        assert trt.log == []
    with pytest.raises(ConfigError, match=r"TensorRT 11\.0\.0 has no DLA"):
        trtexec_command(graphs["fp16"], "d.engine", DLA, card=CARD, trt_major=11)
    trt = fake_builder_trt("11.4.1", dla_cores=2)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    assert build_engine(graphs["fp16"], tmp_path / "d.engine", DLA).engine_precision == "fp16"
    built = _built(trt)
    line = trtexec_command(graphs["fp16"], "d.engine", DLA, card=CARD, tensorrt="11.4.1")
    assert trtexec_outcome(line, "11.4.1", "fp16")["config"] == built == {
        "strongly_typed": True, "flags": ["GPU_FALLBACK"], "device": "DLA"}


# ---------------------------------------------------------------------------------------------- 2: FP16 on 11


def test_fp16_request_on_tensorrt_11_agrees_in_both_paths(graphs, tmp_path, monkeypatch):
    """TensorRT 11's trtexec has no --fp16 and --stronglyTyped is a no-op: an FP16 request on an FP32 graph would be
    a silent FP32 engine. build_engine refuses it; so does the trtexec line, with the same fix."""
    monkeypatch.setitem(sys.modules, "tensorrt", fake_builder_trt("11.4.1"))
    fp16 = BuildOptions(precision="fp16")
    with pytest.raises(ConfigError, match="--mode fp16") as built_error:
        build_engine(graphs["fp32"], tmp_path / "e.engine", fp16)
    with pytest.raises(ConfigError, match="--mode fp16") as line_error:
        trtexec_command(graphs["fp32"], "e.engine", fp16, card=CARD, trt_major=11)
    assert str(line_error.value) == str(built_error.value)
    with pytest.raises(ConfigError, match="cannot tell"):  # no file to read the precision from
        trtexec_command("missing.onnx", "e.engine", fp16, card=CARD, trt_major=11)
    line = trtexec_command(graphs["fp16"], "e.engine", fp16, card=CARD, trt_major=11)
    assert "--fp16" not in line and trtexec_outcome(line, "11.0.0", "fp16")["precision"] == "fp16"
    assert build_engine(graphs["fp16"], tmp_path / "e.engine", fp16).engine_precision == "fp16"


# ---------------------------------------------------------------------------------------------- 3: timing cache


def test_unreadable_or_stale_timing_cache_is_replaced_with_a_warning(graphs, tmp_path, monkeypatch):
    """createTimingCache returns None for a truncated blob (set_timing_cache(None) would be a TypeError) and
    set_timing_cache refuses another version's cache: both warn, build with a fresh cache and save it."""
    cache = tmp_path / "timing.cache"
    for blob, why in ((timing_cache_bytes("10.3.0", b"old")[:12], "unreadable"),
                      (timing_cache_bytes("10.2.0", b"old"), "does not match")):
        trt = fake_builder_trt("10.3.0")
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        cache.write_bytes(blob)
        with pytest.warns(UserWarning, match=why):
            build_engine(graphs["fp32"], tmp_path / "e.engine", BuildOptions(timing_cache=str(cache)))
        assert ("timing_cache", b"") in trt.log and cache.read_bytes() == timing_cache_bytes("10.3.0", b"+tuned")


# ---------------------------------------------------------------------------------------------- 6: the stand-in


def test_fake_builder_is_as_strict_as_tensorrt():
    """The builder stand-in follows TensorRT 10/11 where the tests rely on it (tests.helpers.fake_tensorrt)."""
    trt11 = fake_builder_trt("11.0.0", dla_cores=2)
    flags = trt11.NetworkDefinitionCreationFlag
    assert not hasattr(flags, "EXPLICIT_BATCH") and (int(flags.STRONGLY_TYPED), int(flags.PREFER_JIT_PYTHON_PLUGINS)) \
        == (0, 1)
    assert not hasattr(trt11.BuilderFlag, "FP16") and trt11.Builder(None).num_DLA_cores == 0
    assert trt11.Builder(None).create_network(1 << 1) is not None  # a valid bit: ... PREFER_JIT_PYTHON_PLUGINS
    assert trt11.log[-1] == ("plugin_preference", ["PREFER_JIT_PYTHON_PLUGINS"])
    trt = fake_builder_trt("10.3.0")
    builder = trt.Builder(None)
    config = builder.create_builder_config()
    assert config.create_timing_cache(b"not a cache") is None
    with pytest.raises(TypeError):
        config.set_timing_cache(None, False)
    assert not config.set_timing_cache(config.create_timing_cache(timing_cache_bytes("10.2.0", b"x")), False)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None  # issues 4228 / 4253
