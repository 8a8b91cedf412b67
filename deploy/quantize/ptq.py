"""Post-training INT8 quantization (QDQ, symmetric, as TensorRT expects) and FP16 conversion of ONNX pose models.

    report = quantize_int8("pose.onnx", "pose_int8.onnx", CalibrationImages("pose.onnx", ann, images, num=64))
    report = convert_fp16("pose.onnx", "pose_fp16.onnx")

INT8: ONNX Runtime's ``quant_pre_process`` (ONNX shape inference and graph optimisation), then ``quantize_static``
in QDQ format with symmetric per-channel int8 weights and symmetric int8 activations. The first Conv (reading the
image) and the head (the Conv producing a graph output) stay float by default: they are the layers quantization
hurts most. With ``sensitivity_sqnr_db`` the float and QDQ models are compared tensor by tensor on calibration
crops (``onnxruntime.quantization.qdq_loss_debug``); every Conv whose output SQNR falls below the threshold is
excluded as well and the model is quantized once more. With ``subpixel_deconv`` (the default for uint8 activations)
every ConvTranspose(kernel 4, stride 2, pad 1) is first rewritten, exactly, into a sub-pixel Conv
(``deploy.quantize.subpixel_deconv``), because ONNX Runtime's CPU provider has no INT8 ConvTranspose.

Both keep the source's ModelCard embedded, so the output runs in ``OnnxRuntimeBackend`` and ``PoseEstimator`` as
is, and both write ``dst`` atomically: it is either absent (or the old file) or the complete new model.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.artifact import write_artifact
from deploy.quantize.calibration import CalibrationImages
from edgepose.card import ModelCard
from edgepose.errors import EdgePoseError, InputError, ModelError, require

METHODS = ("minmax", "entropy", "percentile")
# Nodes whose output a graph output is computed from, searching back from that output; they form the "head".
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Kept in FP32 by convert_fp16 besides onnxconverter-common's own block list: resampling, reductions and
# normalisations whose intermediate values overflow or lose precision in half floats.
FP32_OPS = ("Resize", "Upsample", "ReduceMean", "ReduceL2", "Softmax", "LogSoftmax", "LayerNormalization",
            "Pow", "Sqrt")
# Activations the QDQ quantizer may fold into the Conv before them, so that only their output carries Q/DQ.
FOLDED_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "HardSigmoid", "Sigmoid", "HardSwish")
# What INT8 covers (``quantize_int8(scope=...)``): "all" every op ONNX Runtime can quantize (TensorRT's choice);
# "conv" only the Convs, everything between them float; "dense" only the Convs with group 1 (a network of
# depthwise-separable blocks: the pointwise 1x1s), depthwise Convs and everything else float. On ONNX Runtime's
# x86 CPU provider Lite-HRNet runs slower in "all" INT8 than in FP32 (benchmarks/results/int8_lite_hrnet.json).
SCOPES = ("all", "conv", "dense")
SENSITIVITY_SAMPLES = 8


@dataclass
class QuantReport:
    """What ``quantize_int8`` / ``convert_fp16`` produced: excluded nodes and why, sizes, counts."""

    variant: str  # "int8" | "fp16"
    src: str
    dst: str
    method: str | None  # calibration method (int8 only)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (node, reason)
    num_calibration: int = 0
    quantized_convs: int = 0  # int8: Convs with Q/DQ weights; fp16: Convs with float16 weights
    size_bytes: int = 0
    sqnr_db: dict[str, float] = field(default_factory=dict)  # sensitivity analysis: Conv -> output SQNR
    rewritten_deconvs: list[str] = field(default_factory=list)  # ConvTranspose nodes made sub-pixel Convs (int8)
    scope: str | None = None  # int8: which ops INT8 covers (SCOPES)

    def to_dict(self) -> dict:
        """A plain-JSON dict."""
        out = dataclasses.asdict(self)
        out["excluded"] = [{"node": node, "reason": reason} for node, reason in self.excluded]
        return out


# ---------------------------------------------------------------------------------------------- graph helpers


def _load(path: str | os.PathLike):
    """(onnx module, ModelProto) of ``path``, or ModelError for a missing, corrupt or truncated file."""
    from edgepose.onnx_card import load_onnx

    return load_onnx(path, "Quantizing ONNX models")


def _nearest(start: list[str], nodes_of: Callable[[str], list], onward: Callable, ops: tuple[str, ...]) -> list[str]:
    """Names of the nodes of type ``ops`` first reached from tensors ``start``: ``nodes_of(tensor)`` gives the
    next nodes, ``onward(node)`` the tensors to continue from when a node is not one of ``ops``."""
    found, seen, todo = [], set(), list(start)
    while todo:
        for node in nodes_of(todo.pop(0)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in ops:
                found.append(node.name)
            else:
                todo += list(onward(node))
    return list(dict.fromkeys(found))


def first_convs(graph) -> list[str]:
    """The Conv node(s) nearest the graph inputs (those reading the image)."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    return _nearest(inputs, lambda t: consumers.get(t, []), lambda n: n.output, ("Conv",))


