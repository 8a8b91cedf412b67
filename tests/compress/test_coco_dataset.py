"""COCO top-down dataset on the real COCO val samples: targets decode back to the annotations through the item's
affine (plain, mirrored, augmented), the eval crop is the runtime's, determinism per (seed, epoch, index) and across
worker counts, detector boxes, and the errors for bad input."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.data.coco import CocoPoseDataset, layout
from compress.data.loader import make_loader, set_epoch
from compress.data.transforms import (
    AugmentConfig,
    color_jitter,
    fix_aspect_ratio,
    flip_matrix,
    half_body,
    random_bbox_transform,
    truncated_normal,
)
from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.codecs import build_codec
from edgepose.errors import InputError
from edgepose.io import read_image
from edgepose.preprocess import Cropper

COCO_DIR = Path(__file__).resolve().parents[1] / "data" / "coco_val_samples"
ANN = COCO_DIR / "test_coco.json"
DETS = COCO_DIR / "test_coco_det_AP_H_56.json"
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
TOL = 0.05  # frame px; measured max: msra+dark 0.003, udp+dark 0.0005 (keypoints >= 3 sigma inside the crop)
OFF = AugmentConfig(flip_prob=0.0, scale_prob=0.0, rotate_prob=0.0, shift_prob=0.0, half_body_prob=0.0,
                    color_jitter=0.0)


def card_for(codec: str) -> ModelCard:
    extra = {"simcc_split_ratio": 2.0, "sigma": (4.9, 5.66)} if codec == "simcc" else {"heatmap_size": (48, 64)}
    return ModelCard(input_size=(192, 256), mean=MEAN, std=STD, color="rgb", codec=codec, decode="dark", **extra)


def decoded_in_frame(ds: CocoPoseDataset, item: dict) -> np.ndarray:
    """Decode the item's targets with the card's codec, undo the flip relabelling, map back to frame pixels."""
    codec = build_codec(ds.card)
    decoded, _ = codec.decode({k: v[None].numpy() for k, v in item["targets"].items()})
    if item["meta"]["flipped"]:
        decoded = decoded[:, ds.flip_index]
    return Affine(item["meta"]["affine"]).inverse().apply(decoded.astype(np.float64))[0]


def checkable(ds: CocoPoseDataset, item: dict) -> np.ndarray:
    """Labelled keypoints at least 3 sigma inside the crop, where the target Gaussian is not cut by the border."""
    gt = ds._keypoints[item["meta"]["index"]]
    crop = Affine(item["meta"]["affine"]).apply(gt[None, :, :2])[0]
    width, height = ds.card.input_size
    margin = 3 * 2.0 * width / 48  # 3 sigma in input pixels
    inside = (crop >= margin).all(axis=1) & (crop[:, 0] <= width - 1 - margin) & (crop[:, 1] <= height - 1 - margin)
    return inside & (gt[:, 2] > 0)


def geometry_error(ds: CocoPoseDataset, item: dict) -> tuple[float, int]:
    gt = ds._keypoints[item["meta"]["index"]]
    mask = checkable(ds, item)
    if not mask.any():
        return 0.0, 0
    return float(np.abs(decoded_in_frame(ds, item) - gt[:, :2])[mask].max()), int(mask.sum())


@pytest.mark.parametrize("codec", ["msra", "udp"])
def test_plain_items_decode_to_annotations(codec: str) -> None:
    ds = CocoPoseDataset(ANN, COCO_DIR, card_for(codec), split="train", augment=AugmentConfig(enabled=False))
    assert len(ds) == 12 and ds.image_ids == [785, 40083, 196141, 197388]
    checked = 0
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 256, 192) and item["image"].dtype == torch.float32
        assert item["targets"]["heatmaps"].shape == (17, 64, 48) and item["weights"].shape == (17,)
        assert item["meta"]["index"] == i and not item["meta"]["flipped"]
        err, n = geometry_error(ds, item)
        assert err < TOL, (i, err)
        checked += n
        weights = item["weights"].numpy()
        assert (weights[checkable(ds, item)] == 1).all() and (weights[ds._keypoints[i][:, 2] == 0] == 0).all()
    assert checked > 100


def test_eval_crop_is_the_runtime_crop() -> None:
    card = card_for("msra")
    ds = CocoPoseDataset(ANN, COCO_DIR, card, split="val")
    assert not ds.augment.enabled
    cropper = Cropper(card)
    for i in (0, 5, 11):
        item = ds[i]
        frame = read_image(ds.image_path(item["meta"]["image_id"]))
        batch, affine = cropper(frame, ds._boxes[i][None])  # meta "box" is its float32 copy
        np.testing.assert_allclose(item["meta"]["affine"], affine.matrices[0], atol=1e-9)
        np.testing.assert_array_equal(item["image"].numpy(), batch[0])


def test_simcc_targets() -> None:
    ds = CocoPoseDataset(ANN, COCO_DIR, card_for("simcc"), split="train", augment=AugmentConfig(enabled=False))
    item = ds[0]
    assert set(item["targets"]) == {"simcc_x", "simcc_y"}
    assert item["targets"]["simcc_x"].shape == (17, 384) and item["targets"]["simcc_y"].shape == (17, 512)
    err, n = geometry_error(ds, item)
    assert n > 5 and err < TOL


@pytest.mark.parametrize("codec", ["msra", "udp"])
def test_flip_mirrors_crop_and_swaps_pairs(codec: str) -> None:
    card = card_for(codec)
    plain = CocoPoseDataset(ANN, COCO_DIR, card, split="train", augment=AugmentConfig(enabled=False))
    flipped = CocoPoseDataset(ANN, COCO_DIR, card, split="train", augment=replace(OFF, flip_prob=1.0))
    for i in range(len(plain)):
        a, b = plain[i], flipped[i]
        assert b["meta"]["flipped"]
        err, n = geometry_error(flipped, b)
        assert err < TOL, (i, err)
        # the mirrored crop is the plain crop read right to left (bilinear rounding: at most one grey level)
        diff = (b["image"] - a["image"].flip(-1)).abs().max().item()
        assert diff <= 1.0 / min(STD) + 1e-6, diff
        # the model is taught the mirrored names: left wrist's target in the mirror holds the right wrist
        np.testing.assert_array_equal(b["weights"].numpy()[flipped.flip_index][checkable(plain, a)], 1.0)
    assert flipped.flip_index[9] == 10 and flipped.flip_index[0] == 0


def test_augmented_geometry_stays_exact() -> None:
    card = card_for("msra")
    cfg = AugmentConfig(rotate_prob=1.0, shift_prob=1.0, half_body_prob=0.5)
    checked, rotated, zoomed = 0, 0, set()
    for seed in range(20):
        ds = CocoPoseDataset(ANN, COCO_DIR, card, split="train", augment=cfg, seed=seed)
        for i in range(len(ds)):
            item = ds[i]
            err, n = geometry_error(ds, item)
            assert err < TOL, (seed, i, err)
            checked += n
            m = item["meta"]["affine"]
            rotated += abs(np.degrees(np.arctan2(m[0, 1], abs(m[0, 0])))) > 5
            zoomed.add(round(float(np.hypot(*m[:, 0])), 2))
    assert checked > 1000 and rotated > 100 and len(zoomed) > 100


def test_determinism_per_seed_epoch_index() -> None:
    card = card_for("msra")
    ds = CocoPoseDataset(ANN, COCO_DIR, card, split="train", augment=AugmentConfig(), seed=3)
    again = CocoPoseDataset(ANN, COCO_DIR, card, split="train", augment=AugmentConfig(), seed=3)
    ds.set_epoch(4)
    a, b = ds[7], again[(4, 7)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["targets"]["heatmaps"], b["targets"]["heatmaps"])
    assert np.array_equal(a["meta"]["affine"], b["meta"]["affine"])
    different = [not np.array_equal(ds[(e, 7)]["meta"]["affine"], a["meta"]["affine"]) for e in range(5, 9)]
    assert all(different)
    assert not torch.equal(ds[(5, 7)]["image"], a["image"])


def test_loader_same_batches_for_any_worker_count() -> None:
    ds = CocoPoseDataset(ANN, COCO_DIR, card_for("msra"), split="train", augment=AugmentConfig(), seed=1)
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, shuffle=True, workers=workers, seed=1)
        assert loader.persistent_workers == (workers > 0)
        epochs = []
        for epoch in (0, 1):  # the persistent workers must see the new epoch
            set_epoch(loader, epoch)
            epochs.append(next(iter(loader)))
        batches[workers] = epochs
    for epoch in (0, 1):
        a, b = batches[0][epoch], batches[2][epoch]
        assert a["image"].shape == (4, 3, 256, 192) and a["targets"]["heatmaps"].shape == (4, 17, 64, 48)
        assert a["weights"].shape == (4, 17) and len(a["meta"]) == 4
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["targets"]["heatmaps"], b["targets"]["heatmaps"])
        assert [m["index"] for m in a["meta"]] == [m["index"] for m in b["meta"]]
    first = [m["index"] for m in batches[0][0]["meta"]]
    assert first != [m["index"] for m in batches[0][1]["meta"]] or not torch.equal(
        batches[0][0]["image"], batches[0][1]["image"])


def test_detector_boxes_one_item_per_box() -> None:
    ds = CocoPoseDataset(ANN, COCO_DIR, card_for("msra"), split="val", boxes=DETS)
    dets = json.loads(DETS.read_text())
    assert len(ds) == len(dets) == 118
    expected = sorted(((d["image_id"], n, d["score"]) for n, d in enumerate(dets)))
    got = [(ds[i]["meta"]["image_id"], ds[i]["meta"]["box_score"]) for i in (0, 50, 117)]
    assert got == [(e[0], pytest.approx(e[2])) for e in (expected[0], expected[50], expected[117])]
    item = ds[0]
    x, y, w, h = dets[expected[0][1]]["bbox"]
    np.testing.assert_allclose(item["meta"]["box"], [x, y, x + w, y + h], rtol=1e-6)
    assert item["meta"]["ann_id"] == -1 and item["weights"].sum() == 0
    assert len(CocoPoseDataset(ANN, COCO_DIR, card_for("msra"), split="val", boxes=DETS, box_threshold=0.5)) < 118


def test_bad_inputs(tmp_path: Path) -> None:
    card = card_for("msra")
    with pytest.raises(InputError, match="annotation file not found"):
        CocoPoseDataset(tmp_path / "person_keypoints_val2017.json", COCO_DIR, card)
    no_anns = tmp_path / "images_only.json"
    no_anns.write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="no 'annotations'"):
        CocoPoseDataset(no_anns, COCO_DIR, card)
    with pytest.raises(InputError, match="image folder not found"):
        CocoPoseDataset(ANN, tmp_path / "val2017", card)
    with pytest.raises(InputError, match=r"lacks annotations/person_keypoints_val2017\.json"):
        layout(tmp_path)
    with pytest.raises(InputError, match="split='val'"):
        CocoPoseDataset(ANN, COCO_DIR, card, split="train", boxes=DETS)
    data = json.loads(ANN.read_text())
    data["images"][0]["file_name"] = "renamed_000000000785.jpg"
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(data))
    ds = CocoPoseDataset(renamed, COCO_DIR, card, split="val")  # construction does not open images
    assert ds[1]["meta"]["image_id"] != 785
    with pytest.raises(InputError, match="image file missing: .*renamed_000000000785.jpg"):
        ds[0]
    other = tmp_path / "dets.json"
    other.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9}]))
    with pytest.raises(InputError, match="no person boxes"):
        CocoPoseDataset(ANN, COCO_DIR, card, split="val", boxes=other)


def test_layout_finds_standard_files(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    shutil.copy(ANN, tmp_path / "annotations" / "person_keypoints_val2017.json")
    with pytest.raises(InputError, match="image folder val2017/"):
        layout(tmp_path)
    (tmp_path / "val2017").mkdir()
    assert layout(tmp_path) == (tmp_path / "annotations" / "person_keypoints_val2017.json", tmp_path / "val2017")


def test_transforms_follow_mmpose() -> None:
    rng = np.random.default_rng(0)
    draws = truncated_normal(rng, 20000)
    assert np.abs(draws).max() <= 1 and abs(draws.std() - 0.5398) < 0.01  # scipy truncnorm(-1, 1).std()
    cfg = AugmentConfig(shift_prob=1.0, rotate_prob=1.0)
    center, scale = np.array([100.0, 200.0]), np.array([150.0, 200.0])
    for seed in range(50):
        c, s, rot = random_bbox_transform(center, scale, np.random.default_rng(seed), cfg)
        assert (np.abs(c - center) <= 0.16 * scale).all() and abs(rot) <= 80
        assert 0.5 <= s[0] / scale[0] <= 1.5 and s[0] / scale[0] == pytest.approx(s[1] / scale[1])
    c, s, rot = random_bbox_transform(center, scale, rng, replace(OFF, scale_prob=0.0))
    assert np.array_equal(c, center) and np.array_equal(s, scale) and rot == 0
    # half body: with every keypoint visible and prob 1 the window is one half's mean and extent x 1.5
    kp = np.random.default_rng(1).uniform(0, 300, (17, 2))
    upper, lower = kp[:11], kp[11:]
    c, s = half_body(center, scale, kp, np.ones(17, bool), np.random.default_rng(2), replace(cfg, half_body_prob=1.0))
    half = upper if np.allclose(c, upper.mean(0)) else lower
    np.testing.assert_allclose(c, half.mean(0))
    np.testing.assert_allclose(s, (half.max(0) - half.min(0)) * 1.5)
    few = np.zeros(17, bool)
    few[:8] = True  # 8 < min_total_keypoints 9: unchanged
    c, s = half_body(center, scale, kp, few, rng, replace(cfg, half_body_prob=1.0))
    assert c is center and s is scale
    np.testing.assert_allclose(fix_aspect_ratio(np.array([100.0, 100.0]), (192, 256)), [100, 400 / 3])
    m = Affine.from_boxes(np.array([10.0, 20.0, 110.0, 220.0]), (192, 256)).matrices[0]
    np.testing.assert_allclose(flip_matrix(flip_matrix(m, 192), 192), m)
    image = np.random.default_rng(3).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(color_jitter(image, rng, 0.0), image)
    assert not np.array_equal(color_jitter(image, rng, 0.2), image)
