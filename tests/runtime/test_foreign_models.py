"""Models from MMDeploy and rtmlib run without a hand-written card: an MMDeploy SDK folder's card comes from its
pipeline.json; a bare RTMPose (SimCC) ONNX gets an inferred card and a warning that names the assumptions.

The folders are written here as MMDeploy's ``export2SDK`` writes them (mmdeploy/backend/sdk/export_info.py with the
mmpose task processor): MMPose 1.x exports (codec in the postprocess params) and a 0.x export (test_cfg there).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.coco import layout as coco
from edgepose.errors import CardError
from edgepose.foreign import InferredCardWarning, card_from_mmdeploy_dir, infer_simcc_card
from edgepose.pipeline import PoseEstimator
from tests.helpers.onnx_builders import conv_heatmap_model

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
SIZE = (192, 256)  # [width, height]


def simcc_model(path, size=SIZE, ratio=2.0, keypoints=17, names=("simcc_x", "simcc_y"),
                y_length: int | None = None) -> tuple[str, np.ndarray]:
    """input (N,3,H,W) -> simcc_x (N,K,W*r), simcc_y (N,K,H*r or ``y_length``) with one Gaussian peak per keypoint
    at fixed bins (returned, (K, 2) x/y bins); the input feeds the graph (zero weights), so the batch axis is real."""
    w, h = size
    lx, ly = int(round(w * ratio)), y_length or int(round(h * ratio))
    rng = np.random.default_rng(0)
    bins = np.stack([rng.integers(lx // 4, 3 * lx // 4, keypoints), rng.integers(ly // 4, 3 * ly // 4, keypoints)], 1)
    inits, nodes = [], [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
                        helper.make_node("Flatten", ["pooled"], ["feat"], axis=1)]
    for axis, (name, length) in enumerate(zip(names, (lx, ly), strict=True)):
        profile = np.exp(-((np.arange(length)[None] - bins[:, axis:axis + 1]) ** 2) / (2 * 5.0 ** 2))
        inits += [numpy_helper.from_array(np.zeros((3, keypoints * length), np.float32), f"w{axis}"),
                  numpy_helper.from_array(profile.reshape(-1).astype(np.float32), f"b{axis}"),
                  numpy_helper.from_array(np.array([0, keypoints, length], np.int64), f"shape{axis}")]
        nodes += [helper.make_node("MatMul", ["feat", f"w{axis}"], [f"mm{axis}"]),
                  helper.make_node("Add", [f"mm{axis}", f"b{axis}"], [f"flat{axis}"]),
                  helper.make_node("Reshape", [f"flat{axis}", f"shape{axis}"], [name])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", keypoints, n_len])
               for n, n_len in zip(names, (lx, ly), strict=True)]
    graph = helper.make_graph(nodes, "simcc_peaks", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                   ["N", 3, h, w])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path), bins


def _preprocess(size, affine=None, to_rgb=True, mean=MEAN, std=STD) -> dict:
    w, h = size
    return {"type": "Task", "module": "Transform", "name": "Preprocess", "input": ["img"], "output": ["prep_output"],
            "transforms": [
                {"type": "LoadImageFromFile"},
                {"type": "TopDownGetBboxCenterScale", "padding": 1.25, "image_size": [w, h]},
                {"type": "TopDownAffine", "image_size": [w, h], **(affine or {})},
                {"type": "Normalize", "mean": mean, "std": std, "to_rgb": to_rgb},
                {"type": "ImageToTensor", "keys": ["img"]},
                {"type": "Collect", "keys": ["img"], "meta_keys": ["img_shape", "pad_shape", "ori_shape",
                                                                   "img_norm_cfg", "scale_factor", "bbox_score",
                                                                   "center", "scale"]}]}


NET_TASK = {"name": "topdownposeestimator", "type": "Task", "module": "Net", "is_batched": False,
            "input": ["prep_output"], "output": ["infer_output"], "input_map": {"img": "input"}, "output_map": {}}


def _postprocess(component: str, params: dict) -> dict:
    return {"type": "Task", "module": "mmpose", "name": "postprocess", "component": component, "params": params,
            "output": ["post_output"], "input": ["prep_output", "infer_output"]}


RTMPOSE_PARAMS = {"flip_test": False, "type": "SimCCLabel", "input_size": [192, 256], "sigma": [4.9, 5.66],
                  "simcc_split_ratio": 2.0, "normalize": False, "use_dark": False}
HRNET_DARK_PARAMS = {"flip_test": False, "flip_mode": "heatmap", "shift_heatmap": True, "type": "MSRAHeatmap",
                     "input_size": [192, 256], "heatmap_size": [48, 64], "sigma": 2, "unbiased": True,
                     "post_process": "default"}
HRNET_UDP_PARAMS = {"flip_test": False, "flip_mode": "heatmap", "shift_heatmap": False, "type": "UDPHeatmap",
                    "input_size": [192, 256], "heatmap_size": [48, 64], "sigma": 2, "post_process": "default",
                    "use_udp": True}
LEGACY_PARAMS = {"flip_test": True, "post_process": "unbiased", "shift_heatmap": True, "modulate_kernel": 11}


def write_sdk_folder(folder, net_maker, pipeline: dict, output_names: list[str]) -> dict:
    """An MMDeploy SDK folder: end2end.onnx from ``net_maker(path)`` and deploy/pipeline/detail.json."""
    folder.mkdir(parents=True, exist_ok=True)
    result = net_maker(folder / "end2end.onnx")
    deploy = {"version": "1.3.1", "task": "PoseDetector",
              "models": [{"name": "topdownposeestimator", "net": "end2end.onnx", "weights": "",
                          "backend": "onnxruntime", "precision": "FP32", "batch_size": 1, "dynamic_shape": True}],
              "customs": []}
    detail = {"version": "1.3.1",
              "codebase": {"task": "PoseDetection", "codebase": "mmpose", "version": "1.3.1", "pth": "model.pth",
                           "config": "rtmpose-m_8xb256-420e_coco-256x192.py"},
              "codebase_config": {"type": "mmpose", "task": "PoseDetection"},
              "onnx_config": {"type": "onnx", "export_params": True, "keep_initializers_as_inputs": False,
                              "opset_version": 11, "save_file": "end2end.onnx", "input_names": ["input"],
                              "output_names": output_names, "input_shape": None, "optimize": True,
                              "dynamic_axes": {"input": {"0": "batch"}, **{n: {"0": "batch"} for n in output_names}}},
              "backend_config": {"type": "onnxruntime"}, "calib_config": {}}
    for name, data in (("deploy.json", deploy), ("pipeline.json", pipeline), ("detail.json", detail)):
        (folder / name).write_text(json.dumps(data, indent=4))
    return {"folder": folder, "net": result}


def pipeline_json(pre: dict, post: dict) -> dict:
    return {"pipeline": {"input": ["img"], "output": ["post_output"], "tasks": [pre, dict(NET_TASK), post]}}


@pytest.fixture()
def rtmpose_dir(tmp_path):
    pipeline = pipeline_json(_preprocess(SIZE), _postprocess("SimCCLabelDecode", dict(RTMPOSE_PARAMS)))
    return write_sdk_folder(tmp_path / "rtmpose-m", simcc_model, pipeline, ["simcc_x", "simcc_y"])


def heatmap_net(path):
    return conv_heatmap_model(path, None, input_size=SIZE, output_name="output")


def test_rtmpose_sdk_folder_card(rtmpose_dir):
    net, card = card_from_mmdeploy_dir(rtmpose_dir["folder"])
    assert net == str(rtmpose_dir["folder"] / "end2end.onnx")
    assert card.input_size == SIZE and card.mean == tuple(MEAN) and card.std == tuple(STD) and card.color == "rgb"
    assert card.codec == "simcc" and card.simcc_split_ratio == 2.0 and card.sigma == (4.9, 5.66)
    assert card.decode == "none" and card.bbox_padding == 1.25
    assert card.input_name == "input" and card.output_names == ("simcc_x", "simcc_y")
    assert card.keypoints == coco.KEYPOINTS and card.extra["mmdeploy"] == "1.3.1"


@pytest.mark.parametrize(
    ("params", "affine", "codec", "decode"),
    [(HRNET_DARK_PARAMS, None, "msra", "dark"), ({**HRNET_DARK_PARAMS, "unbiased": False}, None, "msra", "shift"),
     (HRNET_UDP_PARAMS, {"use_udp": True}, "udp", "dark")],
    ids=["msra-dark", "msra-shift", "udp"],
)
def test_heatmap_sdk_folder_card(tmp_path, params, affine, codec, decode):
    pipeline = pipeline_json(_preprocess(SIZE, affine, to_rgb=False),
                             _postprocess("TopdownHeatmapSimpleHeadDecode", dict(params)))
    folder = write_sdk_folder(tmp_path / "hrnet", heatmap_net, pipeline, ["output"])["folder"]
    _, card = card_from_mmdeploy_dir(folder)
    assert (card.codec, card.decode, card.heatmap_size, card.sigma) == (codec, decode, (48, 64), 2.0)
    assert card.input_size == SIZE and card.color == "bgr" and card.output_names == ("output",)
    assert card.blur_kernel_size == 11 and card.bbox_padding == 1.25


def test_legacy_mmpose0_folder_takes_heatmap_size_from_the_net(tmp_path):
    pre = _preprocess(SIZE)
    pre["transforms"][0]["channel_order"] = "rgb"
    pre["transforms"][1]["padding"] = 1.5
    pipeline = pipeline_json(pre, _postprocess("TopdownHeatmapSimpleHeadDecode", dict(LEGACY_PARAMS)))
    folder = write_sdk_folder(tmp_path / "hrnet0", heatmap_net, pipeline, ["output"])["folder"]
    _, card = card_from_mmdeploy_dir(folder)
    assert (card.codec, card.decode, card.heatmap_size, card.bbox_padding) == ("msra", "dark", (48, 64), 1.5)


def test_hand_model_gets_unnamed_keypoints(tmp_path):
    pipeline = pipeline_json(_preprocess((256, 256)), _postprocess(
        "SimCCLabelDecode", {**RTMPOSE_PARAMS, "input_size": [256, 256], "sigma": [5.66, 5.66], "use_dark": True}))
    folder = write_sdk_folder(tmp_path / "hand", lambda p: simcc_model(p, (256, 256), keypoints=21), pipeline,
                              ["simcc_x", "simcc_y"])["folder"]
    with PoseEstimator(folder) as estimator:
        card = estimator.card
    assert card.num_keypoints == 21 and card.keypoints[20] == "kpt_20" and card.flip_pairs == ()
    assert card.decode == "dark" and card.blur_kernel_size == 35  # MMPose: (20 sigma - 7) // 3, made odd


def expected_keypoints(bins: np.ndarray, box_xywh, size=SIZE, ratio=2.0, padding=1.25) -> np.ndarray:
    """Where peak bins land in the frame: MMPose's centre/scale (padded, fixed to the input aspect), SimCC / r."""
    x, y, bw, bh = box_xywh
    center = np.array([x + bw / 2, y + bh / 2])
    sw, sh = bw * padding, bh * padding
    aspect = size[0] / size[1]
    sw, sh = (sw, sw / aspect) if sw > sh * aspect else (sh * aspect, sh)
    return center + (bins / ratio - np.array(size) / 2) * np.array([sw, sh]) / np.array(size)


