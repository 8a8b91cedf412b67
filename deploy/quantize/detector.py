"""Faster variants of a YOLOX person detector ONNX: any input size (symbolic H/W) and static INT8 (QDQ).

    free_input_size("yolox_nano_416x416.onnx", "yolox_nano_any.onnx")
    report = quantize_detector("yolox_nano_any.onnx", "yolox_nano_int8.onnx", frames, sizes=(416, 320))

YOLOX is fully convolutional and its raw head only reshapes with (1, 85, -1), so the same graph runs at any input
that is a multiple of 32 once the fixed H/W (and the stale shapes ONNX stored for every intermediate tensor) are
removed. ``YoloxDetector(path, input_size=...)`` then picks the size.

INT8: ONNX Runtime's ``quantize_static`` in QDQ format, per-channel symmetric int8 weights and asymmetric uint8
activations (U8S8, ONNX Runtime's fast path on x86 CPUs), MinMax ranges calibrated on letterboxed frames (the
detector's own preprocessing) at each of ``sizes``. The Convs producing the raw head outputs (box, objectness and
class logits) stay float by default (``keep_head_float``): quantizing them shifts the box and score logits that the
decode exponentiates and thresholds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.artifact import write_artifact
from deploy.quantize.ptq import first_convs, head_nodes
from edgepose.errors import InputError, ModelError

HEIGHT, WIDTH = "height", "width"
MIN_OPSET = 13  # per-channel (axis) DequantizeLinear


def free_input_size(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Write ``src`` (a YOLOX ONNX with a fixed (1, 3, H, W) input) with symbolic H and W to ``dst``.

    Only the declared shapes change (input H/W, the output's anchor count, the stored intermediate shapes); the
    nodes and weights are the same, so at the original size the outputs are identical.
    """
    import onnx

    from edgepose.onnx_card import load_onnx

    _, model = load_onnx(src, "Rewriting detector input sizes")
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4 or len(model.graph.output) != 1:
        raise ModelError(f"{src} is not a YOLOX export: one (1, 3, H, W) input and one output expected")
    for node in model.graph.node:
        if node.op_type == "Reshape" and not _reshape_keeps_size_free(model, node):
            raise ModelError(f"{src}: Reshape {node.name} has a fixed spatial size; the input size cannot be freed")
    dims = inputs[0].type.tensor_type.shape.dim
    dims[2].Clear()
    dims[2].dim_param = HEIGHT
    dims[3].Clear()
    dims[3].dim_param = WIDTH
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(out_dims) == 3:
        out_dims[1].Clear()
        out_dims[1].dim_param = "anchors"
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    with write_artifact(dst, "detector ONNX (free input size)") as tmp:
        onnx.save(model, tmp)
    return os.fspath(dst)


def _reshape_keeps_size_free(model, node) -> bool:
    """True when a Reshape's target shape is a constant with -1 (or 0) for the flattened spatial axes."""
    from onnx import numpy_helper

    shape = next((numpy_helper.to_array(t) for t in model.graph.initializer if t.name == node.input[1]), None)
    if shape is None:
        for other in model.graph.node:
            if other.op_type == "Constant" and other.output[0] == node.input[1]:
                shape = numpy_helper.to_array(other.attribute[0].t)
    return shape is not None and (-1 in shape.tolist() or 0 in shape.tolist())


def _at_least_opset(model, opset: int, dst: Path) -> None:
    """Save ``model`` to ``dst``, converted to ``opset`` first when its default-domain opset is older."""
    import onnx
    from onnx import version_converter

    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if current < opset:
        model = version_converter.convert_version(model, opset)
    onnx.save(model, os.fspath(dst))


def letterbox_blob(frame: np.ndarray, size: int) -> np.ndarray:
    """A frame as the detector's (1, 3, size, size) float32 input (``YoloxDetector.preprocess``)."""
    from edgepose.detector import letterbox

    return letterbox(frame, (size, size))[0]


