"""Hostile checkpoints (issue "Hostile input, round 2", class 1 and the missing-entry half of class 7).

A torch file is a pickle: loaded with ``weights_only=False`` it can call anything while it is read. Every entry point
that reads a checkpoint (``edgepose export``, ``verify``, ``evaluate``, training ``--resume``, ``model.init``, the
MMPose loader) must refuse a file holding Python objects beyond tensors and plain containers, with one line naming
the file and the objects, exit code 2 on the command line, and without building any of those objects: the marker
file the pickled call would create must not exist afterwards. An edgepose checkpoint lacking an entry, or holding
one of the wrong type, is refused naming that entry.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.checkpoint import FORMAT, load_model, read_checkpoint, save_checkpoint
from compress.config import from_dict
from compress.models import build_model, load_mmpose_checkpoint
from compress.train.config import TrainConfig
from edgepose.card import ModelCard
from edgepose.errors import CheckpointError, ModelError
from tests.compress.test_train import config_dict
from tests.helpers.onnx_builders import conv_heatmap_model
from tests.helpers.torch_programs import export_tiny, rewrite_pt2

ROOT = Path(__file__).resolve().parents[2]
CARD = ModelCard(input_size=(96, 128), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(24, 32), decode="dark")
ARCH = {"name": "lite_hrnet_tiny", "num_keypoints": 17, "input_size": (96, 128), "head": "heatmap"}
SYSTEM = f"{os.system.__module__}.system"  # how pickle names os.system: posix.system on Linux


class Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint does while torch.load reads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile(path: Path, marker: Path, tagged: bool = True, legacy: bool = False) -> Path:
    """A checkpoint that would create ``marker`` when unpickled; with the edgepose format tag unless not ``tagged``."""
    payload = {"arch": ARCH, "card": CARD.to_dict(), "state_dict": {}, "optimizer": Payload(marker)}
    if tagged:
        payload["format"] = FORMAT
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


def edgepose(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess, command: str, *texts: str) -> str:
    """Exit code 2 and exactly one stderr line ``edgepose COMMAND: error: ...`` holding every text."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"edgepose {command}: error: "), lines[0]
    for text in texts:
        assert text in lines[0], lines[0]
    return lines[0]


def refusal(path: Path) -> str:
    return f"{path} contains Python objects that are not allowed ({SYSTEM}): refusing to unpickle it"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where the pickled call would leave its mark; every test below asserts that it did not."""
    return tmp_path / "pwned"


@pytest.mark.parametrize(("command", "extra"), [
    ("export", ["--out", "{tmp}/m.onnx"]),
    ("verify", ["{onnx}"]),
    ("evaluate", ["--ann", "{tmp}/none.json", "--images", "{tmp}", "--workers", "0", "--out", "{tmp}/eval"]),
])
def test_cli_refuses_a_checkpoint_that_runs_code(command, extra, tmp_path, marker):
    evil = hostile(tmp_path / "evil.pth", marker)
    onnx = conv_heatmap_model(tmp_path / "other.onnx", CARD, input_size=(96, 128))
    before = sorted(p.name for p in tmp_path.iterdir())
    out = edgepose(command, evil, *(a.format(tmp=tmp_path, onnx=onnx) for a in extra))
    one_line_error(out, command, refusal(evil))
    assert not marker.exists(), "the pickled call ran"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written: no m.onnx, no eval/


def test_cli_refuses_a_legacy_format_checkpoint_that_runs_code(tmp_path, marker):
    evil = hostile(tmp_path / "old.pth", marker, legacy=True)
    one_line_error(edgepose("export", evil, "--out", tmp_path / "m.onnx"), "export", refusal(evil))
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("tagged", [True, False])
def test_model_init_refuses_a_checkpoint_that_runs_code(tagged, synth, tmp_path, marker):
    """model.init reads our checkpoints, then MMPose's (a foreign file): neither path unpickles the payload."""
    from compress.train.loop import build_for

    evil = hostile(tmp_path / "init.pth", marker, tagged=tagged)
    config = from_dict(TrainConfig, config_dict(synth, tmp_path / "run", model={"init": str(evil)}))
    with pytest.raises(CheckpointError) as caught:
        build_for(config, config.model_card())
    assert str(caught.value) == refusal(evil) and not marker.exists()


def test_mmpose_loader_refuses_a_checkpoint_that_runs_code(tmp_path, marker):
    evil = hostile(tmp_path / "mmpose.pth", marker, tagged=False)
    with pytest.raises(CheckpointError) as caught:
        load_mmpose_checkpoint(build_model("lite_hrnet_tiny", input_size=(96, 128)), evil)
    message = str(caught.value)
    assert message.startswith(refusal(evil)) and "keep only its weights" in message and "\n" not in message
    assert not marker.exists()


