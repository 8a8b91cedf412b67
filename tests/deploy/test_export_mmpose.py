"""`edgepose export MMPOSE.pth --arch NAME`: an MMPose checkpoint to a parity-checked ONNX with the card MMPose's COCO
config implies, in one command (issue 16.1); `edgepose verify --arch` checks it the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compress.models import build_model
from compress.models.mmpose_cards import rtmpose_sigma
from compress.models.mmpose_weights import to_mmpose_state_dict
from edgepose.onnx_card import read_card
from tests.compress.test_prune import lively

ROOT = Path(__file__).resolve().parents[2]
IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def edgepose(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def mmpose_checkpoint(path: Path, arch: str, size: tuple[int, int], version: int, prefix: str = "") -> Path:
    """A checkpoint as MMPose writes it (its key layout, a 'meta' entry), with non-trivial weights."""
    model = lively(build_model(arch, num_keypoints=17, input_size=size))
    state = {prefix + k: v for k, v in to_mmpose_state_dict(model, version=version).items()}
    torch.save({"meta": {"mmpose_version": "1.3.2" if version == 1 else "0.29.0", "epoch": 420}, "state_dict": state},
               path)
    return path


@pytest.mark.parametrize(("arch", "version", "prefix"), [("rtmpose_t", 1, ""), ("lite_hrnet_18", 0, "module.")])
def test_mmpose_checkpoint_exports_with_its_config_card(tmp_path, arch, version, prefix):
    size = (96, 128)
    ckpt = mmpose_checkpoint(tmp_path / f"{arch}.pth", arch, size, version, prefix)
    out = edgepose("export", ckpt, "--arch", arch, "--input-size", "96x128", "--out", tmp_path / "m.onnx")
    assert out.returncode == 0, out.stderr
    assert "PASSED" in out.stdout and f"wrote {tmp_path / 'm.onnx'} (ONNX model" in out.stdout
    card = read_card(tmp_path / "m.onnx")
    assert card.input_size == size and list(card.mean) == IMAGENET_MEAN and list(card.std) == IMAGENET_STD
    assert card.color == "rgb" and card.bbox_padding == 1.25
    if arch == "rtmpose_t":  # MMPose's rtmpose-t config: SimCCLabel, split ratio 2, sigma sqrt(side / 8)
        assert card.codec == "simcc" and card.simcc_split_ratio == 2.0 and card.decode == "none"
        assert tuple(card.sigma) == (rtmpose_sigma(96), rtmpose_sigma(128)) and card.output_names == ("simcc_x",
                                                                                                      "simcc_y")
    else:  # td-hm_litehrnet-18: MSRAHeatmap, sigma 2, unbiased False (quarter-pixel shift)
        assert card.codec == "msra" and card.heatmap_size == (24, 32) and card.sigma == 2.0
        assert card.decode == "shift" and card.output_names == ("heatmaps",)
    if arch == "rtmpose_t":  # `verify --arch` reads the checkpoint the same way (one architecture is enough)
        checked = edgepose("verify", ckpt, tmp_path / "m.onnx", "--arch", arch, "--input-size", "96x128")
        assert checked.returncode == 0 and "PASSED" in checked.stdout, checked.stderr


def test_a_checkpoint_of_another_arch_names_the_arch_that_fits(tmp_path):
    ckpt = mmpose_checkpoint(tmp_path / "t.pth", "rtmpose_t", (192, 256), 1)
    out = edgepose("export", ckpt, "--arch", "rtmpose_s", "--out", tmp_path / "m.onnx")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "does not match" in lines[0] and "missing: backbone." in lines[0] and lines[0].endswith(
        "It fits --arch rtmpose_t.")
    assert not (tmp_path / "m.onnx").exists()


def test_mmpose_options_need_arch(tmp_path):
    ckpt = mmpose_checkpoint(tmp_path / "t.pth", "rtmpose_t", (192, 256), 1)
    out = edgepose("export", ckpt, "--input-size", "96x128", "--out", tmp_path / "m.onnx")
    assert out.returncode == 2 and "give its --arch too" in out.stderr and not (tmp_path / "m.onnx").exists()
