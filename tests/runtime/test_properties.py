"""Property tests (hypothesis): any box and keypoints inside it survive the crop transform, the pixel crop and every
codec, within the tolerance each can achieve; decoding any finite model output gives finite keypoints.

The seeded round trips in tests/runtime/test_codecs.py and tests/runtime/test_affine_preprocess.py
check fixed cases in the inner
part of boxes; here hypothesis picks boxes of 4..2000 px with any aspect and keypoints anywhere inside them,
including the edges. Tolerances are per axis, in crop (model input) pixels unless stated.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.codecs import CODECS, build_codec
from edgepose.preprocess import Cropper

# deadline=None: the first example pays for imports and OpenCV warm-up; database=None: no .hypothesis/ folder.
PROPERTY = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

INPUT = (192, 256)  # (width, height), the codec set-up of tests/runtime/test_codecs.py
HEATMAP = (48, 64)
CODEC_PAIRS = [(name, mode) for name in CODECS for mode in {"msra": ("none", "shift", "dark"),
                                                           "udp": ("none", "dark"), "simcc": ("none", "dark")}[name]]


def make_card(codec: str = "msra", decode: str = "none", **kw) -> ModelCard:
    extra = {"simcc_split_ratio": 2.0, "sigma": (4.9, 5.66)} if codec == "simcc" else {"heatmap_size": HEATMAP}
    fields = {"input_size": INPUT, "mean": (0, 0, 0), "std": (1, 1, 1), "color": "bgr", "codec": codec,
              "decode": decode, **extra, **kw}
    return ModelCard(**fields)


def cell(codec: str) -> np.ndarray:
    """Input pixels per heatmap cell / SimCC bin, per axis: MSRA W/w; UDP (W-1)/(w-1); SimCC 1/r."""
    if codec == "simcc":
        return np.array([0.5, 0.5])
    if codec == "udp":
        return (np.array(INPUT) - 1.0) / (np.array(HEATMAP) - 1.0)
    return np.array(INPUT, float) / np.array(HEATMAP)


# Keypoints anywhere in the input, [0, W-1] x [0, H-1], per axis. The refined decoders cannot beat the integer
# argmax at the border (no refinement there, or a step computed on a Gaussian the map edge cuts off).
ANYWHERE = {
    # MSRA maps x_h = x * w / W, so the last input pixel W-1 lies 0.75 cell beyond the last heatmap cell (w-1):
    # the integer argmax is off by up to 0.75 cell there (0.5 cell elsewhere). 'shift' moves no border cell;
    # 'dark' refines only argmaxes >= 2 cells inside the map (MMPose), so all three share the bound.
    ("msra", "none"): lambda c: 0.75 * c, ("msra", "shift"): lambda c: 0.75 * c, ("msra", "dark"): lambda c: 0.75 * c,
    # UDP's grid spans the input exactly: the nearest cell is within half a cell.
    ("udp", "none"): lambda c: 0.5 * c,
    # UDP-DARK near the border: measured 3.34 px (0.82 cell) on a 0.05 px scan of all four edges and corners:
    # the Newton step on a border-cut Gaussian blurred with zero padding overshoots (MMPose does the same).
    ("udp", "dark"): lambda c: 0.86 * c,
    # SimCC: the argmax bin is within half a bin; 1-D DARK's step is clamped to +-1 bin (measured 0.70 px).
    ("simcc", "none"): lambda c: 0.5 * c, ("simcc", "dark"): lambda c: 1.5 * c,
}
# Keypoints inside a box the card pads by 1.25: at least 10% of the crop (19.2 / 25.6 px) from its border.
INSIDE_BOX = {
    ("msra", "none"): lambda c: 0.5 * c, ("msra", "shift"): lambda c: 0.25 * c,
    # measured 0.048 px where the box edge meets the Gaussian's +-3 sigma (its tail is cut by the map edge and
    # blurred with zero padding); 0.0017 px 24 px or more inside (tests/test_codecs TIGHT: 0.004)
    ("msra", "dark"): lambda c: 0.08,
    ("udp", "none"): lambda c: 0.5 * c,
    ("udp", "dark"): lambda c: 0.01,  # measured 0.0056 at the box edge, 0.0002 further in
    ("simcc", "none"): lambda c: 0.5 * c,
    ("simcc", "dark"): lambda c: 1e-4,  # measured 1e-5: float32 rounding of labels and keypoints
}
SLACK = 1e-3  # float32 keypoints at up to 255 px, and the exact half-cell ties of the integer argmax


@st.composite
def boxes_and_keypoints(draw, k: int = 17, max_side: float = 2000.0):
    """An xyxy box (4..2000 px sides, any aspect, anywhere) and k keypoints drawn uniformly inside it."""
    x1 = draw(st.floats(-1000, 5000))
    y1 = draw(st.floats(-1000, 5000))
    w = draw(st.floats(4, max_side))
    h = draw(st.floats(4, max_side))
    frac = draw(arrays(np.float64, (k, 2), elements=st.floats(0, 1)))
    box = np.array([x1, y1, x1 + w, y1 + h])
    return box, box[:2] + frac * (box[2:] - box[:2])


# ---------------------------------------------------------------- Affine


@PROPERTY
@given(case=boxes_and_keypoints(), udp=st.booleans(), padding=st.floats(1.0, 2.0),
       size=st.sampled_from([(192, 256), (288, 384), (256, 256), (48, 64), (256, 192)]))
def test_affine_maps_box_keypoints_into_the_crop_and_back(case, udp, padding, size):
    box, keypoints = case
    affine = Affine.from_boxes(box[None], size, padding, udp=udp)
    crop = affine.apply(keypoints[None])[0]
    last = np.array(size, float) - (1.0 if udp else 0.0)  # the crop spans [0, W] (standard) or [0, W-1] (UDP)
    assert (crop >= -1e-6).all() and (crop <= last + 1e-6).all()
    centre = affine.apply(((box[:2] + box[2:]) / 2)[None, None])[0, 0]
    np.testing.assert_allclose(centre, last / 2, atol=1e-6)  # box centre -> (W/2, H/2) or ((W-1)/2, (H-1)/2)
    # the padded box fills the crop along its limiting axis and fits inside along the other
    half = 0.5 * padding * (box[2:] - box[:2])
    corners = affine.apply(np.array([[(box[:2] + box[2:]) / 2 - half, (box[:2] + box[2:]) / 2 + half]]))[0]
    span = corners[1] - corners[0]
    assert (span <= last + 1e-6).all() and np.isclose(span, last, rtol=1e-9).any()
    back = affine.inverse().apply(crop[None])[0]
    np.testing.assert_allclose(back, keypoints, atol=1e-3)


# ---------------------------------------------------------------- the pixel crop


@PROPERTY
@given(case=boxes_and_keypoints(k=1), udp=st.booleans())
def test_a_bright_dot_lands_where_the_affine_says(case, udp):
    """A frame holding one bright spot at the keypoint: the Cropper's crop peaks within 1 px of affine(keypoint).

    Robust settings: the spot is a Gaussian of 2 crop pixels (2 / s frame pixels, s = crop px per frame px) where
    the crop shrinks the frame, and a single pixel (keypoint rounded to a pixel centre) where it enlarges it, so
    bilinear sampling cannot miss it; its location is the centroid of the crop in a 9x9 window around the peak
    (measured error <= 0.42 px over 600 random boxes). The frame holds the box plus a margin of 4 spot sigmas.
    """
    box, keypoint = case
    card = make_card("udp" if udp else "msra")
    cropper = Cropper(card)
    s = Affine.from_boxes(box[None], card.input_size, card.bbox_padding, udp=udp).matrices[0, 0, 0]
    sigma = 2.0 / s
    margin = int(np.ceil(4 * max(sigma, 1.0))) + 2
    shift = np.floor(box[:2]) - margin  # move the box near the origin of a small frame
    box, kp = box - np.tile(shift, 2), keypoint[0] - shift
    if sigma < 1.0:  # the crop enlarges the frame: a one-pixel dot at a pixel centre inside the box
        kp = np.clip(np.round(kp), np.ceil(box[:2]), np.floor(box[2:]))
    width, height = (np.ceil(box[2:]) + margin + 2).astype(int)
    frame = np.zeros((height, width, 3), np.uint8)
    if sigma < 1.0:
        frame[int(kp[1]), int(kp[0]), 0] = 255
    else:
        r = int(np.ceil(4 * sigma))
        cx, cy = np.round(kp).astype(int)
        ys, xs = np.mgrid[cy - r:cy + r + 1, cx - r:cx + r + 1]
        spot = 255 * np.exp(-((xs - kp[0]) ** 2 + (ys - kp[1]) ** 2) / (2 * sigma * sigma))
        frame[cy - r:cy + r + 1, cx - r:cx + r + 1, 0] = np.round(spot).astype(np.uint8)
    batch, affine = cropper(frame, box[None])
    want = affine.apply(kp[None, None])[0, 0]
    plane = batch[0, 0].astype(np.float64)  # mean 0, std 1, BGR: the crop holds the pixel values
    iy, ix = np.unravel_index(np.argmax(plane), plane.shape)
    assert plane[iy, ix] > 100
    y0, x0 = max(iy - 4, 0), max(ix - 4, 0)
    window = plane[y0:iy + 5, x0:ix + 5]
    yy, xx = np.mgrid[y0:y0 + window.shape[0], x0:x0 + window.shape[1]]
    found = np.array([(window * xx).sum(), (window * yy).sum()]) / window.sum()
    assert np.abs(found - want).max() <= 1.0, (found, want, s)


# ---------------------------------------------------------------- codecs


@pytest.mark.parametrize(("codec_name", "decode"), CODEC_PAIRS)
@PROPERTY
@given(frac=arrays(np.float64, (2, 17, 2), elements=st.floats(0, 1)))
def test_codec_round_trip_anywhere_in_the_input(codec_name, decode, frac):
    codec = build_codec(make_card(codec_name, decode))
    keypoints = frac * (np.array(INPUT) - 1.0)
    targets, weights = codec.encode(keypoints, np.ones(keypoints.shape[:2]))
    assert (weights == 1).all()
    decoded, scores = codec.decode(targets)
    tolerance = ANYWHERE[codec_name, decode](cell(codec_name)) + SLACK
    assert (np.abs(decoded - keypoints) <= tolerance).all(), np.abs(decoded - keypoints).max(axis=(0, 1))
    assert (scores > 0.3).all()


@pytest.mark.parametrize(("codec_name", "decode"), CODEC_PAIRS)
@PROPERTY
@given(case=boxes_and_keypoints())
def test_box_keypoints_round_trip_through_crop_and_codec(codec_name, decode, case):
    """frame keypoints inside a box -> crop -> encode -> decode -> inverse: back within the codec's tolerance."""
    box, keypoints = case
    card = make_card(codec_name, decode)
    codec = build_codec(card)
    affine = Affine.from_boxes(box[None], card.input_size, card.bbox_padding, udp=codec_name == "udp")
    crop = affine.apply(keypoints[None])
    targets, weights = codec.encode(crop, np.ones(crop.shape[:2]))
    decoded, _ = codec.decode(targets)
    back = affine.inverse().apply(decoded)[0]
    s = affine.matrices[0, 0, 0]  # crop px per frame px, the same on both axes (aspect fixed by the padding)
    tolerance = INSIDE_BOX[codec_name, decode](cell(codec_name)) + SLACK
    assert (np.abs(back - keypoints) * s <= tolerance).all(), (np.abs(back - keypoints).max(axis=0) * s, tolerance)


