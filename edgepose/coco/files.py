"""Reading COCO-format side files for prediction: image ids from a GT json, person boxes from a results json."""

from __future__ import annotations

import os
import warnings
from collections import defaultdict

import numpy as np

from edgepose.errors import InputError
from edgepose.io import read_json

SHOWN = 5  # how many offending names or ids a message lists


def listing(values) -> str:
    """The first few ``values`` for a one-line message: ``a, b, c, ... (12 in all)``."""
    values = [str(v) for v in values]
    head = ", ".join(values[:SHOWN])
    return head if len(values) <= SHOWN else f"{head}, ... ({len(values)} in all)"


def image_ids(coco_json: str) -> dict[str, int]:
    """file_name (base name) -> image id from a COCO annotation file; two images sharing a base name raise."""
    data = read_json(coco_json, "COCO")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(f"{coco_json} has no 'images' list: is it a COCO annotation file?")
    ids: dict[str, int] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str) or "id" not in img:
            raise InputError(f"{coco_json}: image {i} needs a file_name and an id, got {img!r:.200}")
        name = os.path.basename(img["file_name"])
        if name in ids and ids[name] != img["id"]:
            raise InputError(f"{coco_json} has two images named {name} (ids {ids[name]} and {img['id']}): predict "
                             "matches inputs to ids by file name, so each name must be unique")
        ids[name] = img["id"]
    return ids


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box_row(box, where: str, with_score: bool) -> list:
    """[x, y, w, h, score] from a box of 4 numbers (score 1) or, ``with_score``, 5; InputError naming ``where``."""
    sizes = (4, 5) if with_score else (4,)
    if not isinstance(box, (list, tuple)) or len(box) not in sizes or not all(_number(v) for v in box):
        want = "[x, y, w, h] or [x, y, w, h, score]" if with_score else "[x, y, w, h]"
        raise InputError(f"{where} is not {want} numbers: {box!r:.200}")
    return [*box, 1.0] if len(box) == 4 else list(box)


def _detection_rows(path: str, data: list, ids: dict[str, int]) -> dict[str, list]:
    """Rows per file name of a COCO detection results list; detections of other images are reported, not used."""
    by_id = {v: k for k, v in ids.items()}
    rows: dict[str, list] = defaultdict(list)
    unknown = set()
    for i, det in enumerate(data):
        if not isinstance(det, dict) or "bbox" not in det or not isinstance(det.get("image_id"), (int, str)):
            raise InputError(f"{path}: each detection needs an image_id and a bbox, got {det!r:.200}")
        if det.get("category_id", 1) != 1:  # another class of a multi-class detector: not a person
            continue
        row = _box_row(det["bbox"], f"{path}: bbox of detection {i} (image_id {det['image_id']})", False)
        score = det.get("score", 1.0)
        if not _number(score):
            raise InputError(f"{path}: score of detection {i} (image_id {det['image_id']}) is not a number: "
                             f"{score!r:.50}")
        if det["image_id"] not in by_id:
            unknown.add(det["image_id"])
            continue
        rows[by_id[det["image_id"]]].append(row[:4] + [score])
    if unknown:
        warnings.warn(f"{path}: detections of {len(unknown)} image_id(s) that are not in the --coco file were not "
                      f"used: {listing(sorted(unknown, key=str))}", stacklevel=3)
    return rows


def _mapping_rows(path: str, data: dict) -> dict[str, list]:
    rows: dict[str, list] = defaultdict(list)
    for name, boxes in data.items():
        if not isinstance(boxes, list):
            raise InputError(f"{path}: boxes of {name} must be a list of [x, y, w, h(, score)] boxes, got "
                             f"{boxes!r:.200}")
        rows[os.path.basename(name)] += [_box_row(b, f"{path}: box {j} of {name}", True) for j, b in enumerate(boxes)]
    return rows


def load_boxes(
    path: str, ids: dict[str, int] | None, threshold: float = 0.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Person boxes per image file name: (xyxy (N,4), scores (N,)).

    Two forms: a COCO detection results list (image_id, bbox [x,y,w,h], score, optional category_id; needs the
    COCO annotation file's ids to find the image) or a mapping file_name -> [[x, y, w, h(, score)], ...]. A box that
    is not 4 (or, in a mapping, 5) numbers raises InputError naming it; detections of image ids not in ``ids`` are
    left out with a warning. Boxes scoring below ``threshold`` are dropped, as are (with a warning) boxes of zero
    size or with non-finite values.
    """
    data = read_json(path, "boxes")
    if isinstance(data, list):
        if ids is None:
            raise InputError(
                f"{path} is a COCO results list keyed by image_id: pass --coco GT.json to map ids to files"
            )
        rows = _detection_rows(path, data, ids)
    elif isinstance(data, dict):
        rows = _mapping_rows(path, data)
    else:
        raise InputError(f"{path} must be a COCO results list or a mapping file_name -> boxes")
    out = {}
    for name, items in rows.items():
        arr = np.asarray(items, dtype=np.float64).reshape(-1, 5)
        arr = arr[arr[:, 4] >= threshold]
        bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 2] <= 0) | (arr[:, 3] <= 0)
        if bad.any():
            warnings.warn(f"{path}: dropped {int(bad.sum())} box(es) of {name} with zero size or non-finite values",
                          stacklevel=2)
            arr = arr[~bad]
        xyxy = np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:4]], axis=1)
        out[name] = (xyxy, arr[:, 4].astype(np.float32))
    return out


def unused_boxes(boxes: dict[str, tuple[np.ndarray, np.ndarray]], names: set[str]) -> list[str]:
    """The file names that have boxes in ``boxes`` but are not among ``names`` (the input images), sorted."""
    return sorted(name for name, (xyxy, _) in boxes.items() if len(xyxy) and name not in names)
