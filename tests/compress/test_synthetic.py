"""The synthetic person dataset: COCO validity (pycocotools), determinism, visibility semantics, left/right,
scene statistics, difficulty (a trivial baseline scores low), detector boxes, resume and refusals, CLI."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from compress.data import cli as cli_data
from compress.data import synthetic
from compress.data.synth_figure import (
    HEAD_C,
    L_HAND,
    R_HAND,
    Painter,
    build_figure,
    capsule_mask,
    render_figure,
    sample_pose,
    sample_style,
)
from compress.data.synthetic import generate, render_scene
from edgepose.coco.files import image_ids, load_boxes
from edgepose.coco.layout import KEYPOINTS, SKELETON
from edgepose.errors import InputError

SIZE = (320, 240)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, 40, 30, seed=7, progress=False, workers=2)
    assert summary["train"]["images"] == 40 and summary["val"]["images"] == 30
    return out


def _load(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"person_keypoints_{split}.json").read_text())


def _oks_ap(gt_file: Path, results: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        evaluator = COCOeval(gt, gt.loadRes(results), "keypoints")
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def test_coco_format_and_gt_as_results_ap_is_one(dataset):
    for split, count in (("train", 40), ("val", 30)):
        data = _load(dataset, split)
        assert [c["keypoints"] for c in data["categories"]] == [list(KEYPOINTS)]
        assert data["categories"][0]["skeleton"] == [[a + 1, b + 1] for a, b in SKELETON]
        assert len(data["images"]) == count
        for img in data["images"]:
            assert (img["width"], img["height"]) == SIZE
            assert cv2.imread(str(dataset / split / img["file_name"])).shape == (SIZE[1], SIZE[0], 3)
        ids = {img["id"] for img in data["images"]}
        assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
        for ann in data["annotations"]:
            assert ann["image_id"] in ids and ann["category_id"] == 1 and ann["iscrowd"] == 0
            kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
            assert set(kps[:, 2]) <= {0, 1, 2}
            assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
            assert (kps[kps[:, 2] == 0, :2] == 0).all()
            assert ann["area"] > 0 and ann["bbox"][2] > 0 and ann["bbox"][3] > 0
    gt_file = dataset / "annotations" / "person_keypoints_val.json"
    anns = [a for a in _load(dataset, "val")["annotations"] if a["num_keypoints"] > 0]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0} for a in anns]
    assert _oks_ap(gt_file, results) == pytest.approx(1.0)


def test_same_seed_same_bytes_any_worker_count(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 10, 3, seed=3, progress=False, workers=1)
    generate(b, 10, 3, seed=3, progress=False, workers=2)
    generate(c, 10, 3, seed=4, progress=False, workers=1)
    for name in ("person_keypoints_train.json", "person_keypoints_val.json", "person_boxes_val.json"):
        assert (a / "annotations" / name).read_bytes() == (b / "annotations" / name).read_bytes()
    for split, count in (("train", 10), ("val", 3)):
        for i in range(count):
            first, second = (cv2.imread(str(root / split / f"{i:06d}.jpg")) for root in (a, b))
            assert np.array_equal(first, second)
    assert not np.array_equal(cv2.imread(str(a / "train" / "000000.jpg")), cv2.imread(str(c / "train" / "000000.jpg")))
    assert np.array_equal(render_scene(3, "train", 5).image, render_scene(3, "train", 5).image)


def test_visibility_semantics():
    outside = occluded = visible = 0
    on_figure = []
    for index in range(25):
        scene = render_scene(11, "train", index, SIZE, with_background=True)
        diff = np.abs(scene.image.astype(int) - scene.background.astype(int)).sum(axis=2)
        for person in scene.people:
            kps, xy = person["keypoints"], person["xy"]
            inside = (xy[:, 0] >= -0.5) & (xy[:, 0] < SIZE[0] - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < SIZE[1] - 0.5)
            assert (kps[~inside, 2] == 0).all() and (kps[~inside, :2] == 0).all()
            assert inside[kps[:, 2] > 0].all()
            outside += int((~inside).sum())
            occluded += int((kps[:, 2] == 1).sum())
            for x, y, _ in kps[kps[:, 2] == 2]:
                visible += 1
                on_figure.append(diff[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))] > 24)
    assert outside > 0 and occluded > 0 and visible > 100
    assert np.mean(on_figure) > 0.85, "visible keypoints should lie on drawn figure pixels, not on background"


def test_bbox_holds_labelled_keypoints(dataset):
    for split in ("train", "val"):
        for ann in _load(dataset, split)["annotations"]:
            x, y, w, h = ann["bbox"]
            assert x >= -0.5 and y >= -0.5 and x + w <= SIZE[0] - 0.5 + 1e-6 and y + h <= SIZE[1] - 0.5 + 1e-6
            kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
            labelled = kps[kps[:, 2] > 0, :2]
            assert (labelled >= [x - 1, y - 1]).all() and (labelled <= [x + w + 1, y + h + 1]).all()


def test_keypoints_are_centres_of_the_drawn_joints():
    """Integer coordinates are pixel centres (OpenCV's convention): a joint disk's centroid is its keypoint."""
    mask = np.zeros((40, 40), np.uint8)
    capsule_mask(mask, np.array([10.3, 12.6]), np.array([10.3, 12.6]), 4.0, 4.0)
    ys, xs = np.nonzero(mask >= 0)
    weights = mask[ys, xs].astype(float)
    assert np.average(xs, weights=weights) == pytest.approx(10.3, abs=0.05)
    assert np.average(ys, weights=weights) == pytest.approx(12.6, abs=0.05)


def _upright(yaw_deg: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    pose = replace(sample_pose(rng), yaw=np.deg2rad(yaw_deg), roll=0.0, lean=0.0, bend=0.0, twist=0.0,
                   head=(0.0, 0.0, 0.0))
    return build_figure(pose, rng, sample_style(rng)).placed(200.0, (160.0, 130.0)), rng


def test_left_and_right_are_not_mirrored():
    front, _ = _upright(0)
    for left, right in ((5, 6), (11, 12), (1, 2), (3, 4)):
        assert front.pts[left, 0] > front.pts[right, 0], "facing the camera, the person's left is on the image right"
    assert not front.hidden.any()
    back, _ = _upright(180)
    for left, right in ((5, 6), (11, 12), (3, 4)):
        assert back.pts[left, 0] < back.pts[right, 0]
    assert back.hidden[:3].all() and not back.hidden[3:].any(), "from behind: nose and eyes hidden, ears labelled"
    side, _ = _upright(90)
    assert side.pts[0, 0] > side.pts[HEAD_C, 0] and side.hidden[3] and not side.hidden[4], "facing image right"
    # the left hand is drawn darker than the right one (skin is a plain colour)
    fig, rng = _upright(0, seed=5)
    canvas, labels = np.full((260, 320, 3), 128, np.uint8), np.zeros((260, 320), np.int16)
    render_figure(Painter(canvas, labels), fig, 16, rng)
    left, right = (canvas[labels == 16 + part].astype(float).mean() for part in (L_HAND, R_HAND))
    assert left < 0.85 * right


def test_scene_statistics(dataset):
    anns = _load(dataset, "train")["annotations"] + _load(dataset, "val")["annotations"]
    per_image = len(anns) / 70
    boxes = np.array([a["bbox"] for a in anns])
    kps = np.array([a["keypoints"] for a in anns], dtype=float).reshape(-1, 17, 3)
    border = (boxes[:, 0] <= 0) | (boxes[:, 1] <= 0)
    border |= (boxes[:, 0] + boxes[:, 2] >= SIZE[0] - 1) | (boxes[:, 1] + boxes[:, 3] >= SIZE[1] - 1)
    with_occluded = (kps[:, :, 2] == 1).any(axis=1)
    print(f"persons/image {per_image:.2f}, truncated {border.mean():.2f}, with occluded keypoints "
          f"{with_occluded.mean():.2f}, box heights p10/p50/p90 {np.percentile(boxes[:, 3], [10, 50, 90])}")
    assert 1.8 < per_image < 3.5
    assert 0.05 < border.mean() < 0.6
    assert with_occluded.mean() > 0.2
    assert np.percentile(boxes[:, 3], 90) > 120 and np.percentile(boxes[:, 3], 10) < 100


def test_trivial_baseline_scores_low(dataset):
    """The mean pose (relative to the box, from train) put into every val GT box."""
    rel, count = np.zeros((17, 2)), np.zeros(17)
    for ann in _load(dataset, "train")["annotations"]:
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        x, y, w, h = ann["bbox"]
        m = kps[:, 2] > 0
        rel[m] += (kps[m, :2] - [x, y]) / [w, h]
        count[m] += 1
    rel /= np.maximum(count, 1)[:, None]
    results = []
    for ann in _load(dataset, "val")["annotations"]:
        x, y, w, h = ann["bbox"]
        xy = rel * [w, h] + [x, y]
        kps = np.concatenate([xy, np.ones((17, 1))], axis=1).ravel().tolist()
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kps, "score": 1.0})
    ap = _oks_ap(dataset / "annotations" / "person_keypoints_val.json", results)
    print(f"mean-pose-in-GT-box baseline AP {ap:.4f}")
    assert ap < 0.3


def test_detector_boxes(dataset):
    gt = _load(dataset, "val")
    dets = json.loads((dataset / "annotations" / "person_boxes_val.json").read_text())
    ids = {img["id"] for img in gt["images"]}
    assert dets and {d["image_id"] for d in dets} <= ids
    assert all(d["category_id"] == 1 and 0 < d["score"] < 1 and d["bbox"][2] > 1 and d["bbox"][3] > 1 for d in dets)
    assert 0.8 * len(gt["annotations"]) <= len(dets) <= 1.6 * len(gt["annotations"])
    assert any(d["score"] < 0.4 for d in dets)
    boxes = load_boxes(str(dataset / "annotations" / "person_boxes_val.json"),
                       image_ids(str(dataset / "annotations" / "person_keypoints_val.json")))
    assert sum(len(b[0]) for b in boxes.values()) == len(dets)


def test_rerun_refusals_and_force(tmp_path):
    out = tmp_path / "ds"
    generate(out, 3, 2, seed=1, progress=False)
    before = (out / "annotations" / "person_keypoints_train.json").read_bytes()
    started = time.perf_counter()
    assert generate(out, 3, 2, seed=1, progress=False)["skipped"]
    assert time.perf_counter() - started < 1.0
    with pytest.raises(InputError, match="--force"):
        generate(out, 3, 2, seed=2, progress=False)
    with pytest.raises(InputError, match="--force"):
        generate(out, 3, 2, seed=1, image_size=(256, 256), progress=False)
    assert not generate(out, 3, 2, seed=2, progress=False, force=True)["skipped"]
    assert (out / "annotations" / "person_keypoints_train.json").read_bytes() != before
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        generate(tmp_path / "file", 3, 2, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="synth.json"):
        generate(tmp_path / "other", 3, 2, progress=False)
    for bad in ({"num_train": -1}, {"num_val": 2.5}, {"seed": -3}, {"image_size": (10, 10)}, {"workers": 0}):
        with pytest.raises(InputError):
            generate(**{"out_dir": tmp_path / "bad", "num_train": 1, "num_val": 1, **bad})


def test_interrupted_run_resumes_from_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "CHUNK", 4)
    real, calls, failed = synthetic._make_image, [], []

    def flaky(job):
        calls.append(job[2])
        if job[2] == 6 and not failed:
            failed.append(job[2])
            raise RuntimeError("interrupted")
        return real(job)

    monkeypatch.setattr(synthetic, "_make_image", flaky)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate(tmp_path / "r", 10, 0, seed=5, progress=False, workers=1)
    calls.clear()
    generate(tmp_path / "r", 10, 0, seed=5, progress=False, workers=1)
    assert calls == list(range(4, 10)), "the finished first chunk is not redone"
    monkeypatch.setattr(synthetic, "_make_image", real)
    generate(tmp_path / "clean", 10, 0, seed=5, progress=False, workers=1)
    name = "annotations/person_keypoints_train.json"
    assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert not (tmp_path / "r" / ".parts").exists()


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="edgepose data")
    cli_data.add_arguments(parser)
    argv = ["synth", "--out", str(tmp_path / "cli"), "--train", "2", "--val", "1", "--seed", "9", "--quiet"]
    assert cli_data.run(parser.parse_args(argv)) == 0
    assert "wrote 2 train + 1 val images" in capsys.readouterr().out
    assert cli_data.run(parser.parse_args(argv)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "cli" / "val" / "000000.jpg").is_file()
    assert cli_data.run(parser.parse_args([])) == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", "x", "--size", "big"])


def test_easy_level_draws_one_whole_upright_person_and_hard_is_unchanged():
    import hashlib

    # hard (the default) renders exactly the bytes it did before levels existed (digest taken before the change)
    hard = render_scene(3, "train", 5).image
    digest = "1fd5ca36a32d34ea24a4cb78152a67cef2f70bbdfafa2b359a2273fa8ee907bd"
    assert hashlib.sha256(hard.tobytes()).hexdigest() == digest
    w, h = 320, 240
    for index in range(12):
        scene = render_scene(3, "train", index, level="easy")
        assert len(scene.people) == 1, index
        x, y, bw, bh = scene.people[0]["bbox"]
        assert x >= -0.5 and y >= -0.5 and x + bw <= w - 0.5 and y + bh <= h - 0.5, index  # fully inside
        assert bh >= 0.4 * h, index  # large
        kps = scene.people[0]["keypoints"]
        assert (kps[:, 2] > 0).sum() >= 12, index  # most keypoints labelled (no occluders, facing the camera)
    with pytest.raises(InputError, match="level must be one of"):
        render_scene(3, "train", 0, level="medium")
    with pytest.raises(InputError, match="level must be one of"):
        generate("unused", 1, 1, level="medium")
