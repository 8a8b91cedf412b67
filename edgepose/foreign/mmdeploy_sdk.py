"""The card an MMDeploy SDK model folder implies: ``end2end.onnx`` plus the ``deploy.json``, ``pipeline.json`` and
``detail.json`` that MMDeploy's ``export2SDK`` writes (mmdeploy/backend/sdk/export_info.py).

- pipeline.json ``pipeline.tasks``: the Preprocess task's ``transforms`` give the crop and normalisation:
  ``TopDownGetBboxCenterScale.padding`` (bbox padding, 1.25 when absent, as the SDK), ``TopDownAffine.image_size``
  ([w, h]) and ``use_udp``, ``Normalize.mean``/``std`` (0-255) and ``to_rgb`` (true when absent, as the SDK). The Net
  task gives the tensor names (``input_map.img``, ``output_map``). The postprocess task's ``component`` and ``params``
  give the decoder: MMPose 1.x puts the codec there (``type`` MSRAHeatmap / UDPHeatmap / SimCCLabel with
  ``input_size``, ``heatmap_size``, ``sigma``, ``unbiased``, ``simcc_split_ratio``, ``use_dark``,
  ``blur_kernel_size``), MMPose 0.x its test_cfg (``post_process``, ``use_udp``, ``target_type``,
  ``modulate_kernel``; the heatmap size then comes from the model's output).
- deploy.json ``models[0].net``: the net file (``end2end.onnx`` when the file is absent); ``task`` PoseDetector.
- detail.json ``onnx_config.output_names`` and ``codebase_config.export_postprocess`` (decoding inside the graph).
"""

from __future__ import annotations

import os

from edgepose.backends.base import Backend
from edgepose.backends.formats import FORMATS, suffix_of
from edgepose.card import ModelCard
from edgepose.errors import CardError, ModelError
from edgepose.foreign.common import keypoint_fields, output_keypoints
from edgepose.foreign.json_node import Node, load_json
from edgepose.foreign.mmpose_decoders import decoder_fields, flag

NET = "end2end.onnx"
FILES = ("deploy.json", "pipeline.json", "detail.json")
_HINT = f": an MMDeploy SDK model folder holds {NET} (the net) and {', '.join(FILES)}"


def is_mmdeploy_dir(path: object) -> bool:
    """Whether ``path`` is a folder (an MMDeploy SDK model folder is the only kind of folder a model can be)."""
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path)


def mmdeploy_net(folder: str | os.PathLike) -> str:
    """The net file of an MMDeploy SDK folder: deploy.json ``models[0].net``, else ``end2end.onnx``."""
    folder = os.fspath(folder)
    deploy = load_json(os.path.join(folder, "deploy.json"), required=False)
    name = NET
    if deploy is not None:
        task = deploy.get("task", "PoseDetector")
        if task.text() != "PoseDetector":
            raise task.error(f"is {task.value!r}: edgepose runs MMDeploy pose models (task 'PoseDetector')")
        models = deploy.get("models").items()
        if not models:
            raise deploy.get("models").error("lists no model")
        net = models[0].get("net")
        name = net.text()
        if os.path.basename(name) != name or suffix_of(name) not in FORMATS:
            raise net.error(f"names {name!r}: edgepose opens a file in the folder with a suffix of {sorted(FORMATS)}")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise ModelError(f"{path} not found{_HINT}")
    return path


def _tasks(pipeline: Node) -> tuple[Node, Node | None, Node]:
    """The Preprocess, Net (if any) and postprocess tasks of pipeline.json."""
    tasks = pipeline.get("pipeline").get("tasks")
    pre = net = post = None
    for task in tasks.items():
        module = task.get("module", "").value
        if task.get("transforms").present:
            pre = pre or task
        elif module == "Net":
            net = net or task
        elif task.get("component").present:
            post = post or task
    if pre is None or post is None:
        missing = "a Preprocess task (with 'transforms')" if pre is None else "a postprocess task (with 'component')"
        raise tasks.error(f"has no {missing}; is this an MMDeploy pose model's pipeline.json?")
    return pre, net, post


def _transform(pre: Node, *types: str) -> Node | None:
    """The first transform of one of ``types`` (case-insensitive) in the Preprocess task."""
    wanted = {t.lower() for t in types}
    for item in pre.get("transforms").items():
        kind = item.get("type")
        if kind.text().lower() in wanted:
            return item
    return None


def _preprocess(pre: Node, decoder_size: Node) -> dict:
    """Card fields of the Preprocess transforms: input_size, bbox_padding, mean, std, color."""
    affine = _transform(pre, "TopDownAffine", "TopdownAffine")
    size_node = None if affine is None else affine.get("image_size")
    if size_node is None or not size_node.present:
        size_node = decoder_size
    if not size_node.present:
        raise pre.get("transforms").error("has no TopDownAffine with 'image_size' [width, height] (the input size)")
    fields = {"input_size": size_node.size()}
    if decoder_size.present and decoder_size.size() != fields["input_size"]:
        raise decoder_size.error(f"is {decoder_size.value} but {size_node.key} is {size_node.value}: the crop and the "
                                 "decoder disagree on the input size")
    fields["use_udp"] = False if affine is None else flag(affine.get("use_udp"), False)
    center_scale = _transform(pre, "TopDownGetBboxCenterScale")
    if center_scale is not None and center_scale.get("padding").present:
        fields["bbox_padding"] = center_scale.get("padding").number(positive=True)
    normalize = _transform(pre, "Normalize")
    if normalize is None:
        raise pre.get("transforms").error("has no Normalize transform: edgepose needs the model's mean and std")
    fields["mean"] = normalize.get("mean").numbers(3, "3 numbers (0-255 scale)")
    fields["std"] = normalize.get("std").numbers(3, "3 positive numbers (0-255 scale)", positive=True)
    fields["color"] = "rgb" if flag(normalize.get("to_rgb"), True) else "bgr"  # the SDK feeds BGR images
    return fields


