"""COCO keypoint evaluation with pycocotools (the [eval] extra): the standard 10 numbers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile

from edgepose.errors import InputError, require
from edgepose.io import read_json

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_keypoint_eval(gt_path: str | os.PathLike, pred_path: str | os.PathLike, verbose: bool = True) -> dict:
    """Evaluate COCO keypoint results against ground truth; returns {AP, AP50, ..., ARl}.

    ``verbose`` prints pycocotools' own summary (the standard 10 lines).
    """
    require("pycocotools", "eval", "COCO evaluation")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path, pred_path = os.fspath(gt_path), os.fspath(pred_path)
    gt_data = read_json(gt_path, "ground-truth")
    preds = read_json(pred_path, "predictions")
    if not isinstance(gt_data, dict) or "annotations" not in gt_data or "images" not in gt_data:
        raise InputError(f"{gt_path} is not a COCO annotation file (needs 'images' and 'annotations')")
    if not isinstance(preds, list) or not preds:
        raise InputError(f"{pred_path} holds no predictions (expected a non-empty COCO results list)")
    bad = [p for p in preds if not isinstance(p, dict) or not {"image_id", "keypoints", "score"} <= set(p)]
    if bad:
        raise InputError(f"{pred_path}: every result needs image_id, keypoints and score; first bad entry: {bad[0]}")
    gt_ids = {img["id"] for img in gt_data["images"]}
    unknown = sorted({p["image_id"] for p in preds} - gt_ids, key=str)
    if unknown:
        raise InputError(
            f"{pred_path} has image_ids not in {gt_path}: {unknown[:5]} (predict with --coco {gt_path} to match ids)"
        )
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = COCO(gt_path)
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
