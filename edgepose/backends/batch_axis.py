"""Graph side of the batch rewrite: find why an ONNX graph exported at batch 1 cannot take a batch, or make its
batch axis dynamic.

Needs the ``onnx`` package (the [deploy]/[dev] extras); callers import this module lazily. No numerics here: the
rewritten graph is only trusted after ``edgepose.backends.batch_rewrite`` has run it against the original.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

BATCH = "batch"  # the dim_param the rewritten inputs and outputs get
# ops whose constant shape input (by position) fixes the shape of their output outright
SHAPE_INPUTS = {"Reshape": 1, "ConstantOfShape": 0, "Resize": 3}
# ops whose leading entry of a constant shape can stay 1 without fixing the batch: Expand broadcasts (1 -> N) and
# Tile repeats (x1); a constant they make from nothing is caught by the shape inference check below
NOT_FIXING = {"Shape", "Size"}  # outputs describe the input's shape, not a slice of its samples
INT64_BIG = 2 ** 62  # a Slice end at least this large means "to the end"


class NotBatchable(Exception):
    """The graph fixes the batch at 1 (or hides it): the reason is the message."""


def _constants(graph: onnx.GraphProto) -> dict:
    """name -> numpy value of the initializers and Constant node outputs."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _leading(value_info) -> int | str | None:
    """A tensor's leading dim: an int, a dim_param name, or None when unknown (or the tensor is a scalar)."""
    t = value_info.type.tensor_type
    if not t.HasField("shape") or not t.shape.dim:
        return None
    dim = t.shape.dim[0]
    if dim.HasField("dim_value"):
        return int(dim.dim_value)
    return dim.dim_param or None


