"""RTMPose-t/s/m and HRNet-W32/W48 are MMPose's networks: same outputs on the same weights, same parameter counts,
MMPose checkpoint layouts load, and they export to ONNX with parity.

The reference outputs are MMPose's own (tests/data/mmpose_reference, recorded by
tests/helpers/record_mmpose_reference.py under MMPose 1.3.2); the weights are regenerated here from MMPose's key
names and shapes by tests/helpers/mmpose_weights.py, the function the recorder used. MMPose is not needed here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.checkpoint import load_model, save_checkpoint
from compress.models import build_model, count_flops, count_params, load_mmpose_checkpoint, to_mmpose_state_dict
from edgepose.card import ModelCard
from edgepose.errors import CheckpointError
from tests.helpers.mmpose_weights import checksum, seeded_input, seeded_state_dict

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "mmpose_reference"

# MMPose's model zoo tables, COCO 256x192: parameters and GFLOPs.
PUBLISHED = {"rtmpose_t": (3.34e6, 0.36), "rtmpose_s": (5.47e6, 0.68), "rtmpose_m": (13.59e6, 1.93),
             "hrnet_w32": (28.5e6, 7.7), "hrnet_w48": (63.6e6, 15.77)}
# Fixture name -> our build_model arguments (rtmpose_t_heatmap: MMPose's cspnext-tiny_udp heatmap model).
BUILD = {**{name: {"name": name} for name in PUBLISHED}, "rtmpose_t_heatmap": {"name": "rtmpose_t", "head": "heatmap"}}
IMAGENET = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375), "color": "rgb"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: the machine's two cores are shared (see tests/compress/test_models.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@cache
def reference(name: str) -> dict:
    """The fixture as a dict; ``shapes`` unpadded to tuples, ``keys`` to a list of str."""
    with np.load(REFERENCE / f"{name}.npz") as data:
        ref = {k: data[k] for k in data.files}
    ref["keys"] = [str(k) for k in ref["keys"]]
    ref["shapes"] = [tuple(int(d) for d in row if d >= 0) for row in ref["shapes"]]
    return ref


def mmpose_weights(ref: dict) -> dict[str, torch.Tensor]:
    """The seeded MMPose-keyed state dict of a fixture, checked to be the very tensors the recorder used."""
    state = seeded_state_dict(ref["keys"], ref["shapes"])
    assert checksum(state) == pytest.approx(float(ref["weights_checksum"]), rel=1e-9), \
        "torch's generator no longer gives the recorded weights: re-record the fixtures"
    return state


@pytest.mark.parametrize("name", list(BUILD))
def test_outputs_match_mmpose(name):
    ref = reference(name)
    _, _, h, w = (int(v) for v in ref["input_shape"])
    model = build_model(**BUILD[name], input_size=(w, h)).eval()
    report = load_mmpose_checkpoint(model, mmpose_weights(ref))  # strict: MMPose's keys and shapes, no more
    assert not (report.missing or report.unexpected or report.mismatched)
    x = seeded_input(ref["input_shape"])
    assert float(x.double().sum()) == pytest.approx(float(ref["input_checksum"]), rel=1e-9)
    with torch.no_grad():
        out = model(x)
    assert list(out) == list(model.output_names) and set(out) <= set(ref)
    for key, value in out.items():
        expected = ref[key]
        assert np.abs(expected).max() > 0.1, "the comparison would be trivial"
        diff = float(np.abs(value.numpy() - expected).max())
        assert diff < 1e-4, f"{name} {key}: max |ours - MMPose| = {diff:.3g}"


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_complexity_matches_mmpose(name):
    model = build_model(name)
    params, flops = count_params(model), count_flops(model, (192, 256))
    published_params, published_flops = PUBLISHED[name]
    assert params == int(reference(name)["params"])  # MMPose's own model, counted the same way
    assert abs(params / published_params - 1) < 0.01, f"{name}: {params / 1e6:.2f}M vs {published_params / 1e6}M"
    assert abs(flops / published_flops - 1) < 0.02, f"{name}: {flops:.3f} GFLOPs vs {published_flops}"


def test_default_heads_and_output_names():
    for name in ("rtmpose_t", "rtmpose_s", "rtmpose_m"):
        model = build_model(name)
        assert (model.head, model.output_names, model.simcc_split_ratio) == ("simcc", ("simcc_x", "simcc_y"), 2.0)
        assert model.arch["head"] == "simcc" and build_model(**model.arch).head == "simcc"
        assert (model.keypoint_head.cls_x.out_features, model.keypoint_head.cls_y.out_features) == (384, 512)
    hrnet = build_model("hrnet_w32", num_keypoints=5, input_size=(96, 128))
    assert (hrnet.head, hrnet.output_names, hrnet.heatmap_size) == ("heatmap", ("heatmaps",), (24, 32))
    simcc = build_model("hrnet_w32", head="simcc", input_size=(96, 128)).eval()
    with torch.no_grad():
        out = simcc(seeded_input((1, 3, 128, 96)))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"simcc_x": (1, 17, 192), "simcc_y": (1, 17, 256)}
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("rtmpose_t", input_size=(100, 128))


def test_mmpose_checkpoint_layouts_load():
    """MMPose 0.x ``keypoint_head.*`` under a DDP ``module.`` prefix in a ``{"state_dict": ...}`` dict; another
    architecture's checkpoint fails naming the keys (1.x ``head.*`` loads in ``test_outputs_match_mmpose``)."""
    ref = reference("hrnet_w32")
    state = mmpose_weights(ref)
    legacy = {"module." + k.replace("head.", "keypoint_head.", 1) if k.startswith("head.") else "module." + k: v
              for k, v in state.items()}
    model = build_model("hrnet_w32")
    assert not load_mmpose_checkpoint(model, {"state_dict": legacy}).missing
    assert torch.equal(model.keypoint_head.final_layer.weight, state["head.final_layer.weight"])
    assert to_mmpose_state_dict(model).keys() == state.keys()
    assert list(to_mmpose_state_dict(model, version=0))[-1] == "keypoint_head.final_layer.bias"
    with pytest.raises(CheckpointError, match=r"does not match HRNetPose hrnet_w48.*another shape"):
        load_mmpose_checkpoint(build_model("hrnet_w48"), state)
    tiny = mmpose_weights(reference("rtmpose_t"))
    with pytest.raises(CheckpointError, match=r"does not match RTMPosePose rtmpose_s.*missing: backbone\.stage"):
        load_mmpose_checkpoint(build_model("rtmpose_s"), tiny)