class DetectorFrames:
    """Calibration reader: each frame (and its mirror image when ``flip``) letterboxed at each of ``sizes``."""

    def __init__(self, frames: Sequence[np.ndarray], sizes: Sequence[int] = (416,), input_name: str = "images",
                 flip: bool = True) -> None:
        if not frames:
            raise InputError("calibration needs at least one frame")
        for size in sizes:
            if size <= 0 or size % 32:
                raise InputError(f"calibration size {size} must be a positive multiple of 32")
        views = [f for frame in frames for f in ((frame, frame[:, ::-1]) if flip else (frame,))]
        self.blobs = [letterbox_blob(np.ascontiguousarray(v), s) for s in sizes for v in views]
        self.input_name = input_name
        self._iter: Iterator[np.ndarray] = iter(self.blobs)

    def __len__(self) -> int:
        return len(self.blobs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next calibration input, or None at the end (ONNX Runtime's CalibrationDataReader protocol)."""
        blob = next(self._iter, None)
        return None if blob is None else {self.input_name: blob}

    def rewind(self) -> DetectorFrames:
        """Start again from the first input."""
        self._iter = iter(self.blobs)
        return self


@dataclass
class DetectorQuantReport:
    """What ``quantize_detector`` wrote: the float nodes and why, the calibration count, sizes."""

    src: str
    dst: str
    num_calibration: int
    calibration_sizes: list[int]
    excluded: list[tuple[str, str]] = field(default_factory=list)
    size_bytes: int = 0

    def to_dict(self) -> dict:
        """A plain-JSON dict."""
        return {"src": self.src, "dst": self.dst, "num_calibration": self.num_calibration,
                "calibration_sizes": self.calibration_sizes, "size_bytes": self.size_bytes,
                "excluded": [{"node": n, "reason": r} for n, r in self.excluded]}


def quantize_detector(src: str | os.PathLike, dst: str | os.PathLike, frames: Sequence[np.ndarray],
                      sizes: Sequence[int] = (416,), keep_head_float: bool = True, keep_first_conv_float: bool = False,
                      exclude: Sequence[str] = (), flip: bool = True) -> DetectorQuantReport:
    """Static INT8 (QDQ, U8S8, per-channel weights, MinMax) copy of the YOLOX ONNX ``src`` at ``dst``, calibrated
    on ``frames`` (BGR uint8) letterboxed at each of ``sizes`` (and mirrored when ``flip``).

    For calibration at more than one size ``src`` needs a free input size (``free_input_size``).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgepose.onnx_card import load_onnx

    src, dst = os.fspath(src), os.fspath(dst)
    _, model = load_onnx(src, "Quantizing detector models")
    name = model.graph.input[0].name
    reader = DetectorFrames(frames, sizes, name, flip)
    excluded: dict[str, str] = {}
    for node in head_nodes(model.graph) if keep_head_float else []:
        excluded.setdefault(node, "head (raw box / objectness / class logits)")
    for node in first_convs(model.graph) if keep_first_conv_float else []:
        excluded.setdefault(node, "first conv")
    names = {node.name for node in model.graph.node}
    for node in exclude:
        if node not in names:
            raise InputError(f"exclude names node {node!r} that {src} does not have")
        excluded.setdefault(node, "user")
    with tempfile.TemporaryDirectory(prefix="edgepose-detq-") as tmp:
        opset, pre, out = Path(tmp) / "opset.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "qdq.onnx"
        _at_least_opset(model, MIN_OPSET, opset)
        quant_pre_process(os.fspath(opset), os.fspath(pre), skip_symbolic_shape=True)
        quantize_static(os.fspath(pre), os.fspath(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(excluded),
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        with write_artifact(dst, "INT8 detector ONNX") as tmp_dst:
            shutil.copyfile(out, tmp_dst)
    return DetectorQuantReport(src, dst, len(reader), list(sizes), list(excluded.items()), os.path.getsize(dst))