def test_resume_refuses_a_last_checkpoint_that_runs_code(synth, tmp_path, marker):
    from compress.train.loop import train

    config = from_dict(TrainConfig, config_dict(synth, tmp_path / "run", epochs=1, max_iters_per_epoch=1))
    (tmp_path / "run").mkdir()
    evil = hostile(tmp_path / "run" / "last.pth", marker)
    with pytest.raises(CheckpointError) as caught:
        train(config, resume=True, progress=False)
    assert str(caught.value) == refusal(evil) and not marker.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pth"]  # no log, no new checkpoint


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """The payload of a real checkpoint, for the damaged variants below."""
    path = tmp_path_factory.mktemp("good") / "model.pth"
    save_checkpoint(path, build_model("lite_hrnet_tiny", input_size=(96, 128)), CARD)
    return read_checkpoint(path)


@pytest.mark.parametrize(("change", "message"), [
    ({"arch": None}, "without its 'arch' entry"),
    ({"state_dict": None}, "without its 'state_dict' entry"),
    ({"card": None}, "without its 'card' entry"),
    ({"arch": ["lite_hrnet_tiny"]}, "checkpoint entry 'arch' must be a dict, got list"),
    ({"card": "rgb"}, "checkpoint entry 'card' must be a dict, got str"),
    ({"state_dict": [1, 2]}, "checkpoint entry 'state_dict' must be a dict, got list"),
    ({"arch": {"num_keypoints": 17}}, "checkpoint entry 'arch' must name the model"),
    ({"state_dict": {"backbone.x": [1.0]}}, "checkpoint entry 'state_dict' holds 'backbone.x', which is not a named"),
    ({"ema_state_dict": {"w": 3}}, "checkpoint entry 'ema_state_dict' holds 'w', which is not a named tensor"),
    ({"pruned_channels": {"backbone": {"out_channels": "9"}}}, "'pruned_channels' must map layer names"),
    ({"arch": {**ARCH, "name": "no_such_net"}}, "cannot rebuild the model its 'arch' entry describes"),
    ({"arch": {**ARCH, "depth": 3}}, "cannot rebuild the model its 'arch' entry describes"),
    ({"card": {"codec": "msra"}}, "the checkpoint's card is invalid"),
    ({"pruned_channels": {"backbone.stem": {"forward": 3}}}, "which is not a channel count"),
])
def test_damaged_checkpoint_names_the_entry(good, tmp_path, change, message):
    payload = {**good, **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    torch.save(payload, tmp_path / "damaged.pth")
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path / "damaged.pth")
    assert message in str(caught.value) and str(tmp_path / "damaged.pth") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_names_the_missing_entry(good, tmp_path):
    torch.save({k: v for k, v in good.items() if k != "state_dict"}, tmp_path / "no_weights.pth")
    out = edgepose("export", tmp_path / "no_weights.pth", "--out", tmp_path / "m.onnx")
    one_line_error(out, "export", f"{tmp_path / 'no_weights.pth'} is an edgepose checkpoint without its "
                                  "'state_dict' entry")
    assert not (tmp_path / "m.onnx").exists()


def test_numpy_state_is_saved_as_plain_lists_and_restores(tmp_path):
    """What the trainer saves (numpy RNG state, numpy scalars) loads with weights_only and restores the stream."""
    np.random.seed(7)
    state = np.random.get_state()
    want = np.random.rand(3)
    save_checkpoint(tmp_path / "last.pth", build_model("lite_hrnet_tiny", input_size=(96, 128)), CARD,
                    rng={"numpy": state}, metrics={"AP": np.float64(0.5)})
    payload = read_checkpoint(tmp_path / "last.pth")
    assert payload["metrics"]["AP"] == 0.5 and type(payload["metrics"]["AP"]) is float
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "last.pth") == []
    np.random.set_state(payload["rng"]["numpy"])
    np.testing.assert_array_equal(np.random.rand(3), want)


def test_checkpoints_written_before_keep_loading(good, tmp_path):
    """Older checkpoints hold numpy's RNG state as an array: numeric arrays are rebuilt, nothing else is."""
    state = np.random.get_state()
    torch.save({**good, "rng": {"numpy": state}}, tmp_path / "old.pth")
    np.testing.assert_array_equal(read_checkpoint(tmp_path / "old.pth")["rng"]["numpy"][1], state[1])


