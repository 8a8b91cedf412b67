"""Checks of COCO keypoint files before pycocotools sees them: anything it would score wrongly (NaN keypoints, 2
values per keypoint, unknown ids) or crash on (missing fields, strings for numbers) is one InputError naming the
first offending entry."""

from __future__ import annotations

import math

from edgepose.coco.layout import SIGMAS
from edgepose.errors import InputError

NUM_KEYPOINTS = len(SIGMAS)  # pycocotools scores exactly the 17 COCO keypoints (its OKS sigmas)
PRED_FIELDS = ("image_id", "category_id", "keypoints", "score")
GT_FIELDS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "bbox")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _keypoint_problem(keypoints) -> str | None:
    """Why ``keypoints`` is not 17 (x, y, v/score) triplets of finite numbers, or None."""
    want = 3 * NUM_KEYPOINTS
    if not isinstance(keypoints, list):
        return f"keypoints are {type(keypoints).__name__}, not a list of {want} numbers"
    if len(keypoints) != want:
        return (f"keypoints hold {len(keypoints)} values, not {want} (x, y and score for each of the "
                f"{NUM_KEYPOINTS} COCO keypoints)")
    bad = next((i for i, v in enumerate(keypoints) if not _number(v)), None)
    if bad is not None:
        part = "xys"[bad % 3]
        return f"keypoint value {bad} (keypoint {bad // 3}, {part}) is {keypoints[bad]!r:.30}, not a finite number"
    return None


def check_ground_truth(gt: object, path: str) -> None:
    """A COCO keypoint annotation dict that pycocotools can evaluate, or InputError naming the first problem."""
    if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list) for k in ("images", "annotations")):
        raise InputError(f"{path} is not a COCO annotation file (needs 'images' and 'annotations' lists)")
    if not isinstance(gt.get("categories"), list) or not gt["categories"]:
        raise InputError(f"{path} has no 'categories' list: COCO evaluation needs the person category")
    for what, entries, fields in (("image", gt["images"], ("id",)), ("category", gt["categories"], ("id",)),
                                  ("annotation", gt["annotations"], GT_FIELDS)):
        for i, entry in enumerate(entries):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise InputError(f"{path}: {what} {i} lacks {', '.join(missing)}: {entry!r:.200}")
    for i, ann in enumerate(gt["annotations"]):
        problem = _keypoint_problem(ann["keypoints"])
        if problem is not None:
            raise InputError(f"{path}: annotation {i} (id {ann['id']}): {problem}")


def check_predictions(preds: object, path: str, gt: dict, gt_path: str) -> None:
    """A COCO keypoint results list matching ``gt`` (image and category ids), 17 finite keypoints and a finite
    score per result; else InputError naming the first offending result."""
    if not isinstance(preds, list) or not preds:
        raise InputError(f"{path} holds no predictions (expected a non-empty COCO results list)")
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {cat["id"] for cat in gt["categories"]}
    unknown_images = set()
    for i, pred in enumerate(preds):
        if not isinstance(pred, dict):
            raise InputError(f"{path}: result {i} is {type(pred).__name__}, not a dict with {', '.join(PRED_FIELDS)}")
        missing = [f for f in PRED_FIELDS if f not in pred]
        if missing:
            raise InputError(f"{path}: result {i} lacks {', '.join(missing)} (every result needs "
                             f"{', '.join(PRED_FIELDS)})")
        where = f"{path}: result {i} (image_id {pred['image_id']!r:.50})"
        if not isinstance(pred["image_id"], (int, str)) or pred["image_id"] not in image_ids:
            unknown_images.add(repr(pred["image_id"])[:50])
            continue
        if not isinstance(pred["category_id"], int) or pred["category_id"] not in category_ids:
            raise InputError(f"{where} has category_id {pred['category_id']!r:.50}, not one of {gt_path}'s "
                             f"{sorted(category_ids)}")
        problem = _keypoint_problem(pred["keypoints"])
        if problem is not None:
            raise InputError(f"{where}: {problem}")
        if not _number(pred["score"]):
            raise InputError(f"{where}: score {pred['score']!r:.50} is not a finite number")
    if unknown_images:
        shown = sorted(unknown_images)[:5]
        raise InputError(f"{path} has image_ids not in {gt_path}: [{', '.join(shown)}] ({len(unknown_images)} in all; "
                         f"predict with --coco {gt_path} to match ids)")
