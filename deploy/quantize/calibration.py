"""Calibration data for post-training quantization: person crops made exactly as the runtime makes them.

``CalibrationImages(model, ann_file, image_dir, num=64)`` reads the ModelCard embedded in ``model`` and yields
``{card.input_name: (1, 3, H, W) float32}`` per ground-truth person box of a COCO keypoint file (non-crowd
persons with ``num_keypoints > 0`` and a box wider and taller than 1 px, clipped to the image, as
``compress.data.coco.CocoPoseDataset`` picks them), cropped by the runtime's own ``edgepose.preprocess.Cropper``.
Order is deterministic (image id, then annotation id); when there are more persons than ``num``, ``num`` of them
evenly spaced over that order are used. ``CalibrationImages(model, tensors=[...])`` takes preprocessed tensors
instead (tests, or crops made elsewhere), checked against the same input size.

It follows ONNX Runtime's ``CalibrationDataReader`` protocol (``get_next`` until None, ``__len__``,
``set_range``) and adds ``rewind()``, so one reader serves several passes (calibration, sensitivity analysis).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgepose.card import ModelCard
from edgepose.errors import InputError, ModelError
from edgepose.io import read_image, read_json
from edgepose.preprocess import Cropper

NO_DATA = "calibration needs at least one image with a usable person"


def check_input_size(model: str | os.PathLike, card: ModelCard) -> None:
    """Refuse a model whose fixed input height/width in the ONNX graph differ from the card's ``input_size``."""
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend

    with OnnxRuntimeBackend(model) as backend:
        specs = {s.name: s for s in backend.inputs}
    spec = specs.get(card.input_name) or (next(iter(specs.values())) if len(specs) == 1 else None)
    if spec is None:
        raise ModelError(f"{model}: the card's input_name '{card.input_name}' is not among the inputs {list(specs)}")
    w, h = card.input_size
    dims = tuple(spec.shape[2:]) if len(spec.shape) == 4 else ()
    if len(dims) != 2 or any(d is not None and d != e for d, e in zip(dims, (h, w), strict=True)):
        raise ModelError(
            f"{model}: input {spec.describe()} does not match the card's input_size "
            f"[{w}, {h}] (width, height) means [N, 3, {h}, {w}]: fix the card or re-export the model"
        )


def coco_person_boxes(ann_file: str | os.PathLike, image_dir: str | os.PathLike) -> list[tuple[Path, np.ndarray]]:
    """(image path, xyxy box) of every usable ground-truth person, ordered by image id then annotation id."""
    data = read_json(ann_file, "COCO annotation")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or "annotations" not in data:
        raise InputError(f"{ann_file} has no 'images' and 'annotations' lists: pass a person_keypoints_*.json file")
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputError(f"image folder not found: {image_dir} (the images of {ann_file})")
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    rows = []
    for img in sorted(data["images"], key=lambda i: i["id"]):
        width, height = img["width"], img["height"]
        for ann in sorted(by_image.get(img["id"], []), key=lambda a: a.get("id", 0)):
            if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0) or "bbox" not in ann:
                continue
            visible = int((np.asarray(ann.get("keypoints", []), np.float64).reshape(-1, 3)[:, 2] > 0).sum())
            x, y, w, h = ann["bbox"]
            if ann.get("num_keypoints", visible) <= 0 or w <= 1 or h <= 1:
                continue
            box = np.clip([x, y, x + w, y + h], 0, [width - 1, height - 1] * 2).astype(np.float64)
            if box[2] > box[0] and box[3] > box[1]:
                rows.append((image_dir / img["file_name"], box))
    return rows


def evenly_spaced(count: int, num: int) -> list[int]:
    """``num`` indices spread evenly over ``range(count)`` (all of them when ``count <= num``)."""
    if count <= num:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, num).round()})