def predict(*args):
    return subprocess.run([sys.executable, "-m", "edgepose", "predict", *map(str, args)], capture_output=True,
                          text=True)


def test_predict_runs_an_sdk_folder_end_to_end(tmp_path, coco_dir, rtmpose_dir):
    image = sorted(coco_dir.glob("*.jpg"))[0]
    box = [40.0, 30.0, 120.0, 200.0]
    (tmp_path / "boxes.json").write_text(json.dumps({image.name: [[*box, 0.9]]}))
    out = predict(image, "--model", rtmpose_dir["folder"], "--boxes", tmp_path / "boxes.json", "--out",
                  tmp_path / "out", "--no-draw")
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr and "warning" not in out.stderr  # the folder's card is real, not inferred
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(results) == 1
    xy = np.asarray(results[0]["keypoints"]).reshape(-1, 3)[:, :2]
    np.testing.assert_allclose(xy, expected_keypoints(rtmpose_dir["net"][1], box), atol=0.05)


def test_bare_simcc_onnx_gets_an_inferred_card_with_a_warning(tmp_path, coco_dir):
    path, bins = simcc_model(tmp_path / "rtmpose-m_simcc-body7_pt-body7_420e-256x192.onnx")
    with pytest.warns(InferredCardWarning, match=r"ASSUMED RTMPose preprocessing: mean \[123.675"):
        estimator = PoseEstimator(path)
    with estimator:
        card = estimator.card
        frame = np.zeros((300, 240, 3), np.uint8)
        poses = estimator(frame, boxes=np.array([[40.0, 30.0, 160.0, 230.0]]))
    assert card.name.startswith("inferred") and card.extra["inferred"]["assumed"]["color"] == "rgb"
    assert card.input_size == SIZE and card.simcc_split_ratio == 2.0 and card.sigma == (4.9, 5.66)
    assert (card.mean, card.std, card.color, card.bbox_padding) == (tuple(MEAN), tuple(STD), "rgb", 1.25)
    np.testing.assert_allclose(poses.xy[0], expected_keypoints(bins, (40, 30, 120, 200)), atol=0.05)
    image = sorted(coco_dir.glob("*.jpg"))[0]
    (tmp_path / "boxes.json").write_text(json.dumps({image.name: [[40.0, 30.0, 120.0, 200.0, 0.9]]}))
    out = predict(image, "--model", path, "--boxes", tmp_path / "boxes.json", "--out", tmp_path / "out", "--no-draw")
    assert out.returncode == 0, out.stderr
    assert "inferred an RTMPose SimCC card" in out.stderr and "ASSUMED" in out.stderr


