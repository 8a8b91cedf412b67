"""TensorRT deployment without TensorRT: the engine cache (hit, miss, invalidation, damaged entries) with a fake
builder, trtexec lines per TensorRT version, the version-difference functions, ``build_engine`` driven through a
fake ``tensorrt`` module (the documented API, recorded), Jetson power state off-Jetson, and a Jetson bundle that
checks itself. The last test needs real TensorRT and a GPU and is skipped here."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from deploy.tensorrt import build as tb
from deploy.tensorrt.build import BuildOptions, build_engine, plan_precision
from deploy.tensorrt.bundle import check_bundle, make_jetson_bundle
from deploy.tensorrt.engine_cache import EngineCache, GpuInfo, parse_nvidia_smi
from deploy.tensorrt.jetson import jetpack_from_l4t, jetson_power_state, parse_tegra_release, trtexec_command
from edgepose.card import ModelCard
from edgepose.errors import ConfigError, MissingDependencyError, ModelError
from tests.helpers.fake_tensorrt import fake_builder_trt as _fake_trt
from tests.helpers.fake_tensorrt import timing_cache_bytes
from tests.helpers.trtexec_rules import trtexec_outcome

CARD = ModelCard(input_size=(96, 128), mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec="msra",
                 heatmap_size=(24, 32), decode="dark")
pytestmark = pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")  # onnxconverter-common's FP16
ORIN = GpuInfo("Orin", "8.7", "540.4.0")
H200 = GpuInfo("NVIDIA H200", "9.0", "570.1")


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory) -> Path:
    """lite_hrnet_tiny 96x128 exported with CARD."""
    import torch

    from compress.models import build_model
    from deploy.export import export_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128))
        return Path(export_model(model, CARD, tmp_path_factory.mktemp("trt") / "pose.onnx"))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bundle(fp32_onnx, tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 128, 96)).astype(np.float32) for _ in range(4)]
    out = tmp_path_factory.mktemp("bundle") / "BUNDLE"
    make_jetson_bundle(fp32_onnx, out, calibration=calib)
    return out


class FakeBuilder:
    """An engine builder that writes bytes and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, onnx_path, engine_path, options):
        self.calls += 1
        Path(engine_path).write_bytes(b"ENGINE" * 100 + str(self.calls).encode())


# ---------------------------------------------------------------------------------------------- engine cache


