"""``edgepose predict`` on a video file, camera or stream URL: the threaded stream, tracked ids, annotated video
with ids and FPS, and one JSON line per frame."""

from __future__ import annotations

import contextlib
import json
import os

import cv2

from edgepose.cli.input_sources import output_stem
from edgepose.errors import InputError
from edgepose.io import atomic_path
from edgepose.video.records import frame_record
from edgepose.video.stream import StreamOptions


def run_stream(estimator, source: str, out: str, draw: bool, stream_options: StreamOptions | None = None) -> list[dict]:
    """Stream ``source`` through ``estimator`` with ``stream_options`` (None: the defaults; frames are kept exactly
    when ``draw``); writes OUT/STEM.jsonl and (with ``draw``) OUT/STEM_pose.mp4 atomically, also when stopped with
    Ctrl-C (or SIGTERM, which ``edgepose predict`` turns into one). Returns COCO results with image ids
    ``STEM/000123``, STEM being ``output_stem(source)``."""
    stem = output_stem(source)
    options = stream_options or StreamOptions(keep_frames=draw)
    overrides = {} if options.keep_frames == draw else {"keep_frames": draw}
    results: list[dict] = []
    with contextlib.ExitStack() as stack:
        lines_tmp = stack.enter_context(atomic_path(os.path.join(out, f"{stem}.jsonl")))
        lines = stack.enter_context(open(lines_tmp, "w", encoding="utf-8"))
        writer = None
        stream = stack.enter_context(estimator.stream(int(source) if source.isdigit() else source, options,
                                                      **overrides))
        if draw:
            video_tmp = stack.enter_context(atomic_path(os.path.join(out, f"{stem}_pose.mp4")))
        try:
            for result in stream:
                poses = result.poses
                results += poses.to_coco(f"{stem}/{result.index:06d}")
                lines.write(json.dumps(frame_record(result)) + "\n")
                if draw:
                    if writer is None:
                        height, width = result.frame.shape[:2]
                        writer = cv2.VideoWriter(video_tmp, cv2.VideoWriter_fourcc(*"mp4v"),
                                                 stream.source.fps or 30.0, (width, height))
                        stack.callback(writer.release)
                        if not writer.isOpened():
                            raise InputError(f"OpenCV cannot write an mp4 video to {out}")
                    ids = None if poses.ids is None else [str(i) if i >= 0 else "?" for i in poses.ids]
                    writer.write(_annotate(estimator, result, ids))
        except KeyboardInterrupt:  # a camera runs until stopped: keep what was written
            pass
        if draw and writer is None:
            raise InputError(f"{source} gave no frame to draw")
    return results


def _annotate(estimator, result, ids):
    from edgepose.draw import draw_poses

    poses, card = result.poses, estimator.card
    return draw_poses(result.frame, poses.xy, poses.scores, card.skeleton, boxes=poses.boxes, ids=ids,
                      text=f"{result.fps:.1f} FPS  frame {result.index}", keypoint_names=card.keypoints or None)