@pytest.mark.parametrize(("size", "sigma"), [((288, 384), (6.0, 6.93)), ((256, 256), (5.66, 5.66))])
def test_inferred_sigma_follows_rtmpose_configs(tmp_path, size, sigma):
    from edgepose.backends import open_backend

    path, _ = simcc_model(tmp_path / "m.onnx", size, names=("out_b", "out_a"))
    with open_backend(path) as backend:
        card = infer_simcc_card(backend)
    assert card.sigma == sigma and card.input_size == size and card.output_names == ("out_b", "out_a")


def test_bare_onnx_without_simcc_shapes_still_fails_clearly(tmp_path):
    path = conv_heatmap_model(tmp_path / "heatmaps.onnx", None)
    with pytest.raises(CardError, match="carries no edgepose model card"):
        PoseEstimator(path)
    bad_ratio = simcc_model(tmp_path / "odd.onnx", names=("a", "b"), y_length=500)[0]  # Ly / H != Lx / W
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CardError, match="carries no edgepose model card"):
            PoseEstimator(bad_ratio)


def _break(pipeline: dict, how: str) -> tuple[dict | str, str]:
    """A malformed copy of ``pipeline`` and the key path its error must name."""
    broken = copy.deepcopy(pipeline)
    transforms = broken["pipeline"]["tasks"][0]["transforms"]
    if how == "mean":
        transforms[3]["mean"] = [123.675, 116.28]
        return broken, "pipeline.tasks[0].transforms[3].mean"
    if how == "image_size":
        transforms[2]["image_size"] = "192x256"
        return broken, "pipeline.tasks[0].transforms[2].image_size"
    if how == "codec":
        broken["pipeline"]["tasks"][2]["params"]["type"] = "MegviiHeatmap"
        broken["pipeline"]["tasks"][2]["component"] = "TopdownHeatmapSimpleHeadDecode"
        return broken, "pipeline.tasks[2].component"
    if how == "split_ratio":
        broken["pipeline"]["tasks"][2]["params"]["simcc_split_ratio"] = -2
        return broken, "pipeline.tasks[2].params.simcc_split_ratio"
    if how == "tasks":
        broken["pipeline"]["tasks"] = {"0": "Preprocess"}
        return broken, "pipeline.tasks"
    return '{"pipeline": {"tasks": [', "not valid JSON"


