"""Keypoint codecs: round trips through the crop affine, loop references for DARK, targets, border cases, errors.

Set-up shared with tests/runtime/test_codec_flip.py: input 192x256 (w, h), heatmaps 48x64 (stride 4), sigma 2;
SimCC ratio 2.0 with sigma (4.9, 5.66). Every random draw comes from a seeded numpy Generator.
"""

from __future__ import annotations

import re
import types

import cv2
import numpy as np
import pytest

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.codecs import CODECS, Codec, MSRAHeatmap, SimCC, UDPHeatmap, build_codec
from edgepose.codecs.utils import blur_around, blurred_max
from edgepose.errors import OutputError

INPUT = (192, 256)
HEATMAP = (48, 64)
STRIDE = INPUT[0] / HEATMAP[0]
PAIRS = [("msra", "none"), ("msra", "shift"), ("msra", "dark"), ("udp", "none"), ("udp", "dark")]
PAIRS += [("simcc", "none"), ("simcc", "dark")]


def make_codec(codec: str, decode: str) -> Codec:
    """A codec built from a ModelCard, as the runtime builds it."""
    extra = {"simcc_split_ratio": 2.0, "sigma": (4.9, 5.66)} if codec == "simcc" else {"heatmap_size": HEATMAP}
    card = ModelCard(input_size=INPUT, mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec=codec, decode=decode, **extra)
    return build_codec(card)