def head_nodes(graph) -> list[str]:
    """The weighted node(s) (Conv, Gemm, MatMul) nearest the graph outputs: the prediction head."""
    producer = {out: node for node in graph.node for out in node.output}
    outputs = [o.name for o in graph.output]
    return _nearest(outputs, lambda t: [producer[t]] if t in producer else [], lambda n: n.input, WEIGHTED_OPS)


def conv_weight_qdq_coverage(onnx_path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(Conv nodes whose weight input comes through a DequantizeLinear, Conv nodes whose weight does not)."""
    _, model = _load(onnx_path)
    producer = {out: node for node in model.graph.node for out in node.output}
    covered, plain = [], []
    for node in model.graph.node:
        if node.op_type == "Conv":
            source = producer.get(node.input[1])
            (covered if source is not None and source.op_type == "DequantizeLinear" else plain).append(node.name)
    return covered, plain


# ---------------------------------------------------------------------------------------------- INT8


def _ort(what: str, src: str, fn: Callable, *args, **kwargs):
    """Run an ONNX Runtime tool, turning its own exceptions into a ModelError naming the step and the model."""
    try:
        return fn(*args, **kwargs)
    except EdgePoseError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX Runtime could not {what} {src}: {first}") from exc


def _reader(src: str, calibration, card) -> CalibrationImages:
    if not isinstance(calibration, CalibrationImages):
        if isinstance(calibration, (np.ndarray, list, tuple)):
            return CalibrationImages(src, tensors=calibration, num=max(len(calibration), 1))
        raise InputError(
            f"calibration must be a deploy.quantize.calibration.CalibrationImages or a list of preprocessed tensors, "
            f"got {type(calibration).__name__}"
        )
    if calibration.card.input_size != card.input_size or calibration.card.input_name != card.input_name:
        raise InputError(
            f"calibration crops are for input '{calibration.card.input_name}' {list(calibration.card.input_size)} "
            f"but {src} takes '{card.input_name}' {list(card.input_size)} (width, height)"
        )
    return calibration


def depthwise_convs(graph) -> list[str]:
    """The grouped Conv nodes (group > 1: depthwise and other grouped convolutions)."""
    return [node.name for node in graph.node if node.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in node.attribute)]


def _op_types(scope: str, extra_ops: Sequence[str]) -> list[str] | None:
    """``op_types_to_quantize`` for ``scope`` (None: ORT's default, every op type its QLinear and QDQ registries
    know), with ``extra_ops`` added."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if scope != "all":
        return ["Conv", *extra_ops]
    return list(dict.fromkeys([*QLinearOpsRegistry, *QDQRegistry, *extra_ops])) if extra_ops else None


def _quantize(pre: Path, out: Path, reader: CalibrationImages, method: str, exclude: list[str],
              per_channel: bool, src: str, activations: str = "int8", extra_ops: Sequence[str] = (),
              scope: str = "all") -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    ops = _op_types(scope, extra_ops)
    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    symmetric = activations == "int8"  # TensorRT: symmetric int8; ORT on x86 CPUs: asymmetric uint8 (U8S8)
    options = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if method == "entropy":
        # quantize_static cannot pass num_bins to its entropy calibrator, whose default (128 bins for 128 quantized
        # bins) leaves no threshold to search, so it returns the MinMax ranges; calibrate here with 512 bins (the
        # KL search is quadratic in them in ORT's Python) and hand the ranges over as overrides.
        options["TensorQuantOverrides"] = _entropy_ranges(pre, reader, symmetric, src)
        calibrate = CalibrationMethod.MinMax
    _ort("quantize", src, quantize_static, os.fspath(pre), os.fspath(out), reader.rewind(),
         quant_format=QuantFormat.QDQ, per_channel=per_channel,
         activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
         weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude), calibrate_method=calibrate,
         extra_options=options, op_types_to_quantize=ops)


