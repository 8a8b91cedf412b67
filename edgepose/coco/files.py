"""Reading COCO-format side files for prediction: image ids from a GT json, person boxes from a results json."""

from __future__ import annotations

import os
import warnings
from collections import defaultdict

import numpy as np

from edgepose.errors import InputError
from edgepose.io import read_json


def image_ids(coco_json: str) -> dict[str, int]:
    """file_name (base name) -> image id from a COCO annotation file."""
    data = read_json(coco_json, "COCO")
    if not isinstance(data, dict) or "images" not in data:
        raise InputError(f"{coco_json} has no 'images' list: is it a COCO annotation file?")
    return {os.path.basename(img["file_name"]): img["id"] for img in data["images"]}


def load_boxes(
    path: str, ids: dict[str, int] | None, threshold: float = 0.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Person boxes per image file name: (xyxy (N,4), scores (N,)).

    Two forms: a COCO detection results list (image_id, bbox [x,y,w,h], score, optional category_id; needs the
    COCO annotation file's ids to find the image) or a mapping file_name -> [[x, y, w, h, score], ...].
    Boxes scoring below ``threshold`` are dropped.
    """
    data = read_json(path, "boxes")
    rows: dict[str, list] = defaultdict(list)
    if isinstance(data, list):
        if ids is None:
            raise InputError(
                f"{path} is a COCO results list keyed by image_id: pass --coco GT.json to map ids to files"
            )
        by_id = {v: k for k, v in ids.items()}
        for det in data:
            if not isinstance(det, dict) or "bbox" not in det or "image_id" not in det:
                raise InputError(f"{path}: each detection needs image_id and bbox, got {det!r}")
            if det.get("category_id", 1) != 1 or det["image_id"] not in by_id:
                continue
            rows[by_id[det["image_id"]]].append(list(det["bbox"]) + [det.get("score", 1.0)])
    elif isinstance(data, dict):
        for name, boxes in data.items():
            rows[os.path.basename(name)] = [list(b) + [1.0] * (5 - len(b)) for b in boxes]
    else:
        raise InputError(f"{path} must be a COCO results list or a mapping file_name -> boxes")
    out = {}
    for name, items in rows.items():
        try:
            arr = np.asarray(items, dtype=np.float64).reshape(-1, 5)
        except ValueError as exc:
            raise InputError(f"{path}: boxes of {name} are not [x, y, w, h, score] numbers: {exc}") from exc
        arr = arr[arr[:, 4] >= threshold]
        bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 2] <= 0) | (arr[:, 3] <= 0)
        if bad.any():
            warnings.warn(f"{path}: dropped {int(bad.sum())} box(es) of {name} with zero size or non-finite values",
                          stacklevel=2)
            arr = arr[~bad]
        xyxy = np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:4]], axis=1)
        out[name] = (xyxy, arr[:, 4].astype(np.float32))
    return out
