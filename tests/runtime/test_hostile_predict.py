"""Hostile input, round 2 (``edgepose predict``): secrets in logs and names, silent wrong results, lost or partial
output, raw tracebacks, unbounded resources. Each case asserts the exit code, the one line on stderr and what is on
disk afterwards. Most cases run ``edgepose.cli.main`` in-process; signals, locks and file-size limits need real
processes."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.backends import open_backend
from edgepose.card import ModelCard
from edgepose.cli import main
from edgepose.cli.input_sources import output_stem
from edgepose.errors import CardError, InputError
from edgepose.image_size import image_size
from edgepose.io import read_image
from edgepose.pipeline import PoseEstimator
from edgepose.redact import address, redact
from edgepose.video.frame_sources import open_frame_source
from tests.helpers.onnx_builders import conv_heatmap_model
from tests.runtime.test_cli_predict import write_clip

CARD = ModelCard(input_size=(48, 64), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(12, 16), decode="shift")
FRAME = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return conv_heatmap_model(tmp_path_factory.mktemp("hostile") / "m.onnx", CARD, input_size=(48, 64))


@pytest.fixture(autouse=True)
def _restore_sigterm():
    """In-process runs make SIGTERM raise in the main thread; give pytest its own handler back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture()
def image(tmp_path, coco_dir) -> Path:
    """A copy of a real COCO photo (640x425) in a folder of its own."""
    folder = tmp_path / "images"
    folder.mkdir()
    return Path(shutil.copy(coco_dir / "000000000785.jpg", folder / "000000000785.jpg"))


