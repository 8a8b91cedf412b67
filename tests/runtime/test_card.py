"""ModelCard: required fields, defaults, round trips through JSON/YAML/ONNX, and refusal of contradicting cards."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgepose.backends.onnxruntime import OnnxRuntimeBackend
from edgepose.card import ModelCard
from edgepose.coco import layout as coco
from edgepose.contract import bind
from edgepose.errors import CardError, ModelError
from edgepose.onnx_card import embed_card, read_card
from tests.helpers.onnx_builders import conv_heatmap_model

MINIMAL = {"input_size": [192, 256], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
           "color": "rgb", "codec": "msra", "heatmap_size": [48, 64]}


def make_card(**changes) -> ModelCard:
    return ModelCard.from_dict({**MINIMAL, **changes})


def test_minimal_card_defaults_to_coco_layout():
    card = make_card()
    assert card.keypoints == coco.KEYPOINTS and card.flip_pairs == coco.FLIP_PAIRS
    assert card.skeleton == coco.SKELETON and card.num_keypoints == 17
    assert card.bbox_padding == 1.25 and card.decode == "none" and card.output_names == ("heatmaps",)
    assert card.sigmas == tuple(coco.SIGMAS.tolist())


def test_simcc_card_defaults_outputs():
    card = make_card(codec="simcc", heatmap_size=None, simcc_split_ratio=2.0)
    assert card.output_names == ("simcc_x", "simcc_y")


@pytest.mark.parametrize("missing", ["input_size", "mean", "std", "color", "codec"])
def test_required_field_missing_is_named(missing):
    data = dict(MINIMAL)
    del data[missing]
    with pytest.raises(CardError, match=missing):
        ModelCard.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"codec": "heatmapz"}, "codec"), ({"color": "rgba"}, "color"), ({"heatmap_size": None}, "heatmap_size"),
     ({"decode": "shift", "codec": "udp"}, "decode"), ({"std": [1, 0, 1]}, "std"), ({"mean": [1, 2]}, "mean"),
     ({"input_size": [192]}, "input_size"), ({"flip_pairs": [[0, 40]]}, "flip_pairs"),
     ({"blur_kernel_size": 4}, "blur_kernel_size"), ({"codec": "simcc", "heatmap_size": None}, "simcc_split_ratio"),
     ({"sigmas": [0.1]}, "sigmas")],
)
def test_bad_fields_are_refused_by_name(change, message):
    with pytest.raises(CardError, match=message):
        make_card(**change)


def test_unknown_field_is_refused():
    with pytest.raises(CardError, match="unknown card field.*inputsize"):
        ModelCard.from_dict({**MINIMAL, "inputsize": [1, 2]})


def test_round_trip_json_and_yaml(tmp_path):
    card = make_card(decode="dark", keypoints=["a", "b", "c"], flip_pairs=[[0, 1]], skeleton=[[0, 2]], sigmas=[.1] * 3)
    assert ModelCard.from_json(card.to_json()) == card
    for name in ("card.yaml", "card.json"):
        card.save(tmp_path / name)
        assert ModelCard.from_file(tmp_path / name) == card


def test_card_file_errors(tmp_path):
    with pytest.raises(CardError, match="not found"):
        ModelCard.from_file(tmp_path / "nope.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(CardError, match="mapping"):
        ModelCard.from_file(tmp_path / "list.yaml")


def test_embed_and_read_back_onnx(tmp_path):
    plain = conv_heatmap_model(tmp_path / "plain.onnx", card=None)
    card = make_card(decode="dark")
    embed_card(plain, card, tmp_path / "carded.onnx")
    assert read_card(tmp_path / "carded.onnx") == card
    other = dataclasses.replace(card, decode="shift")
    embed_card(tmp_path / "carded.onnx", other, tmp_path / "carded.onnx")  # replaces, never duplicates
    assert read_card(tmp_path / "carded.onnx") == other
    with pytest.raises(CardError, match="carries no edgepose model card"):
        read_card(plain)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"input_size": [256, 256]}, "input"), ({"heatmap_size": [64, 64]}, "output"),
     ({"keypoints": [f"k{i}" for i in range(13)]}, "13 keypoints")],
)
def test_contradicting_card_is_refused(tmp_path, change, message):
    path = conv_heatmap_model(tmp_path / "m.onnx", card=None)
    with OnnxRuntimeBackend(path) as backend, pytest.raises(CardError, match=message):
        bind(make_card(**change), backend, path)
    with pytest.raises(CardError):
        embed_card(path, make_card(**change), tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_third_party_output_name_is_bound(tmp_path):
    path = conv_heatmap_model(tmp_path / "m.onnx", card=None, input_name="images", output_name="output")
    with OnnxRuntimeBackend(path) as backend:
        binding = bind(make_card(), backend, path)
    assert binding.input.name == "images" and binding.outputs == {"heatmaps": "output"}


def test_card_cli_prints_and_embeds(tmp_path):
    plain = conv_heatmap_model(tmp_path / "plain.onnx", card=None)
    make_card().save(tmp_path / "card.yaml")
    run = [sys.executable, "-m", "edgepose", "card"]
    out = subprocess.run(run + [plain, "--set", str(tmp_path / "card.yaml"), "--out", str(tmp_path / "c.onnx")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shown = subprocess.run(run + [str(tmp_path / "c.onnx")], capture_output=True, text=True)
    assert ModelCard.from_dict(json.loads(shown.stdout)) == make_card()
    missing = subprocess.run(run + [plain], capture_output=True, text=True)
    assert missing.returncode == 2 and "no edgepose model card" in missing.stderr and "Traceback" not in missing.stderr


def test_truncated_onnx_is_a_model_error(tmp_path):
    path = conv_heatmap_model(tmp_path / "m.onnx", card=make_card())
    data = Path(path).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        read_card(tmp_path / "cut.onnx")
