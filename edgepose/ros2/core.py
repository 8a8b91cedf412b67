"""The ROS 2 node's work in plain Python: image message -> poses payload (+ annotated frame). No rclpy here.

    core = PoseNodeCore(PoseEstimator("pose.onnx", detector="yolox.onnx"), PoseTracker())
    result = core.process(image_msg)          # None: the frame was skipped (and a warning logged)
    if result is not None:
        payload, annotated = result           # JSON-ready dict; BGR frame with the poses drawn, or None

``NodeConfig`` holds the node's ROS parameters (their names, types and defaults); ``make_estimator`` and
``make_tracker`` build from it what ``PoseNodeCore`` needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from edgepose.coco.layout import KEYPOINTS, SKELETON
from edgepose.errors import InputError, OutputError
from edgepose.ros2.convert import compressed_msg_to_bgr, image_msg_to_bgr
from edgepose.ros2.payload import poses_to_dict, stamp_seconds

LOGGER = logging.getLogger("edgepose.ros2")


@dataclass
class NodeConfig:
    """The node's ROS parameters; each field is declared with its default (so its type) by the node.

    ``compressed`` subscribes to sensor_msgs/CompressedImage (give its topic, e.g. '/camera/image_raw/compressed').
    ``annotated_topic`` '' publishes no annotated image. ``min_cutoff`` 0 turns One-Euro smoothing off (ids only).
    ``threads`` 0 lets ONNX Runtime choose.
    """

    model: str = ""
    detector: str = ""
    card: str = ""
    image_topic: str = "/camera/image_raw"
    compressed: bool = False
    poses_topic: str = "~/poses"
    annotated_topic: str = ""
    track: bool = True
    min_cutoff: float = 1.0
    beta: float = 0.05
    threads: int = 0

    def validate(self) -> None:
        """Raise InputError naming the parameter that is missing or out of range."""
        if not self.model:
            raise InputError("parameter 'model' is required: --ros-args -p model:=/path/pose.onnx")
        if not self.detector:
            raise InputError("parameter 'detector' is required (the node finds persons itself): "
                             "-p detector:=/path/yolox_nano.onnx")
        if not self.image_topic or not self.poses_topic:
            raise InputError("parameters 'image_topic' and 'poses_topic' must not be empty")
        if self.threads < 0 or self.min_cutoff < 0 or self.beta < 0:
            raise InputError(f"parameters threads, min_cutoff, beta must be >= 0; got {self.threads}, "
                             f"{self.min_cutoff}, {self.beta}")


def make_estimator(config: NodeConfig):
    """The PoseEstimator of a validated config (it owns, and closes, the backend and detector it opens)."""
    from edgepose.pipeline import PoseEstimator

    options = {"threads": config.threads} if config.threads else None
    return PoseEstimator(config.model, card=config.card or None, detector=config.detector, backend_options=options)


def make_tracker(config: NodeConfig, sigmas: np.ndarray | None = None):
    """A PoseTracker (One-Euro smoothing when ``min_cutoff`` > 0), or None when tracking is off."""
    if not config.track:
        return None
    from edgepose.video.smoothing import SmoothingSettings
    from edgepose.video.tracking import PoseTracker, TrackerSettings

    smoothing = SmoothingSettings(min_cutoff=config.min_cutoff, beta=config.beta) if config.min_cutoff > 0 else None
    return PoseTracker.from_settings(TrackerSettings(), sigmas=sigmas, smoothing=smoothing)


class PoseNodeCore:
    """Converts, estimates, tracks and draws one image message at a time; see the module docstring.

    ``estimator`` is a PoseEstimator or any callable ``frame -> Poses``; keypoint names and skeleton come from its
    ``card`` when it has one, else COCO's. ``tracker`` (a PoseTracker) runs on the header stamp in seconds;
    a stamp that does not increase (a bag replayed in a loop) resets it, and an all-zero (unset) stamp is replaced
    by the receive time. A frame that fails with InputError or OutputError is skipped: ``warn`` (default: the
    'edgepose.ros2' logger) gets one line and ``process`` returns None. ``frames`` counts messages, ``skipped`` those
    dropped.
    """

    def __init__(self, estimator: Callable, tracker=None, *, compressed: bool = False, draw: bool = False,
                 warn: Callable[[str], object] | None = None) -> None:
        card = getattr(estimator, "card", None)
        self.estimator = estimator
        self.tracker = tracker
        self.keypoint_names = tuple(card.keypoints) if card is not None else KEYPOINTS
        self.skeleton = tuple(card.skeleton) if card is not None else SKELETON
        self.convert = compressed_msg_to_bgr if compressed else image_msg_to_bgr
        self.draw = draw
        self.warn = warn if warn is not None else LOGGER.warning
        self.keypoint_threshold = 0.3  # drawing only
        self.frames = 0
        self.skipped = 0
        self._last_t: float | None = None
        self._warned_unstamped = False

    @property
    def processed(self) -> int:
        """Messages that produced a payload."""
        return self.frames - self.skipped

    def _track_time(self, stamp: object) -> float:
        """The tracker's time for a stamp; resets the tracker when time does not move forward."""
        t = stamp_seconds(stamp)
        if t == 0.0:
            if not self._warned_unstamped:
                self.warn("image messages have no header stamp: tracking on the receive time instead")
                self._warned_unstamped = True
            t = time.monotonic()
        if self._last_t is not None and t <= self._last_t:
            self.warn(f"image stamp {t:.9f} s is not after the previous {self._last_t:.9f} s "
                      "(a bag replayed in a loop?): tracks reset")
            self.tracker.tracks = []
        self._last_t = t
        return t

    def process(self, msg: object, draw: bool | None = None) -> tuple[dict, np.ndarray | None] | None:
        """One image message -> (payload dict, annotated BGR frame or None), or None when the frame is skipped.

        ``draw`` overrides the constructor's choice for this frame (the node draws only while someone listens)."""
        self.frames += 1
        header = getattr(msg, "header", None)
        stamp, frame_id = getattr(header, "stamp", None), getattr(header, "frame_id", "")
        try:
            frame = self.convert(msg)
            poses = self.estimator(frame)
            if self.tracker is not None:
                ids, xy = self.tracker.update(poses.xy, poses.scores, poses.boxes, self._track_time(stamp))
                poses = replace(poses, xy=xy.astype(np.float32), ids=ids)
            payload = poses_to_dict(poses, stamp, frame_id, self.keypoint_names)
            annotated = None
            if self.draw if draw is None else draw:
                from edgepose.draw import draw_poses

                annotated = draw_poses(frame, poses.xy, poses.scores, self.skeleton, self.keypoint_threshold,
                                       boxes=poses.boxes, ids=poses.ids, keypoint_names=self.keypoint_names)
        except (InputError, OutputError) as exc:
            self.skipped += 1
            self.warn(f"skipped image {self.frames} (stamp {stamp_seconds(stamp):.3f} s, frame_id {frame_id!r}): "
                      f"{exc}")
            return None
        return payload, annotated
