"""Evaluate a torch model on a COCO-layout set with the runtime's own decode: COCO OKS AP and PCK.

Results are written with the same code the runtime uses (``edgepose.pipeline.decode_to_frame`` and
``Poses.to_coco``), so the AP here equals what the exported model scores through ``edgepose predict`` and
``edgepose eval`` on the same boxes, up to the numerical difference between torch and ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import torch

from compress.progress import bar
from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.coco.evaluate import coco_keypoint_eval
from edgepose.coco.layout import flip_index
from edgepose.codecs import build_codec
from edgepose.io import atomic_write_text
from edgepose.pipeline import Poses, average_flip, decode_to_frame


def _numpy(outputs: dict[str, torch.Tensor], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: outputs[k].detach().float().cpu().numpy() for k in keys}


@torch.no_grad()
def predict(model: torch.nn.Module, loader, card: ModelCard, flip: bool = False,
            device: torch.device | str = "cpu", progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Run ``model`` over a loader of a val ``CocoPoseDataset``: (COCO results, per-item records for PCK)."""
    codec = build_codec(card)
    keys = card_keys(card)
    mirror = flip_index(card.num_keypoints, card.flip_pairs)
    was_training = model.training
    model.eval()
    results, records = [], []
    batches = bar(loader, desc="eval", enabled=progress)
    for batch in batches:
        images = batch["image"].to(device, non_blocking=True)
        outputs = _numpy(model(images), keys)
        if flip:
            outputs = average_flip(codec, outputs, _numpy(model(images.flip(-1)), keys), mirror)
        meta = batch["meta"]
        affine = Affine(np.stack([np.asarray(m["affine"], np.float64) for m in meta]))
        xy, scores = decode_to_frame(codec, outputs, affine)
        for i, m in enumerate(meta):
            box = np.asarray(m["box"], np.float32)[None]
            poses = Poses(xy[i : i + 1], scores[i : i + 1], box, np.array([m["box_score"]], np.float32))
            results += poses.to_coco(int(m["image_id"]))
            records.append({"image_id": int(m["image_id"]), "ann_id": m.get("ann_id"), "xy": xy[i], "box": box[0]})
    model.train(was_training)
    return results, records


def card_keys(card: ModelCard) -> tuple[str, ...]:
    """Canonical output keys of the card's codec."""
    return ("simcc_x", "simcc_y") if card.codec == "simcc" else ("heatmaps",)


def pck(records: list[dict], coco, threshold: float = 0.05) -> float | None:
    """PCK@threshold normalised by the longer side of the GT box, over visible keypoints of GT-box items.

    Items without an annotation (detector boxes, ``ann_id`` -1) are skipped; returns None when none qualify.
    """
    hits = total = 0
    for rec in records:
        if rec.get("ann_id") is None or rec["ann_id"] < 0:  # a detector box: no matching annotation
            continue
        ann = coco.anns[rec["ann_id"]]
        gt = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        visible = gt[:, 2] > 0
        norm = max(ann["bbox"][2], ann["bbox"][3], 1e-6)
        dist = np.linalg.norm(rec["xy"] - gt[:, :2], axis=1) / norm
        hits += int((dist[visible] < threshold).sum())
        total += int(visible.sum())
    return hits / total if total else None


def evaluate(model: torch.nn.Module, loader, card: ModelCard, out_dir: str | None = None, flip: bool = False,
             device: torch.device | str = "cpu", progress: bool = False) -> dict:
    """COCO keypoint AP/AR (pycocotools) plus PCK@0.05; with ``out_dir`` the results json is kept there, else it
    goes to a temporary folder."""
    results, records = predict(model, loader, card, flip=flip, device=device, progress=progress)
    dataset = loader.dataset
    if not results:
        return {"AP": 0.0, "PCK@0.05": None, "persons": 0}
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(out_dir or scratch, "predictions.json")
        atomic_write_text(path, json.dumps(results))
        stats = coco_keypoint_eval(dataset.ann_file, path, verbose=False)
    stats["PCK@0.05"] = pck(records, dataset.coco)
    stats["persons"] = len(results)
    return stats