def frame_case(rng: np.random.Generator, n: int = 24, k: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Random xyxy boxes in a 1920x1080 frame and keypoints in their inner 80% (>= 3 sigma from the crop border)."""
    x1, y1 = rng.uniform(0, 1400, n), rng.uniform(0, 600, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(40, 500, n), y1 + rng.uniform(60, 480, n)], axis=1)
    frac = rng.uniform(0.1, 0.9, (n, k, 2))
    keypoints = boxes[:, None, :2] + frac * (boxes[:, None, 2:] - boxes[:, None, :2])
    return boxes, keypoints


# Measured max error in input (crop) pixels over 24 x 17 keypoints (seed 0), and the tolerance asserted: about
# 2x the measurement for the refined decoders; the quantisation bound for the integer argmax.
#   msra+dark 0.0019 -> 0.004 | udp+dark 0.00020 -> 0.0005 | simcc+dark 1.1e-5 -> 1e-4 (float32 output rounding
#   at ~200 px is 1.5e-5) | msra+none / udp+none <= half a heatmap pixel diagonal x stride | simcc+none <= 0.5/r
#   per axis | msra+shift <= 0.25 heatmap pixel per axis, mean error between dark's and none's.
TIGHT = {("msra", "dark"): 0.004, ("udp", "dark"): 0.0005, ("simcc", "dark"): 1e-4}


def round_trip(codec_name: str, decode: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """frame -> crop -> encode -> decode -> frame; returns (crop-space error (N, K, 2), frame error in crop px)."""
    rng = np.random.default_rng(seed)
    boxes, frame_kp = frame_case(rng)
    affine = Affine.from_boxes(boxes, INPUT, 1.25, udp=codec_name == "udp")
    crop = affine.apply(frame_kp)
    margin = 3 * 2.0 * STRIDE  # 3 sigma in input pixels
    assert (crop >= margin).all() and (crop <= np.subtract(INPUT, 1) - margin).all()
    codec = make_codec(codec_name, decode)
    targets, weights = codec.encode(crop, np.ones(crop.shape[:2], bool))
    assert (weights == 1).all()
    decoded, scores = codec.decode(targets)
    assert decoded.dtype == np.float32 and scores.dtype == np.float32
    assert (scores > 0.9).all()
    back = affine.inverse().apply(decoded)
    per_axis_scale = np.abs(affine.matrices[:, None, [0, 1], [0, 1]])  # crop px per frame px, per axis
    return decoded - crop, (back - frame_kp) * per_axis_scale


@pytest.mark.parametrize("codec_name, decode", PAIRS)
def test_round_trip_through_affine(codec_name: str, decode: str) -> None:
    err, frame_err = round_trip(codec_name, decode)
    dist = np.linalg.norm(err, axis=-1)
    # frame-space error relative to the crop scale equals the crop-space error (no rotation): 1e-6 px
    np.testing.assert_allclose(frame_err, err, atol=1e-6)
    if (codec_name, decode) in TIGHT:
        assert dist.max() < TIGHT[codec_name, decode], dist.max()
    elif decode == "none" and codec_name != "simcc":
        codec = make_codec(codec_name, decode)
        cell = 1 / codec.heatmap_map()[0]  # input pixels per heatmap pixel
        assert (dist <= 0.5 * np.hypot(*cell) + 1e-4).all(), dist.max()
    elif codec_name == "simcc":
        assert np.abs(err).max() <= 0.5 / 2.0 + 1e-6
    else:  # msra + shift: within a quarter heatmap pixel per axis, and between dark and none on average
        assert np.abs(err).max() <= 0.25 * STRIDE + 1e-4
        mean = {d: np.linalg.norm(round_trip("msra", d)[0], axis=-1).mean() for d in ("none", "dark")}
        assert mean["dark"] < dist.mean() < mean["none"], (mean, dist.mean())


# ---------------------------------------------------------------- loop references (MMPose, one map at a time)


def ref_blur(hm: np.ndarray, ksize: int) -> np.ndarray:
    """MMPose gaussian_blur for one map: zero-pad, cv2 blur, crop, rescale to the original max (in hm's dtype)."""
    b = (ksize - 1) // 2
    padded = np.zeros((hm.shape[0] + 2 * b, hm.shape[1] + 2 * b), hm.dtype)
    padded[b:-b, b:-b] = hm
    out = cv2.GaussianBlur(padded, (ksize, ksize), 0)[b:-b, b:-b].copy()
    out *= hm.max() / out.max()
    return out


def ref_decode(heatmaps: np.ndarray, kind: str, ksize: int = 11, dtype: type = np.float32) -> np.ndarray:
    """Plain-loop DARK ('msra') or UDP-DARK ('udp') decode in heatmap pixels (UDP: edge-padded neighbours).

    With float32 (MMPose's arithmetic) or float64: the blurred map, rescale and log in that dtype."""
    n_persons, n_kpts, h, w = heatmaps.shape
    out = np.zeros((n_persons, n_kpts, 2))
    for n in range(n_persons):
        for k in range(n_kpts):
            hm = heatmaps[n, k].astype(np.float32).astype(dtype)
            y, x = divmod(int(np.argmax(hm)), w)
            out[n, k] = x, y
            if hm.max() <= 0 or (kind == "msra" and not (1 < x < w - 2 and 1 < y < h - 2)):
                continue  # MMPose refines msra DARK only 2+ pixels inside the map
            blurred = ref_blur(hm, ksize)
            if kind == "msra":
                logmap = np.log(np.maximum(blurred, np.float32(1e-10)))
            else:
                logmap = np.log(np.clip(blurred, np.float32(1e-3), np.float32(50)))

            def v(dx: int, dy: int, logmap: np.ndarray = logmap, x: int = x, y: int = y) -> float:
                return float(logmap[min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)])

            if kind == "msra":
                dx, dy = 0.5 * (v(1, 0) - v(-1, 0)), 0.5 * (v(0, 1) - v(0, -1))
                dxx = 0.25 * (v(2, 0) - 2 * v(0, 0) + v(-2, 0))
                dyy = 0.25 * (v(0, 2) - 2 * v(0, 0) + v(0, -2))
                dxy = 0.25 * (v(1, 1) - v(1, -1) - v(-1, 1) + v(-1, -1))
            else:
                eps = float(np.finfo(np.float32).eps)
                dx, dy = 0.5 * (v(1, 0) - v(-1, 0)), 0.5 * (v(0, 1) - v(0, -1))
                dxx = v(1, 0) - 2 * v(0, 0) + v(-1, 0) + eps
                dyy = v(0, 1) - 2 * v(0, 0) + v(0, -1) + eps
                dxy = 0.5 * (v(1, 1) - v(1, 0) - v(0, 1) + 2 * v(0, 0) - v(-1, 0) - v(0, -1) + v(-1, -1))
            hessian = np.array([[dxx, dxy], [dxy, dyy]])
            if dxx < 0 and np.linalg.det(hessian) > 0:  # negative-definite: a maximum to step to
                out[n, k] += -np.linalg.inv(hessian) @ np.array([dx, dy])
    return out


def random_maps(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Positive, non-Gaussian maps: skewed power-law bumps (some centred off the map) on uniform noise."""
    w, h = HEATMAP
    yy, xx = np.mgrid[:h, :w]
    cx, cy = rng.uniform(-3, w + 2, (n, k, 1, 1)), rng.uniform(-3, h + 2, (n, k, 1, 1))
    ax, ay = rng.uniform(1, 5, (2, n, k, 1, 1))
    skew = rng.uniform(-0.3, 0.3, (n, k, 1, 1))
    r2 = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 + skew * (xx - cx) * (yy - cy) / (ax * ay)
    bump = (1 + np.maximum(r2, 0)) ** -rng.uniform(0.5, 2, (n, k, 1, 1))
    return (rng.uniform(0.2, 3, (n, k, 1, 1)) * bump + rng.uniform(0, 0.2, (n, k, h, w))).astype(np.float32)


@pytest.mark.parametrize("codec_name", ["msra", "udp"])
def test_dark_matches_loop_reference(codec_name: str) -> None:
    rng = np.random.default_rng(1)
    maps = random_maps(rng, 6, 17)
    maps[0, :3] -= 5.0  # maxima <= 0: no refinement, argmax kept
    w, h = HEATMAP
    for k, (x, y) in enumerate([(0, 20), (w - 1, 30), (10, 0), (20, h - 1), (0, 0), (w - 1, h - 1), (1, 1)]):
        maps[1, k, y, x] += 10.0  # spikes on the edge: their neighbours are read from the edge padding
    codec = make_codec(codec_name, "dark")
    decoded, scores = codec.decode({"heatmaps": maps})
    expected = ref_decode(maps, codec_name)
    scale = codec.heatmap_map()[0]
    # vectorised == loop reference to 1e-4 input px
    np.testing.assert_allclose(decoded, expected / scale, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(scores, maps.reshape(6, 17, -1).max(axis=2))
    # not vacuous: most maps were refined; UDP refines some argmaxes on the map's edge (edge-padded neighbours),
    # msra DARK none within 2 pixels of it (MMPose's rule)
    y, x = np.divmod(maps.reshape(6, 17, -1).argmax(axis=2), HEATMAP[0])
    refined = np.abs(expected - np.stack([x, y], axis=2)).max(axis=2) > 1e-3
    assert refined.mean() > 0.5
    if codec_name == "udp":
        assert (refined & ((x == 0) | (y == 0) | (x == HEATMAP[0] - 1) | (y == HEATMAP[1] - 1))).any()
    else:
        assert not (refined & ((np.minimum(x, HEATMAP[0] - 1 - x) < 2) | (np.minimum(y, HEATMAP[1] - 1 - y) < 2))).any()
    assert not refined[0, :3].any()


def dark_cases(rng: np.random.Generator) -> np.ndarray:
    """Random maps plus the cases the local DARK has to get right: peaks on and near the edge, maxima <= 0, maps
    whose rescaled neighbourhood the clip bites (peaks above 50, below 1e-3, negative dips), and a flat top."""
    maps = random_maps(rng, 8, 17)
    w, h = HEATMAP
    edge = [(0, 20), (w - 1, 30), (10, 0), (20, h - 1), (0, 0), (w - 1, h - 1), (1, 1), (2, 2), (w - 3, h - 3),
            (1, 30), (w - 2, 7), (9, h - 2)]
    for k, (x, y) in enumerate(edge):
        maps[1, k, y, x] += 10.0
    maps[0, :3] -= 5.0  # maxima <= 0
    maps[2] *= 100.0  # UDP: peaks above its clip at 50
    maps[3] *= 1e-3  # UDP: neighbourhoods below its clip at 1e-3
    maps[4] -= 0.15  # negative dips: DARK's clip at 1e-10 bites
    maps[5, :4] = np.minimum(maps[5, :4], np.float32(0.9))  # flat tops: many equal maxima of the blurred map
    maps[6, :6] = -0.5  # spikes on a negative floor: their blurred neighbourhood is below 0
    maps[6, np.arange(6), rng.integers(8, h - 8, 6), rng.integers(8, w - 8, 6)] = rng.uniform(1, 3, 6)
    for k in range(6):  # bumps beside a negative strip: part of the blurred neighbourhood is below 0
        cx, cy = rng.integers(8, w - 8), rng.integers(8, h - 8)
        maps[7, k] = np.exp(-((np.arange(w) - cx) ** 2 + (np.arange(h)[:, None] - cy) ** 2) / rng.uniform(4, 12))
        maps[7, k, :, cx + 2 : cx + 5] = -rng.uniform(0.5, 3)
    return maps


@pytest.mark.parametrize("codec_name", ["msra", "udp"])
def test_dark_matches_whole_map_reference(codec_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local DARK (blur around the argmax only, rescale only where the clip bites) equals the plain loop over
    whole blurred maps to 1e-5 input px: both in float64, so float32 rounding of the blur (which moves
    ill-conditioned steps by up to 1e-4 px) does not hide a difference; the decode's float32 output is compared
    with the reference rounded to float32."""
    import edgepose.codecs.refine as refine

    rescaled = []
    monkeypatch.setattr(refine, "blurred_max", lambda maps, k: rescaled.append(len(maps)) or blurred_max(maps, k))
    codec = make_codec(codec_name, "dark")
    worst = 0.0
    for seed in range(3):
        maps = dark_cases(np.random.default_rng(10 + seed))
        decoded, _ = codec.decode({"heatmaps": maps})
        expected = (ref_decode(maps, codec_name, dtype=np.float64) / codec.heatmap_map()[0]).astype(np.float32)
        worst = max(worst, float(np.abs(decoded.astype(np.float64) - expected).max()))
    assert worst <= 1e-5, worst
    # not vacuous: both the fast path and the exact rescale ran
    assert 0 < sum(rescaled) < 3 * 8 * 17 / 2, rescaled


def test_blur_around_and_blurred_max_match_whole_map_blur() -> None:
    rng = np.random.default_rng(5)
    maps = dark_cases(rng)[:6].reshape(-1, HEATMAP[1], HEATMAP[0])
    maps[-3:] = np.float32(0.5)  # constant maps: every pixel of the blurred interior is the maximum
    padded = np.pad(maps.astype(np.float64), ((0, 0), (5, 5), (5, 5)))
    whole = np.stack([cv2.GaussianBlur(p, (11, 11), 0)[5:-5, 5:-5] for p in padded])
    x, y = rng.integers(0, HEATMAP[0], len(maps)), rng.integers(0, HEATMAP[1], len(maps))
    x[:4], y[:4] = [0, HEATMAP[0] - 1, 1, 5], [0, HEATMAP[1] - 2, 3, 0]  # windows cut by the border
    got = blur_around(maps, x, y, 11, reach=2)
    for m in range(len(maps)):
        for dy, dx in np.ndindex(5, 5):
            yy, xx = y[m] + dy - 2, x[m] + dx - 2
            if 0 <= yy < HEATMAP[1] and 0 <= xx < HEATMAP[0]:
                assert abs(got[m, dy, dx] - whole[m, yy, xx]) <= 1e-12 * max(1.0, np.abs(maps[m]).max())
    np.testing.assert_allclose(blurred_max(maps, 11), whole.reshape(len(maps), -1).max(axis=1), rtol=1e-12)


def test_simcc_dark_matches_loop_reference() -> None:
    rng = np.random.default_rng(2)
    codec = make_codec("simcc", "dark")
    wx, wy = codec.bins
    vec_x = rng.uniform(0.1, 1, (4, 17, 1)) / (1 + ((np.arange(wx) - rng.uniform(-5, wx + 4, (4, 17, 1))) / 6) ** 2)
    vec_y = rng.uniform(0, 1, (4, 17, wy))
    decoded, _ = codec.decode({"simcc_x": vec_x, "simcc_y": vec_y})
    for axis, vecs in enumerate((vec_x.astype(np.float32), vec_y.astype(np.float32))):
        for n, k in np.ndindex(4, 17):
            vec = vecs[n, k]
            padded = np.zeros(len(vec) + 10, np.float32)
            padded[5:-5] = vec
            blurred = cv2.GaussianBlur(padded[None], (11, 1), 0)[0, 5:-5]
            logv = np.log(np.clip(blurred * (vec.max() / blurred.max()), np.float32(1e-3), np.float32(50)))
            i = int(np.argmax(vec))
            lo, mid, hi = (float(logv[min(max(i + d, 0), len(vec) - 1)]) for d in (-1, 0, 1))
            step = float(np.clip(-0.5 * (hi - lo) / (hi - 2 * mid + lo), -1, 1)) if hi - 2 * mid + lo < 0 else 0.0
            assert abs(decoded[n, k, axis] - (i + step) / 2.0) < 1e-5  # 1e-5 input px (float32 output)


# ---------------------------------------------------------------- targets, borders


def test_targets_follow_mmpose() -> None:
    """Per-keypoint loop ports of MMPose's target generators (SimCC with the exact, unrounded mu)."""
    kp = np.array([[[50.3, 77.9], [100.0, 200.0], [3.7, 250.2]]])
    vis = np.ones((1, 3))
    x, y = np.arange(48.0), np.arange(64.0)[:, None]
    heat = make_codec("msra", "dark").encode(kp, vis)[0]["heatmaps"]
    for k, (mx, my) in enumerate(kp[0] / STRIDE):  # generate_unbiased_gaussian_heatmaps
        expected = np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * 2.0**2))
        np.testing.assert_allclose(heat[0, k], expected, atol=1e-6)  # float32 targets
    udp = make_codec("udp", "dark")
    heat = udp.encode(kp, vis)[0]["heatmaps"]
    for k, mu in enumerate(kp[0] * udp.heatmap_map()[0]):  # generate_udp_gaussian_heatmaps, radius 6
        c = (mu + 0.5).astype(int)
        expected = np.zeros((64, 48))
        for j, i in np.ndindex(13, 13):
            if 0 <= c[1] - 6 + j < 64 and 0 <= c[0] - 6 + i < 48:
                g = np.exp(-((i - 6 - (mu[0] - c[0])) ** 2 + (j - 6 - (mu[1] - c[1])) ** 2) / 8.0)
                expected[c[1] - 6 + j, c[0] - 6 + i] = g
        np.testing.assert_allclose(heat[0, k], expected, atol=1e-6)
    labels = make_codec("simcc", "dark").encode(kp, vis)[0]
    for key, axis, bins, sigma in (("simcc_x", 0, 384, 4.9), ("simcc_y", 1, 512, 5.66)):
        for k, mu in enumerate(kp[0, :, axis] * 2.0):
            expected = np.exp(-((np.arange(bins) - mu) ** 2) / (2 * sigma**2))
            np.testing.assert_allclose(labels[key][0, k], expected, atol=1e-6)