def test_engine_cache_hit_miss_and_invalidation(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx v1")
    cache, build = EngineCache(tmp_path / "cache"), FakeBuilder()
    opts = BuildOptions(precision="fp16")

    def get(**kw):
        kw = {"gpu": ORIN, "builder": build, "tensorrt_version": "10.3.0", **kw}
        return cache.get_or_build(onnx, kw.pop("options", opts), **kw)

    first = get()
    assert (first.hit, first.reason, build.calls) == (False, "new", 1)
    meta = json.loads((Path(first.engine_path).parent / "meta.json").read_text())
    assert (meta["tensorrt"], meta["gpu_name"], meta["compute_capability"]) == ("10.3.0", "Orin", "8.7")
    assert meta["options"] == opts.key() and meta["engine_size"] == Path(first.engine_path).stat().st_size
    second = get()
    assert second.hit and build.calls == 1 and second.engine_path == first.engine_path
    # the timing cache file only speeds builds up: not part of the key
    assert get(options=dataclasses.replace(opts, timing_cache=str(tmp_path / "t.cache"))).hit

    upgraded = get(tensorrt_version="10.7.0")
    assert not upgraded.hit and "tensorrt differs" in upgraded.reason and build.calls == 2
    assert get(tensorrt_version="10.7.0").hit and build.calls == 2
    with pytest.raises(ModelError, match="tensorrt differs.*10.7.0"):
        get(rebuild=False)  # back on 10.3.0: the entry now holds a 10.7.0 engine
    moved = get(tensorrt_version="10.7.0", gpu=H200)
    assert "gpu_name differs" in moved.reason and build.calls == 3
    same_name = get(tensorrt_version="10.7.0", gpu=dataclasses.replace(H200, compute_capability="8.9"))
    assert "compute_capability differs" in same_name.reason and build.calls == 4
    assert get(tensorrt_version="10.7.0", gpu=dataclasses.replace(H200, compute_capability="8.9",
                                                                  driver="999")).hit  # driver: not in the key

    other = get(options=BuildOptions(precision="fp16", max_batch=8), tensorrt_version="10.7.0")
    assert not other.hit and other.reason == "new" and other.engine_path != first.engine_path
    onnx.write_bytes(b"onnx v2")
    changed = get()
    assert not changed.hit and changed.reason == "new" and build.calls == 6


def test_engine_cache_rebuilds_damaged_entries(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    cache, build = EngineCache(tmp_path / "cache"), FakeBuilder()
    kw = {"gpu": ORIN, "builder": build, "tensorrt_version": "10.3.0"}
    engine = Path(cache.get_or_build(onnx, BuildOptions(), **kw).engine_path)
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ModelError, match="truncated"):
        cache.get_or_build(onnx, BuildOptions(), rebuild=False, **kw)
    again = cache.get_or_build(onnx, BuildOptions(), **kw)
    assert not again.hit and "truncated" in again.reason and build.calls == 2
    engine.write_bytes(engine.read_bytes()[:-1] + b"X")  # same size, other bytes
    assert "modified" in cache.get_or_build(onnx, BuildOptions(), **kw).reason
    engine.unlink()
    assert "missing" in cache.get_or_build(onnx, BuildOptions(), **kw).reason
    (engine.parent / "meta.json").write_text("{not json")
    assert "meta.json is unreadable" in cache.get_or_build(onnx, BuildOptions(), **kw).reason and build.calls == 5
    assert cache.get_or_build(onnx, BuildOptions(), **kw).hit

    def broken(onnx_path, engine_path, options):
        raise ModelError("build failed")

    (engine.parent / "meta.json").unlink()
    with pytest.raises(ModelError, match="build failed"):
        cache.get_or_build(onnx, BuildOptions(), gpu=ORIN, builder=broken, tensorrt_version="10.3.0")
    assert not (engine.parent / "meta.json").exists()  # a failed build leaves no usable-looking entry


def test_gpu_info_from_nvidia_smi():
    text = "NVIDIA H200, 9.0, 570.86.15\nNVIDIA L4, 8.9, 570.86.15\n"
    assert parse_nvidia_smi(text) == GpuInfo("NVIDIA H200", "9.0", "570.86.15")
    assert parse_nvidia_smi(text, 1).compute_capability == "8.9"
    assert parse_nvidia_smi("") is None and parse_nvidia_smi(text, 2) is None


# ---------------------------------------------------------------------------------------------- versions, trtexec


def test_trtexec_lines_per_tensorrt_version(monkeypatch):
    opts = BuildOptions(precision="fp16", min_batch=1, opt_batch=4, max_batch=16, workspace_mib=512,
                        timing_cache="t.cache")
    monkeypatch.setattr(tb, "trt_version", lambda: "10.3.0")
    line = trtexec_command("pose.onnx", "pose.engine", opts, card=CARD)
    assert line == ("trtexec --onnx=pose.onnx --saveEngine=pose.engine --minShapes=input:1x3x128x96 "
                    "--optShapes=input:4x3x128x96 --maxShapes=input:16x3x128x96 --memPoolSize=workspace:512M "
                    "--fp16 --timingCacheFile=t.cache")
    monkeypatch.setattr(tb, "trt_version", lambda: "11.0.0")
    with pytest.raises(ConfigError, match="no --fp16"):  # 11: no --fp16, and an FP16 request needs an FP16 graph
        trtexec_command("pose.onnx", "pose.engine", opts, card=CARD)
    line11 = trtexec_command("pose.onnx", "pose.engine", opts, card=CARD, graph="fp16")
    assert line11 == line.replace(" --fp16", "")  # 11: strongly typed always, precision from the graph
    dla = trtexec_command("my model.onnx", "e", BuildOptions(dla_core=1, min_batch=1, opt_batch=1, max_batch=1),
                          card=CARD, trt_major=10, graph="fp16")
    assert dla.startswith("trtexec '--onnx=my model.onnx'") and dla.endswith("--useDLACore=1 --allowGPUFallback")
    assert "--stronglyTyped" not in dla and "--fp16" in dla  # 10.3's --useDLACore sets FP16: weakly typed
    fp32 = trtexec_command("a.onnx", "b", BuildOptions(precision="fp32"), card=CARD, trt_major=10)
    assert "--fp16" not in fp32 and "--stronglyTyped" not in fp32
    monkeypatch.setattr(tb, "trt_version", lambda: None)  # no TensorRT here: JetPack 6's TensorRT 10
    assert "--fp16" in trtexec_command("a.onnx", "b", opts, card=CARD)


def test_precision_plan_per_version():
    assert plan_precision("fp16", "fp32", 10) == tb.PrecisionPlan(False, True, "fp16")
    assert plan_precision("from-graph", "fp16", 10) == tb.PrecisionPlan(True, False, "fp16")
    assert plan_precision("from-graph", "fp32", 10) == tb.PrecisionPlan(False, False, "fp32")
    assert plan_precision("from-graph", "int8", 11) == tb.PrecisionPlan(True, False, "int8")
    assert plan_precision("fp16", "fp16", 11) == tb.PrecisionPlan(True, False, "fp16")
    assert plan_precision("from-graph", "fp16", 8).fp16_flag  # JetPack 5: no strongly typed networks
    with pytest.raises(ConfigError, match="edgepose quantize MODEL.onnx --out MODEL_fp16.onnx --mode fp16"):
        plan_precision("fp16", "fp32", 11)
    with pytest.raises(ConfigError, match="graph is fp16"):
        plan_precision("fp32", "fp16", 10)


def test_version_functions_with_fake_tensorrt(monkeypatch):
    assert tb.network_flags(_fake_trt("10.3.0")) == 0
    assert tb.network_flags(_fake_trt("10.3.0"), strongly_typed=True) == 1 << 1
    assert tb.network_flags(_fake_trt("11.0.0"), strongly_typed=True) == 0
    assert not hasattr(_fake_trt("11.0.0").NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")  # gone in 11
    assert tb.network_flags(_fake_trt("8.5.2")) == 1 << 0
    trt10, log = _fake_trt("10.3.0"), []
    tb.set_fp16(types.SimpleNamespace(set_flag=log.append), trt10)
    assert log == ["FP16"]
    with pytest.raises(ConfigError, match="no FP16 builder flag"):
        tb.set_fp16(types.SimpleNamespace(set_flag=log.append), _fake_trt("11.0.0"))
    assert tb.major_version("10.3.0.26") == 10
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    assert tb.trt_version() is None
    with pytest.raises(MissingDependencyError, match="JetPack"):
        tb.major_version()


# ---------------------------------------------------------------------------------------------- build_engine


def test_build_engine_refuses_fp16_on_trt11_fp32_graph(fp32_onnx, tmp_path, monkeypatch):
    trt = _fake_trt("11.0.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    with pytest.raises(ConfigError, match="--mode fp16"):
        build_engine(fp32_onnx, tmp_path / "e.engine", BuildOptions(precision="fp16"))
    assert trt.log == [] and not (tmp_path / "e.engine").exists()


def test_build_engine_drives_the_api(fp32_onnx, bundle, tmp_path, monkeypatch):
    trt = _fake_trt("10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    cache = tmp_path / "timing.cache"
    cache.write_bytes(timing_cache_bytes("10.3.0", b"old"))
    opts = BuildOptions(precision="fp16", min_batch=1, opt_batch=2, max_batch=8, workspace_mib=64,
                        timing_cache=str(cache))
    result = build_engine(fp32_onnx, tmp_path / "e.engine", opts)
    assert ("network_flags", 0) in trt.log and ("flag", "FP16") in trt.log
    assert ("profile", "input", (1, 3, 128, 96), (2, 3, 128, 96), (8, 3, 128, 96)) in trt.log
    assert ("pool", "WORKSPACE", 64 << 20) in trt.log and ("timing_cache", b"old") in trt.log
    assert (tmp_path / "e.engine").read_bytes() == b"SERIALIZED-ENGINE"
    assert cache.read_bytes() == timing_cache_bytes("10.3.0", b"old+tuned")
    assert ModelCard.from_file(tmp_path / "e.engine.card.json") == CARD
    assert (result.graph_precision, result.engine_precision, result.card_path) == (
        "fp32", "fp16", str(tmp_path / "e.engine.card.json"))

    trt11 = _fake_trt("11.4.1", dla_cores=2)  # DLA is back in 11.4.1 (absent in 11.0-11.3)
    monkeypatch.setitem(sys.modules, "tensorrt", trt11)
    fp16 = bundle / "pose_fp16.onnx"
    out = build_engine(fp16, tmp_path / "h.engine", BuildOptions(precision="fp16", dla_core=1))
    assert out.engine_precision == "fp16" and ("network_flags", 0) in trt11.log
    assert ("device", "DLA", 1) in trt11.log and ("flag", "GPU_FALLBACK") in trt11.log
    assert not any(e[0] == "timing_cache" for e in trt11.log)
    with pytest.raises(ConfigError, match="DLA runs FP16 and INT8 layers only"):
        build_engine(fp32_onnx, tmp_path / "d.engine", BuildOptions(dla_core=0))
    with pytest.raises(ConfigError, match="has 2 DLA core"):
        build_engine(fp16, tmp_path / "d.engine", BuildOptions(dla_core=2))
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.3.0"))
    assert build_engine(bundle / "pose_int8.onnx", tmp_path / "i.engine").engine_precision == "int8"


def test_build_engine_reports_every_parser_error(fp32_onnx, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.3.0", parse_errors=2))
    with pytest.raises(ModelError) as info:
        build_engine(fp32_onnx, tmp_path / "e.engine")
    text = str(info.value)
    assert "(2 error(s))" in text and not (tmp_path / "e.engine").exists()
    assert "[1] node 10 '/model/Conv_0' (Conv): unsupported thing 0 [ErrorCode.UNSUPPORTED_NODE]" in text
    assert "[2] node 11 '/model/Conv_1' (Conv): unsupported thing 1" in text


def test_profile_shapes_check_the_card():
    opts = BuildOptions(min_batch=2, opt_batch=4, max_batch=8)
    assert tb.profile_shapes((-1, 3, -1, -1), CARD, opts)[2] == (8, 3, 128, 96)
    with pytest.raises(ModelError, match="input_size"):
        tb.profile_shapes((-1, 3, 256, 192), CARD, opts)
    with pytest.raises(ConfigError, match="fixed batch of 1"):
        tb.profile_shapes((1, 3, 128, 96), CARD, opts)
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        BuildOptions(min_batch=4, opt_batch=2)


def test_cli_without_tensorrt_prints_trtexec(fp32_onnx, tmp_path, monkeypatch):
    import argparse

    from deploy.tensorrt import cli as cli_build_engine
    parser = argparse.ArgumentParser()
    cli_build_engine.add_arguments(parser)
    args = parser.parse_args([str(fp32_onnx), "--out", str(tmp_path / "p.engine"), "--fp16", "--max-batch", "8"])
    assert args.precision == "fp16"
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match=r"JetPack.*\n  trtexec .*--maxShapes=input:8x3x128x96.*--fp16"):
        cli_build_engine.run(args)


# ---------------------------------------------------------------------------------------------- Jetson


def test_jetson_power_state_off_jetson(tmp_path):
    state = jetson_power_state()  # this machine: no nvpmodel, no /etc/nv_tegra_release
    assert set(state) == {"l4t", "jetpack", "power_mode", "power_mode_id", "machine", "clocks_locked"}
    if not Path("/etc/nv_tegra_release").exists():
        assert all(v is None for v in state.values())
    assert all(v is None for v in jetson_power_state(str(tmp_path / "none"), run=lambda cmd: None).values())

    def boom(cmd):
        raise RuntimeError("tool crashed")

    assert jetson_power_state(str(tmp_path / "none"), run=boom)["power_mode"] is None


def test_jetson_power_state_parses_tools(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    cpu = "Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600\n"
    outputs = {"nvpmodel": "NV Power Mode: MAXN\n0\n",
               "jetson_clocks": f"SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit\ncpu0: {cpu}"
                                f"cpu1: {cpu}"}
    state = jetson_power_state(str(release), run=lambda cmd: outputs[cmd[0]])
    assert state == {"l4t": "36.4.3", "jetpack": "6.2", "power_mode": "MAXN", "power_mode_id": 0,
                     "machine": "NVIDIA Jetson AGX Orin Developer Kit", "clocks_locked": True}
    assert parse_tegra_release("# R35 (release), REVISION: 4.1, GCID") == "35.4.1"
    assert jetpack_from_l4t("35.4.1") == "5.1.2" and jetpack_from_l4t("36.4.0") == "6.1"
    assert jetpack_from_l4t("99.1") is None


# ---------------------------------------------------------------------------------------------- bundle


def test_bundle_is_consistent(bundle, fp32_onnx):
    from edgepose.onnx_card import read_card

    assert check_bundle(bundle) == []
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {v: manifest["variants"][v]["graph_precision"] for v in manifest["variants"]} == {
        "fp32": "fp32", "fp16": "fp16", "int8": "int8"}
    int8 = manifest["variants"]["int8"]
    assert int8["num_calibration"] == 4 and manifest["skipped"] == {} and int8["quantized_convs"] > 0
    assert "first conv" in int8["kept_float_nodes"].values() and "head" in int8["kept_float_nodes"].values()
    assert ModelCard.from_dict(manifest["card"]) == CARD == read_card(bundle / "pose_int8.onnx")
    assert (bundle / "pose_fp32.onnx").read_bytes() == fp32_onnx.read_bytes()
    script = (bundle / "build_engines.sh").read_text()
    for v in ("fp32", "fp16", "int8"):
        assert f"build-engine pose_{v}.onnx --out pose_{v}.engine" in script
        assert f"#   trtexec --onnx=pose_{v}.onnx --saveEngine=pose_{v}.engine" in script
    assert "--dla-core 0" in script and "--useDLACore=0 --allowGPUFallback" in script
    assert "--stronglyTyped --useDLACore" not in script  # trtexec 10.3 sets FP16 for DLA: weakly typed only
    assert "pose_fp32_dla0" not in script  # DLA has no FP32
    assert "onnxruntime-gpu" in (bundle / "requirements-jetson.txt").read_text()
    assert set(manifest["files"]) == {p.name for p in bundle.iterdir()} - {"manifest.json"}


def _script_blocks(script: str) -> list[tuple[list[str], dict[str, str]]]:
    """Each ``edgepose build-engine`` line of build_engines.sh with the commented trtexec lines under it, by label
    ("10" for the unlabelled TensorRT 10 line, else the label before ``: trtexec``)."""
    blocks: list[tuple[list[str], dict[str, str]]] = []
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith('"$EDGEPOSE" build-engine'):
            blocks.append((shlex.split(line)[2:], {}))
        elif blocks and re.match(r"#\s+(TensorRT [\d.+]+[^:]*: )?trtexec ", line):
            label, _, command = line.lstrip("# ").partition("trtexec ")
            blocks[-1][1][label.strip(": ") or "TensorRT 10"] = "trtexec " + command
    return blocks


def test_bundle_trtexec_lines_follow_tensorrt_10_3_and_11_rules(bundle, monkeypatch, tmp_path):
    """Line by line: every variant's trtexec lines (FP32, FP16, INT8, DLA FP16/INT8) are accepted by trtexec 10.3 /
    11.x (tests.helpers.trtexec_rules), build the precision the variant is for, and configure the builder exactly as
    ``build_engine`` does with the same options on the same TensorRT (strict fake)."""
    import argparse

    from deploy.tensorrt.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    manifest = json.loads((bundle / "manifest.json").read_text())
    graphs = {v["onnx"]: v["graph_precision"] for v in manifest["variants"].values()}
    blocks = _script_blocks((bundle / "build_engines.sh").read_text())
    assert len(blocks) == 5  # fp32, fp16, int8 on the GPU; fp16, int8 on DLA
    seen = set()
    for args, lines in blocks:
        ns = parser.parse_args([str(bundle / args[0]), *args[1:]])
        dla = ns.dla_core is not None
        graph = graphs[args[0]]
        versions = {"TensorRT 10": "10.3.0", ("TensorRT 11.4.1+" if dla else "TensorRT 11"): "11.4.1"}
        assert set(lines) == set(versions), (args, lines)
        for label, version in versions.items():
            outcome = trtexec_outcome(lines[label], version, graph)
            assert outcome["warnings"] == [] and outcome["precision"] == graph, (label, lines[label])
            trt = _fake_trt(version, dla_cores=2)
            monkeypatch.setitem(sys.modules, "tensorrt", trt)
            options = BuildOptions(precision=ns.precision, min_batch=ns.min_batch, opt_batch=ns.opt_batch,
                                   max_batch=ns.max_batch, workspace_mib=ns.workspace_mib, dla_core=ns.dla_core,
                                   timing_cache=str(tmp_path / f"{version}.cache"))
            result = build_engine(ns.model, tmp_path / "e.engine", options)
            built = next(entry[1] for entry in trt.log if entry[0] == "built")
            assert outcome["config"] == built and result.engine_precision == graph, (label, lines[label])
            seen.add((graph, dla, version))
    assert len(seen) == 10


def test_check_bundle_reports_problems(bundle, fp32_onnx, tmp_path):
    from edgepose.onnx_card import embed_card

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    with open(copy / "README.md", "a") as fh:
        fh.write("tampered\n")
    (copy / "pose_fp16.onnx").unlink()
    problems = check_bundle(copy)
    assert any(p.startswith("README.md is") and "manifest.json says" in p for p in problems)
    assert "pose_fp16.onnx is listed in manifest.json but missing" in problems
    assert "build_engines.sh names pose_fp16.onnx, which is not in the bundle" in problems

    # a re-embedded card (hashes updated, so only the card disagrees)
    embed_card(fp32_onnx, dataclasses.replace(CARD, bbox_padding=1.5), copy / "pose_fp32.onnx")
    manifest = json.loads((copy / "manifest.json").read_text())
    from deploy.tensorrt.engine_cache import file_sha256

    manifest["files"]["pose_fp32.onnx"] = {"sha256": file_sha256(copy / "pose_fp32.onnx"),
                                           "size": (copy / "pose_fp32.onnx").stat().st_size}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "variant fp32: the card embedded in pose_fp32.onnx differs from card.json in ['bbox_padding']" in (
        check_bundle(copy))
    (copy / "manifest.json").unlink()
    assert "manifest.json is missing" in check_bundle(copy)[0]


def test_bundle_without_calibration_skips_int8(fp32_onnx, tmp_path):
    manifest = make_jetson_bundle(fp32_onnx, tmp_path / "B", variants=("fp32", "int8"))
    assert set(manifest["variants"]) == {"fp32"} and "calibration" in manifest["skipped"]["int8"]
    assert "int8: not made" in (tmp_path / "B" / "README.md").read_text()
    assert check_bundle(tmp_path / "B") == []
    with pytest.raises(Exception, match="not empty"):
        make_jetson_bundle(fp32_onnx, tmp_path / "B")


# ---------------------------------------------------------------------------------------------- real TensorRT


def test_real_tensorrt_engine_builds_and_loads(fp32_onnx, tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT not installed (no GPU machine with TensorRT here)")
    result = build_engine(fp32_onnx, tmp_path / "pose.engine", BuildOptions(max_batch=4,
                                                                            timing_cache=str(tmp_path / "t.cache")))
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
        (tmp_path / "pose.engine").read_bytes())
    assert engine is not None and result.size_bytes > 0 and (tmp_path / "t.cache").stat().st_size > 0
    assert ModelCard.from_file(result.card_path) == CARD
    entry = EngineCache(tmp_path / "cache").get_or_build(fp32_onnx, BuildOptions(max_batch=4))
    assert EngineCache(tmp_path / "cache").get_or_build(fp32_onnx, BuildOptions(max_batch=4)).hit
    assert not entry.hit
