"""Exact ONNX rewrite of ConvTranspose(kernel 4, stride 2, pad 1) into a sub-pixel convolution.

    model, rewritten = rewrite_deconvs(onnx.load("pose.onnx"))

Why: ONNX Runtime's CPU provider has no INT8 ConvTranspose, so a quantized SimpleBaseline head (three such
deconvolutions, about 38% of the FLOPs) runs in float between DequantizeLinear and QuantizeLinear. A plain Conv is
quantized to QLinearConv. The rewrite is exact (same function, float rounding aside) and works on any exported model.

The four output phases of a stride-2 deconvolution each read a 2x2 input window. In 1-D, with ``w`` the transposed
kernel and the input padded by 1 (padded index ``j`` holds ``in[j - 1]``)::

    out[2m]     = in[m - 1] * w[3] + in[m]     * w[1]   = 2-tap window at padded m,     taps (w[3], w[1])
    out[2m + 1] = in[m]     * w[2] + in[m + 1] * w[0]   = 2-tap window at padded m + 1, taps (w[2], w[0])

so phase ``a`` uses tap ``3 - a - 2d`` of the deconvolution at window offset ``d`` and starts at row ``a`` of the
padded convolution's (H + 1)-row output. Per ConvTranspose (input (N, Cin, H, W), output (N, Cout, 2H, 2W)):

    Conv(kernel 2x2, pads 1, 4*Cout outputs: phase (a, b) is channel group 2a + b; bias repeated 4 times)
      -> Slice per phase: channels of its group, rows a:a+H, cols b:b+W   (4 x (N, Cout, H, W))
      -> Concat on channels in phase order (0,0), (0,1), (1,0), (1,1)
      -> DepthToSpace(blocksize 2, mode "DCR"): out[c, 2h + a, 2w + b] = in[(2a + b) * Cout + c, h, w]

The padding is the Conv's own ``pads`` attribute rather than a separate Pad node: identical result, one node less,
and ONNX Runtime quantizes the padded Conv as one QLinearConv. The Conv computes one extra row and column per phase
(sliced away): (H+1)(W+1)/(HW) of the deconvolution's multiply-adds, e.g. +15% at 16x12 input.

Left untouched (and absent from the returned list): any other kernel/stride/pad, group != 1, dilation != 1,
output_padding, output_shape, auto_pad other than NOTSET, non-2-D convolutions, weights (or bias) that are not
initializers, and models whose default-domain opset is below 11 (DepthToSpace mode "DCR" needs opset 11).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

import numpy as np

from edgepose.errors import require

if TYPE_CHECKING:
    import onnx

KERNEL, STRIDE, PAD = 4, 2, 1
MIN_OPSET = 11  # DepthToSpace's "mode" attribute; Slice with starts/ends inputs needs 10
# Phase order of the Concat feeding DepthToSpace in DCR mode: channel group 2a + b holds output rows 2h + a and
# columns 2w + b.
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
_INT64_MAX = np.iinfo(np.int64).max


def _opset(model: onnx.ModelProto) -> int:
    """The model's default-domain ("" or "ai.onnx") opset version, 0 when absent."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _attrs(node: onnx.NodeProto) -> dict:
    onnx = require("onnx", "deploy", "rewriting ConvTranspose nodes")
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def supported(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> bool:
    """Whether ``node`` is a 2-D ConvTranspose(kernel 4, stride 2, pad 1, group 1, dilation 1, no output padding
    or output shape) whose weight (and bias, if any) are initializers: the configuration ``rewrite_deconvs``
    handles exactly."""
    if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx"):
        return False
    if node.input[1] not in initializers or (len(node.input) > 2 and node.input[2]
                                              and node.input[2] not in initializers):
        return False
    weight = initializers[node.input[1]]
    if len(weight.dims) != 4 or list(weight.dims[2:]) != [KERNEL, KERNEL]:
        return False
    a = _attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return (auto_pad == "NOTSET"
            and list(a.get("kernel_shape", [KERNEL, KERNEL])) == [KERNEL, KERNEL]
            and list(a.get("strides", [1, 1])) == [STRIDE, STRIDE]
            and list(a.get("pads", [0, 0, 0, 0])) == [PAD] * 4
            and int(a.get("group", 1)) == 1
            and list(a.get("dilations", [1, 1])) == [1, 1]
            and not any(a.get("output_padding", []))
            and "output_shape" not in a)


def subpixel_weight(weight: np.ndarray) -> np.ndarray:
    """The (4*Cout, Cin, 2, 2) Conv weight equivalent to a (Cin, Cout, 4, 4) ConvTranspose weight (stride 2, pad 1).

    Output channel ``(2a + b) * Cout + o``, tap ``(dy, dx)`` holds deconvolution tap ``(3 - a - 2dy, 3 - b - 2dx)``.
    """
    if weight.ndim != 4 or weight.shape[2:] != (KERNEL, KERNEL):
        raise ValueError(f"expected a (Cin, Cout, 4, 4) ConvTranspose weight, got shape {weight.shape}")
    groups = []
    for a, b in PHASES:
        rows, cols = [3 - a, 1 - a], [3 - b, 1 - b]
        groups.append(weight[:, :, rows][:, :, :, cols].transpose(1, 0, 2, 3))  # (Cout, Cin, 2, 2)
    return np.ascontiguousarray(np.concatenate(groups, axis=0))


def _replacement(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto], fresh: Callable[[str], str],
                 relu: onnx.NodeProto | None = None) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """(nodes, new initializers) computing ``node``'s output as a sub-pixel convolution; with ``relu`` (the
    deconvolution's only consumer), computing that Relu's output, the Relu applied right after the Conv."""
    onnx = require("onnx", "deploy", "rewriting ConvTranspose nodes")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    weight = numpy_helper.to_array(initializers[node.input[1]])
    cout = weight.shape[1]
    base = node.name or node.output[0]
    w_name = fresh(f"{base}_subpixel_weight")
    inits = [numpy_helper.from_array(subpixel_weight(weight), w_name)]
    conv_inputs = [node.input[0], w_name]
    if len(node.input) > 2 and node.input[2]:
        b_name = fresh(f"{base}_subpixel_bias")
        bias = numpy_helper.to_array(initializers[node.input[2]])
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.tile(bias, 4)), b_name))
        conv_inputs.append(b_name)
    phases_out = fresh(f"{base}_subpixel_phases")
    nodes = [helper.make_node("Conv", conv_inputs, [phases_out], name=fresh(f"{base}_subpixel_conv"),
                              kernel_shape=[2, 2], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1)]
    if relu is not None:
        conv_out, phases_out = phases_out, fresh(f"{base}_subpixel_phases_relu")
        nodes.append(helper.make_node("Relu", [conv_out], [phases_out], name=relu.name or fresh(f"{base}_relu")))
    axes = fresh(f"{base}_subpixel_axes")
    inits.append(numpy_helper.from_array(np.array([1, 2, 3], np.int64), axes))
    sliced = []
    for g, (a, b) in enumerate(PHASES):
        # the Conv gives H + 1 rows: phase row offset 0 takes 0:-1, offset 1 takes 1:end (H rows either way)
        starts, ends = fresh(f"{base}_subpixel_starts{a}{b}"), fresh(f"{base}_subpixel_ends{a}{b}")
        inits.append(numpy_helper.from_array(np.array([g * cout, a, b], np.int64), starts))
        inits.append(numpy_helper.from_array(np.array([(g + 1) * cout, -1 if a == 0 else _INT64_MAX,
                                                       -1 if b == 0 else _INT64_MAX], np.int64), ends))
        out = fresh(f"{base}_subpixel_phase{a}{b}")
        nodes.append(helper.make_node("Slice", [phases_out, starts, ends, axes], [out],
                                      name=fresh(f"{base}_subpixel_slice{a}{b}")))
        sliced.append(out)
    concat = fresh(f"{base}_subpixel_concat")
    nodes.append(helper.make_node("Concat", sliced, [concat], name=fresh(f"{base}_subpixel_concat"), axis=1))
    outputs = list(relu.output if relu is not None else node.output)
    nodes.append(helper.make_node("DepthToSpace", [concat], outputs, name=fresh(f"{base}_subpixel_d2s"),
                                  blocksize=2, mode="DCR"))
    return nodes, inits


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """The nodes of ``graph`` and of every subgraph (If / Loop / Scan bodies) inside it."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _all_nodes(sub)


def _absorbable_relu(node: onnx.NodeProto, graph: onnx.GraphProto, skip: Collection[str]) -> onnx.NodeProto | None:
    """The Relu that is the only reader of ``node``'s output (not a graph output, not read in a subgraph), if any."""
    out = node.output[0]
    if out in {o.name for o in graph.output}:
        return None
    readers = [n for n in graph.node if out in n.input]
    if sum(out in n.input for n in _all_nodes(graph)) != 1 or len(readers) != 1:
        return None
    relu = readers[0]
    return relu if relu.op_type == "Relu" and relu.domain in ("", "ai.onnx") and relu.name not in skip else None