BORDER_POINTS = [(-40, 128), (-20, 128), (-5, 128), (0, 128), (191, 128), (210, 128), (250, 128), (96, -40), (96, 300)]
HEATMAP_WEIGHTS = [0, 1, 1, 1, 1, 1, 0, 0, 0]
BORDER_WEIGHTS = {"msra": HEATMAP_WEIGHTS, "udp": HEATMAP_WEIGHTS, "simcc": [0, 0, 1, 1, 1, 0, 0, 0, 0]}


@pytest.mark.parametrize("codec_name, decode", PAIRS)
def test_border_keypoints(codec_name: str, decode: str) -> None:
    """Weight 0 where the 3-sigma window misses the target (MMPose bounds) or the keypoint is invisible."""
    codec = make_codec(codec_name, decode)
    kp = np.array([BORDER_POINTS + [(96, 128)]], dtype=np.float64)
    vis = np.ones(kp.shape[:2])
    vis[0, -1] = 0
    targets, weights = codec.encode(kp, vis)
    np.testing.assert_array_equal(weights[0], BORDER_WEIGHTS[codec_name] + [0])
    for arr in targets.values():
        assert arr.dtype == np.float32
        assert (arr[weights == 0] == 0).all() and (arr[weights == 1].reshape(int(weights.sum()), -1).max(1) > 0).all()
    decoded, scores = codec.decode(targets)
    assert np.isfinite(decoded).all() and np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[weights == 0], 0)  # all-zero target: argmax location kept, score 0
    inside = weights[0].astype(bool) & (kp[0, :, 0] >= 0) & (kp[0, :, 0] <= 191)
    assert np.abs(decoded[0, inside] - kp[0, inside]).max() < 2 * STRIDE  # on the edge: within 2 heatmap pixels


