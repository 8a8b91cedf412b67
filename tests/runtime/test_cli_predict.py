"""`edgepose predict` on files, folders and video; bad input gives one-line errors or skipped items."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.card import ModelCard
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="shift")


def predict(*args):
    return subprocess.run([sys.executable, "-m", "edgepose", "predict", *map(str, args)], capture_output=True,
                          text=True)


def write_clip(path, coco_dir, frames: int, step: int) -> None:
    """A 10 FPS 320x240 MJPG clip of a real COCO photo panning ``step`` pixels a frame."""
    frame = cv2.resize(cv2.imread(str(sorted(coco_dir.glob("*.jpg"))[0])), (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for shift in range(frames):
        writer.write(np.roll(frame, shift * step, axis=1))
    writer.release()


@pytest.fixture()
def model(tmp_path):
    return conv_heatmap_model(tmp_path / "m.onnx", CARD)


def test_folder_with_corrupt_image_is_skipped_with_warning(tmp_path, coco_dir, model, yolox_path):
    images = tmp_path / "images"
    images.mkdir()
    for src in sorted(coco_dir.glob("*.jpg"))[:2]:
        shutil.copy(src, images / src.name)  # a temp copy: the fixtures themselves stay untouched
    data = (images / src.name).read_bytes()
    (images / "broken.jpg").write_bytes(data[:200])
    out = predict(images, "--model", model, "--detector", yolox_path, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert "skipped" in out.stderr and "broken.jpg" in out.stderr and "Traceback" not in out.stderr
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert {r["image_id"] for r in results} == {p.stem for p in sorted(coco_dir.glob("*.jpg"))[:2]}
    assert sorted(p.name for p in (tmp_path / "out" / "vis").iterdir()) == sorted(
        p.name for p in sorted(coco_dir.glob("*.jpg"))[:2])


def test_video_input(tmp_path, coco_dir, model, yolox_path):
    write_clip(tmp_path / "clip.avi", coco_dir, frames=4, step=3)
    out = predict(tmp_path / "clip.avi", "--model", model, "--detector", yolox_path, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert {r["image_id"] for r in results} <= {f"clip/{i:06d}" for i in range(4)} and results
    video = cv2.VideoCapture(str(tmp_path / "out" / "clip_pose.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    ("setup", "message"),
    [("empty_folder", "holds no images"), ("no_card", "no edgepose model card"), ("wrong_card", "contradicts"),
     ("missing_input", "input not found"), ("truncated_model", "truncated"),
     ("boxes_without_coco", "--coco")],
)
def test_user_mistakes_give_one_line_errors_and_no_output(tmp_path, coco_dir, model, yolox_path, setup, message):
    image = sorted(coco_dir.glob("*.jpg"))[0]
    args = [image, "--model", model, "--detector", yolox_path]
    if setup == "empty_folder":
        (tmp_path / "empty").mkdir()
        args[0] = tmp_path / "empty"
    elif setup == "no_card":
        args[2] = conv_heatmap_model(tmp_path / "plain.onnx", None)
    elif setup == "wrong_card":
        ModelCard(**{**CARD.to_dict(), "heatmap_size": [24, 32]}).save(tmp_path / "card.yaml")
        args += ["--card", tmp_path / "card.yaml"]
    elif setup == "missing_input":
        args[0] = tmp_path / "nope.jpg"
    elif setup == "truncated_model":
        data = Path(model).read_bytes()
        (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
        args[2] = tmp_path / "cut.onnx"
    elif setup == "boxes_without_coco":
        (tmp_path / "dets.json").write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 10, 10], "score": 1}]))
        args = args[:3] + ["--boxes", tmp_path / "dets.json"]
    out = predict(*args, "--out", tmp_path / "out")
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_boxes_file_mapping_and_degenerate_boxes(tmp_path, coco_dir, model):
    image = sorted(coco_dir.glob("*.jpg"))[0]
    boxes = {image.name: [[10, 10, 100, 200, 0.9], [5, 5, 0, 10, 0.8]]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = predict(image, "--model", model, "--boxes", tmp_path / "boxes.json", "--out", tmp_path / "out", "--no-draw")
    assert out.returncode == 0, out.stderr
    assert "dropped 1 box" in out.stderr
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(results) == 1 and results[0]["image_id"] == image.stem


def test_video_stream_outputs_jsonl_ids_and_annotated_video(tmp_path, coco_dir, model, yolox_path):
    write_clip(tmp_path / "walk.avi", coco_dir, frames=6, step=2)
    out = predict(tmp_path / "walk.avi", "--model", model, "--detector", yolox_path, "--out", tmp_path / "out",
                  "--detect-every", "2", "--smooth", "1.0", "0.01", "--track-by", "iou")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in (tmp_path / "out" / "walk.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(6))
    assert [r["detected"] for r in records] == [True, False] * 3
    assert np.allclose([r["time"] for r in records], np.arange(6) / 10)
    persons = [p for r in records for p in r["persons"]]
    assert persons and all(len(p["keypoints"]) == 17 and len(p["keypoints"][0]) == 3 and "id" in p for p in persons)
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(results) == len(persons) and all("track_id" in r for r in results)
    video = cv2.VideoCapture(str(tmp_path / "out" / "walk_pose.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6


def test_missing_camera_and_bad_stream_settings(tmp_path, model, yolox_path):
    out = predict("7", "--model", model, "--detector", yolox_path, "--out", tmp_path / "out", "--no-draw")
    assert out.returncode == 1
    assert "skipped 7: cannot open camera" in out.stderr and "Traceback" not in out.stderr
    out = predict("7", "--model", model, "--detector", yolox_path, "--detect-every", "0")
    assert out.returncode != 0 and "detect_every" in out.stderr and "Traceback" not in out.stderr


def test_inputs_with_colliding_outputs_are_refused(tmp_path, model, yolox_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(b"")
    out = predict(tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", "--model", model, "--detector",
                  yolox_path)
    assert out.returncode != 0 and "would both write outputs named 'clip'" in out.stderr
    from edgepose.cli.input_sources import output_stem

    assert output_stem("rtsp://admin:secret@10.0.0.5:554/live") == "10.0.0.5_554_live"
