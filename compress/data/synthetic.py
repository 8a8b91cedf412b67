"""The synthetic person-keypoint dataset: procedural figures in cluttered scenes, written in COCO format.

``generate(out_dir, num_train, num_val, seed)`` writes (the layout ``compress.data.coco.layout`` reads)::

    out_dir/synth.json                                   generation parameters; marks a finished dataset
    out_dir/annotations/person_keypoints_{train,val}.json  COCO keypoint annotations
    out_dir/annotations/person_boxes_val.json            detector-style val boxes (COCO results: jittered GT,
                                                         a few misses and low-scoring false positives)
    out_dir/{train,val}/000000.jpg ...                   320x240 (W x H) JPEG, quality 90

Image ``i`` of a split draws only from ``default_rng(SeedSequence([seed, split, i]))``: the same seed gives the same
bytes whatever the worker count, and images are made in parallel and in resumable chunks (``.parts/``).

Scene: a background (gradient, blotches, noise), clutter (rectangles, ellipses, lines, polygons) and limb-like
distractor sticks without keypoints; 1-4 persons drawn far to near with some pushed over the image border;
occluders (textured shapes) in front of some persons; then blur, contrast and noise. A label map records what is
on top at each pixel, giving the visibility of each keypoint: 0 outside the image or a face point on the far side
of the head (x = y = 0, as COCO leaves such points unlabelled), 1 covered by an occluder, another person or another
part of the same person, 2 visible. bbox: the tight box of the person's whole drawn figure, occluded parts
included, clipped to the image, in edgepose's pixel convention (pixel centres at integers, so a box edge lies at
-0.5 for the first column); area: the figure's pixel count inside the image (COCO's area is a mask area too).

Levels: "hard" (the above; the distillation benchmark's set) and "easy" (one large person fully inside the image,
little clutter, no distractor sticks, no occluders: a task a small model learns in minutes on a CPU, for the
quickstart's fast profile). "hard" images are byte-identical to those of datasets made before levels existed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass

import cv2
import numpy as np

from compress.data.synth_figure import (
    KP_OWNERS,
    Painter,
    build_figure,
    capsule_mask,
    render_figure,
    sample_pose,
    sample_style,
    texture,
)
from edgepose.coco.layout import KEYPOINTS, SKELETON
from edgepose.errors import InputError
from edgepose.io import atomic_write_bytes, atomic_write_text

VERSION = 2  # 2: fewer free, lying and upside-down figures; mostly frontal or back views
DEFAULT_SIZE = (320, 240)  # width, height
JPEG_QUALITY = 90
SPLITS = ("train", "val")
CHUNK = 500  # images per resumable part
LEVELS = ("easy", "hard")
OCCLUDER = 1  # label of occluders; person p has labels 16 * (p + 1) + part
CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINTS),
            "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}


def image_rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one image (stream 0) or of its detector boxes (stream 1)."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), index, stream]))


@dataclass
class Scene:
    """One rendered image: BGR uint8 image, the background without persons and occluders (or None), and per
    person: keypoints (17, 3) as COCO (x, y, v), bbox xywh, area and xy (17, 2) the joint positions before
    unlabelled ones are zeroed."""

    image: np.ndarray
    background: np.ndarray | None
    people: list[dict]


def _colour(rng) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _background(rng, w: int, h: int) -> np.ndarray:
    gh, gw = int(rng.integers(2, 8)), int(rng.integers(2, 10))  # a coarse grid, smoothly upsampled
    a = rng.uniform(0, 2 * np.pi)
    t = (np.linspace(-0.5, 0.5, gw)[None, :] * np.cos(a) + np.linspace(-0.5, 0.5, gh)[:, None] * np.sin(a)) + 0.5
    c0, c1 = _colour(rng), _colour(rng)
    small = c0 + t[..., None] * (c1 - c0)
    if rng.random() < 0.6:  # low-frequency blotches
        small += rng.normal(0, rng.uniform(10, 50), (gh, gw, 3))
    img = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(0, 12))
    return np.clip(img, 0, 255).astype(np.uint8)


def _pt(rng, w, h):
    return int(rng.uniform(-0.1, 1.1) * w), int(rng.uniform(-0.1, 1.1) * h)


def _clutter(rng, img: np.ndarray, count: int) -> None:
    h, w = img.shape[:2]
    for _ in range(count):
        colour = tuple(float(c) for c in _colour(rng))
        thick = -1 if rng.random() < 0.55 else int(rng.integers(1, 5))
        kind = rng.integers(5)
        if kind == 0:
            cv2.rectangle(img, _pt(rng, w, h), _pt(rng, w, h), colour, thick, cv2.LINE_AA)
        elif kind == 1:
            axes = (int(rng.uniform(3, w / 4)), int(rng.uniform(3, h / 4)))
            cv2.ellipse(img, _pt(rng, w, h), axes, rng.uniform(0, 180), 0, 360, colour, thick, cv2.LINE_AA)
        elif kind == 2:
            cv2.line(img, _pt(rng, w, h), _pt(rng, w, h), colour, int(rng.integers(1, 6)), cv2.LINE_AA)
        elif kind == 3:
            c = np.array(_pt(rng, w, h))
            poly = (c + rng.normal(0, rng.uniform(5, 40), (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(img, [poly], colour, cv2.LINE_AA)
        else:  # a row of parallel stripes
            p, d = np.array(_pt(rng, w, h), float), rng.normal(0, 1, 2)
            step = rng.normal(0, 1, 2) * rng.uniform(3, 8)
            for i in range(int(rng.integers(3, 9))):
                q = p + i * step
                cv2.line(img, tuple(int(v) for v in q), tuple(int(v) for v in q + d * 40), colour, 2, cv2.LINE_AA)


def _stick(rng, painter: Painter, height: float, label: int | None, near=None) -> None:
    """A limb-like distractor (one or two tapered segments, sometimes a knob) or, with ``label``, an occluder."""
    h, w = painter.canvas.shape[:2]
    p0 = np.array(near if near is not None else (rng.uniform(0, w), rng.uniform(0, h)), float)
    pts, r = [p0], height * rng.uniform(0.015, 0.05)
    for _ in range(int(rng.integers(1, 3))):
        a = rng.uniform(0, 2 * np.pi)
        pts.append(pts[-1] + height * rng.uniform(0.12, 0.3) * np.array([np.cos(a), np.sin(a)]))
    pts = np.array(pts)
    box = painter.box(pts.min(axis=0), pts.max(axis=0), 2.5 * r)
    if box is None:
        return
    mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
    off = np.array(box[:2], float)
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        capsule_mask(mask, a - off, b - off, r, r * rng.uniform(0.6, 1.0))
    if rng.random() < 0.3:
        cv2.circle(mask, tuple(int(v) for v in pts[-1] - off), int(2 * r), 255, -1, cv2.LINE_AA)
    colour = sample_style(rng)["skin" if rng.random() < 0.5 else "shirt"]
    painter.apply(box, mask, colour, 1.0, label)


def _occluder(rng, painter: Painter, centre, size: float) -> None:
    """A textured opaque rectangle, ellipse, polygon or pole around ``centre`` in front of what is drawn."""
    kind = rng.integers(4)
    if kind == 3:
        _stick(rng, painter, size * 2.5, OCCLUDER, near=centre)
        return
    half = np.array([size * rng.uniform(0.1, 0.4), size * rng.uniform(0.1, 0.4)])
    if kind == 0 and rng.random() < 0.5:  # pole or bar
        half[rng.integers(2)] *= 0.2
    box = painter.box(centre - half.max(), centre + half.max(), 1.0)
    if box is None:
        return
    mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
    c = centre - np.array(box[:2], float)
    angle = rng.uniform(0, 180) if rng.random() < 0.5 else 0.0
    if kind == 0:
        corners = cv2.boxPoints(((float(c[0]), float(c[1])), (float(2 * half[0]), float(2 * half[1])), angle))
        cv2.fillConvexPoly(mask, np.round(corners * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    elif kind == 1:
        axes = (max(1, int(half[0] * 16)), max(1, int(half[1] * 16)))
        cv2.ellipse(mask, tuple(int(v * 16) for v in c), axes, angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    else:
        poly = c + rng.normal(0, 1, (int(rng.integers(3, 7)), 2)) * half
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    fill = texture(rng, mask.shape, _colour(rng), plain=0.5)
    painter.origin = box[:2]
    painter.apply(box, mask, fill, 1.0, OCCLUDER)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def _layout(rng, w: int, h: int, easy: bool = False) -> list:
    """1-4 placed figures, ordered far to near (smaller ones mostly further away); ``easy``: one large figure
    fully inside the image."""
    count = 1 if easy else int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
    placed, boxes = [], []
    for _ in range(count):
        fig = build_figure(sample_pose(rng, easy), rng, sample_style(rng))
        low = 0.6 if easy else 0.3
        scale = float(np.exp(rng.uniform(np.log(low * h), np.log(0.95 * h))))
        ext = fig.extent() * scale
        bw, bh = ext[2] - ext[0], ext[3] - ext[1]
        if easy and (bw > w or bh > h):  # keep the whole figure inside
            shrink = 0.95 * min(w / bw, h / bh)
            scale, ext, bw, bh = scale * shrink, ext * shrink, bw * shrink, bh * shrink
        truncated = rng.random() < 0.3 and not easy
        for _ in range(10):
            if truncated:  # centre anywhere that keeps roughly a third of the box inside
                cx, cy = rng.uniform(-0.2 * bw, w + 0.2 * bw), rng.uniform(-0.2 * bh, h + 0.2 * bh)
            else:
                cx = rng.uniform(bw / 2, w - bw / 2) if bw < w else w / 2 + rng.normal(0, 0.1 * w)
                cy = rng.uniform(bh / 2, h - bh / 2) if bh < h else h / 2 + rng.normal(0, 0.1 * h)
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            if all(_iou(box, other) < 0.4 for other in boxes):
                break
        boxes.append(box)
        origin = (box[0] - ext[0], box[1] - ext[1])
        placed.append((scale * float(np.exp(rng.normal(0, 0.3))), fig.placed(scale, origin)))
    return [fig for _, fig in sorted(placed, key=lambda item: item[0])]


def _annotate(fig, labels: np.ndarray, mask: np.ndarray, base: int) -> dict | None:
    h, w = labels.shape
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw == 0:
        return None
    kps = np.zeros((17, 3))
    for k in range(17):
        px, py = fig.pts[k, :2]
        if fig.hidden[k] or not (-0.5 <= px < w - 0.5 and -0.5 <= py < h - 0.5):
            continue
        label = int(labels[int(np.floor(py + 0.5)), int(np.floor(px + 0.5))])
        kps[k] = (px, py, 2 if label - base in KP_OWNERS[k] else 1)
    return {"keypoints": kps, "bbox": [x - 0.5, y - 0.5, float(bw), float(bh)],
            "area": float(cv2.countNonZero(mask)), "xy": fig.pts[:17, :2].copy()}


def render_scene(seed: int, split: str, index: int, size: tuple[int, int] = DEFAULT_SIZE,
                 with_background: bool = False, level: str = "hard") -> Scene:
    """Render image ``index`` of ``split`` deterministically; ``size`` is (width, height). ``with_background``
    also returns the scene without its persons and occluders (same finish), for checks. ``level``: see LEVELS."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {list(LEVELS)}, got {level!r}")
    easy = level == "easy"
    rng = image_rng(seed, split, index)
    w, h = size
    canvas = _background(rng, w, h)
    _clutter(rng, canvas, int(rng.integers(0, 4)) if easy else int(rng.integers(4, 20)))
    labels = np.zeros((h, w), np.int16)
    painter = Painter(canvas, labels)
    for _ in range(0 if easy else int(rng.integers(0, 5))):
        _stick(rng, painter, h * rng.uniform(0.3, 0.9), None)
    background = canvas.copy() if with_background else None
    figures = _layout(rng, w, h, easy)
    occluders = 0 if easy else int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15]))
    occ_after = set(rng.integers(0, len(figures), occluders).tolist())
    masks = []
    for i, fig in enumerate(figures):
        painter.person_mask = mask = np.zeros((h, w), np.uint8)
        render_figure(painter, fig, 16 * (i + 1), rng)
        masks.append(mask)
        if i in occ_after:
            painter.person_mask = None
            joint = fig.pts[int(rng.integers(17)), :2]
            height = fig.head_r / 0.065
            _occluder(rng, painter, joint + rng.normal(0, 0.1 * height, 2), height * rng.uniform(0.3, 0.8))
    people = [_annotate(fig, labels, m, 16 * (i + 1)) for i, (fig, m) in enumerate(zip(figures, masks, strict=True))]
    blur = rng.uniform(0.5, 1.2) if rng.random() < 0.3 else 0.0
    gain, bias = np.float32(rng.uniform(0.75, 1.25)), np.float32(rng.uniform(-25, 25) + 0.5)
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(0, 6))

    def finish(img: np.ndarray) -> np.ndarray:  # blur, contrast, brightness, sensor noise
        img = img.astype(np.float32)
        if blur:
            img = cv2.GaussianBlur(img, (5, 5), blur)
        img *= gain
        img += bias
        img += noise
        return np.clip(img, 0, 255).astype(np.uint8)

    people = [p for p in people if p is not None]
    return Scene(image=finish(canvas), background=finish(background) if with_background else None, people=people)