def test_numpy_object_arrays_are_refused(good, tmp_path, marker):
    torch.save({**good, "rng": np.array([Payload(marker)], dtype=object)}, tmp_path / "objects.pth")
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(tmp_path / "objects.pth")
    assert str(caught.value) == refusal(tmp_path / "objects.pth") and not marker.exists()


# A .pt2 (torch.export) program is a torch file too, and torch.export.load has no weights_only: it unpickles
# payloads marked use_pickle, pickle.loads opaque objects, falls back to full unpickling of sample inputs and
# sympify()s (evals) shape expressions. Each variant below ran its payload before the archive check.


def _pickled(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _edit_json(members: dict[str, bytes], name: str, edit) -> None:
    data = json.loads(members[name])
    edit(data)
    members[name] = json.dumps(data).encode()


def _pickled_weight(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        config = "data/weights/model_weights_config.json"
        first = next(iter(json.loads(members[config])["config"]))
        _edit_json(members, config, lambda c: c["config"][first].update(use_pickle=True))
        members["data/weights/" + json.loads(members[config])["config"][first]["path_name"]] = _pickled(
            Payload(marker))
    return edit


def _opaque_constant(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        _edit_json(members, "data/constants/model_constants_config.json", lambda c: c["config"].update(
            evil={"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}))
        members["data/constants/opaque_obj_0"] = pickle.dumps(Payload(marker))
    return edit


def _sample_inputs(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        members["data/sample_inputs/model.pt"] = _pickled(Payload(marker))
    return edit


def _shape_expression(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        text = members["models/model.json"].decode()
        symbol = re.search(r"Symbol\('s\d+', positive=True, integer=True\)", text).group(0)
        members["models/model.json"] = text.replace(symbol, f"__import__('os').system('touch {marker}')").encode()
    return edit


def _guard_code(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        _edit_json(members, "models/model.json",
                   lambda m: m.update(guards_code=[f"__import__('os').system('touch {marker}') == 0"]))
    return edit


def _call_target(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        members["models/model.json"] = members["models/model.json"].replace(
            b"torch.ops.aten.sigmoid.default", b"torch.os.system", 1)
    return edit


def _shared_library(marker: Path):
    def edit(members: dict[str, bytes]) -> None:
        members["data/aotinductor/model/model.so"] = b"\x7fELF"
    return edit


PT2_ATTACKS = {
    "pickled weight": (_pickled_weight, "holds a pickled payload ('model.conv.weight' in data/weights/"),
    "opaque constant": (_opaque_constant, "holds the archive member"),
    "sample inputs": (_sample_inputs, f"holds Python objects that are not allowed in data/sample_inputs/model.pt "
                                      f"({SYSTEM})"),
    "shape expression": (_shape_expression, "holds the shape expression \"__import__('os').system("),
    "guard code": (_guard_code, "holds the guard code \"__import__('os').system("),
    "call target": (_call_target, "holds the call target 'torch.os.system'"),
    "AOTInductor library": (_shared_library, "holds the archive member"),
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    return export_tiny(tmp_path_factory.mktemp("programs"), CARD)


@pytest.mark.parametrize("attack", sorted(PT2_ATTACKS))
def test_pt2_program_that_runs_code_is_refused(programs, tmp_path, marker, attack):
    from edgepose.backends.torch_backend import TorchBackend

    make, text = PT2_ATTACKS[attack]
    evil = rewrite_pt2(programs["pt2"], tmp_path / "evil.pt2", make(marker))
    with pytest.raises(ModelError) as caught:
        TorchBackend(evil, card=CARD)
    message = str(caught.value)
    assert message.startswith(f"{evil} {text}") and message.endswith("which could run code when loaded: refusing "
                                                                      "to load it"), message
    assert "\n" not in message and not marker.exists()


def test_pt2_refusal_on_the_command_line(programs, tmp_path, marker, coco_dir):
    evil = rewrite_pt2(programs["pt2"], tmp_path / "evil.pt2", _shape_expression(marker))
    CARD.save(tmp_path / "card.yaml")
    (tmp_path / "boxes.json").write_text(json.dumps({"000000040083.jpg": [[100, 50, 200, 300, 0.9]]}))
    out = edgepose("predict", coco_dir / "000000040083.jpg", "--model", evil, "--card", tmp_path / "card.yaml",
                   "--boxes", tmp_path / "boxes.json", "--out", tmp_path / "out")
    one_line_error(out, "predict", f"{evil} holds the shape expression", "refusing to load it")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_plain_pt2_program_still_loads(programs):
    from edgepose.backends.torch_backend import TorchBackend

    with TorchBackend(programs["pt2"]) as backend:
        assert backend.card == CARD and [s.describe() for s in backend.outputs] == ["heatmaps float32[?,17,32,24]"]