class CalibrationImages(CalibrationDataReader):
    """ONNX Runtime calibration reader over person crops of a COCO-layout dataset (or given tensors)."""

    def __init__(
        self,
        model: str | os.PathLike,
        ann_file: str | os.PathLike | None = None,
        image_dir: str | os.PathLike | None = None,
        num: int = 64,
        tensors: Sequence[np.ndarray] | np.ndarray | None = None,
        card: ModelCard | None = None,
    ) -> None:
        """``card``: the card embedded in ``model`` when the caller has it already (read from the file when None)."""
        from edgepose.onnx_card import read_card

        self.model = os.fspath(model)
        self.card = card or read_card(self.model)
        check_input_size(self.model, self.card)
        w, h = self.card.input_size
        self.shape = (1, 3, h, w)
        if int(num) < 1:
            raise InputError(f"{NO_DATA}: num must be at least 1, got {num}")
        self._tensors: list[np.ndarray] | None = None
        self._persons: list[tuple[Path, np.ndarray]] = []
        where = "the given tensors"
        if tensors is not None:
            self._tensors = self._check_tensors(tensors)[: int(num)]
            count = len(self._tensors)
        else:
            if ann_file is None or image_dir is None:
                raise InputError("calibration needs an annotation file and an image folder (or tensors=...)")
            persons = coco_person_boxes(ann_file, image_dir)
            self._persons = [persons[i] for i in evenly_spaced(len(persons), int(num))]
            missing = sorted({str(p) for p, _ in self._persons if not p.is_file()})
            if missing:
                raise InputError(f"calibration image(s) listed in {ann_file} are missing: {missing[:3]}")
            count = len(self._persons)
            where = f"{ann_file} with {image_dir}"
        if count == 0:
            raise InputError(f"{NO_DATA}; {where} gave none")
        self._cropper = Cropper(self.card) if self._persons else None
        self._frame: tuple[Path, np.ndarray] | None = None
        self._range = (0, count)
        self._next = 0

    def _check_tensors(self, tensors: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        if isinstance(tensors, np.ndarray):  # one (N, 3, H, W) batch, or a single (3, H, W) / other-shaped tensor
            items = list(tensors[:, None]) if tensors.ndim == 4 else [tensors]
        else:
            items = list(tensors)
        out = []
        for i, item in enumerate(items):
            arr = np.asarray(item, dtype=np.float32)
            arr = arr[None] if arr.ndim == 3 else arr
            if arr.shape != self.shape:
                raise InputError(
                    f"calibration tensor {i} has shape {list(np.shape(item))}, but {self.model} takes "
                    f"{list(self.shape)} (card input_size [{self.shape[3]}, {self.shape[2]}], width x height)"
                )
            out.append(np.ascontiguousarray(arr))
        return out

    def __len__(self) -> int:
        return self._range[1] - self._range[0]

    @property
    def current_range(self) -> tuple[int, int]:
        """The ``[start, end)`` item range the reader yields (all items unless ``set_range`` narrowed it)."""
        return self._range

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the reader to items ``[start_index, end_index)`` and rewind to the first of them."""
        total = len(self._tensors) if self._tensors is not None else len(self._persons)
        start, end = max(0, int(start_index)), min(total, int(end_index))
        if end <= start:
            raise InputError(f"calibration range [{start_index}, {end_index}) is empty ({total} items)")
        self._range = (start, end)
        self._next = start

    def rewind(self) -> CalibrationImages:
        """Start again at the first item of the current range; returns ``self``."""
        self._next = self._range[0]
        return self

    def item(self, index: int) -> np.ndarray:
        """The (1, 3, H, W) float32 tensor of item ``index`` (of all items, ignoring the range)."""
        if self._tensors is not None:
            return self._tensors[index]
        path, box = self._persons[index]
        if self._frame is None or self._frame[0] != path:
            self._frame = (path, read_image(path))
        batch, _ = self._cropper(self._frame[1], box[None])
        return batch

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next ``{input_name: tensor}`` feed, or None after the last."""
        if self._next >= self._range[1]:
            return None
        self._next += 1
        return {self.card.input_name: self.item(self._next - 1)}