def _make_image(job: tuple) -> list[dict]:
    """Worker: render one image, write its JPEG atomically, return its people as JSON-ready dicts."""
    seed, split, index, size, path, level = job
    scene = render_scene(seed, split, index, size, level=level)
    ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise InputError(f"OpenCV could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())
    people = []
    for p in scene.people:
        kps = [v for x, y, vis in p["keypoints"] for v in (round(float(x), 2), round(float(y), 2), int(vis))]
        people.append({"keypoints": kps, "bbox": [round(float(v), 2) for v in p["bbox"]], "area": p["area"]})
    return people


def _init_worker() -> None:
    cv2.setNumThreads(1)


class _Runner:
    """Renders jobs in order, in a process pool once a chunk is big enough. The pool uses forkserver: a plain fork
    of a parent whose OpenCV (or torch) thread pool has run can deadlock in the child."""

    def __init__(self, workers: int, bar) -> None:
        self.workers, self.bar, self.pool = workers, bar, None

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, kind, *_) -> None:
        if self.pool is not None:
            (self.pool.close if kind is None else self.pool.terminate)()
            self.pool.join()

    def run(self, jobs: list) -> list:
        parallel = self.workers > 1 and len(jobs) >= 8
        if parallel and self.pool is None:
            import multiprocessing

            self.pool = multiprocessing.get_context("forkserver").Pool(self.workers, initializer=_init_worker)
        out = []
        for people in self.pool.imap(_make_image, jobs, chunksize=4) if parallel else map(_make_image, jobs):
            out.append(people)
            self.bar.update(1)
        return out