# ---------------------------------------------------------------- inputs and errors


@pytest.mark.parametrize("codec_name, decode", PAIRS)
def test_decode_is_pure_and_takes_float16(codec_name: str, decode: str) -> None:
    rng = np.random.default_rng(3)
    codec = make_codec(codec_name, decode)
    kp = np.stack([rng.uniform(30, 161, (4, 17)), rng.uniform(30, 225, (4, 17))], axis=2)
    targets, _ = codec.encode(kp, np.ones((4, 17)))
    copies = {k: v.copy() for k, v in targets.items()}
    decoded, scores = codec.decode(targets)
    codec.flip_back(targets, np.arange(17))
    for key in targets:
        np.testing.assert_array_equal(targets[key], copies[key])  # caller's arrays untouched
    half, half_scores = codec.decode({k: v.astype(np.float16) for k, v in targets.items()})
    assert half.dtype == np.float32
    np.testing.assert_allclose(half_scores, scores, atol=1e-3)  # float16 resolution near 1
    if decode == "dark":  # float16 rounding moves the refined peak by < 0.05 input px
        assert np.abs(half - decoded).max() < 0.05
    else:  # a float16 tie may move the integer argmax by one cell (input px per cell)
        cell = 0.5 if codec_name == "simcc" else float(np.max(1 / codec.heatmap_map()[0]))
        assert np.abs(half - decoded).max() <= cell + 1e-4