def predict(capsys, *args) -> tuple[int, str, str]:
    """``edgepose predict ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def predict_process(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", "predict", *map(str, args)], capture_output=True,
                          text=True, **kwargs)


def one_line(err: str) -> str:
    """The single line on stderr (no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def boxes_file(tmp_path: Path, data) -> Path:
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------- 4. secrets in logs and file names


REDACTED = {
    "user:password": ("rtsp://admin:S3cretPW@host/stream", "rtsp://***@host/stream", "host/stream"),
    "password with @": ("rtsp://admin:p@ss@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live", "10.0.0.5:554/live"),
    "query": ("http://cam/v.mp4?access_token=tok", "http://cam/v.mp4?***", "cam/v.mp4"),
    "both and a fragment": ("https://u:p@h/a?k=v#frag", "https://***@h/a?***", "h/a"),
    "inside a message": ("cannot open 'rtsp://a:b@h/s?t=1': refused", "cannot open 'rtsp://***@h/s?***': refused",
                         None),
    "before a colon": ("skipped http://h/x?t=1: bad", "skipped http://h/x?***: bad", None),
    "two URLs": ("a rtsp://u:p@h/s b http://h2/?k=v", "a rtsp://***@h/s b http://h2/?***", None),
    "no secret": ("rtsp://host/stream", "rtsp://host/stream", "host/stream"),
    "a plain path": ("images/a.jpg", "images/a.jpg", None),
}


@pytest.mark.parametrize("case", list(REDACTED))
def test_redaction_helper(case):
    text, shown, named = REDACTED[case]
    assert redact(text) == shown
    if named is not None:
        assert address(text) == named


@pytest.mark.parametrize(("source", "stem"), [("rtsp://admin:S3cretPW@10.0.0.5:554/live?access_token=tok",
                                               "10.0.0.5_554_live"),
                                              ("http://cam/video.mp4?sig=abc#t=3", "cam_video.mp4"),
                                              ("rtsp://user@host/", "host")])
def test_output_stems_never_hold_user_password_or_query(source, stem):
    assert output_stem(source) == stem


def test_stream_url_secrets_are_never_printed(tmp_path, model, yolox_path):
    """A camera URL that cannot be opened: the warning (and FFmpeg's own lines) show no user:password or token."""
    url = "rtsp://admin:S3cretPW@127.0.0.1:9/live?access_token=T0ken"
    out = predict_process(url, "--model", model, "--detector", yolox_path, "--out", tmp_path / "out", timeout=60)
    assert out.returncode == 1, out.stderr
    assert "S3cretPW" not in out.stderr + out.stdout and "T0ken" not in out.stderr + out.stdout
    assert ("edgepose predict: warning: skipped rtsp://***@127.0.0.1:9/live?***: cannot open stream "
            "'rtsp://***@127.0.0.1:9/live?***'") in out.stderr
    assert json.loads((tmp_path / "out" / "predictions.json").read_text()) == []


def test_urls_differing_only_in_their_query_are_refused_without_showing_it(tmp_path, model, yolox_path, capsys):
    a, b = "http://127.0.0.1:9/v.mp4?access_token=T0kenA", "http://127.0.0.1:9/v.mp4?access_token=T0kenB"
    code, _, err = predict(capsys, a, b, "--model", model, "--detector", yolox_path, "--out", tmp_path / "out")
    assert code == 2
    assert one_line(err) == ("edgepose predict: error: http://127.0.0.1:9/v.mp4?*** and http://127.0.0.1:9/v.mp4?*** "
                             "would both write outputs named '127.0.0.1_9_v.mp4': give each input once, rename one, "
                             "or run them separately with different --out folders")
    assert not (tmp_path / "out").exists()


def test_url_query_stays_out_of_file_names_and_image_ids(tmp_path, coco_dir, model, yolox_path):
    """A video URL with an access token (file:// lets FFmpeg open it here): outputs and ids carry host and path only."""
    write_clip(tmp_path / "clip.avi", coco_dir, frames=3, step=2)
    clip = (tmp_path / "clip.avi").rename(tmp_path / "clip.avi?access_token=S3cret")
    out = predict_process(f"file://{clip}", "--model", model, "--detector", yolox_path, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    stem = output_stem(f"file://{clip}")
    assert "S3cret" not in stem and stem.endswith("clip.avi")
    assert listing(tmp_path / "out") == sorted([f"{stem}.jsonl", f"{stem}_pose.mp4", "predictions.json"])
    results = (tmp_path / "out" / "predictions.json").read_text()
    assert "S3cret" not in results and "access_token" not in results
    assert {r["image_id"] for r in json.loads(results)} <= {f"{stem}/{i:06d}" for i in range(3)}


# ---------------------------------------------------------------- 5. silent wrong results (predict side)


BAD_BOXES = {
    "3 numbers": ({"000000000785.jpg": [[10, 10, 100]]},
                  "box 0 of 000000000785.jpg is not [x, y, w, h] or [x, y, w, h, score] numbers: [10, 10, 100]"),
    "6 numbers": ({"000000000785.jpg": [[10, 10, 100, 100, 0.9, 1]]},
                  "box 0 of 000000000785.jpg is not [x, y, w, h] or [x, y, w, h, score] numbers: "
                  "[10, 10, 100, 100, 0.9, 1]"),
    "a string": ({"000000000785.jpg": [[10, 10, 100, 100], ["10", 10, 100, 100]]},
                 "box 1 of 000000000785.jpg is not [x, y, w, h] or [x, y, w, h, score] numbers: ['10', 10, 100, 100]"),
    "one flat box": ({"000000000785.jpg": [10, 10, 100, 100]},
                     "box 0 of 000000000785.jpg is not [x, y, w, h] or [x, y, w, h, score] numbers: 10"),
    "not a list": ({"000000000785.jpg": "10 10 100 100"},
                   "boxes of 000000000785.jpg must be a list of [x, y, w, h(, score)] boxes, got '10 10 100 100'"),
}


@pytest.mark.parametrize("case", list(BAD_BOXES))
def test_malformed_boxes_are_refused_naming_the_box(tmp_path, image, model, capsys, case):
    data, message = BAD_BOXES[case]
    path = boxes_file(tmp_path, data)
    code, _, err = predict(capsys, image, "--model", model, "--boxes", path, "--out", tmp_path / "out")
    assert code == 2 and one_line(err) == f"edgepose predict: error: {path}: {message}"
    assert not (tmp_path / "out").exists()


def _gt(tmp_path: Path, images: list[dict]) -> Path:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    return path


def test_short_bbox_in_a_detection_list_is_refused(tmp_path, image, model, capsys):
    gt = _gt(tmp_path, [{"id": 785, "file_name": image.name}])
    dets = boxes_file(tmp_path, [{"image_id": 785, "bbox": [10, 10, 100, 100], "score": 0.9},
                                 {"image_id": 785, "bbox": [10, 10, 100], "score": 0.8}])
    code, _, err = predict(capsys, image, "--model", model, "--boxes", dets, "--coco", gt, "--out", tmp_path / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: {dets}: bbox of detection 1 (image_id 785) is not "
                             "[x, y, w, h] numbers: [10, 10, 100]")


def test_two_images_with_one_image_id_are_refused(tmp_path, coco_dir, model, yolox_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(coco_dir / "000000000785.jpg", tmp_path / "a" / "x.jpg")
    cv2.imwrite(str(tmp_path / "b" / "x.png"), FRAME)
    code, _, err = predict(capsys, tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.png", "--model", model,
                           "--detector", yolox_path, "--out", tmp_path / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: {tmp_path / 'a' / 'x.jpg'} and {tmp_path / 'b' / 'x.png'} "
                             "would both get image_id 'x' in predictions.json: rename one, or pass --coco GT.json to "
                             "take ids from it")
    assert not (tmp_path / "out").exists()


def test_coco_file_with_two_images_of_one_name_is_refused(tmp_path, image, model, capsys):
    gt = _gt(tmp_path, [{"id": 1, "file_name": f"train/{image.name}"}, {"id": 2, "file_name": f"val/{image.name}"}])
    dets = boxes_file(tmp_path, [{"image_id": 1, "bbox": [10, 10, 100, 100], "score": 0.9}])
    code, _, err = predict(capsys, image, "--model", model, "--boxes", dets, "--coco", gt, "--out", tmp_path / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: {gt} has two images named {image.name} (ids 1 and 2): predict "
                             "matches inputs to ids by file name, so each name must be unique")


def test_boxes_only_for_other_files_are_refused(tmp_path, image, model, capsys):
    path = boxes_file(tmp_path, {"other.jpg": [[10, 10, 100, 100]], "b/more.jpg": [[1, 1, 50, 50]]})
    code, _, err = predict(capsys, image, "--model", model, "--boxes", path, "--out", tmp_path / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: none of the images with boxes in {path} is an input (they are "
                             "more.jpg, other.jpg): boxes are matched to inputs by file name")
    assert not (tmp_path / "out").exists()


def test_boxes_for_files_that_are_not_inputs_are_listed(tmp_path, image, model, capsys):
    path = boxes_file(tmp_path, {image.name: [[10, 10, 100, 200, 0.9]], "other.jpg": [[10, 10, 100, 100]]})
    code, out, err = predict(capsys, image, "--model", model, "--boxes", path, "--out", tmp_path / "out")
    assert code == 0
    assert one_line(err) == (f"edgepose predict: warning: {path} has boxes for 1 image(s) that are not inputs, not "
                             "used: other.jpg")
    assert len(json.loads((tmp_path / "out" / "predictions.json").read_text())) == 1


def test_detections_of_ids_not_in_the_coco_file_are_listed(tmp_path, image, model, capsys):
    gt = _gt(tmp_path, [{"id": 785, "file_name": image.name}])
    dets = boxes_file(tmp_path, [{"image_id": 785, "bbox": [10, 10, 100, 200], "score": 0.9},
                                 {"image_id": 7, "bbox": [10, 10, 100, 100], "score": 0.9},
                                 {"image_id": 8, "bbox": [10, 10, 100, 100], "score": 0.9},
                                 {"image_id": 9, "bbox": [10, 10, 100, 100], "score": 0.9, "category_id": 3}])
    code, _, err = predict(capsys, image, "--model", model, "--boxes", dets, "--coco", gt, "--out", tmp_path / "out",
                           "--no-draw")
    assert code == 0
    assert one_line(err) == (f"edgepose predict: warning: {dets}: detections of 2 image_id(s) that are not in the "
                             "--coco file were not used: 7, 8")  # category 3 is not a person: left out by design
    assert [r["image_id"] for r in json.loads((tmp_path / "out" / "predictions.json").read_text())] == [785]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--box-threshold", "nan", "--box-threshold must be a number, got nan"),
    ("--pose-nms", "1.5", "--pose-nms is an OKS threshold between 0 and 1, got 1.5"),
    ("--max-pixels", "0", "--max-pixels must be at least 1, got 0"),
    ("--threads", "-2", "--threads must be at least 1, got -2"),
])
def test_nonsense_numbers_are_refused(tmp_path, image, model, yolox_path, capsys, flag, value, message):
    code, _, err = predict(capsys, image, "--model", model, "--detector", yolox_path, flag, value, "--out",
                           tmp_path / "out")
    assert code == 2 and one_line(err) == f"edgepose predict: error: {message}"


# ---------------------------------------------------------------- 6. lost or partial output


def test_a_box_outside_the_frame_drops_only_that_box(tmp_path, image, model, capsys):
    path = boxes_file(tmp_path, {image.name: [[10, 10, 100, 200, 0.9], [5000, 5000, 10, 10, 0.8],
                                              [30, 40, 120, 200, 0.7]]})
    code, out, err = predict(capsys, image, "--model", model, "--boxes", path, "--out", tmp_path / "out")
    assert code == 0
    assert one_line(err) == (f"edgepose predict: warning: {image.name}: dropped 1 of 3 box(es), the others are used "
                             "(first: box 1 [5000.0, 5000.0, 5010.0, 5010.0] lies entirely outside the 640x425 frame)")
    results = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(results) == 2 and listing(tmp_path / "out" / "vis") == [image.name]


def _folder_of_copies(tmp_path: Path, coco_dir: Path, count: int) -> Path:
    """``count`` images (hard links to the COCO samples): a run over them takes many seconds."""
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted(coco_dir.glob("*.jpg"))
    for i in range(count):
        os.link(sources[i % len(sources)], folder / f"{i:04d}.jpg")
    return folder


def _wait_for(predicate, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out waiting for the run to start writing"
        time.sleep(0.02)


def _wrote_an_image(out: Path):
    """True once the run has written its first annotated image (a finished one, not a hidden temp file)."""
    return lambda: (out / "vis").is_dir() and any(not p.name.startswith(".") for p in (out / "vis").iterdir())


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgepose", "predict", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_second_run_on_one_out_is_refused_while_the_first_runs(tmp_path, coco_dir, model, yolox_path, capsys):
    images = _folder_of_copies(tmp_path, coco_dir, 200)
    out = tmp_path / "out"
    first = _start(images, "--model", model, "--detector", yolox_path, "--out", out)
    try:
        lock = out / ".edgepose.lock"
        _wait_for(_wrote_an_image(out), first)  # working: past the imports (Ctrl-C inside onnxruntime's is its own)
        assert lock.read_text().strip() == str(first.pid)
        code, _, err = predict(capsys, images, "--model", model, "--detector", yolox_path, "--out", out)
        assert code == 2
        assert one_line(err) == (f"edgepose predict: error: another edgepose run is writing to {out} "
                                 f"(pid {first.pid}): wait for it to finish or pick another --out")
    finally:
        first.send_signal(signal.SIGINT)  # no need to wait for 200 images: the interrupt contract is tested below
        first.communicate(timeout=60)
    assert first.returncode == 130 and not lock.exists()


def test_ctrl_c_on_a_folder_writes_the_images_done_and_marks_them_partial(tmp_path, coco_dir, model, yolox_path):
    images = _folder_of_copies(tmp_path, coco_dir, 200)
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.json").write_text("[]\n")  # an older run's results
    run = _start(images, "--model", model, "--detector", yolox_path, "--out", out)
    _wait_for(_wrote_an_image(out), run)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    line = one_line(err)
    done = int(re.fullmatch(rf"edgepose predict: interrupted by SIGINT after (\d+) of 200 inputs; "
                            rf"{re.escape(str(out / 'predictions.json'))} holds the \d+ poses of those "
                            rf"\({re.escape(str(out / 'PARTIAL'))} marks it partial\)", line)[1])
    assert 1 <= done < 200, line
    results = json.loads((out / "predictions.json").read_text())
    ids = {r["image_id"] for r in results}
    assert ids <= {f"{i:04d}" for i in range(done)} and len(ids) >= done - 1, (line, ids)  # a photo may hold nobody
    assert f"{len(results)} poses" in line
    assert (out / "PARTIAL").read_text() == line.removeprefix("edgepose predict: ") + "\n"
    vis = listing(out / "vis")  # the image in work when stopped may have its annotated copy already
    assert vis[:done] == [f"{i:04d}.jpg" for i in range(done)] and len(vis) <= done + 1, (line, vis)
    assert listing(out) == ["PARTIAL", "predictions.json", "vis"]  # no lock, no temp files


def test_sigterm_on_a_video_says_the_frame_and_keeps_consistent_files(tmp_path, coco_dir, model, yolox_path, capsys):
    write_clip(tmp_path / "walk.avi", coco_dir, frames=300, step=1)
    out = tmp_path / "out"
    run = _start(tmp_path / "walk.avi", "--model", model, "--detector", yolox_path, "--out", out)
    _wait_for(lambda: any(p.name.startswith(".walk_pose.") for p in out.glob(".*")), run)
    time.sleep(0.3)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 143, err
    line = one_line(err)
    frames = int(re.fullmatch(rf"edgepose predict: interrupted by SIGTERM at frame (\d+) of 300 of "
                              rf"{re.escape(str(tmp_path / 'walk.avi'))} \(input 1 of 1\); .* holds the \d+ poses "
                              r"so far and .*walk.jsonl and .*walk_pose.mp4 the first \1 frames \(.*PARTIAL marks it "
                              r"partial\)", line)[1])
    assert 0 < frames < 300
    assert listing(out) == ["PARTIAL", "predictions.json", "walk.jsonl", "walk_pose.mp4"]
    records = [json.loads(x) for x in (out / "walk.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(frames))
    assert int(cv2.VideoCapture(str(out / "walk_pose.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    ids = {r["image_id"] for r in json.loads((out / "predictions.json").read_text())}
    assert ids <= {f"walk/{i:06d}" for i in range(frames)}
    # A complete run afterwards clears the partial mark.
    code, _, _ = predict(capsys, tmp_path / "walk.avi", "--model", model, "--detector", yolox_path, "--out", out,
                         "--max-frames", "2", "--no-draw")
    assert code == 0 and "PARTIAL" not in listing(out)


def _file_size_limit(limit: int):
    def apply() -> None:  # a full disk, for this process only: writes past ``limit`` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_while_writing_the_video_fails_and_leaves_the_old_files(tmp_path, coco_dir, model, yolox_path):
    write_clip(tmp_path / "walk.avi", coco_dir, frames=20, step=2)
    out = tmp_path / "out"
    out.mkdir()
    old = {"walk_pose.mp4": b"an older, complete video", "walk.jsonl": b"{}\n", "predictions.json": b"[]\n"}
    for name, data in old.items():
        (out / name).write_bytes(data)
    run = predict_process(tmp_path / "walk.avi", "--model", model, "--detector", yolox_path, "--out", out,
                          preexec_fn=_file_size_limit(60_000))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]  # OpenCV/FFmpeg may print their own warning first
    assert re.fullmatch(rf"edgepose predict: error: cannot write {re.escape(str(out / 'walk_pose.mp4'))}: "
                        r"(writing frame \d+ failed|the finished video holds \d+ of the \d+ frames written) "
                        r"\(disk full\?\)", last), last
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # no temp file, nothing half-written


# ---------------------------------------------------------------- 7. one-line errors, found before any work


def _occupy(out: Path, what: str) -> None:
    out.mkdir()
    {"vis is a file": lambda: (out / "vis").write_text("x"),
     "predictions.json is a folder": lambda: (out / "predictions.json").mkdir(),
     "vis/NAME is a folder": lambda: (out / "vis" / "000000000785.jpg").mkdir(parents=True),
     "PARTIAL is a folder": lambda: (out / "PARTIAL").mkdir()}[what]()


@pytest.mark.parametrize(("what", "message"), [
    ("vis is a file", "{out}/vis must be a folder, but it is a file: move it away or pick another --out"),
    ("predictions.json is a folder", "cannot write {out}/predictions.json: it is a folder: move it away or pick "
                                     "another --out"),
    ("vis/NAME is a folder", "cannot write {out}/vis/000000000785.jpg: it is a folder: move it away or pick "
                             "another --out"),
    ("PARTIAL is a folder", "cannot write {out}/PARTIAL: it is a folder: move it away or pick another --out"),
])
def test_occupied_outputs_are_refused_before_any_work(tmp_path, image, model, capsys, what, message):
    out = tmp_path / "out"
    _occupy(out, what)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    path = boxes_file(tmp_path, {image.name: [[10, 10, 100, 200]]})
    code, stdout, err = predict(capsys, image, "--model", model, "--boxes", path, "--out", out)
    assert code == 2 and one_line(err) == "edgepose predict: error: " + message.format(out=out)
    assert stdout == "" and sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_a_video_output_occupied_by_a_folder_is_refused(tmp_path, coco_dir, model, yolox_path, capsys):
    write_clip(tmp_path / "walk.avi", coco_dir, frames=2, step=2)
    (tmp_path / "out" / "walk.jsonl").mkdir(parents=True)
    code, _, err = predict(capsys, tmp_path / "walk.avi", "--model", model, "--detector", yolox_path, "--out",
                           tmp_path / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: cannot write {tmp_path}/out/walk.jsonl: it is a folder: move "
                             "it away or pick another --out")


def test_out_that_is_a_file_is_refused(tmp_path, image, model, capsys):
    (tmp_path / "out").write_text("not a folder")
    code, _, err = predict(capsys, image, "--model", model, "--boxes", boxes_file(tmp_path, {}), "--out",
                           tmp_path / "out")
    assert code == 2 and one_line(err) == f"edgepose predict: error: output folder {tmp_path}/out is a file: pick " \
                                          "another --out"
    assert (tmp_path / "out").read_text() == "not a folder"


def test_out_below_a_file_is_refused(tmp_path, image, model, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = predict(capsys, image, "--model", model, "--boxes", boxes_file(tmp_path, {}), "--out",
                           tmp_path / "file" / "out")
    assert code == 2
    assert one_line(err) == (f"edgepose predict: error: cannot make folder {tmp_path}/file/out: {tmp_path}/file is "
                             "a file")


def read_only_command(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``folder`` read-only: by its mode for a normal user; for root (who writes anyway) on a
    read-only bind mount in a private mount namespace (skips where that is not allowed)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return argv
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("running as root without unshare: cannot make a read-only folder")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", str(folder), *argv]


@pytest.mark.parametrize("where", ["out itself", "the folder above a new out"])
def test_read_only_output_is_refused_before_any_work(tmp_path, image, model, where):
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder if where == "out itself" else folder / "new"
    argv = [sys.executable, "-m", "edgepose", "predict", str(image), "--model", model, "--boxes",
            str(boxes_file(tmp_path, {image.name: [[10, 10, 100, 200]]})), "--out", str(out)]
    run = subprocess.run(read_only_command(folder, argv), capture_output=True, text=True)
    folder.chmod(0o755)
    assert run.returncode == 2, run.stderr
    reason = r"(Read-only file system|Permission denied)"
    want = (rf"cannot write to {re.escape(str(folder))}: {reason}" if where == "out itself" else
            rf"cannot make folder {re.escape(str(out))} in {re.escape(str(folder))}: {reason}")
    assert re.fullmatch(f"edgepose predict: error: {want}", one_line(run.stderr)), run.stderr
    assert listing(folder) == []


def test_card_given_as_a_dict_or_a_path_works_and_anything_else_is_a_card_error(tmp_path, model):
    CARD.save(tmp_path / "card.yaml")
    for card in (CARD, CARD.to_dict(), str(tmp_path / "card.yaml"), tmp_path / "card.yaml"):
        with PoseEstimator(model, card=card) as est:
            assert est.card == CARD
    with pytest.raises(CardError, match="card must be a ModelCard, a dict of card fields or a YAML/JSON file path, "
                                        "got int"):
        PoseEstimator(model, card=3)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"model": 3}, "model must be a model file path or an open Backend, got int"),
    ({"detector": 3}, r"detector must be a detector file path or a callable frame -> \(boxes, scores\), got int"),
    ({"pose_nms": "0.5"}, r"pose_nms must be an OKS threshold between 0 and 1 \(or None\), got '0.5'"),
    ({"pose_nms": float("nan")}, "pose_nms must be an OKS threshold between 0 and 1"),
])
def test_estimator_arguments_of_the_wrong_kind_are_input_errors(model, arguments, message):
    with pytest.raises(InputError, match=message):
        PoseEstimator(**{"model": model, "card": CARD, **arguments})


# ---------------------------------------------------------------- 8. unbounded resources


class PerSampleBackend:
    """ONNX Runtime one crop at a time (so results cannot depend on batch size), recording each batch size."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def infer(self, feeds):
        (name, batch), = feeds.items()
        self.calls.append(len(batch))
        parts = [self.inner.infer({name: batch[i:i + 1]}) for i in range(len(batch))]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def close(self):
        self.inner.close()


@pytest.mark.parametrize("flip", [False, True])
def test_many_boxes_are_chunked_with_results_identical_to_one_batch(model, flip):
    rng = np.random.default_rng(3)
    n = 300
    x1, y1 = rng.uniform(-30, 290, n), rng.uniform(-30, 210, n)  # some partly outside, none entirely
    boxes = np.stack([x1, y1, x1 + rng.uniform(31, 200, n), y1 + rng.uniform(31, 200, n)], 1)
    backend = PerSampleBackend(open_backend(model))
    with PoseEstimator(backend, flip=flip) as est:
        chunked = est(FRAME, boxes)
        assert max(backend.calls) == (2 if flip else 1) * est.max_batch == (128 if flip else 64)
        backend.calls.clear()
        est.max_batch = n
        whole = est(FRAME, boxes)
        assert backend.calls == [2 * n if flip else n]
    np.testing.assert_array_equal(chunked.xy, whole.xy)
    np.testing.assert_array_equal(chunked.scores, whole.scores)
    backend.close()


def test_5000_boxes_run_in_bounded_batches(model):
    rng = np.random.default_rng(4)
    x1, y1 = rng.uniform(0, 250, 5000), rng.uniform(0, 180, 5000)
    boxes = np.stack([x1, y1, x1 + 60, y1 + 50], 1)

    class Counting(PerSampleBackend):
        def infer(self, feeds):
            self.calls.append(len(next(iter(feeds.values()))))
            return self.inner.infer(feeds)

    backend = Counting(open_backend(model))
    with PoseEstimator(backend) as est:
        poses = est(FRAME, boxes)
    assert len(poses) == 5000 and np.isfinite(poses.xy).all()
    assert backend.calls == [64] * 78 + [8]
    backend.close()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one short IDAT: tiny on disk, huge if decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(3 * width + 1)))
            + chunk(b"IEND", b""))


def _jpeg_claiming(path: Path, jpeg: bytes, width: int, height: int) -> None:
    """A real JPEG with its frame header (SOF0) rewritten to claim width x height."""
    at = jpeg.index(b"\xff\xc0")
    path.write_bytes(jpeg[:at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9:])


def test_huge_png_is_refused_from_its_header_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(30000, 30000))
    assert path.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        read_image(path)
    assert time.perf_counter() - start < 0.5
    assert str(info.value) == (f"image {path} is 30000x30000 (900.0 megapixels), over the limit of 200000000 pixels: "
                               "raise it with --max-pixels (max_pixels=) if the memory is there")
    with pytest.raises(InputError, match="cannot decode image"):  # over the limit, it is decoded (and is truncated)
        read_image(path, max_pixels=10**9)


def test_huge_jpeg_is_refused_from_its_header(tmp_path, coco_dir):
    _jpeg_claiming(tmp_path / "huge.jpg", (coco_dir / "000000000785.jpg").read_bytes(), 60000, 40000)
    with pytest.raises(InputError, match=r"60000x40000 \(2400.0 megapixels\), over the limit"):
        read_image(tmp_path / "huge.jpg")


def test_max_pixels_flag_refuses_and_raising_it_accepts(tmp_path, image, model, capsys):
    boxes = boxes_file(tmp_path, {image.name: [[10, 10, 100, 200]]})
    code, _, err = predict(capsys, image, "--model", model, "--boxes", boxes, "--out", tmp_path / "a",
                           "--max-pixels", "200000")
    assert code == 1
    assert one_line(err) == (f"edgepose predict: warning: skipped {image}: image {image} is 640x425 (0.3 megapixels), "
                             "over the limit of 200000 pixels: raise it with --max-pixels (max_pixels=) if the memory "
                             "is there")
    assert json.loads((tmp_path / "a" / "predictions.json").read_text()) == []
    code, _, err = predict(capsys, image, "--model", model, "--boxes", boxes, "--out", tmp_path / "b",
                           "--max-pixels", "272000")
    assert code == 0 and err == ""


def test_huge_png_in_a_run_is_skipped_with_one_line(tmp_path, image, model, capsys):
    (image.parent / "huge.png").write_bytes(_png_header(30000, 30000))
    boxes = boxes_file(tmp_path, {image.name: [[10, 10, 100, 200]]})
    code, _, err = predict(capsys, image.parent, "--model", model, "--boxes", boxes, "--out", tmp_path / "out")
    assert code == 0
    assert one_line(err).startswith(f"edgepose predict: warning: skipped {image.parent / 'huge.png'}: image "
                                    f"{image.parent / 'huge.png'} is 30000x30000 (900.0 megapixels), over the limit")
    assert len(json.loads((tmp_path / "out" / "predictions.json").read_text())) == 1


def test_video_frames_over_the_limit_are_refused_on_open(tmp_path, coco_dir):
    write_clip(tmp_path / "clip.avi", coco_dir, frames=2, step=1)
    with pytest.raises(InputError, match=r"video .*clip.avi is 320x240 \(0.1 megapixels\), over the limit of 1000 "):
        open_frame_source(str(tmp_path / "clip.avi"), max_pixels=1000)
    with open_frame_source(str(tmp_path / "clip.avi")) as source:
        assert source.frame_count == 2 and len(list(source)) == 2


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tif", ".ppm", ".pgm"])
def test_image_header_sizes_match_the_decoded_sizes(suffix):
    image = FRAME[:123, :217] if suffix != ".pgm" else FRAME[:123, :217, 0]
    ok, data = cv2.imencode(suffix, image)
    assert ok and image_size(data) == (217, 123)
    assert cv2.imdecode(data, cv2.IMREAD_COLOR).shape[:2] == (123, 217)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF1234WEBP", b"II*\x00",
                                  b"not an image", b"P6\n"])
def test_image_header_of_a_cut_or_unknown_file_is_none(data):
    assert image_size(data) is None
