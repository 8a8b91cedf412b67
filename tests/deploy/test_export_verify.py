"""ONNX export (opset, dynamic/fixed batch, card, checker) and the parity check that follows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from compress.checkpoint import save_checkpoint
from compress.models import build_model
from deploy.verify import Tolerance, verify
from edgepose.card import ModelCard
from edgepose.errors import ModelError
from edgepose.onnx_card import read_card
from tests.compress.test_prune import lively

ROOT = Path(__file__).resolve().parents[2]
CARD = ModelCard(input_size=(96, 128), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(24, 32), decode="dark")


def edgepose(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_checkpoint(path, lively(build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128))), CARD)
    return path


def test_export_command_writes_a_verified_onnx_with_its_card(checkpoint, tmp_path):
    out = edgepose("export", checkpoint, "--out", tmp_path / "m.onnx")
    assert out.returncode == 0, out.stderr
    assert "PASSED" in out.stdout and "keypoints: max" in out.stdout
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value  # dynamic batch
    assert read_card(tmp_path / "m.onnx") == CARD
    report = verify(checkpoint, tmp_path / "m.onnx")
    assert report.passed and report.keypoint_max_px < 0.05 and report.outputs["heatmaps"]["max_abs"] < 1e-3


def test_fixed_batch_and_old_opset(checkpoint, tmp_path):
    out = edgepose("export", checkpoint, "--out", tmp_path / "b4.onnx", "--batch", "4")
    assert out.returncode == 0, out.stderr
    dims = onnx.load(tmp_path / "b4.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 3, 128, 96]
    old = edgepose("export", checkpoint, "--out", tmp_path / "old.onnx", "--opset", "13")
    assert old.returncode == 2 and "opset 13 is too old" in old.stderr and not (tmp_path / "old.onnx").exists()


def test_a_diverging_model_is_named_and_set_aside(checkpoint, tmp_path):
    import shutil

    from compress.checkpoint import load_model
    from deploy.artifact import write_artifact
    from deploy.export import export_checkpoint
    from deploy.export_cli import parity_check

    path = export_checkpoint(checkpoint, tmp_path / "bad.onnx")
    model = onnx.load(path)
    head = next(n for n in reversed(model.graph.node) if n.op_type == "Conv")
    init = next(i for i in model.graph.initializer if i.name == head.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.05, init.name))  # a 5% weight error
    onnx.save(model, path)
    report = verify(checkpoint, path)
    assert not report.passed and "output 'heatmaps' diverges" in report.first_failure
    assert verify(checkpoint, path, Tolerance(atol=10.0, rtol=1.0, keypoint_px=100.0)).passed
    # what `edgepose export` does: the parity check runs on the finished temporary, before the rename
    model, card, _ = load_model(checkpoint)
    out = tmp_path / "out.onnx"
    check = parity_check(model, card, str(checkpoint), str(out), no_verify=False)
    with pytest.raises(ModelError, match="does not match"), write_artifact(out, "ONNX model", check=check) as tmp:
        shutil.copyfile(path, tmp)
    aside = tmp_path / "out.unverified.onnx"
    assert not out.exists() and aside.exists()
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []
    cli = edgepose("verify", checkpoint, aside)
    assert cli.returncode == 1 and "FAILED" in cli.stdout


def test_verify_refuses_two_different_models(checkpoint, tmp_path):
    other = tmp_path / "other.pth"
    card = ModelCard.from_dict({**CARD.to_dict(), "input_size": [64, 128], "heatmap_size": [16, 32]})
    save_checkpoint(other, build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(64, 128)), card)
    with pytest.raises(ModelError, match="not the same model"):
        verify(checkpoint, other)


def test_person_crops_are_real_preprocessed_persons():
    from deploy.verify import person_crops

    crops = person_crops(CARD, 6)
    assert crops.shape == (6, 3, 128, 96) and crops.dtype == np.float32
    assert 0.3 < crops.std() < 3  # normalised pixels, not zeros or raw bytes
    assert len({round(float(c.mean()), 4) for c in crops}) == 6  # six different persons


def test_export_for_jetson_writes_a_consistent_bundle(checkpoint, tmp_path, synth):
    from deploy.tensorrt.bundle import check_bundle

    out = edgepose("export", checkpoint, "--target", "jetson", "--out", tmp_path / "bundle", "--calib-ann",
                   synth / "annotations" / "person_keypoints_val.json", "--calib-images", synth / "val", "--num", "4")
    assert out.returncode == 0, out.stderr
    assert "PASSED" in out.stdout and "fp16" in out.stdout and "int8" in out.stdout
    assert check_bundle(tmp_path / "bundle") == []
    for variant in ("fp32", "fp16", "int8"):
        assert read_card(tmp_path / "bundle" / f"pose_{variant}.onnx") == CARD


def test_tied_peaks_are_not_counted_as_keypoint_divergence():
    from deploy.verify import _ambiguous_peaks

    a = np.zeros((1, 2, 4, 4), np.float32)
    a[0, 0, 0, 0], a[0, 0, 3, 3] = 1.0, 1.0 - 1e-6  # twin peaks: a float-rounding difference may swap them
    a[0, 1, 0, 0], a[0, 1, 3, 3] = 1.0, 0.5  # one clear peak
    b = a.copy()
    b[0, 0, 3, 3] = 1.0 + 1e-6
    b[0, 1, 3, 3] = 1.2  # a real divergence: the clear peak moved
    flags = _ambiguous_peaks({"heatmaps": a}, {"heatmaps": b}, {"heatmaps": 1e-4})
    assert flags.tolist() == [[True, False]]


def test_export_loads_the_checkpoint_once_and_reads_no_card_back_from_its_source(checkpoint, tmp_path, synth,
                                                                               monkeypatch, capsys):
    """One load_model per export (the verified reference is the exported model itself); the card goes down to
    calibration and the bundle instead of being re-read from the exported file (only written files are checked)."""
    import argparse

    import compress.checkpoint
    import edgepose.onnx_card
    from deploy import export_cli

    loads, reads = [], []
    real_load, real_read = compress.checkpoint.load_model, edgepose.onnx_card.read_card
    monkeypatch.setattr(compress.checkpoint, "load_model", lambda p, *a, **k: loads.append(p) or real_load(p, *a, **k))
    monkeypatch.setattr(edgepose.onnx_card, "read_card", lambda p: reads.append(str(p)) or real_read(p))
    parser = argparse.ArgumentParser()
    export_cli.add_arguments(parser)
    args = parser.parse_args([str(checkpoint), "--target", "jetson", "--out", str(tmp_path / "bundle"),
                              "--calib-ann", str(synth / "annotations" / "person_keypoints_val.json"),
                              "--calib-images", str(synth / "val"), "--num", "2"])
    assert export_cli.run(args) == 0
    assert loads == [str(checkpoint)]
    assert "PASSED" in capsys.readouterr().out
    sources = [p for p in reads if os.path.basename(p) == "model.onnx"]  # the temporary FP32 export
    assert sources == [], reads
    assert any("bundle" in p for p in reads)  # the bundle's own check read the written variants


def test_export_refuses_formats_it_cannot_write(checkpoint, tmp_path):
    out = edgepose("export", checkpoint, "--out", tmp_path / "m.engine")
    assert out.returncode == 2 and "cannot write '.engine'" in out.stderr and "build-engine" in out.stderr
    mixed = edgepose("export", checkpoint, "--out", tmp_path / "m.onnx", "--torch", "torchscript")
    assert mixed.returncode == 2 and "give --out a .ts or .pt2 name" in mixed.stderr
    assert not any(tmp_path.iterdir())