@pytest.mark.parametrize("how", ["mean", "image_size", "codec", "split_ratio", "tasks", "json"])
def test_malformed_pipeline_json_gives_one_line_error_naming_file_and_key(rtmpose_dir, how):
    path = rtmpose_dir["folder"] / "pipeline.json"
    broken, key = _break(json.loads(path.read_text()), how)
    path.write_text(broken if isinstance(broken, str) else json.dumps(broken))
    with pytest.raises(CardError) as caught:
        card_from_mmdeploy_dir(rtmpose_dir["folder"])
    message = str(caught.value)
    assert str(path) in message and key in message and "\n" not in message


def test_cli_reports_a_malformed_folder_in_one_line(tmp_path, coco_dir, rtmpose_dir):
    path = rtmpose_dir["folder"] / "pipeline.json"
    broken, key = _break(json.loads(path.read_text()), "mean")
    path.write_text(json.dumps(broken))
    image = sorted(coco_dir.glob("*.jpg"))[0]
    (tmp_path / "boxes.json").write_text(json.dumps({image.name: [[40.0, 30.0, 120.0, 200.0, 0.9]]}))
    out = predict(image, "--model", rtmpose_dir["folder"], "--boxes", tmp_path / "boxes.json", "--out",
                  tmp_path / "out")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pipeline.json" in lines[0] and key in lines[0], out.stderr


