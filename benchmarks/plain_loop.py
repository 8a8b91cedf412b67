"""The obvious top-down loop a user writes without edgepose: per person, warp, colour, normalise, run, argmax.

It is the baseline the runtime is timed against in the same run (benchmarks/bench_runtime.py). It uses the same
model file, boxes, crop geometry and the card's decode (argmax + quarter-pixel shift, or DARK as MMPose writes it).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard


def plain_topdown(frame: np.ndarray, boxes: np.ndarray, session, card: ModelCard) -> np.ndarray:
    """Keypoints (N, K, 2) in frame pixels, one ``session.run`` per person."""
    width, height = card.input_size
    mean, std = np.array(card.mean, np.float32), np.array(card.std, np.float32)
    input_name = session.get_inputs()[0].name
    out = []
    for matrix in Affine.from_boxes(boxes, card.input_size, card.bbox_padding).matrices:
        crop = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR)
        if card.color == "rgb":
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        blob = ((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
        heatmaps = session.run(None, {input_name: np.ascontiguousarray(blob)})[0][0]
        k, h, w = heatmaps.shape
        flat = heatmaps.reshape(k, -1).argmax(1)
        ys, xs = np.divmod(flat, w)
        points = np.stack([xs, ys], 1).astype(np.float64)
        if card.decode == "dark":
            points += dark_offsets(heatmaps, xs, ys, card.blur_kernel_size)
        elif card.decode == "shift":
            points += shift_offsets(heatmaps, xs, ys)
        points *= (width / w, height / h)
        inverse = cv2.invertAffineTransform(matrix)
        out.append(points @ inverse[:, :2].T + inverse[:, 2])
    return np.array(out)


def shift_offsets(heatmaps: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The classic quarter-pixel shift towards the higher neighbour, one keypoint at a time."""
    k, h, w = heatmaps.shape
    out = np.zeros((k, 2))
    for j in range(k):
        x, y = xs[j], ys[j]
        if 0 < x < w - 1:
            out[j, 0] = 0.25 * np.sign(heatmaps[j, y, x + 1] - heatmaps[j, y, x - 1])
        if 0 < y < h - 1:
            out[j, 1] = 0.25 * np.sign(heatmaps[j, y + 1, x] - heatmaps[j, y - 1, x])
    return out


def dark_offsets(heatmaps: np.ndarray, xs: np.ndarray, ys: np.ndarray, ksize: int) -> np.ndarray:
    """DARK as MMPose writes it: blur each zero-padded heatmap, keep its max, log, one Newton step per keypoint."""
    k, h, w = heatmaps.shape
    pad = ksize // 2
    logs = np.empty_like(heatmaps)
    for j in range(k):
        padded = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
        padded[pad:-pad, pad:-pad] = heatmaps[j]
        blurred = cv2.GaussianBlur(padded, (ksize, ksize), 0)[pad:-pad, pad:-pad]
        blurred *= heatmaps[j].max() / max(blurred.max(), 1e-12)
        logs[j] = np.log(np.maximum(blurred, 1e-10))
    out = np.zeros((k, 2))
    for j in range(k):
        x, y, hm = xs[j], ys[j], logs[j]
        if 1 < x < w - 2 and 1 < y < h - 2:
            dx = 0.5 * (hm[y, x + 1] - hm[y, x - 1])
            dy = 0.5 * (hm[y + 1, x] - hm[y - 1, x])
            dxx = 0.25 * (hm[y, x + 2] - 2 * hm[y, x] + hm[y, x - 2])
            dxy = 0.25 * (hm[y + 1, x + 1] - hm[y - 1, x + 1] - hm[y + 1, x - 1] + hm[y - 1, x - 1])
            dyy = 0.25 * (hm[y + 2, x] - 2 * hm[y, x] + hm[y - 2, x])
            hessian = np.array([[dxx, dxy], [dxy, dyy]])
            if dxx * dyy - dxy**2 != 0:
                out[j] = -np.linalg.inv(hessian) @ np.array([dx, dy])
    return out