def _describe(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node '{node.name or node.output[0]}'"


def check_io(model: onnx.ModelProto) -> None:
    """NotBatchable unless every input and output is a tensor with a fixed leading 1 (the batch)."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    for kind, values in (("input", [v for v in graph.input if v.name not in inits]), ("output", graph.output)):
        for value in values:
            if _leading(value) != 1:
                raise NotBatchable(f"{kind} '{value.name}' has no fixed leading batch of 1 (leading dim "
                                   f"{_leading(value)!r}), so there is no batch axis to make dynamic")
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise NotBatchable("the model keeps its weights in external data files; only self-contained .onnx "
                               "files are rewritten")


def _shape_derived(graph: onnx.GraphProto, constants: dict) -> set[str]:
    """Tensors computed from tensor shapes (Shape/Size outputs and what is made of them and constants alone):
    slicing or reshaping them works on shape vectors, not on samples."""
    derived: set[str] = set()
    for node in graph.node:
        if node.op_type in NOT_FIXING or (node.input and all(
                not name or name in derived or name in constants for name in node.input)):
            derived.update(node.output)
    return derived


def find_fixed_batch(model: onnx.ModelProto) -> None:
    """NotBatchable naming the first constant that bakes the batch of 1 into the graph: a Reshape /
    ConstantOfShape / Resize shape whose leading entry is 1, or a Slice that keeps only sample 0 of axis 0.
    Nodes working on shape vectors (``_shape_derived``) are left alone."""
    constants = _constants(model.graph)
    derived = _shape_derived(model.graph, constants)
    for node in model.graph.node:
        data = node.input[0] if node.input and node.op_type != "ConstantOfShape" else None
        if data is not None and (data in derived or data in constants):
            continue
        position = SHAPE_INPUTS.get(node.op_type)
        if position is not None and len(node.input) > position and node.input[position] in constants:
            shape = constants[node.input[position]].reshape(-1).tolist()
            if len(shape) >= 2 and shape[0] == 1:
                raise NotBatchable(f"{_describe(node)} has the constant shape {shape}: it fixes the batch at 1")
        if node.op_type == "Slice" and len(node.input) >= 3:
            starts, ends = (constants.get(n) for n in node.input[1:3])
            axes = constants.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            if starts is None or ends is None:
                continue
            axes_list = list(range(len(starts))) if axes is None else axes.reshape(-1).tolist()
            for axis, end in zip(axes_list, ends.reshape(-1).tolist(), strict=False):
                if axis == 0 and end < INT64_BIG:
                    raise NotBatchable(f"{_describe(node)} slices axis 0 up to {end}: it keeps a fixed number of "
                                       "samples")


def _set_batch(value_info) -> None:
    dim = value_info.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = BATCH


def resize_sizes_to_scales(model: onnx.ModelProto) -> int:
    """Turn each Resize whose constant ``sizes`` has a leading 1 into the same Resize by constant ``scales``
    (sizes / input shape, batch scale 1) where shape inference knows its input's static shape, in place; how many.

    Exporters (TensorFlow's tf2onnx among them) write upsampling as a Resize to sizes [1, C, H, W], which fixes
    the batch; by scales the same resize takes any batch."""
    constants = _constants(model.graph)
    inferred = shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    shapes = {}
    for value in list(inferred.graph.input) + list(inferred.graph.value_info):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [int(d.dim_value) for d in dims]
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in constants:
            continue
        sizes = constants[node.input[3]].reshape(-1).astype(np.float32)
        shape = shapes.get(node.input[0])
        if shape is None or len(shape) != len(sizes) or sizes[0] != 1 or shape[0] != 1:
            continue
        name = f"{node.output[0]}__batch_scales"
        model.graph.initializer.append(numpy_helper.from_array(sizes / np.asarray(shape, np.float32), name))
        node.input[2] = name
        del node.input[3]
        changed += 1
    return changed


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs and outputs have the leading dim ``batch`` and whose value_info is
    inferred again from them; NotBatchable when the graph fixes the batch (see ``find_fixed_batch``) or shape
    inference shows a node turning the batch back into a fixed size. Resizes to constant sizes become resizes by
    scales first (``resize_sizes_to_scales``). The copy passes ``onnx.checker``."""
    check_io(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    resize_sizes_to_scales(out)
    find_fixed_batch(out)
    graph = out.graph
    inits = {i.name for i in graph.initializer}
    for value in [v for v in graph.input if v.name not in inits] + list(graph.output):
        _set_batch(value)
    del graph.value_info[:]  # the old ones say 1: infer them again from the dynamic inputs
    try:
        inferred = shape_inference.infer_shapes(out, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises its own error types for graphs it cannot infer
        raise NotBatchable(f"ONNX shape inference fails on the rewritten graph: {str(exc).splitlines()[0]}") from exc
    _check_inferred(inferred)
    graph.value_info.extend(inferred.graph.value_info)
    try:
        onnx.checker.check_model(out)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise NotBatchable(f"the rewritten graph fails onnx.checker: {str(exc).splitlines()[0]}") from exc
    return out


def _check_inferred(inferred: onnx.ModelProto) -> None:
    """NotBatchable when an output's inferred leading dim is a fixed size, naming the node that fixed it."""
    graph = inferred.graph
    fixed = [(v.name, _leading(v)) for v in graph.output if isinstance(_leading(v), int)]  # inference refines them
    if not fixed:
        return
    leading = {v.name: _leading(v) for v in list(graph.input) + list(graph.value_info) + list(graph.output)}
    for node in graph.node:  # topological order: the first node taking a dynamic dim in, a fixed one out
        if node.op_type not in NOT_FIXING and any(isinstance(leading.get(i), str) for i in node.input) and any(
                isinstance(leading.get(o), int) for o in node.output):
            raise NotBatchable(f"{_describe(node)} turns the batch axis into a fixed size "
                               f"(leading dims {[leading.get(o) for o in node.output]})")
    name, size = fixed[0]
    raise NotBatchable(f"output '{name}' keeps a fixed leading dim {size} after the rewrite")