def test_export_postprocess_and_non_pose_folders_are_refused(rtmpose_dir, tmp_path):
    detail = rtmpose_dir["folder"] / "detail.json"
    data = json.loads(detail.read_text())
    data["codebase_config"]["export_postprocess"] = True
    detail.write_text(json.dumps(data))
    with pytest.raises(CardError, match="codebase_config.export_postprocess"):
        card_from_mmdeploy_dir(rtmpose_dir["folder"])
    deploy = rtmpose_dir["folder"] / "deploy.json"
    deploy.write_text(json.dumps({**json.loads(deploy.read_text()), "task": "Detector"}))
    with pytest.raises(CardError, match="deploy.json: key 'task'"):
        card_from_mmdeploy_dir(rtmpose_dir["folder"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="end2end.onnx"):
        PoseEstimator(tmp_path / "empty")


def test_output_map_and_nested_params_are_read(tmp_path):
    """Newer exports map the net's own output names in the Net task (``output_map``); older ones nest the params."""
    pipeline = pipeline_json(_preprocess(SIZE), _postprocess("SimCCLabelDecode", {"params": dict(RTMPOSE_PARAMS)}))
    pipeline["pipeline"]["tasks"][1]["output_map"] = {"output": "simcc_x", "700": "simcc_y"}
    folder = write_sdk_folder(tmp_path / "rtm", lambda p: simcc_model(p, names=("output", "700")), pipeline,
                              ["output", "700"])["folder"]
    with PoseEstimator(folder) as estimator:
        assert estimator.card.output_names == ("output", "700") and estimator.card.sigma == (4.9, 5.66)


def card_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgepose", "card", *map(str, args)], capture_output=True, text=True)


def test_card_command_embeds_the_card_of_an_sdk_folder_or_an_inferred_one(rtmpose_dir, tmp_path):
    from edgepose.onnx_card import read_card

    _, expected = card_from_mmdeploy_dir(rtmpose_dir["folder"])
    shown = card_cli(rtmpose_dir["folder"], "--from-mmdeploy")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == expected.to_dict()
    out = card_cli(rtmpose_dir["folder"], "--from-mmdeploy", "--out", tmp_path / "carded.onnx")
    assert out.returncode == 0, out.stderr
    assert read_card(tmp_path / "carded.onnx") == expected
    bare, _ = simcc_model(tmp_path / "bare.onnx")  # (path, the bins it peaks at)
    inferred = card_cli(bare, "--infer", "--out", tmp_path / "inferred.onnx")
    assert inferred.returncode == 0 and "ASSUMED RTMPose preprocessing" in inferred.stderr, inferred.stderr
    card = read_card(tmp_path / "inferred.onnx")
    assert card.codec == "simcc" and card.simcc_split_ratio == 2.0 and card.input_size == SIZE
    plain = conv_heatmap_model(tmp_path / "plain.onnx", None, input_size=SIZE)
    refused = card_cli(plain, "--infer", "--out", tmp_path / "x.onnx")
    assert refused.returncode == 2 and "cannot be inferred" in refused.stderr and not (tmp_path / "x.onnx").exists()
