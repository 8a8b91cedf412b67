"""The whole chain on real COCO images: boxes -> crop -> ONNX -> decode -> inverse -> COCO results -> AP.

No trained pose model exists yet, so the pose model here is a lookup table built from the ground truth: for each
person crop the pipeline will produce, the table holds heatmaps encoded (with the codec under test) from that
person's ground-truth keypoints, jittered with seeded noise. The AP the chain must reach is therefore known
exactly: it is pycocotools' AP of the jittered keypoints themselves. Any error in crop, batching, codec, inverse,
image ids or results writing shows up as an AP mismatch.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO

from edgepose.affine import validate_boxes
from edgepose.card import ModelCard
from edgepose.coco.evaluate import coco_keypoint_eval
from edgepose.codecs import build_codec
from edgepose.detector import YoloxDetector
from edgepose.io import read_image
from edgepose.preprocess import Cropper
from tests.helpers.onnx_builders import fingerprint, lookup_model

CARDS = {
    "msra-dark": dict(codec="msra", heatmap_size=[48, 64], sigma=2.0, decode="dark"),
    "udp-dark": dict(codec="udp", heatmap_size=[48, 64], sigma=2.0, decode="dark"),
    "simcc": dict(codec="simcc", simcc_split_ratio=2.0, sigma=[4.9, 5.66], decode="dark"),
}
BASE = dict(input_size=[192, 256], mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], color="rgb")
JITTER_PX = 4.0  # ground-truth noise so that AP is well below 1 and a decoding error would move it


def people(coco_dir):
    """Per image: file name, GT boxes (xyxy) and keypoints (K,3) of non-crowd persons with keypoints."""
    gt = COCO(str(coco_dir / "test_coco.json"))
    out = {}
    for image_id, info in gt.imgs.items():
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=image_id)) if not a["iscrowd"] and a["num_keypoints"]]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns]).reshape(-1, 4)
        kps = np.array([a["keypoints"] for a in anns], dtype=float).reshape(-1, 17, 3)
        out[image_id] = (info["file_name"], boxes, kps)
    return out


def build_table(coco_dir, card, assignments, rng):
    """Encode jittered GT keypoints for every (image, box -> GT person) crop; return fingerprints, table, expected
    COCO results. ``assignments[image_id] = (boxes, box_scores, gt_keypoints per box)``."""
    codec, cropper = build_codec(card), Cropper(card)
    fps, tables, expected = [], {k: [] for k in card.output_names}, []
    for image_id, (name, boxes, scores, kps) in assignments.items():
        if not len(boxes):
            continue
        frame = read_image(coco_dir / name)
        batch, affine = cropper(frame, validate_boxes(boxes))
        fps.append(fingerprint(batch))
        jittered = kps[..., :2] + rng.normal(0, JITTER_PX, kps[..., :2].shape)
        visible = kps[..., 2] > 0
        targets, weights = codec.encode(affine.apply(jittered), visible)
        assert weights[visible].all(), "a visible GT keypoint fell outside its crop"
        for key, name_out in zip(targets, card.output_names, strict=True):
            # Peak 1 exactly: keypoint scores are then 1.0 and instance scores equal the box scores.
            peak = targets[key].max(axis=tuple(range(2, targets[key].ndim)), keepdims=True)
            tables[name_out].append(targets[key] / np.where(peak > 0, peak, 1))
        for xy, vis, score in zip(jittered, visible, scores, strict=True):
            flat = np.concatenate([xy, np.where(vis, 1.0, 0.0)[:, None]], 1).reshape(-1).tolist()
            expected.append({"image_id": image_id, "category_id": 1, "keypoints": flat, "score": float(score)})
    fp = np.concatenate(fps)
    dists = ((fp[:, None] - fp[None]) ** 2).sum(-1) + np.eye(len(fp)) * 1e9
    assert dists.min() > 1e-3, "two crops share a fingerprint; the lookup model would be ambiguous"
    return fp, {k: np.concatenate(v) for k, v in tables.items()}, expected


def run_cli(*args):
    out = subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out


@pytest.mark.parametrize("name", sorted(CARDS))
def test_gt_boxes_reach_known_ap(tmp_path, coco_dir, name):
    card = ModelCard.from_dict({**BASE, **CARDS[name]})
    rng = np.random.default_rng(7)
    data = people(coco_dir)
    # Distinct box scores: the ranking pycocotools sees is fixed by them.
    assignments = {i: (f, b, 0.9 - 0.06 * np.arange(len(b)) - 0.013 * j, k)
                   for j, (i, (f, b, k)) in enumerate(data.items())}
    fp, table, expected = build_table(coco_dir, card, assignments, rng)
    model = lookup_model(tmp_path / "lookup.onnx", card, fp, table)
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    boxes = {f: [[*b[:2], *(b[2:] - b[:2]), s] for b, s in zip(bb, ss, strict=True)]
             for f, bb, ss, _ in assignments.values()}
    (tmp_path / "boxes.json").write_text(json.dumps({f: np.asarray(v).tolist() for f, v in boxes.items()}))
    gt = coco_dir / "test_coco.json"
    run_cli("predict", coco_dir, "--model", model, "--boxes", tmp_path / "boxes.json", "--coco", gt,
            "--out", tmp_path / "out")
    got = coco_keypoint_eval(gt, tmp_path / "out" / "predictions.json", verbose=False)
    want = coco_keypoint_eval(gt, tmp_path / "expected.json", verbose=False)
    assert 0.2 < want["AP"] < 0.95, want  # the jitter makes the check sensitive
    print(name, "expected AP", want["AP"], "got", got["AP"])
    for key in want:  # decode error (< 0.1 px, see test_codecs) is far below the OKS steps at 4 px jitter
        assert got[key] == pytest.approx(want[key], abs=1e-9), (key, got, want)
    assert len(list((tmp_path / "out" / "vis").iterdir())) == 4


def iou(a, b):
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def test_yolox_detector_chain_reaches_known_ap(tmp_path, coco_dir, yolox_path):
    """Real detector boxes: each detection gets the GT keypoints of the person it overlaps most."""
    card = ModelCard.from_dict({**BASE, **CARDS["msra-dark"]})
    detector = YoloxDetector(yolox_path)
    assignments = {}
    for image_id, (name, gt_boxes, kps) in people(coco_dir).items():
        boxes, scores = detector(read_image(coco_dir / name))
        match = iou(boxes, gt_boxes).argmax(1) if len(gt_boxes) else np.zeros(0, int)
        assignments[image_id] = (name, boxes, scores, kps[match])
    fp, table, expected = build_table(coco_dir, card, assignments, np.random.default_rng(3))
    model = lookup_model(tmp_path / "lookup.onnx", card, fp, table)
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    gt = coco_dir / "test_coco.json"
    run_cli("predict", coco_dir, "--model", model, "--detector", yolox_path, "--coco", gt,
            "--out", tmp_path / "raw", "--no-pose-nms", "--no-draw")
    got = coco_keypoint_eval(gt, tmp_path / "raw" / "predictions.json", verbose=False)
    want = coco_keypoint_eval(gt, tmp_path / "expected.json", verbose=False)
    assert want["AP"] > 0.2
    print("yolox expected AP", want["AP"], "got", got["AP"])
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), (key, got, want)
    # Pose NMS (on by default with a detector) removes duplicate poses: a detector that reports every person
    # twice (the copy shifted by 0.5% of its size, scored lower) must give back the same poses as the plain one.
    from edgepose.pipeline import PoseEstimator

    def doubled(frame):
        boxes, scores = detector(frame)
        size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
        return np.concatenate([boxes, boxes + 0.005 * size]), np.concatenate([scores, scores * 0.5])

    with PoseEstimator(model, detector=doubled) as est, PoseEstimator(model, detector=detector) as plain:
        for name, *_ in assignments.values():
            frame = read_image(coco_dir / name)
            deduplicated, reference = est(frame), plain(frame)
            assert len(deduplicated) == len(reference)
            # twice the batch changes ONNX Runtime's float summation order: equal to float32 rounding (~1e-7)
            np.testing.assert_allclose(deduplicated.xy, reference.xy, rtol=1e-6)
    with PoseEstimator(model, detector=doubled, pose_nms=None) as est:
        assert len(est(read_image(coco_dir / name))) == 2 * len(reference)


def test_eval_cli_matches_pycocotools(tmp_path, coco_dir):
    """`edgepose eval` equals a direct pycocotools call to 1e-9, and writes the JSON summary."""
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(11)
    gt_path = coco_dir / "test_coco.json"
    gt = COCO(str(gt_path))
    results = []
    for ann in gt.loadAnns(gt.getAnnIds()):
        kps = np.array(ann["keypoints"], float).reshape(17, 3)
        kps[:, :2] += rng.normal(0, 3, (17, 2))
        kps[:, 2] = rng.uniform(0.3, 1, 17)
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kps.reshape(-1).tolist(),
                        "score": float(rng.uniform(0.1, 1))})
    (tmp_path / "pred.json").write_text(json.dumps(results))
    out = run_cli("eval", "--gt", gt_path, "--pred", tmp_path / "pred.json", "--json", tmp_path / "summary.json")
    assert out.stdout.count("Average Precision") == 5 and out.stdout.count("Average Recall") == 5
    direct = COCOeval(gt, gt.loadRes(str(tmp_path / "pred.json")), "keypoints")
    direct.params.useSegm = None
    direct.evaluate()
    direct.accumulate()
    direct.summarize()
    summary = json.loads((tmp_path / "summary.json").read_text())
    names = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert direct.stats[0] > 0.1
    for name, value in zip(names, direct.stats, strict=True):
        assert abs(summary[name] - value) <= 1e-9