SMALL = {"msra": {"input_size": (32, 40), "heatmap_size": (8, 10)},
         "udp": {"input_size": (32, 40), "heatmap_size": (8, 10)},
         "simcc": {"input_size": (16, 20)}}


@pytest.mark.parametrize(("codec_name", "decode"), CODEC_PAIRS)
@PROPERTY
@given(data=st.data())
def test_any_finite_output_decodes_to_finite_keypoints(codec_name, decode, data):
    """Finite outputs of any magnitude (subnormal to float32 max, either sign) never decode to NaN/Inf keypoints,
    so the runtime's only non-finite source is a non-finite output, which read_output refuses."""
    card = make_card(codec_name, decode, **SMALL[codec_name])
    codec = build_codec(card)
    elements = st.floats(width=32, allow_nan=False, allow_infinity=False)
    if codec_name == "simcc":
        w, h = card.input_size
        outputs = {"simcc_x": data.draw(arrays(np.float32, (2, 3, 2 * w), elements=elements)),
                   "simcc_y": data.draw(arrays(np.float32, (2, 3, 2 * h), elements=elements))}
    else:
        w, h = card.heatmap_size
        outputs = {"heatmaps": data.draw(arrays(np.float32, (2, 3, h, w), elements=elements))}
    with np.errstate(all="ignore"):
        keypoints, scores = codec.decode(outputs)
    assert np.isfinite(keypoints).all() and np.isfinite(scores).all()
    frame = Affine.from_boxes(np.array([[10.0, 20.0, 300.0, 500.0]] * 2), card.input_size).inverse().apply(keypoints)
    assert np.isfinite(frame).all()
