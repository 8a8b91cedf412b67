"""COCO top-down pose dataset: one item per person box, cropped by the runtime's own code and encoded by its codec.

Layout: ``<root>/annotations/person_keypoints_<subset>.json`` and the images in ``<root>/<subset>/`` (``layout``).
Items, as MMPose 1.x ``CocoDataset`` in top-down mode:
- GT boxes (train, and val without ``boxes``): non-crowd person annotations with ``num_keypoints > 0`` and a
  bbox wider and taller than 1 px, the box clipped to the image (x1 = clip(x, 0, W-1), x2 = clip(x+w, 0, W-1)).
- detector boxes (val with ``boxes``, a COCO results json): every category-1 box scoring >= ``box_threshold``.

Single source of truth: the crop is ``edgepose.preprocess.Cropper.warp`` (the runtime's warp, colour order, mean
and std) on an ``edgepose.affine.Affine``; targets are ``edgepose.codecs.build_codec(card).encode`` of the
keypoints mapped through that same affine, so ``decode`` + ``affine.inverse()`` gives the annotation back.
Randomness: item ``i`` of epoch ``e`` draws only from ``np.random.default_rng((seed, e, i))``, whatever the
worker, worker count or resume point.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from compress.data.transforms import (
    AugmentConfig,
    color_jitter,
    crop_region,
    fix_aspect_ratio,
    flip_keypoints,
    flip_matrix,
    half_body,
    random_bbox_transform,
)
from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.coco import layout as coco_meta
from edgepose.coco.files import load_boxes
from edgepose.codecs import build_codec
from edgepose.errors import InputError, require
from edgepose.io import read_image
from edgepose.preprocess import Cropper

__all__ = ["AugmentConfig", "CocoPoseDataset", "layout"]


def layout(root: str | os.PathLike, subset: str = "val2017") -> tuple[Path, Path]:
    """(annotation file, image folder) of a COCO-layout dataset; InputError naming whichever is missing."""
    root = Path(root)
    ann = root / "annotations" / f"person_keypoints_{subset}.json"
    images = root / subset
    if not ann.is_file():
        found = sorted(p.name for p in (root / "annotations").glob("person_keypoints_*.json"))
        hint = f"; found {found}" if found else " (the folder has no person_keypoints_*.json)"
        raise InputError(f"dataset {root} lacks annotations/person_keypoints_{subset}.json{hint}")
    if not images.is_dir():
        raise InputError(f"dataset {root} lacks the image folder {subset}/ beside annotations/")
    return ann, images


def _load_coco(ann_file: Path):
    """pycocotools COCO object of a validated keypoint annotation file (its index print silenced)."""
    require("pycocotools", "train", "the COCO dataset")
    from pycocotools.coco import COCO

    if not ann_file.is_file():
        raise InputError(f"annotation file not found: {ann_file} (expected annotations/person_keypoints_*.json)")
    try:
        with open(ann_file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"annotation file {ann_file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        has = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InputError(
            f"{ann_file} has no 'annotations' and 'images' lists (it has {has}): pass a COCO keypoint annotation "
            "file (person_keypoints_*.json); a detection results list goes to boxes="
        )
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class CocoPoseDataset(Dataset):
    """Person instances of a COCO keypoint file as training/evaluation items for a model described by ``card``.

    ``__getitem__(i)`` (or ``(epoch, i)``, as ``compress.data.loader`` samples) returns a dict:
    "image" (3, H, W) float32 tensor, normalised as the runtime does; "targets" {codec output key: float32 tensor};
    "weights" (K,) float32; "meta" {image_id, ann_id (-1 for a detector box), index, box (4,) float32 xyxy,
    box_score, affine (2, 3) float64 frame -> crop, flipped}.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        card: ModelCard,
        split: str = "train",
        boxes: str | os.PathLike | None = None,
        augment: AugmentConfig | None = None,
        box_threshold: float = 0.0,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "val"):
            raise InputError(f"split must be 'train' or 'val', got {split!r}")
        if boxes is not None and split != "val":
            raise InputError("detector boxes are for evaluation: use split='val' with boxes=, GT boxes for training")
        if int(seed) < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed}")
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        self.card, self.split, self.seed, self.epoch = card, split, int(seed), 0
        self.augment = augment if augment is not None else AugmentConfig(enabled=split == "train")
        self.coco = _load_coco(self.ann_file)
        if not self.image_dir.is_dir():
            raise InputError(f"image folder not found: {self.image_dir} (the images of {self.ann_file.name})")
        self.codec = build_codec(card)
        self.flip_index = coco_meta.flip_index(card.num_keypoints, card.flip_pairs)
        self._coco17 = tuple(card.keypoints) == coco_meta.KEYPOINTS
        self._cropper: Cropper | None = None
        self.image_ids = sorted(self.coco.getImgIds())
        k = card.num_keypoints
        rows = self._detector_rows(Path(boxes), box_threshold) if boxes is not None else self._gt_rows()
        if not rows:
            what = f"boxes in {boxes} scoring >= {box_threshold}" if boxes else "usable person annotations"
            raise InputError(f"{self.ann_file} gives no items: no {what} (non-crowd, keypoints > 0, box > 1 px)")
        self._image_id = np.array([r[0] for r in rows], np.int64)
        self._ann_id = np.array([r[1] for r in rows], np.int64)
        self._boxes = np.array([r[2] for r in rows], np.float64).reshape(-1, 4)
        self._scores = np.array([r[3] for r in rows], np.float32)
        self._keypoints = np.array([r[4] for r in rows], np.float64).reshape(-1, k, 3)

    # ------------------------------------------------------------------ building the item list

    def _keypoints_of(self, ann: dict) -> np.ndarray:
        k = self.card.num_keypoints
        kp = np.asarray(ann.get("keypoints", []), dtype=np.float64)
        if kp.size != 3 * k:
            raise InputError(
                f"{self.ann_file}: annotation {ann.get('id')} has {kp.size // 3} keypoints but the card "
                f"'{self.card.name or self.card.codec}' predicts {k}"
            )
        return kp.reshape(k, 3)

    def _gt_rows(self) -> list[tuple]:
        rows = []
        for image_id in self.image_ids:
            img = self.coco.imgs[image_id]
            width, height = img["width"], img["height"]
            for ann in self.coco.imgToAnns.get(image_id, []):
                person = ann.get("category_id", 1) == 1 and not ann.get("iscrowd", 0)
                if not person or "bbox" not in ann or "keypoints" not in ann:
                    continue
                x, y, w, h = ann["bbox"]
                kp = self._keypoints_of(ann)
                if ann.get("num_keypoints", int((kp[:, 2] > 0).sum())) <= 0 or w <= 1 or h <= 1:
                    continue
                box = np.clip([x, y, x + w, y + h], 0, [width - 1, height - 1] * 2)
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue
                rows.append((image_id, ann["id"], box, 1.0, kp))
        return rows

    def _detector_rows(self, path: Path, threshold: float) -> list[tuple]:
        names = {os.path.basename(self.coco.imgs[i]["file_name"]): i for i in self.image_ids}
        by_name = load_boxes(os.fspath(path), names, threshold)
        if not by_name:
            raise InputError(
                f"boxes file {path} has no person boxes (category 1, score >= {threshold}) for any image of "
                f"{self.ann_file}: is it the detections of this split?"
            )
        empty = np.zeros((self.card.num_keypoints, 3))
        rows = []
        for name, image_id in sorted(names.items(), key=lambda item: item[1]):
            xyxy, scores = by_name.get(name, (np.zeros((0, 4)), np.zeros(0)))
            rows += [(image_id, -1, box, float(score), empty) for box, score in zip(xyxy, scores, strict=True)]
        return rows

    # ------------------------------------------------------------------ items

    def __len__(self) -> int:
        return len(self._image_id)

    def set_epoch(self, epoch: int) -> None:
        """The epoch plain integer indices draw their augmentation for (keys ``(epoch, i)`` carry their own)."""
        self.epoch = int(epoch)

    @property
    def cropper(self) -> Cropper:
        """The runtime's CPU crop, made per process (its per-thread buffers do not pickle)."""
        if self._cropper is None:
            self._cropper = Cropper(self.card)
        return self._cropper

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cropper"] = None
        return state

    def image_path(self, image_id: int) -> Path:
        """Where the image of ``image_id`` is expected."""
        return self.image_dir / self.coco.imgs[image_id]["file_name"]

    def _read(self, image_id: int) -> np.ndarray:
        path = self.image_path(image_id)
        if not path.is_file():
            raise InputError(
                f"image file missing: {path} (image_id {image_id}, listed in {self.ann_file}); "
                f"restore it or remove its entry from the annotation file"
            )
        return read_image(path)

    def _window(self, index: int, streams: list[np.random.Generator] | None) -> tuple[np.ndarray, bool]:
        """The (2, 3) frame -> crop matrix of item ``index`` and whether it is mirrored (random with ``streams``)."""
        box, size = self._boxes[index], self.card.input_size
        udp = self.cropper.udp
        if streams is None:  # exactly the runtime's crop of this box
            return Affine.from_boxes(box, size, self.card.bbox_padding, udp=udp).matrices[0], False
        cfg = self.augment
        flip_rng, half_rng, box_rng = streams
        flipped = bool(flip_rng.random() < cfg.flip_prob)
        center = (box[:2] + box[2:]) * 0.5  # MMPose GetBBoxCenterScale(padding)
        scale = (box[2:] - box[:2]) * self.card.bbox_padding
        if self._coco17:
            kp = self._keypoints[index]
            center, scale = half_body(center, scale, kp[:, :2], kp[:, 2] > 0, half_rng, cfg)
        center, scale, rotation = random_bbox_transform(center, scale, box_rng, cfg)
        scale = fix_aspect_ratio(scale, size)
        matrix = Affine.from_center_scale(center, scale, size, udp=udp, rotation=rotation).matrices[0]
        return (flip_matrix(matrix, size[0]) if flipped else matrix), flipped

    def __getitem__(self, key) -> dict:
        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (self.epoch, int(key))
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        image_id = int(self._image_id[index])
        frame = self._read(image_id)
        streams = None
        if self.augment.enabled:  # one independent stream per augmentation: turning one off leaves the others
            streams = np.random.default_rng((self.seed, epoch, index)).spawn(4)
        matrix, flipped = self._window(index, streams[:3] if streams else None)
        if streams is not None and self.augment.color_jitter > 0:
            x0, y0, x1, y1 = crop_region(matrix, self.card.input_size, frame.shape)
            if x1 > x0 and y1 > y0:
                frame = frame.copy()
                frame[y0:y1, x0:x1] = color_jitter(frame[y0:y1, x0:x1], streams[3], self.augment.color_jitter)
        affine = Affine(matrix)
        image = self.cropper.warp(frame, affine)[0]
        kp = self._keypoints[index]
        crop_kp, visible = affine.apply(kp[None, :, :2]), (kp[None, :, 2] > 0)
        if flipped:
            crop_kp, visible = flip_keypoints(crop_kp, visible, self.flip_index)
        targets, weights = self.codec.encode(crop_kp, visible)
        meta = {
            "image_id": image_id,
            "ann_id": int(self._ann_id[index]),
            "index": index,
            "box": self._boxes[index].astype(np.float32),
            "box_score": float(self._scores[index]),
            "affine": matrix,
            "flipped": flipped,
        }
        return {
            "image": torch.from_numpy(image),
            "targets": {name: torch.from_numpy(value[0]) for name, value in targets.items()},
            "weights": torch.from_numpy(weights[0]),
            "meta": meta,
        }