def test_checkpoint_round_trip_for_export(tmp_path):
    """What ``edgepose export`` starts from: our checkpoint of an MMPose-loaded RTMPose rebuilds the same model."""
    model = build_model("rtmpose_t").eval()
    load_mmpose_checkpoint(model, mmpose_weights(reference("rtmpose_t")))
    card = ModelCard(input_size=(192, 256), codec="simcc", simcc_split_ratio=2.0, sigma=(4.9, 5.66), **IMAGENET)
    save_checkpoint(tmp_path / "rtmpose_t.pth", model, card)
    loaded, loaded_card, _ = load_model(tmp_path / "rtmpose_t.pth")
    assert loaded.arch == model.arch and loaded_card.output_names == model.output_names
    x = seeded_input((1, 3, 256, 192))
    with torch.no_grad():
        assert all(torch.equal(v, loaded(x)[k]) for k, v in model(x).items())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter (dynamo=False) is deprecated
@pytest.mark.parametrize("name", ["rtmpose_t", "rtmpose_s", "rtmpose_m", "hrnet_w32"])
def test_onnx_export_parity(name, tmp_path):
    """``deploy.export.export_model`` then the parity check ``edgepose export`` runs, at 96x128 (HRNet-W48 is left
    out for time: 250 MB of weights, the same code as W32)."""
    pytest.importorskip("onnxruntime")
    from deploy.export import export_model
    from deploy.verify import LoadedModel, verify

    model = build_model(name, input_size=(96, 128)).eval()
    ours = to_mmpose_state_dict(model)
    load_mmpose_checkpoint(model, seeded_state_dict(list(ours), [v.shape for v in ours.values()]))
    codec = {"codec": "simcc", "simcc_split_ratio": 2.0, "sigma": (4.9, 5.66)} if model.head == "simcc" else \
        {"codec": "msra", "heatmap_size": (24, 32)}
    card = ModelCard(input_size=(96, 128), **IMAGENET, **codec)
    # onnxslim is skipped for HRNet: its plain conv/BN/ReLU graph gains nothing from it, and slimming 114 MB of
    # weights takes 6 s; RTMPose's graph (GAU, hard sigmoid, SiLU) goes through the full `edgepose export` path.
    path = export_model(model, card, tmp_path / f"{name}.onnx", slim=model.head == "simcc")
    report = verify(LoadedModel(model, card, name), path, count=2)
    assert report.passed, report.summary()
    assert all(r["max_abs"] < 1e-4 for r in report.outputs.values()), report.summary()