def rewrite_deconvs(model: onnx.ModelProto, skip: Collection[str] = (),
                    absorb_relu: bool = True) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with every supported ConvTranspose replaced by an equivalent sub-pixel convolution.

    ``model``: an ``onnx.ModelProto`` (not modified); ``skip``: names of nodes to leave as they are.
    Returns ``(new_model, rewritten)``, ``rewritten`` being the names of the replaced ConvTranspose nodes (the
    output tensor's name for an unnamed node). Unsupported configurations (see the module docstring and
    ``supported``) are left as they are. The rewritten node's output tensor keeps its name, so graph outputs,
    consumers and ``value_info`` stay valid; metadata (the model card in ``metadata_props``) is copied unchanged.
    Weights and biases no other node reads any more are dropped.

    ``absorb_relu``: when a rewritten ConvTranspose's only reader is a Relu, apply that Relu to the sub-pixel Conv's
    output instead (before the Slices; exact, Relu being elementwise) and let DepthToSpace produce the Relu's
    output. Conv -> Relu is the pattern quantizers fold into one QLinearConv, so only post-Relu values get
    quantized and the Slice / Concat / DepthToSpace move them as they are.
    """
    new = copy.deepcopy(model)
    if _opset(new) < MIN_OPSET:
        return new, []
    graph = new.graph
    initializers = {t.name: t for t in graph.initializer}
    taken = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    taken |= {v for n in _all_nodes(graph) for v in (n.name, *n.input, *n.output)}

    def fresh(name: str) -> str:
        out, k = name, 1
        while out in taken:
            out, k = f"{name}_{k}", k + 1
        taken.add(out)
        return out

    nodes, added, rewritten, old_params, absorbed = [], [], [], set(), set()
    for node in graph.node:
        if node.output and node.output[0] in absorbed and node.op_type == "Relu":
            continue  # now inside the replacement of the ConvTranspose before it
        if node.name not in skip and supported(node, initializers):
            old_params.update(node.input[1:])
            relu = _absorbable_relu(node, graph, skip) if absorb_relu else None
            if relu is not None:
                absorbed.add(relu.output[0])
            more_nodes, more_inits = _replacement(node, initializers, fresh, relu)
            nodes += more_nodes
            added += more_inits
            rewritten.append(node.name or node.output[0])
        else:
            nodes.append(node)
    if not rewritten:
        return new, []
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {v for n in _all_nodes(graph) for v in n.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name in old_params and t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    gone = {t.name for t in unused}
    for i in [i for i in graph.input if i.name in gone]:  # IR < 4 models list initializers as inputs too
        graph.input.remove(i)
    return new, rewritten
