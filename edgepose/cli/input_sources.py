"""Expand command-line inputs (images, folders, videos, cameras, URLs) into a list of items to process."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from edgepose.errors import InputError
from edgepose.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgepose.redact import address, redact


@dataclass(frozen=True)
class Item:
    """One input: an image file, a video file, or a camera index or stream URL."""

    path: str
    kind: str  # "image" | "video" | "camera" (a camera index or a stream URL)


def collect_inputs(paths: list[str]) -> list[Item]:
    """Images, folders of images (sorted, not recursive), videos, camera indices and stream URLs -> items; bad
    paths raise InputError."""
    from edgepose.video.frame_sources import is_camera

    items: list[Item] = []
    for path in paths:
        if is_camera(path) and not os.path.exists(path):
            items.append(Item(path, "camera"))
        elif os.path.isdir(path):
            names = sorted(n for n in _list_folder(path) if n.lower().endswith(IMAGE_SUFFIXES))
            if not names:
                raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            items += [Item(os.path.join(path, n), "image") for n in names]
        elif not os.path.exists(path):
            raise InputError(f"input not found: {redact(path)}")
        elif path.lower().endswith(VIDEO_SUFFIXES):
            items.append(Item(path, "video"))
        elif path.lower().endswith(IMAGE_SUFFIXES):
            items.append(Item(path, "image"))
        else:
            raise InputError(f"cannot tell what {path} is: use an image ({', '.join(IMAGE_SUFFIXES)}), a folder or "
                             f"a video ({', '.join(VIDEO_SUFFIXES)})")
    _refuse_colliding_outputs(items)
    return items


def _list_folder(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise InputError(f"cannot list folder {path}: {exc.strerror}") from exc


def output_stem(source: str) -> str:
    """A file-name stem for a source: the video's name, ``camera0``, or the URL's host and path made safe (never
    its user:password or query)."""
    if source.isdigit():
        return f"camera{source}"
    if "://" in source:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", address(source)).strip("_.") or "stream"
    return os.path.splitext(os.path.basename(source))[0]


def output_name(item: Item) -> str:
    """The name an item's outputs and image ids take: the image's file name, or a video's or camera's stem."""
    return os.path.basename(item.path) if item.kind == "image" else output_stem(item.path)


def _refuse_colliding_outputs(items: list[Item]) -> None:
    """Two inputs whose outputs (vis/NAME, STEM.jsonl, image ids) would overwrite each other raise InputError."""
    seen: dict[str, str] = {}
    for item in items:
        name = output_name(item)
        if name in seen:
            raise InputError(f"{redact(seen[name])} and {redact(item.path)} would both write outputs named {name!r}: "
                             "give each input once, rename one, or run them separately with different --out folders")
        seen[name] = item.path


def refuse_colliding_image_ids(items: list[Item]) -> None:
    """Two images whose ids (file name without suffix, as without --coco) are the same raise InputError."""
    seen: dict[str, str] = {}
    for item in items:
        if item.kind != "image":
            continue
        image_id = os.path.splitext(os.path.basename(item.path))[0]
        if image_id in seen:
            raise InputError(f"{seen[image_id]} and {item.path} would both get image_id {image_id!r} in "
                             "predictions.json: rename one, or pass --coco GT.json to take ids from it")
        seen[image_id] = item.path