def _tensor_names(net: Node | None, detail: Node | None, codec: str) -> dict:
    """input_name and output_names from the Net task's maps or detail.json's onnx_config."""
    fields = {}
    if net is not None and net.get("input_map", {}).get("img").present:
        fields["input_name"] = net.get("input_map").get("img").text()
    wanted = ("simcc_x", "simcc_y") if codec == "simcc" else ("output",)
    output_map = {} if net is None else net.get("output_map", {}).mapping()
    by_key = {v: k for k, v in output_map.items() if isinstance(v, str)}
    if output_map and all(k in by_key for k in wanted):
        fields["output_names"] = [by_key[k] for k in wanted]
    elif detail is not None and detail.get("onnx_config", {}).get("output_names").present:
        names = [n.text() for n in detail.get("onnx_config").get("output_names").items()]
        if len(names) == len(wanted):
            fields["output_names"] = names
    return fields


def _from_model(fields: dict, backend: Backend) -> dict:
    """Fields only the net knows: the keypoint count, and the heatmap size when pipeline.json lacks it."""
    names = tuple(fields.get("output_names", ()))
    count = output_keypoints(backend.outputs, names)
    extra = keypoint_fields(count)
    if fields["codec"] != "simcc" and "heatmap_size" not in fields:
        by_name = {s.name: s for s in backend.outputs}
        spec = next((by_name[n] for n in names if n in by_name), backend.outputs[0] if backend.outputs else None)
        dims = None if spec is None else spec.shape[2:]
        if not dims or len(dims) != 2 or None in dims:
            raise CardError(f"{getattr(backend, 'path', 'the net')}: pipeline.json gives no heatmap_size and the "
                            f"model's heatmap output has no static (H, W): {spec.describe() if spec else 'none'}")
        extra["heatmap_size"] = (int(dims[1]), int(dims[0]))
    return extra


def _metadata(detail: Node | None, folder: str) -> dict:
    """Provenance for the card's ``extra``: the MMDeploy and codebase versions and the model config (when given)."""
    out = {"from": "mmdeploy-sdk", "folder": os.path.basename(os.path.abspath(folder))}
    if detail is not None:
        codebase = detail.get("codebase", {}).value
        for key, value in (("mmdeploy", detail.get("version", None).value),
                           ("codebase", codebase.get("codebase") if isinstance(codebase, dict) else None),
                           ("codebase_version", codebase.get("version") if isinstance(codebase, dict) else None),
                           ("config", codebase.get("config") if isinstance(codebase, dict) else None)):
            if isinstance(value, str) and value.isprintable() and len(value) <= 300:
                out[key] = value
    return out


def card_from_mmdeploy_dir(path: str | os.PathLike, backend: Backend | None = None) -> tuple[str, ModelCard]:
    """(net file, ModelCard) of an MMDeploy SDK model folder. ``backend``: the net already open (its output shapes
    give the keypoint count and, for MMPose 0.x exports, the heatmap size); without it the net is opened here."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise CardError(f"{folder} is not a folder{_HINT}")
    net_path = mmdeploy_net(folder)
    pipeline = load_json(os.path.join(folder, "pipeline.json"), required=True, hint=_HINT)
    detail = load_json(os.path.join(folder, "detail.json"), required=False)
    if detail is not None and flag(detail.get("codebase_config", {}).get("export_postprocess"), False):
        raise detail.get("codebase_config").get("export_postprocess").error(
            "is true: the net decodes its own keypoints; re-export with export_postprocess=False")
    pre, net, post = _tasks(pipeline)
    fields, decoder_size = decoder_fields(post)
    fields.update(_preprocess(pre, decoder_size))
    if fields.pop("use_udp") != (fields["codec"] == "udp"):
        raise post.get("component").error(f"decodes codec '{fields['codec']}' but TopDownAffine use_udp is "
                                          f"{fields['codec'] != 'udp'}: edgepose crops and decodes UDP together")
    fields.update(_tensor_names(net, detail, fields["codec"]))
    if backend is None:
        from edgepose.backends import open_backend

        opened = open_backend(net_path)
        try:
            fields.update(_from_model(fields, opened))
        finally:
            opened.close()
    else:
        fields.update(_from_model(fields, backend))
    name = f"MMDeploy SDK model {os.path.basename(os.path.abspath(folder))}"
    return net_path, ModelCard(**fields, name=name[:200], extra=_metadata(detail, folder))