@pytest.mark.parametrize("codec_name", ["msra", "udp", "simcc"])
def test_empty_batch(codec_name: str) -> None:
    codec = make_codec(codec_name, "dark")
    targets, weights = codec.encode(np.zeros((0, 17, 2)), np.zeros((0, 17)))
    assert weights.shape == (0, 17) and all(v.shape[:2] == (0, 17) for v in targets.values())
    decoded, scores = codec.decode(targets)
    assert decoded.shape == (0, 17, 2) and scores.shape == (0, 17)
    assert decoded.dtype == scores.dtype == np.float32


@pytest.mark.parametrize("codec_name", ["msra", "udp", "simcc"])
def test_bad_outputs_raise_output_error(codec_name: str) -> None:
    codec = make_codec(codec_name, "dark")
    good, _ = codec.encode(np.full((1, 17, 2), 90.0), np.ones((1, 17)))
    key = codec.output_keys[-1]
    with pytest.raises(OutputError, match=f"'{key}'"):
        codec.decode({k: v for k, v in good.items() if k != key})
    squeezed = {**good, key: good[key][0]}
    with pytest.raises(OutputError, match=re.escape(f"'{key}'") + ".*" + re.escape(str(good[key].shape[1:]))):
        codec.decode(squeezed)
    with pytest.raises(OutputError, match=f"'{key}'"):
        codec.decode({**good, key: good[key][..., :-1]})  # size disagrees with the card
    for bad in (np.nan, np.inf):
        broken = good[key].copy()
        broken[0, 3, ..., 5] = bad
        with pytest.raises(OutputError, match=f"NaN or Inf in model output '{key}'"):
            codec.decode({**good, key: broken})
        with pytest.raises(OutputError, match=f"NaN or Inf in model output '{key}'"):
            codec.flip_back({**good, key: broken}, np.arange(17))


def test_build_codec() -> None:
    assert list(CODECS.items()) == [("msra", MSRAHeatmap), ("udp", UDPHeatmap), ("simcc", SimCC)]
    for name, decode in PAIRS:
        codec = make_codec(name, decode)
        assert type(codec) is CODECS[name] and codec.refine == decode and isinstance(codec, Codec)
    with pytest.raises(ValueError, match="msra.*simcc.*udp"):
        build_codec(types.SimpleNamespace(codec="bogus"))