def _entropy_ranges(pre: Path, reader: CalibrationImages, symmetric: bool, src: str,
                    num_bins: int = 512) -> dict[str, list[dict]]:
    """KL-divergence (entropy) activation ranges per tensor, as ``TensorQuantOverrides`` rmin/rmax entries."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    with tempfile.TemporaryDirectory(prefix="edgepose-entropy-") as tmp:
        calibrator = _ort("entropy calibration", src, create_calibrator, os.fspath(pre), None,
                          augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                          calibrate_method=CalibrationMethod.Entropy,
                          extra_options={"symmetric": symmetric, "num_bins": num_bins, "num_quantized_bins": 128})
        _ort("entropy calibration", src, calibrator.collect_data, reader.rewind())
        data = _ort("entropy calibration", src, calibrator.compute_data)
    ranges = {}
    for name in data:
        low, high = (float(v) for v in data[name].range_value)
        ranges[name] = [{"rmin": np.array(low, np.float32), "rmax": np.array(high, np.float32)}]
    return ranges


def conv_output_sqnr(float_model: Path, qdq_model: Path, reader: CalibrationImages, workdir: Path,
                     samples: int = SENSITIVITY_SAMPLES) -> dict[str, float]:
    """Per Conv node: SQNR (dB) of its output in the QDQ model against the float model, on ``samples`` crops.

    Both models must come from the same pre-processed graph (same tensor names). A Conv whose output is not
    quantized on its own (an activation folded into it) is measured at that activation's output; Convs left float
    are absent.
    """
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    float_aug, qdq_aug = workdir / "float_debug.onnx", workdir / "qdq_debug.onnx"
    src = os.fspath(float_model)
    _ort("instrument", src, modify_model_output_intermediate_tensors, os.fspath(float_model),
         os.fspath(float_aug), op_types_for_saving=["Conv", *FOLDED_ACTIVATIONS])
    _ort("instrument", src, modify_model_output_intermediate_tensors, os.fspath(qdq_model), os.fspath(qdq_aug),
         op_types_for_saving=["QuantizeLinear", "DequantizeLinear"])
    full = reader.current_range
    reader.set_range(full[0], min(full[1], full[0] + max(1, int(samples))))
    try:
        float_acts = _ort("run", src, collect_activations, os.fspath(float_aug), reader.rewind())
        qdq_acts = _ort("run", src, collect_activations, os.fspath(qdq_aug), reader.rewind())
    finally:
        reader.set_range(*full)
    matching = create_activation_matching(qdq_acts, float_acts)
    # compute_activation_error indexes match["float"] unconditionally: keep only tensors both models have
    errors = compute_activation_error({k: v for k, v in matching.items() if "float" in v})
    _, model = _load(float_model)
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        tensor = node.output[0]
        after = consumers.get(tensor, [])
        if tensor not in errors and len(after) == 1 and after[0].op_type in FOLDED_ACTIVATIONS:
            tensor = after[0].output[0]
        if tensor in errors:
            out[node.name] = float(errors[tensor]["xmodel_err"])
    return out


def quantize_int8(
    src_onnx: str | os.PathLike,
    dst_onnx: str | os.PathLike,
    calibration: CalibrationImages | Sequence[np.ndarray] | np.ndarray,
    method: str = "minmax",
    exclude: Sequence[str] = (),
    exclude_first_conv: bool = True,
    exclude_head: bool = True,
    sensitivity_sqnr_db: float | None = None,
    per_channel: bool = True,
    sensitivity_samples: int = SENSITIVITY_SAMPLES,
    activations: str = "int8",
    subpixel_deconv: bool | None = None,
    card: ModelCard | None = None,
    scope: str = "all",
) -> QuantReport:
    """Quantize ``src_onnx`` to a QDQ INT8 model at ``dst_onnx`` (card kept), calibrated on ``calibration``.

    ``calibration``: a ``CalibrationImages`` reader, or preprocessed (1, 3, H, W) / (N, 3, H, W) tensors.
    ``exclude``: node names kept float (as in the pre-processed graph, which keeps the exported names).
    ``activations``: "int8" (symmetric, zero point 0: what TensorRT's explicit quantization takes) or "uint8"
    (asymmetric U8S8: ONNX Runtime's fast path on x86 CPUs, where S8S8 runs slower than FP32).
    ``sensitivity_sqnr_db``: also keep float every Conv whose output SQNR (float vs QDQ model, on the first
    ``sensitivity_samples`` calibration items) is below this many dB, then quantize once more.
    ``subpixel_deconv``: rewrite each ConvTranspose(kernel 4, stride 2, pad 1) not in ``exclude`` into an equivalent
    Conv + Slice + Concat + DepthToSpace first (``deploy.quantize.subpixel_deconv``; exact in float), so that it is
    quantized too: ONNX Runtime's CPU provider has no INT8 ConvTranspose and runs it in float between Q/DQ. None
    (default): on for ``activations="uint8"`` (the ONNX Runtime CPU variant), off for "int8" (TensorRT, which has
    INT8 deconvolution of its own). The rewritten nodes are listed in the report's ``rewritten_deconvs``.
    ``card``: the card embedded in ``src_onnx`` when the caller has it already (read from the file when None).
    ``scope``: which ops INT8 covers (``SCOPES``): "all" (default), "conv" (Convs only, Q/DQ around each, every
    other op float) or "dense" (Convs with group 1 only; the depthwise Convs are kept float and listed in
    ``excluded`` as "depthwise").
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgepose.onnx_card import embed_card, read_card

    src, dst = os.fspath(src_onnx), os.fspath(dst_onnx)
    if activations not in ("int8", "uint8"):
        raise InputError(f"activations must be 'int8' (TensorRT) or 'uint8' (ONNX Runtime on x86), got {activations!r}")
    if method not in METHODS:
        raise InputError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    if scope not in SCOPES:
        raise InputError(f"INT8 scope must be one of {list(SCOPES)}, got {scope!r}")
    _load(src)
    card = card or read_card(src)
    reader = _reader(src, calibration, card)
    if subpixel_deconv is None:
        subpixel_deconv = activations == "uint8"
    with tempfile.TemporaryDirectory(prefix="edgepose-quant-") as tmp:
        work = Path(tmp)
        pre, qdq = work / "pre.onnx", work / "qdq.onnx"
        rewritten: list[str] = []
        source = src
        if subpixel_deconv:
            source = os.fspath(work / "subpixel.onnx")
            rewritten = _subpixel(src, source, skip=exclude)
        # ONNX's own shape inference suffices for CNNs. ORT's symbolic inference gives up ("Incomplete symbolic
        # shape inference") on the dynamic channel-split Slices torch exports for Lite-HRNet, and then leaves
        # sym_shape_infer_temp.onnx (+ a .data file) in the current directory.
        _ort("pre-process", src, quant_pre_process, source, os.fspath(pre), skip_symbolic_shape=True)
        _, graph_model = _load(pre)
        graph = graph_model.graph
        names = {node.name for node in graph.node}
        unknown = [n for n in exclude if n not in names]
        if unknown:
            convs = [node.name for node in graph.node if node.op_type == "Conv"][:3]
            raise InputError(f"--exclude names node(s) {unknown} that {src} does not have (Conv nodes are "
                             f"named like {convs})")
        excluded: dict[str, str] = {}
        for name in first_convs(graph) if exclude_first_conv else []:
            excluded.setdefault(name, "first conv")
        for name in head_nodes(graph) if exclude_head else []:
            excluded.setdefault(name, "head")
        for name in exclude:
            excluded.setdefault(name, "user")
        for name in depthwise_convs(graph) if scope == "dense" else []:
            excluded.setdefault(name, "depthwise")
        # DepthToSpace (the sub-pixel rewrite's last node) only moves values: with Q/DQ on both sides ONNX Runtime
        # runs it on the uint8 data even where a float node (the head) follows
        extra_ops = ["DepthToSpace"] if rewritten else []
        _quantize(pre, qdq, reader, method, list(excluded), per_channel, src, activations, extra_ops, scope)
        sqnr: dict[str, float] = {}
        if sensitivity_sqnr_db is not None:
            sqnr = conv_output_sqnr(pre, qdq, reader, work, sensitivity_samples)
            weak = {n: db for n, db in sqnr.items() if db < float(sensitivity_sqnr_db) and n not in excluded}
            for name, db in weak.items():
                excluded[name] = f"sensitivity: {db:.1f} dB"
            if weak:
                _quantize(pre, qdq, reader, method, list(excluded), per_channel, src, activations, extra_ops, scope)
        with write_artifact(dst, f"INT8 ONNX ({activations} activations)") as tmp_dst:
            embed_card(qdq, card, tmp_dst)
    covered, _ = conv_weight_qdq_coverage(dst)
    return QuantReport("int8", src, dst, method, list(excluded.items()), len(reader), len(covered),
                       os.path.getsize(dst), sqnr, rewritten, scope)


def _subpixel(src: str, dst: str, skip: Sequence[str]) -> list[str]:
    """Write ``src`` with its ConvTranspose(k4, s2, p1) nodes (except those named in ``skip``) rewritten as sub-pixel
    Convs to ``dst`` (a temporary file); the names of the rewritten nodes."""
    from deploy.quantize.subpixel_deconv import rewrite_deconvs

    onnx, model = _load(src)
    model, rewritten = rewrite_deconvs(model, skip=skip)
    onnx.save(model, dst)
    return rewritten


# ---------------------------------------------------------------------------------------------- FP16


def convert_fp16(
    src_onnx: str | os.PathLike,
    dst_onnx: str | os.PathLike,
    keep_io_types: bool = True,
    op_block_list: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    card: ModelCard | None = None,
) -> QuantReport:
    """Convert ``src_onnx`` to float16 at ``dst_onnx`` (card kept) with onnxconverter-common.

    Ops in onnxconverter-common's default block list and in ``op_block_list`` (None: ``FP32_OPS``) stay FP32, as
    do the nodes named in ``exclude``; ``keep_io_types`` keeps float32 inputs and outputs, so the runtime feeds
    the model as before. ``card``: ``src_onnx``'s card when the caller has it (read from the file when None).
    """
    onnx = require("onnx", "deploy", "FP16 conversion")
    float16 = require("onnxconverter_common.float16", "deploy", "FP16 conversion")

    from edgepose.onnx_card import embed_card, read_card

    src, dst = os.fspath(src_onnx), os.fspath(dst_onnx)
    _, model = _load(src)
    card = card or read_card(src)
    unknown = [n for n in exclude if n not in {node.name for node in model.graph.node}]
    if unknown:
        raise InputError(f"--exclude names node(s) {unknown} that {src} does not have")
    blocked = list(dict.fromkeys([*float16.DEFAULT_OP_BLOCK_LIST, *(FP32_OPS if op_block_list is None
                                                                      else op_block_list)]))
    half = _ort("convert to FP16", src, float16.convert_float_to_float16, model, keep_io_types=keep_io_types,
                op_block_list=blocked, node_block_list=list(exclude) or None)
    # The converter leaves float32 value_info on tensors it re-types through inserted Casts (e.g. around a
    # blocked Resize), which ONNX Runtime then refuses; infer the types afresh.
    del half.graph.value_info[:]
    half = onnx.shape_inference.infer_shapes(half)
    excluded = {name: "user" for name in exclude}
    for node in model.graph.node:
        if node.op_type in blocked:
            excluded.setdefault(node.name, f"fp32 op {node.op_type}")
    with tempfile.TemporaryDirectory(prefix="edgepose-fp16-") as tmp:
        path = os.path.join(tmp, "fp16.onnx")
        onnx.save(half, path)
        with write_artifact(dst, "FP16 ONNX") as tmp_dst:
            embed_card(path, card, tmp_dst)
    initializers = {t.name: t.data_type for t in half.graph.initializer}
    convs = sum(1 for node in half.graph.node
                if node.op_type == "Conv" and initializers.get(node.input[1]) == onnx.TensorProto.FLOAT16)
    return QuantReport("fp16", src, dst, None, list(excluded.items()), 0, convs, os.path.getsize(dst))
