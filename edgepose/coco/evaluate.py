"""COCO keypoint evaluation with pycocotools (the [eval] extra): the standard 10 numbers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile

from edgepose.coco.checks import check_ground_truth, check_predictions
from edgepose.errors import InputError, require
from edgepose.io import read_json

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_keypoint_eval(gt_path: str | os.PathLike, pred_path: str | os.PathLike, verbose: bool = True) -> dict:
    """Evaluate COCO keypoint results against ground truth; returns {AP, AP50, ..., ARl}.

    ``verbose`` prints pycocotools' own summary (the standard 10 lines). Files pycocotools would score wrongly or
    crash on (NaN or 2-value keypoints, unknown image or category ids, missing fields) raise InputError first.
    """
    require("pycocotools", "eval", "COCO evaluation")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path, pred_path = os.fspath(gt_path), os.fspath(pred_path)
    gt_data = read_json(gt_path, "ground-truth")
    check_ground_truth(gt_data, gt_path)
    preds = read_json(pred_path, "predictions")
    check_predictions(preds, pred_path, gt_data, gt_path)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(preds)
    evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
    evaluator.params.useSegm = None
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}


def predict_with_gt_boxes(model: str | os.PathLike, ann_file: str | os.PathLike, image_dir: str | os.PathLike,
                          backend_options: dict | None = None) -> list[dict]:
    """COCO keypoint results of a model file on every annotated person (num_keypoints > 0) of a COCO set, cropped
    from its ground-truth box (box score 1): the top-down protocol with perfect detections."""
    import numpy as np

    from edgepose.io import read_image
    from edgepose.pipeline import PoseEstimator

    gt = read_json(ann_file, "ground-truth")
    persons: dict[int, list] = {}
    for ann in gt.get("annotations", []):
        if ann.get("num_keypoints", 0) > 0 and not ann.get("iscrowd", 0):
            x, y, w, h = ann["bbox"]
            persons.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
    if not persons:
        raise InputError(f"{ann_file} has no annotated persons to evaluate")
    files = {img["id"]: img["file_name"] for img in gt["images"]}
    results: list[dict] = []
    with PoseEstimator(model, backend_options=backend_options) as estimator:
        for image_id, boxes in sorted(persons.items()):
            frame = read_image(os.path.join(os.fspath(image_dir), files[image_id]))
            boxes = np.asarray(boxes, np.float32)
            poses = estimator(frame, boxes, np.ones(len(boxes), np.float32))
            results += poses.to_coco(image_id)
    return results


def evaluate_model(model: str | os.PathLike, ann_file: str | os.PathLike, image_dir: str | os.PathLike,
                   backend_options: dict | None = None) -> tuple[dict, list[dict]]:
    """COCO keypoint AP of a model file with ground-truth boxes; returns (metrics, results)."""
    from edgepose.io import atomic_write_text

    results = predict_with_gt_boxes(model, ann_file, image_dir, backend_options)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        atomic_write_text(path, json.dumps(results))
        return coco_keypoint_eval(ann_file, path, verbose=False), results
