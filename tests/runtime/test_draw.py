"""draw_poses: draws limbs and keypoints on a copy, in MMPose's side colours, skipping low-score keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.coco.layout import KEYPOINTS, SKELETON
from edgepose.draw import CENTER_COLOR, LEFT_COLOR, RIGHT_COLOR, draw_poses, keypoint_colors, limb_colors
from edgepose.errors import InputError


def _two_points(score_b: float = 1.0):
    xy = np.array([[[20.0, 100.0], [180.0, 100.0]]])
    return xy, np.array([[1.0, score_b]])


def test_limb_pixels_change_and_input_untouched() -> None:
    frame = np.full((200, 200, 3), 40, np.uint8)
    before = frame.copy()
    xy, scores = _two_points()
    out = draw_poses(frame, xy, scores, [(0, 1)])
    np.testing.assert_array_equal(frame, before)
    assert out.shape == frame.shape and out.dtype == np.uint8 and out is not frame
    assert tuple(out[100, 100]) == CENTER_COLOR  # mid-limb, no keypoint names -> centre colour
    assert tuple(out[100, 20]) == CENTER_COLOR and tuple(out[100, 180]) == CENTER_COLOR
    assert (out[20] == 40).all() and (out[180] == 40).all()  # far from the limb nothing changed


def test_low_score_keypoints_and_their_limbs_are_skipped() -> None:
    frame = np.zeros((200, 200, 3), np.uint8)
    xy, scores = _two_points(score_b=0.1)
    out = draw_poses(frame, xy, scores, [(0, 1)], keypoint_threshold=0.3)
    assert out[100, 20].any()  # the confident keypoint is drawn
    assert not out[100, 100].any() and not out[100, 180].any()  # neither the limb nor the weak keypoint
    only_first = draw_poses(frame, xy[:, :1], scores[:, :1], [], keypoint_threshold=0.3)
    np.testing.assert_array_equal(out, only_first)
    xy[0, 1] = [np.nan, np.inf]
    out = draw_poses(frame, xy, np.ones((1, 2)), [(0, 1)])
    np.testing.assert_array_equal(out, only_first)


def test_coco_colours_follow_mmpose() -> None:
    colors = dict(zip(SKELETON, limb_colors(SKELETON, KEYPOINTS), strict=True))
    assert colors[(15, 13)] == LEFT_COLOR and colors[(5, 7)] == LEFT_COLOR
    assert colors[(16, 14)] == RIGHT_COLOR and colors[(6, 12)] == RIGHT_COLOR
    assert colors[(5, 6)] == CENTER_COLOR and colors[(1, 3)] == CENTER_COLOR and colors[(3, 5)] == CENTER_COLOR
    kpts = keypoint_colors(KEYPOINTS, 17)
    assert kpts[0] == kpts[1] == kpts[4] == CENTER_COLOR and kpts[5] == LEFT_COLOR and kpts[6] == RIGHT_COLOR
    # on a COCO pose the left shin is drawn green
    frame = np.zeros((300, 300, 3), np.uint8)
    xy = np.full((1, 17, 2), np.nan)
    xy[0, 13], xy[0, 15] = [100, 100], [100, 250]
    out = draw_poses(frame, xy, np.ones((1, 17)), SKELETON)
    assert tuple(out[175, 100]) == LEFT_COLOR


def test_thickness_scales_with_frame() -> None:
    widths = []
    for size in (240, 1200):
        xy = np.array([[[0.1 * size, size / 2], [0.9 * size, size / 2]]])
        out = draw_poses(np.zeros((size, size, 3), np.uint8), xy, np.ones((1, 2)), [(0, 1)])
        widths.append(int(out[:, size // 2].any(axis=1).sum()))
    assert widths[1] > widths[0] >= 2


def test_boxes_ids_and_text() -> None:
    frame = np.zeros((200, 200, 3), np.uint8)
    xy, scores = _two_points()
    plain = draw_poses(frame, xy, scores, [(0, 1)])
    boxed = draw_poses(frame, xy, scores, [(0, 1)], boxes=np.array([[10, 60, 190, 140]]), ids=[7], text="30 fps")
    assert boxed[60, 50].any() and not plain[60, 50].any()  # box top edge
    assert boxed[:30, :100].any() and not plain[:30, :100].any()  # the text line
    with pytest.raises(InputError):
        draw_poses(frame, xy, scores, [(0, 1)], boxes=np.zeros((2, 4)))


@pytest.mark.parametrize("frame", [np.zeros((50, 50), np.uint8), np.zeros((50, 50, 3), np.float32), None])
def test_bad_frame(frame) -> None:
    with pytest.raises(InputError):
        draw_poses(frame, np.zeros((0, 17, 2)), np.zeros((0, 17)), SKELETON)


def test_bad_skeleton_and_shapes() -> None:
    frame = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(InputError):
        draw_poses(frame, np.zeros((1, 2, 2)), np.ones((1, 2)), [(0, 2)])
    with pytest.raises(InputError):
        draw_poses(frame, np.zeros((1, 2, 2)), np.ones((1, 3)), [(0, 1)])
