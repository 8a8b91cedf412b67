"""Hostile model cards (issue "Hostile input, round 2", classes 2, 3 and 9).

- Class 2: card strings reach shell scripts, logs and READMEs, so names must match strict patterns and no card
  string may hold a control character; the refusal is one CardError line naming the field.
- Class 3: numbers must be finite, of the right sign and whole where they count pixels or indices (192.0 is 192,
  192.5 and booleans are refused); ``edgepose card --set`` refuses a bad card before anything is written.
- Class 9: an explicit card (``--card`` / ``card=``) opens every format, .pt2 and TorchScript included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgepose.card import CARD_KEY, ModelCard
from edgepose.errors import CardError
from tests.helpers.onnx_builders import conv_heatmap_model
from tests.helpers.torch_programs import export_tiny

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"input_size": [96, 128], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
           "color": "rgb", "codec": "msra", "heatmap_size": [24, 32]}
NAN, INF = float("nan"), float("inf")
COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
          "left_ankle", "right_ankle"]


def card_of(**changes) -> ModelCard:
    return ModelCard.from_dict({**MINIMAL, **changes})


def edgepose(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess, command: str, text: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"edgepose {command}: error: ") and text in lines[0], lines[0]


# ------------------------------------------------------------------------------------------- class 2: strings

HOSTILE_STRINGS = [
    ({"input_name": "input\ntouch X\n#"}, "card field 'input_name' holds the control character '\\n'"),
    ({"input_name": "$(touch X)"}, "card field 'input_name' has '$(touch X)', which is not a tensor name"),
    ({"input_name": "in put"}, "card field 'input_name' has 'in put', which is not a tensor name"),
    ({"input_name": "-rf"}, "card field 'input_name' has '-rf', which is not a tensor name"),
    ({"input_name": ""}, "card field 'input_name' has '', which is not a tensor name"),
    ({"input_name": "x" * 129}, "which is not a tensor name"),
    ({"input_name": 7}, "card field 'input_name' must be a string, got 7"),
    ({"output_names": ["heat;maps"]}, "card field 'output_names' has 'heat;maps', which is not a tensor name"),
    ({"output_names": ["heatmaps\r"]}, "card field 'output_names' holds the control character '\\r'"),
    ({"output_names": "heatmaps"}, "card field 'output_names' must be a list, got 'heatmaps'"),
    ({"keypoints": ["nose\n"] + COCO17[1:]}, "card field 'keypoints' holds the control character '\\n'"),
    ({"keypoints": ["`touch X`"] + COCO17[1:]}, "card field 'keypoints' has '`touch X`', which is not a keypoint"),
    ({"keypoints": "nose"}, "card field 'keypoints' must be a list, got 'nose'"),
    ({"keypoints": [1] + COCO17[1:]}, "card field 'keypoints' must be a string, got 1"),
    ({"name": "pose\ntouch X"}, "card field 'name' holds the control character '\\n'"),
    ({"name": "pose\u202etxt.exe"}, "card field 'name' holds the control character '\\u202e'"),
    ({"name": "p" * 201}, "card field 'name' is longer than 200 characters"),
    ({"name": ["pose"]}, "card field 'name' must be a string, got ['pose']"),
    ({"color": "rgb\n"}, "card field 'color' must be 'rgb' or 'bgr', got 'rgb\\n'"),
    ({"codec": "msra; touch X"}, "card field 'codec' must be one of ['msra', 'udp', 'simcc']"),
    ({"decode": "dark\x00"}, "card field 'decode' for codec 'msra' must be one of"),
    ({"layout": "nchw\n"}, "card field 'layout' must be 'nchw'"),
    ({"extra": {"note": "a\x1b[2Jb"}}, "card field 'extra.note' holds the control character '\\x1b'"),
    ({"extra": {"ratio": NAN}}, "card field 'extra.ratio' must hold finite numbers, got nan"),
    ({"extra": "x"}, "card field 'extra' must be a mapping, got 'x'"),
]


@pytest.mark.parametrize(("change", "message"), HOSTILE_STRINGS)
def test_hostile_strings_are_refused_naming_the_field(change, message):
    with pytest.raises(CardError) as caught:
        card_of(**change)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["input", "heatmaps", "simcc_x", "output.1", "images", "/model/Conv_output_0",
                                  "input_1", "onnx::Conv_123", "serving_default_input:0", "1234"])
def test_real_tensor_names_pass(name):
    assert card_of(input_name=name, output_names=[name]).input_name == name


def test_real_cards_and_keypoint_names_pass():
    card = card_of(keypoints=["left_eye", "head-top", "thumb 1"], name="lite_hrnet_18-heatmap (random weights)",
                   extra={"source": "MMPose 1.3", "scores": [0.5, 1]})
    assert card.keypoints == ("left_eye", "head-top", "thumb 1") and card.name.endswith("(random weights)")
    from edgepose.assets import DEFAULT_POSE_MODEL
    from edgepose.onnx_card import read_card

    assert read_card(DEFAULT_POSE_MODEL).input_name == "input_1"  # the packaged third-party model's card still loads


# --------------------------------------------------------------------------------------- class 3: numbers

HOSTILE_NUMBERS = [
    ({"mean": [NAN, 116.28, 103.53]}, "card field 'mean' must hold finite numbers, got nan"),
    ({"mean": [123.675, "116", 103.53]}, "card field 'mean' must hold numbers, got '116'"),
    ({"std": [INF, 57.12, 57.375]}, "card field 'std' must hold finite numbers, got inf"),
    ({"std": [58.395, 0, 57.375]}, "card field 'std' must be positive"),
    ({"std": [-58.395, 57.12, 57.375]}, "card field 'std' must be positive"),
    ({"input_size": [96.5, 128]}, "card field 'input_size' must hold whole numbers, got 96.5"),
    ({"input_size": [True, 128]}, "card field 'input_size' must hold numbers, got True"),
    ({"input_size": [0, 128]}, "card field 'input_size' must be positive, got 0"),
    ({"input_size": [-96, 128]}, "card field 'input_size' must be positive, got -96"),
    ({"input_size": [INF, 128]}, "card field 'input_size' must hold finite numbers, got inf"),
    ({"input_size": [1e9, 128]}, "card field 'input_size' must be at most 16384 pixels"),
    ({"input_size": [10 ** 400, 128]}, "card field 'input_size' holds a number too large"),
    ({"heatmap_size": [24.5, 32]}, "card field 'heatmap_size' must hold whole numbers, got 24.5"),
    ({"heatmap_size": ["24", 32]}, "card field 'heatmap_size' must hold numbers, got '24'"),
    ({"sigma": -1}, "card field 'sigma' must be positive, got -1"),
    ({"sigma": NAN}, "card field 'sigma' must hold finite numbers, got nan"),
    ({"sigma": [2.0, -1.0]}, "card field 'sigma' must be positive, got -1.0"),
    ({"sigma": True}, "card field 'sigma' must hold numbers, got True"),
    ({"bbox_padding": 0}, "card field 'bbox_padding' must be positive, got 0"),
    ({"bbox_padding": -1.25}, "card field 'bbox_padding' must be positive, got -1.25"),
    ({"bbox_padding": NAN}, "card field 'bbox_padding' must hold finite numbers, got nan"),
    ({"sigmas": [NAN] * 17}, "card field 'sigmas' must hold finite numbers, got nan"),
    ({"sigmas": [-0.05] * 17}, "card field 'sigmas' needs 17 positive OKS sigmas"),
    ({"sigmas": [INF] * 17}, "card field 'sigmas' must hold finite numbers, got inf"),
    ({"flip_pairs": [[1, 2.5]]}, "card field 'flip_pairs' must hold whole numbers, got 2.5"),
    ({"flip_pairs": [[1, 17]]}, "card field 'flip_pairs' has pair (1, 17) outside 0..16"),
    ({"flip_pairs": [[-1, 2]]}, "card field 'flip_pairs' has pair (-1, 2) outside 0..16"),
    ({"flip_pairs": [[1, 2], [2, 3]]}, "card field 'flip_pairs' names a keypoint in more than one pair"),
    ({"flip_pairs": [[1]]}, "card field 'flip_pairs' must hold pairs [i, j] of keypoint indices, got [1]"),
    ({"flip_pairs": [[True, 2]]}, "card field 'flip_pairs' must hold numbers, got True"),
    ({"skeleton": [[0, 99]]}, "card field 'skeleton' has pair (0, 99) outside 0..16"),
    ({"blur_kernel_size": 4}, "card field 'blur_kernel_size' must be a positive odd integer, got 4"),
    ({"blur_kernel_size": -3}, "card field 'blur_kernel_size' must be positive, got -3"),
    ({"blur_kernel_size": 11.5}, "card field 'blur_kernel_size' must hold whole numbers, got 11.5"),
    ({"blur_kernel_size": True}, "card field 'blur_kernel_size' must hold numbers, got True"),
    ({"codec": "simcc", "heatmap_size": None, "simcc_split_ratio": NAN},
     "card field 'simcc_split_ratio' must hold finite numbers, got nan"),
    ({"codec": "simcc", "heatmap_size": None, "simcc_split_ratio": -2.0},
     "card field 'simcc_split_ratio' must be positive, got -2.0"),
]


@pytest.mark.parametrize(("change", "message"), HOSTILE_NUMBERS)
def test_hostile_numbers_are_refused_naming_the_field(change, message):
    with pytest.raises(CardError) as caught:
        card_of(**change)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_whole_floats_and_numpy_numbers_are_taken():
    card = card_of(input_size=[96.0, np.int64(128)], heatmap_size=(np.int32(24), 32.0), blur_kernel_size=11.0,
                   mean=np.array([1.0, 2.0, 3.0], np.float32).tolist(), sigma=np.float32(1.5), flip_pairs=[[1.0, 2]])
    assert card.input_size == (96, 128) and all(type(v) is int for v in card.input_size + card.heatmap_size)
    assert card.blur_kernel_size == 11 and type(card.blur_kernel_size) is int and card.flip_pairs == ((1, 2),)
    assert card.sigma == 1.5 and ModelCard.from_json(card.to_json()) == card


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory) -> Path:
    return Path(conv_heatmap_model(tmp_path_factory.mktemp("plain") / "plain.onnx", card=None, input_size=(96, 128)))


@pytest.mark.parametrize(("text", "message"), [
    ("mean: [.nan, 116.28, 103.53]", "card field 'mean' must hold finite numbers, got nan"),
    ("std: [.inf, 57.12, 57.375]", "card field 'std' must hold finite numbers, got inf"),
    ("input_size: [96.5, 128]", "card field 'input_size' must hold whole numbers, got 96.5"),
    ("sigma: -1", "card field 'sigma' must be positive, got -1"),
    ('input_name: "input\\ntouch X\\n#"', "card field 'input_name' holds the control character '\\n'"),
    ("heatmap_size: [48, 64]", "card contradicts the model"),
])
def test_card_set_refuses_before_writing(plain_onnx, tmp_path, text, message):
    """`edgepose card MODEL --set CARD --out OUT`: a bad card, or one the model contradicts, writes nothing."""
    base = "\n".join(f"{k}: {json.dumps(v)}" for k, v in MINIMAL.items() if not text.startswith(k + ":"))
    (tmp_path / "card.yaml").write_text(f"{base}\n{text}\n")
    out = edgepose("card", plain_onnx, "--set", tmp_path / "card.yaml", "--out", tmp_path / "new" / "m.onnx")
    one_line_error(out, "card", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.yaml"]  # no m.onnx, no temp file, no folder


def test_a_card_smuggled_into_onnx_metadata_is_refused(plain_onnx, tmp_path):
    """A card written into the metadata by other tools than `edgepose card` is validated when it is read."""
    model = onnx.load(plain_onnx)
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps({**MINIMAL, "input_name": "input\ntouch X\n#"})
    onnx.save(model, tmp_path / "smuggled.onnx")
    one_line_error(edgepose("card", tmp_path / "smuggled.onnx"), "card",
                   "card field 'input_name' holds the control character '\\n'")


# ------------------------------------------------------------------------ class 9: --card for every format


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    return export_tiny(tmp_path_factory.mktemp("programs"), card_of())


@pytest.mark.parametrize("kind", ["bare_pt2", "bare_ts"])
def test_explicit_card_opens_a_program_without_one(programs, tmp_path, kind):
    from edgepose.pipeline import PoseEstimator

    card = card_of(name="supplied")
    card.save(tmp_path / "card.yaml")
    for given in (card, tmp_path / "card.yaml"):
        with PoseEstimator(programs[kind], card=given) as estimator:
            assert estimator.card == card and ModelCard.from_json(estimator.backend.metadata[CARD_KEY]) == card
            poses = estimator(np.zeros((200, 150, 3), np.uint8), boxes=np.array([[10, 10, 90, 150]]))
            assert poses.xy.shape == (1, 17, 2)


def test_explicit_card_overrides_the_sidecar_and_the_onnx_card(programs, plain_onnx, tmp_path):
    from edgepose.pipeline import PoseEstimator

    other = card_of(name="override", decode="dark")
    with PoseEstimator(programs["pt2"], card=other) as estimator:  # tiny.pt2 has its own card beside it
        assert estimator.card == other and ModelCard.from_json(estimator.backend.metadata[CARD_KEY]) == other
    carded = conv_heatmap_model(tmp_path / "carded.onnx", card_of(), input_size=(96, 128))
    with PoseEstimator(carded, card=other, backend_options={"threads": 1}) as estimator:
        assert estimator.card == other and ModelCard.from_json(estimator.backend.metadata[CARD_KEY]) == other


def test_predict_card_flag_works_for_pt2(programs, tmp_path, coco_dir):
    card_of().save(tmp_path / "card.yaml")
    (tmp_path / "boxes.json").write_text(json.dumps({"000000040083.jpg": [[100, 50, 200, 300, 0.9]]}))
    args = [coco_dir / "000000040083.jpg", "--model", programs["bare_pt2"], "--boxes", tmp_path / "boxes.json",
            "--no-draw"]
    without = edgepose("predict", *args, "--out", tmp_path / "without")
    one_line_error(without, "predict", "carries no edgepose card")
    out = edgepose("predict", *args, "--card", tmp_path / "card.yaml", "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(predictions) == 1 and len(predictions[0]["keypoints"]) == 51
