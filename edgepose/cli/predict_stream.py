"""``edgepose predict`` on a video file, camera or stream URL: the threaded stream, tracked ids, annotated video
with ids and FPS, and one JSON line per frame."""

from __future__ import annotations

import contextlib
import json
import os

from edgepose.cli.input_sources import output_stem
from edgepose.cli.interrupts import Interrupted, signum_of
from edgepose.cli.video_file import video_output
from edgepose.errors import InputError
from edgepose.io import atomic_path, writing
from edgepose.redact import redact
from edgepose.video.records import frame_record
from edgepose.video.stream import StreamOptions


class StreamStopped(Interrupted):
    """A stream run stopped by Ctrl-C or SIGTERM after its outputs so far were written: ``results`` (COCO),
    ``frames`` written (frames 0 to frames - 1 of the source), ``total`` frames the source declares (None when
    live) and the ``files`` that hold them."""

    def __init__(self, signum: int, results: list[dict], frames: int, total: int | None, files: list[str]) -> None:
        super().__init__(signum)
        self.results, self.frames, self.total, self.files = results, frames, total, files


def run_stream(estimator, source: str, out: str, draw: bool, stream_options: StreamOptions | None = None) -> list[dict]:
    """Stream ``source`` through ``estimator`` with ``stream_options`` (None: the defaults; frames are kept exactly
    when ``draw``); writes OUT/STEM.jsonl and (with ``draw``) OUT/STEM_pose.mp4 atomically. Returns COCO results
    with image ids ``STEM/000123``, STEM being ``output_stem(source)``.

    Stopped with Ctrl-C (or SIGTERM, which ``edgepose predict`` turns into one), the files hold the frames done and
    StreamStopped says how many. A file that cannot be written (a full disk) raises WriteError and leaves neither
    file under its final name."""
    stem = output_stem(source)
    options = stream_options or StreamOptions(keep_frames=draw)
    overrides = {} if options.keep_frames == draw else {"keep_frames": draw}
    results: list[dict] = []
    lines_path, video_path = os.path.join(out, f"{stem}.jsonl"), os.path.join(out, f"{stem}_pose.mp4")
    frames, total, stopped = 0, None, None
    with contextlib.ExitStack() as stack:
        lines_tmp = stack.enter_context(atomic_path(lines_path))
        with writing(lines_path):  # unbuffered: every write is checked here, and closing has nothing left to fail
            lines = stack.enter_context(open(lines_tmp, "wb", buffering=0))
        video = stack.enter_context(video_output(video_path)) if draw else None
        try:
            stream = stack.enter_context(estimator.stream(int(source) if source.isdigit() else source, options,
                                                          **overrides))
            total = _declared_frames(stream.source.frame_count, options.max_frames)
            for result in stream:
                results += result.poses.to_coco(f"{stem}/{result.index:06d}")
                with writing(lines_path):
                    lines.write((json.dumps(frame_record(result)) + "\n").encode("utf-8"))
                if video is not None:
                    video.write(_annotate(estimator, result), stream.source.fps or 30.0)
                frames = result.index + 1
        except KeyboardInterrupt as exc:  # keep what was written; the caller says how far it got
            stopped = exc
        if stopped is None and video is not None and video.frames == 0:
            raise InputError(f"{redact(source)} gave no frame to draw")
    if stopped is not None:
        files = [lines_path] + ([video_path] if video is not None and video.frames else [])
        raise StreamStopped(signum_of(stopped), results, frames, total, files)
    return results


def _declared_frames(count: int | None, max_frames: int | None) -> int | None:
    if count is None:
        return max_frames
    return count if max_frames is None else min(count, max_frames)


def _annotate(estimator, result):
    from edgepose.draw import draw_poses

    poses, card = result.poses, estimator.card
    ids = None if poses.ids is None else [str(i) if i >= 0 else "?" for i in poses.ids]
    return draw_poses(result.frame, poses.xy, poses.scores, card.skeleton, boxes=poses.boxes, ids=ids,
                      text=f"{result.fps:.1f} FPS  frame {result.index}", keypoint_names=card.keypoints or None)
