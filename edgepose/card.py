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
import math
import numbers
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from edgepose.coco import layout as coco
from edgepose.errors import CardError

CARD_KEY = "edgepose.card"
CODEC_NAMES = ("msra", "udp", "simcc")
DECODE_MODES = {"msra": ("none", "shift", "dark"), "udp": ("none", "dark"), "simcc": ("none", "dark")}
DEFAULT_OUTPUTS = {"msra": ("heatmaps",), "udp": ("heatmaps",), "simcc": ("simcc_x", "simcc_y")}


TENSOR_NAME = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_.:/-]{0,127}")  # input, output.1, /model/Conv_output_0
KEYPOINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/ -]{0,63}")  # left_eye, head-top, thumb 1
MAX_NAME = 200  # characters of the card's free-text ``name``
MAX_SIZE = 16384  # pixels: larger input or heatmap sizes are typos, and would allocate gigabytes
_LINE_BREAKING = {"Cc", "Cf", "Zl", "Zp", "Cs"}  # control, format (bidi overrides), line/paragraph separators


def _number(value: Any, name: str, integer: bool = False) -> float | int:
    """A finite real number (a whole one when ``integer``; 192.0 is 192, 192.5 and booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CardError(f"card field '{name}' must hold numbers, got {value!r}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise CardError(f"card field '{name}' holds a number too large, got {value!r}") from exc
    if not math.isfinite(number):
        raise CardError(f"card field '{name}' must hold finite numbers, got {value!r}")
    if integer:
        if not number.is_integer():
            raise CardError(f"card field '{name}' must hold whole numbers, got {value!r}")
        return int(number)
    return number


def _positive(value: Any, name: str, integer: bool = False) -> float | int:
    """``_number`` that must also be greater than zero."""
    number = _number(value, name, integer)
    if number <= 0:
        raise CardError(f"card field '{name}' must be positive, got {value!r}")
    return number


def _pair(value: Any, name: str, kind: type = int) -> tuple:
    """Two positive numbers [width, height]: whole pixel counts (``kind`` int, at most MAX_SIZE) or floats."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CardError(f"card field '{name}' must be a list of two numbers [width, height], got {value!r}")
    out = tuple(_positive(v, name, integer=kind is int) for v in value)
    if kind is int and max(out) > MAX_SIZE:
        raise CardError(f"card field '{name}' must be at most {MAX_SIZE} pixels, got {list(value)}")
    return out


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    """Three finite numbers (mean / std, 0-255 scale)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise CardError(f"card field '{name}' must be a list of 3 numbers (0-255 scale), got {value!r}")
    return tuple(_number(v, name) for v in value)  # type: ignore[return-value]


def _sequence(value: Any, name: str) -> tuple:
    """A list field as a tuple (None: empty); a string or a mapping is refused, not split into characters."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise CardError(f"card field '{name}' must be a list, got {value!r}")
    return tuple(value)


def _text(value: Any, name: str) -> str:
    """A string without control, format or line-breaking characters (cards end up in logs, scripts, READMEs)."""
    if not isinstance(value, str):
        raise CardError(f"card field '{name}' must be a string, got {value!r}")
    bad = next((ch for ch in value if unicodedata.category(ch) in _LINE_BREAKING), None)
    if bad is not None:
        raise CardError(f"card field '{name}' holds the control character {bad!r}: {_shown(value)}")
    return value


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a card's strings are not bounded)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _matching(value: Any, name: str, pattern: re.Pattern, what: str) -> str:
    """A string that fully matches ``pattern`` (``what`` describes it in the error)."""
    text = _text(value, name)
    if not pattern.fullmatch(text):
        raise CardError(f"card field '{name}' has {_shown(text)}, which is not {what}")
    return text


def _tensor_name(value: Any, name: str) -> str:
    return _matching(value, name, TENSOR_NAME, "a tensor name (letters, digits and _ . : / -, at most 128)")


def _index_pairs(value: Any, name: str, count: int) -> tuple[tuple[int, int], ...]:
    """Pairs of whole keypoint indices in 0..count-1."""
    pairs = []
    for pair in _sequence(value, name):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CardError(f"card field '{name}' must hold pairs [i, j] of keypoint indices, got {pair!r}")
        pair = tuple(_number(i, name, integer=True) for i in pair)
        if not all(0 <= i < count for i in pair):
            raise CardError(f"card field '{name}' has pair {pair} outside 0..{count - 1}")
        pairs.append(pair)
    return tuple(pairs)