def _coco(split: str, count: int, size: tuple[int, int], per_image: list, params: dict) -> dict:
    images, annotations = [], []
    for index, people in enumerate(per_image):
        images.append({"id": index + 1, "file_name": f"{index:06d}.jpg", "width": size[0], "height": size[1]})
        for p in people:
            v = p["keypoints"][2::3]
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": 1, "iscrowd": 0,
                                "num_keypoints": sum(1 for x in v if x > 0), **p})
    info = {"description": f"edgepose synthetic persons, {split} split", "version": str(VERSION), **params}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": [CATEGORY]}


def detector_boxes(coco: dict, seed: int, split: str = "val") -> list[dict]:
    """Detector-style COCO results for ``coco``'s images: every GT box shifted by ~5 % and rescaled by ~8 %, clipped,
    scored 0.5-0.99; about 3 % missed; about one low-scoring (< 0.4) false positive per three images."""
    by_image: dict[int, list] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann["bbox"])
    results = []
    for img in coco["images"]:
        rng = image_rng(seed, split, img["id"] - 1, stream=1)
        w, h = img["width"], img["height"]
        boxes = [(b, float(rng.uniform(0.5, 0.99))) for b in by_image[img["id"]] if rng.random() >= 0.03]
        for _ in range(int(rng.poisson(0.35))):
            bw, bh = rng.uniform(0.1, 0.4) * w, rng.uniform(0.2, 0.8) * h
            boxes.append(([rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh], float(rng.uniform(0.02, 0.4))))
        for (x, y, bw, bh), score in boxes:
            cx, cy = x + bw / 2 + rng.normal(0, 0.05) * bw, y + bh / 2 + rng.normal(0, 0.05) * bh
            bw, bh = bw * np.exp(rng.normal(0, 0.08)), bh * np.exp(rng.normal(0, 0.08))
            x0, y0 = max(cx - bw / 2, -0.5), max(cy - bh / 2, -0.5)
            x1, y1 = min(cx + bw / 2, w - 0.5), min(cy + bh / 2, h - 0.5)
            if x1 - x0 > 1 and y1 - y0 > 1:
                results.append({"image_id": img["id"], "category_id": 1, "score": round(score, 4),
                                "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)]})
    return results


def _dump(path: str, data) -> None:
    atomic_write_text(path, json.dumps(data, separators=(",", ":")) + "\n")


def _check(out_dir: str, params: dict, force: bool) -> bool:
    """True when ``out_dir`` already holds this finished dataset; raises InputError on a conflicting one."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir} is a file: give a new or empty directory")
    if not os.path.isdir(out_dir) or not os.listdir(out_dir):
        return False
    meta_path = os.path.join(out_dir, "synth.json")
    if not os.path.isfile(meta_path):
        raise InputError(f"{out_dir} is not empty and holds no synth.json: give --out a new or empty directory")
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    recorded = {k: meta.get(k, "hard" if k == "level" else None) for k in params}  # older sets: no level, hard
    if recorded != params:
        diff = ", ".join(f"{k} {recorded[k]} -> {v}" for k, v in params.items() if recorded[k] != v)
        if not force:
            raise InputError(f"{out_dir} holds a synthetic dataset made with other parameters ({diff}): "
                             "give --out a new directory, or pass --force to replace it")
        for name in ("train", "val", "annotations", ".parts", "synth.json"):
            target = os.path.join(out_dir, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
        return False
    return bool(meta.get("complete"))


def generate(out_dir: str | os.PathLike, num_train: int, num_val: int, seed: int = 0,
             image_size: tuple[int, int] = DEFAULT_SIZE, progress: bool = True, workers: int | None = None,
             force: bool = False, level: str = "hard") -> dict:
    """Write the dataset (see the module docstring); returns a summary. Same parameters again: a quick no-op;
    an interrupted run resumes from its last finished chunk; ``image_size`` is (width, height); ``level``: "hard"
    or "easy" (see the module docstring)."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {list(LEVELS)}, got {level!r}")
    for name, value in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if num_train + num_val == 0:
        raise InputError("nothing to generate: num_train and num_val are both 0")
    size = tuple(int(v) for v in image_size)
    if len(size) != 2 or not all(64 <= v <= 4096 for v in size):
        raise InputError(f"image_size must be (width, height) with each side in 64..4096, got {image_size!r}")
    out_dir = os.fspath(out_dir)
    params = {"generator": "edgepose.synthetic", "version": VERSION, "seed": int(seed), "num_train": int(num_train),
              "num_val": int(num_val), "image_size": list(size), "jpeg_quality": JPEG_QUALITY, "level": level}
    summary = {"out_dir": out_dir, **params}
    started = time.perf_counter()
    if _check(out_dir, params, force):
        return {**summary, "skipped": True, "seconds": time.perf_counter() - started}
    _dump(os.path.join(out_dir, "synth.json"), {**params, "complete": False})
    from compress.progress import bar as progress_bar
    from compress.progress import line

    workers = int(workers or min(os.cpu_count() or 1, 8))
    parts = os.path.join(out_dir, ".parts")
    made = 0
    bar = progress_bar(total=num_train + num_val, desc="synth", unit="img", enabled=progress)
    with bar, _Runner(workers, bar) as runner:
        for split, count in (("train", num_train), ("val", num_val)):
            os.makedirs(os.path.join(out_dir, split), exist_ok=True)
            per_image = []
            for start in range(0, count, CHUNK):
                part = os.path.join(parts, f"{split}_{start:07d}.json")
                if os.path.isfile(part):
                    with open(part, encoding="utf-8") as fh:
                        per_image += json.load(fh)
                    bar.update(min(CHUNK, count - start))
                    continue
                jobs = [(int(seed), split, i, size, os.path.join(out_dir, split, f"{i:06d}.jpg"), level)
                        for i in range(start, min(start + CHUNK, count))]
                people = runner.run(jobs)
                made += len(jobs)
                _dump(part, people)
                per_image += people
            coco = _coco(split, count, size, per_image, {"seed": int(seed)})
            _dump(os.path.join(out_dir, "annotations", f"person_keypoints_{split}.json"), coco)
            summary[split] = {"images": count, "persons": len(coco["annotations"]),
                              "labelled_keypoints": sum(a["num_keypoints"] for a in coco["annotations"])}
            if split == "val":
                _dump(os.path.join(out_dir, "annotations", "person_boxes_val.json"), detector_boxes(coco, int(seed)))
    _dump(os.path.join(out_dir, "synth.json"), {**params, "complete": True})
    shutil.rmtree(parts, ignore_errors=True)
    seconds = time.perf_counter() - started
    line(f"synth: {made} images rendered in {seconds:.1f} s ({out_dir})", enabled=progress)
    return {**summary, "skipped": False, "seconds": seconds, "images_per_s": made / max(seconds, 1e-9)}
