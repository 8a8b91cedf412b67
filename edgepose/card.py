"""ModelCard: the one place that holds a model's preprocessing and decoding contract.

A card travels inside an ONNX file (``metadata_props`` key ``edgepose.card``, JSON), beside a TensorRT engine as
``<engine>.card.json``, or in a small YAML/JSON file the user writes for a third-party model. Nothing else in
edgepose holds a default mean, std or input size.

Conventions:
- ``input_size`` and ``heatmap_size`` are ``[width, height]``.
- ``mean`` and ``std`` are on the 0-255 pixel scale and in the model's channel order (``color``): an RGB model
  with MMPose's ImageNet statistics has ``mean: [123.675, 116.28, 103.53]``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from edgepose.coco import layout as coco
from edgepose.errors import CardError

CARD_KEY = "edgepose.card"
CODEC_NAMES = ("msra", "udp", "simcc")
DECODE_MODES = {"msra": ("none", "shift", "dark"), "udp": ("none", "dark"), "simcc": ("none", "dark")}
DEFAULT_OUTPUTS = {"msra": ("heatmaps",), "udp": ("heatmaps",), "simcc": ("simcc_x", "simcc_y")}


def _pair(value: Any, name: str, kind: type = int) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CardError(f"card field '{name}' must be a list of two numbers [width, height], got {value!r}")
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise CardError(f"card field '{name}' must hold numbers, got {value!r}") from exc
    if any(v <= 0 for v in out):
        raise CardError(f"card field '{name}' must be positive, got {value!r}")
    return out


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise CardError(f"card field '{name}' must be a list of 3 numbers (0-255 scale), got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelCard:
    """A pose model's contract: how to prepare its input and how to decode its outputs."""

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color: str
    codec: str
    heatmap_size: tuple[int, int] | None = None
    simcc_split_ratio: float | None = None
    sigma: float | tuple[float, float] = 2.0
    decode: str = "none"
    blur_kernel_size: int = 11
    layout: str = "nchw"
    keypoints: tuple[str, ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] = ()
    bbox_padding: float = 1.25
    input_name: str = "input"
    output_names: tuple[str, ...] = ()
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", _pair(self.input_size, "input_size"))
        set_(self, "mean", _triple(self.mean, "mean"))
        set_(self, "std", _triple(self.std, "std"))
        if any(s <= 0 for s in self.std):
            raise CardError(f"card field 'std' must be positive, got {self.std}")
        if self.color not in ("rgb", "bgr"):
            raise CardError(f"card field 'color' must be 'rgb' or 'bgr', got {self.color!r}")
        if self.layout != "nchw":
            raise CardError(f"card field 'layout' must be 'nchw' (the only layout supported), got {self.layout!r}")
        if self.codec not in CODEC_NAMES:
            raise CardError(f"card field 'codec' must be one of {list(CODEC_NAMES)}, got {self.codec!r}")
        if self.decode not in DECODE_MODES[self.codec]:
            raise CardError(
                f"card field 'decode' for codec '{self.codec}' must be one of {list(DECODE_MODES[self.codec])}, "
                f"got {self.decode!r}"
            )
        if self.codec == "simcc":
            if self.simcc_split_ratio is None or float(self.simcc_split_ratio) <= 0:
                raise CardError("codec 'simcc' needs a positive 'simcc_split_ratio' in the card (RTMPose uses 2.0)")
            set_(self, "simcc_split_ratio", float(self.simcc_split_ratio))
        else:
            if self.heatmap_size is None:
                raise CardError(f"codec '{self.codec}' needs 'heatmap_size: [width, height]' in the card")
            set_(self, "heatmap_size", _pair(self.heatmap_size, "heatmap_size"))
        sigma = self.sigma
        set_(self, "sigma", float(sigma) if not isinstance(sigma, (list, tuple)) else _pair(sigma, "sigma", float))
        if int(self.blur_kernel_size) < 1 or int(self.blur_kernel_size) % 2 == 0:
            raise CardError(
                f"card field 'blur_kernel_size' must be a positive odd integer, got {self.blur_kernel_size}"
            )
        set_(self, "blur_kernel_size", int(self.blur_kernel_size))
        if float(self.bbox_padding) <= 0:
            raise CardError(f"card field 'bbox_padding' must be positive, got {self.bbox_padding}")
        set_(self, "bbox_padding", float(self.bbox_padding))
        self._set_layout_defaults()

    def _set_layout_defaults(self) -> None:
        set_ = object.__setattr__
        keypoints = tuple(str(k) for k in self.keypoints)
        flip_pairs = tuple(tuple(int(i) for i in p) for p in self.flip_pairs)
        skeleton = tuple(tuple(int(i) for i in p) for p in self.skeleton)
        if not keypoints:
            keypoints = coco.KEYPOINTS
            flip_pairs = flip_pairs or coco.FLIP_PAIRS
            skeleton = skeleton or coco.SKELETON
        elif len(keypoints) == len(coco.KEYPOINTS) and not flip_pairs and not skeleton:
            flip_pairs, skeleton = coco.FLIP_PAIRS, coco.SKELETON
        for name, pairs in (("flip_pairs", flip_pairs), ("skeleton", skeleton)):
            for pair in pairs:
                if len(pair) != 2 or not all(0 <= i < len(keypoints) for i in pair):
                    raise CardError(f"card field '{name}' has pair {pair} outside 0..{len(keypoints) - 1}")
        set_(self, "keypoints", keypoints)
        set_(self, "flip_pairs", flip_pairs)
        set_(self, "skeleton", skeleton)
        sigmas = tuple(float(v) for v in self.sigmas)
        if not sigmas:
            coco_layout = keypoints == coco.KEYPOINTS
            sigmas = tuple(coco.SIGMAS.tolist()) if coco_layout else (0.05,) * len(keypoints)
        if len(sigmas) != len(keypoints) or any(v <= 0 for v in sigmas):
            raise CardError(f"card field 'sigmas' needs {len(keypoints)} positive OKS sigmas, got {list(sigmas)}")
        set_(self, "sigmas", sigmas)
        outputs = tuple(self.output_names) or DEFAULT_OUTPUTS[self.codec]
        if len(outputs) != len(DEFAULT_OUTPUTS[self.codec]):
            raise CardError(
                f"codec '{self.codec}' reads {len(DEFAULT_OUTPUTS[self.codec])} output(s) "
                f"{list(DEFAULT_OUTPUTS[self.codec])}; card field 'output_names' lists {list(outputs)}"
            )
        set_(self, "output_names", outputs)

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints the model predicts."""
        return len(self.keypoints)

    def to_dict(self) -> dict:
        """A plain-JSON dict; ``ModelCard.from_dict(card.to_dict()) == card``."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        if not out["extra"]:
            del out["extra"]
        return out

    def to_json(self) -> str:
        """The card as compact JSON, the form stored in ONNX metadata."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        """Build a card from a dict; unknown keys and missing required keys are refused by name."""
        if not isinstance(data, dict):
            raise CardError(f"a model card must be a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(f"unknown card field(s) {unknown}; valid fields: {sorted(known)}")
        missing = [k for k in ("input_size", "mean", "std", "color", "codec") if k not in data]
        if missing:
            raise CardError(f"model card lacks required field(s) {missing}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise CardError(f"malformed model card: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card from JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardError(f"model card is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ModelCard:
        """Read a card from a ``.yaml``/``.yml`` or ``.json`` file."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CardError(f"card file not found: {path}")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise CardError(f"card file {path} is not valid YAML: {exc}") from exc
            return cls.from_dict(data)
        return cls.from_json(text)

    def save(self, path: str | os.PathLike) -> None:
        """Write the card as JSON (or YAML for a .yaml/.yml path), atomically."""
        from edgepose.io import atomic_write_text

        path = os.fspath(path)
        if path.endswith((".yaml", ".yml")):
            import yaml

            atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