def _check_extra(value: Any, where: str = "extra") -> None:
    """``extra`` holds plain JSON only: mappings with string keys, lists, finite numbers, clean strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            _text(key, where)
            _check_extra(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_extra(item, where)
    elif isinstance(value, str):
        _text(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise CardError(f"card field '{where}' must hold finite numbers, got {value!r}")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise CardError(f"card field '{where}' must hold plain JSON values, got {type(value).__name__}")


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
        self._check_choices()
        self._set_numbers()
        self._set_layout_defaults()
        self._set_names()

    def _check_choices(self) -> None:
        """color, layout, codec and decode: one of their fixed values."""
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

    def _set_numbers(self) -> None:
        """Sizes, normalisation and codec numbers: finite, positive where they must be, whole where counted."""
        set_ = object.__setattr__
        set_(self, "input_size", _pair(self.input_size, "input_size"))
        set_(self, "mean", _triple(self.mean, "mean"))
        set_(self, "std", _triple(self.std, "std"))
        if any(s <= 0 for s in self.std):
            raise CardError(f"card field 'std' must be positive, got {list(self.std)}")
        if self.codec == "simcc":
            if self.simcc_split_ratio is None:
                raise CardError("codec 'simcc' needs a positive 'simcc_split_ratio' in the card (RTMPose uses 2.0)")
            set_(self, "simcc_split_ratio", _positive(self.simcc_split_ratio, "simcc_split_ratio"))
        else:
            if self.heatmap_size is None:
                raise CardError(f"codec '{self.codec}' needs 'heatmap_size: [width, height]' in the card")
            set_(self, "heatmap_size", _pair(self.heatmap_size, "heatmap_size"))
        sigma = self.sigma
        set_(self, "sigma", _pair(sigma, "sigma", float) if isinstance(sigma, (list, tuple))
             else _positive(sigma, "sigma"))
        kernel = _positive(self.blur_kernel_size, "blur_kernel_size", integer=True)
        if kernel % 2 == 0:
            raise CardError(f"card field 'blur_kernel_size' must be a positive odd integer, got {kernel}")
        set_(self, "blur_kernel_size", kernel)
        set_(self, "bbox_padding", _positive(self.bbox_padding, "bbox_padding"))

    def _set_layout_defaults(self) -> None:
        """Keypoint names, flip pairs, skeleton and OKS sigmas (COCO-17's when the card names no keypoints)."""
        set_ = object.__setattr__
        keypoints = tuple(_matching(k, "keypoints", KEYPOINT_NAME, "a keypoint name (letters, digits and _ . : / "
                                    "- and spaces, at most 64)") for k in _sequence(self.keypoints, "keypoints"))
        count = len(keypoints) or len(coco.KEYPOINTS)
        flip_pairs = _index_pairs(self.flip_pairs, "flip_pairs", count)
        skeleton = _index_pairs(self.skeleton, "skeleton", count)
        if not keypoints:
            keypoints = coco.KEYPOINTS
            flip_pairs = flip_pairs or coco.FLIP_PAIRS
            skeleton = skeleton or coco.SKELETON
        elif len(keypoints) == len(coco.KEYPOINTS) and not flip_pairs and not skeleton:
            flip_pairs, skeleton = coco.FLIP_PAIRS, coco.SKELETON
        flipped = [i for pair in flip_pairs for i in pair]
        if len(flipped) != len(set(flipped)):
            raise CardError(f"card field 'flip_pairs' names a keypoint in more than one pair: {list(flip_pairs)}")
        set_(self, "keypoints", keypoints)
        set_(self, "flip_pairs", flip_pairs)
        set_(self, "skeleton", skeleton)
        sigmas = tuple(_number(v, "sigmas") for v in _sequence(self.sigmas, "sigmas"))
        if not sigmas:
            coco_layout = keypoints == coco.KEYPOINTS
            sigmas = tuple(coco.SIGMAS.tolist()) if coco_layout else (0.05,) * len(keypoints)
        if len(sigmas) != len(keypoints) or any(v <= 0 for v in sigmas):
            raise CardError(f"card field 'sigmas' needs {len(keypoints)} positive OKS sigmas, got {list(sigmas)}")
        set_(self, "sigmas", sigmas)

    def _set_names(self) -> None:
        """Tensor names (strict pattern), the free-text name and ``extra`` (no control characters anywhere)."""
        set_ = object.__setattr__
        outputs = tuple(_tensor_name(n, "output_names") for n in _sequence(self.output_names, "output_names"))
        outputs = outputs or DEFAULT_OUTPUTS[self.codec]
        if len(outputs) != len(DEFAULT_OUTPUTS[self.codec]):
            raise CardError(
                f"codec '{self.codec}' reads {len(DEFAULT_OUTPUTS[self.codec])} output(s) "
                f"{list(DEFAULT_OUTPUTS[self.codec])}; card field 'output_names' lists {list(outputs)}"
            )
        set_(self, "output_names", outputs)
        set_(self, "input_name", _tensor_name(self.input_name, "input_name"))
        if len(_text(self.name, "name")) > MAX_NAME:
            raise CardError(f"card field 'name' is longer than {MAX_NAME} characters")
        if not isinstance(self.extra, dict):
            raise CardError(f"card field 'extra' must be a mapping, got {_shown(self.extra)}")
        _check_extra(self.extra)

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
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

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
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError as exc:
            raise CardError(f"card file {path} is not UTF-8 text: {exc}") from exc
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
