"""Affine crop: pixel convention, inverse round trip, MMPose box conventions, the CPU crop vs a slow reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgepose.affine import Affine, boxes_to_center_scale, validate_boxes
from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.preprocess import Cropper, validate_frame

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                 color="rgb", codec="msra", heatmap_size=(48, 64))


def random_boxes(rng, n, width=640, height=480):
    x1 = rng.uniform(0, width * 0.7, n)
    y1 = rng.uniform(0, height * 0.7, n)
    return np.stack([x1, y1, x1 + rng.uniform(10, width * 0.3, n), y1 + rng.uniform(10, height * 0.3, n)], 1)


def test_center_scale_fixes_aspect_and_pads():
    center, scale = boxes_to_center_scale(np.array([[10, 20, 110, 420], [0, 0, 300, 100]]), (192, 256), 1.25)
    np.testing.assert_allclose(center, [[60, 220], [150, 50]])
    np.testing.assert_allclose(scale[:, 0] / scale[:, 1], 0.75)
    np.testing.assert_allclose(scale, [[375, 500], [375, 500]])  # tall: height*1.25; wide: width*1.25


@pytest.mark.parametrize("udp", [False, True])
def test_box_maps_to_mmpose_reference(udp):
    box = np.array([[50.0, 40.0, 150.0, 240.0]])
    m = Affine.from_boxes(box, (192, 256), 1.25, udp=udp).matrices[0]
    # MMPose get_warp_matrix / get_udp_warp_matrix for rot=0, written out: centre (100,140), scale (187.5, 250).
    s = (191 / 187.5, 255 / 250) if udp else (192 / 187.5, 256 / 250)
    dst = (95.5, 127.5) if udp else (96, 128)
    np.testing.assert_allclose(m, [[s[0], 0, dst[0] - s[0] * 100], [0, s[1], dst[1] - s[1] * 140]], atol=1e-12)


def test_inverse_round_trip_with_rotation():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 20)
    affine = Affine.from_boxes(boxes, (192, 256), 1.25, rotation=rng.uniform(-40, 40, 20))
    pts = rng.uniform(0, 640, (20, 17, 2))
    np.testing.assert_allclose(affine.inverse().apply(affine.apply(pts)), pts, atol=1e-9)


def test_inverse_matches_linalg_and_rejects_singular():
    rng = np.random.default_rng(1)
    matrices = rng.normal(size=(50, 2, 3)) * rng.uniform(0.01, 100, (50, 1, 1))
    full = np.concatenate([matrices, np.broadcast_to([0.0, 0.0, 1.0], (50, 1, 3))], axis=1)
    np.testing.assert_allclose(Affine(matrices).inverse().matrices, np.linalg.inv(full)[:, :2], rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="singular"):
        Affine(np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 5.0]]])).inverse()


def test_pixel_convention_matches_warp():
    """Crop pixel (row i, col j) holds the frame value at inverse((j, i)): integer coordinates are pixel centres."""
    height, width = 300, 400
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame_x = xs.copy()  # the value of a pixel is its own x coordinate
    affine = Affine.from_boxes(np.array([[100.3, 50.7, 217.9, 250.2]]), (48, 64), 1.0)
    crop = cv2.warpAffine(frame_x, affine.matrices[0], (48, 64), flags=cv2.INTER_LINEAR)
    jj, ii = np.meshgrid(np.arange(48), np.arange(64))
    src = affine.inverse().apply(np.stack([jj, ii], -1).reshape(1, -1, 2).astype(float))[0]
    np.testing.assert_allclose(crop.reshape(-1), src[:, 0], atol=2e-2)  # OpenCV's bilinear uses 5-bit weights


def slow_crop(frame, boxes, card):
    """The obvious per-box code a user would write: warp, convert colour, normalise, transpose."""
    out = []
    for m in Affine.from_boxes(boxes, card.input_size, card.bbox_padding).matrices:
        crop = cv2.warpAffine(frame, m, card.input_size, flags=cv2.INTER_LINEAR)
        if card.color == "rgb":
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        crop = (crop.astype(np.float64) - np.array(card.mean)) / np.array(card.std)
        out.append(crop.transpose(2, 0, 1))
    return np.array(out)


@pytest.mark.parametrize("color", ["rgb", "bgr"])
def test_cropper_matches_slow_reference(color):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = random_boxes(rng, 7)
    card = ModelCard(**{**CARD.to_dict(), "color": color})
    batch, affine = Cropper(card)(frame, boxes)
    assert batch.shape == (7, 3, 256, 192) and batch.dtype == np.float32 and len(affine) == 7
    np.testing.assert_allclose(batch, slow_crop(frame, boxes, card), atol=1e-5)


def test_cropper_float16_and_empty():
    frame = np.zeros((100, 100, 3), np.uint8)
    batch, _ = Cropper(CARD, np.dtype(np.float16))(frame, np.array([[10, 10, 50, 90]]))
    assert batch.dtype == np.float16
    empty, affine = Cropper(CARD)(frame, np.zeros((0, 4)))
    assert empty.shape == (0, 3, 256, 192) and len(affine) == 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [(None, "numpy array"), (np.zeros((10, 10), np.uint8), "shape"), (np.zeros((10, 10, 4), np.uint8), "BGRA"),
     (np.zeros((10, 10, 3), np.uint16), "uint8"), (np.zeros((10, 10, 3), np.float32), "uint8"),
     (np.zeros((1, 1, 3), np.uint8), "too small")],
)
def test_bad_frames(frame, message):
    with pytest.raises(InputError, match=message):
        validate_frame(frame)


@pytest.mark.parametrize(
    ("boxes", "message"),
    [([[0, 0, 10]], "shape"), ([[0, 0, np.nan, 10]], "NaN"), ([[5, 5, 5, 10]], "zero or negative"),
     ([[500, 500, 600, 600]], "outside")],
)
def test_bad_boxes(boxes, message):
    with pytest.raises(InputError, match=message):
        validate_boxes(np.array(boxes, dtype=float), (100, 100, 3))
