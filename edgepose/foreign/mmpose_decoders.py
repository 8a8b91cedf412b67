"""Card fields of an MMDeploy pose postprocess task (pipeline.json): its ``component`` and ``params``.

MMDeploy 1.x (mmdeploy/codebase/mmpose/deploy/pose_detection.py ``get_postprocess``) writes the MMPose codec into the
params: ``type`` SimCCLabel (component SimCCLabelDecode; ``input_size``, ``sigma``, ``simcc_split_ratio``,
``use_dark``), MSRAHeatmap or UDPHeatmap (component TopdownHeatmapSimpleHeadDecode; ``heatmap_size``, ``sigma``,
``unbiased``, ``heatmap_type``, ``blur_kernel_size``). MMDeploy 0.x writes the MMPose 0.x test_cfg instead
(``post_process`` default / unbiased / null, ``use_udp``, ``target_type``, ``modulate_kernel``). Decoding follows
MMPose's codecs: MSRA decodes with DARK when ``unbiased`` (else the quarter-pixel shift), UDP always with DARK-UDP.
"""

from __future__ import annotations

from edgepose.foreign.json_node import Node

HEATMAP_DECODERS = ("topdownheatmapsimpleheaddecode", "topdownheatmapbaseheaddecode",
                    "topdownheatmapmultistageheaddecode", "vipnasheatmapsimpleheaddecode")


def _params(post: Node) -> Node:
    """The postprocess params (MMDeploy 1.x writes them flat; an export that nests them under 'params' is read too)."""
    params = post.get("params", {})
    params.mapping()
    inner = params.get("params")
    return inner if inner.present and isinstance(inner.value, dict) else params


def flag(node: Node, default: bool) -> bool:
    """The boolean at ``node``, ``default`` when the key is absent."""
    return node.flag() if node.present else default


def _sigma(node: Node, default: float) -> float | tuple[float, float]:
    if not node.present:
        return default
    if isinstance(node.value, list):
        return node.numbers(2, "a number or [sigma_x, sigma_y]", positive=True)  # type: ignore[return-value]
    return node.number(positive=True)


def _kernel(node: Node, default: int = 11) -> int:
    if not node.present:
        return default
    value = node.number(positive=True)
    if not value.is_integer() or value % 2 == 0:
        raise node.error(f"must be a positive odd whole number (a blur kernel size), got {node.value!r}")
    return int(value)


def _simcc(params: Node) -> dict:
    """Card fields of an MMPose ``SimCCLabel`` codec."""
    if flag(params.get("export_postprocess"), False):
        raise params.get("export_postprocess").error("is true: the net decodes its own keypoints; re-export with "
                                                     "codebase_config export_postprocess=False (SimCC outputs)")
    sigma = _sigma(params.get("sigma"), 6.0)
    fields = {"codec": "simcc", "simcc_split_ratio": params.get("simcc_split_ratio", 2.0).number(positive=True),
              "sigma": sigma, "decode": "dark" if flag(params.get("use_dark"), False) else "none"}
    if fields["decode"] == "dark":  # MMPose SimCCLabel.decode: blur (20 sigma - 7) // 3, made odd (x axis's)
        blur = int(((sigma[0] if isinstance(sigma, tuple) else sigma) * 20 - 7) // 3)
        fields["blur_kernel_size"] = max(1, blur - (blur % 2 == 0))
    return fields


def _heatmap_v1(params: Node, kind: str) -> dict:
    """Card fields of an MMPose 1.x ``MSRAHeatmap`` / ``UDPHeatmap`` codec."""
    fields = {"sigma": _sigma(params.get("sigma"), 2.0), "blur_kernel_size": _kernel(params.get("blur_kernel_size"))}
    if params.get("heatmap_size").present:
        fields["heatmap_size"] = params.get("heatmap_size").size()
    if kind == "msraheatmap":  # MSRAHeatmap.decode: DARK when unbiased, else the quarter-pixel shift
        return {**fields, "codec": "msra", "decode": "dark" if flag(params.get("unbiased"), False) else "shift"}
    heatmap_type = params.get("heatmap_type", "gaussian")
    if heatmap_type.text() != "gaussian":
        raise heatmap_type.error(f"is {heatmap_type.value!r}: edgepose decodes UDP 'gaussian' heatmaps only")
    return {**fields, "codec": "udp", "decode": "dark"}  # UDPHeatmap.decode: refine_keypoints_dark_udp


def _heatmap_v0(params: Node) -> dict:
    """Card fields of an MMPose 0.x heatmap head's test_cfg (post_process, use_udp, target_type, modulate_kernel)."""
    fields = {"blur_kernel_size": _kernel(params.get("modulate_kernel"))}
    if flag(params.get("use_udp"), False):
        target = params.get("target_type", "GaussianHeatmap")
        if target.text().lower() != "gaussianheatmap":
            raise target.error(f"is {target.value!r}: edgepose decodes UDP 'GaussianHeatmap' targets only")
        return {**fields, "codec": "udp", "decode": "dark"}  # keypoints_from_heatmaps: post_dark_udp
    post = params.get("post_process", "default")
    modes = {None: "none", "null": "none", "default": "shift", "unbiased": "dark"}
    if not isinstance(post.value, (str, type(None))) or post.value not in modes:
        raise post.error(f"is {post.value!r}: edgepose decodes post_process 'default' (shift), 'unbiased' (DARK) "
                         "or null")
    return {**fields, "codec": "msra", "decode": modes[post.value]}


def decoder_fields(post: Node) -> tuple[dict, Node]:
    """Card fields of the postprocess task, and the node of the decoder's input_size (it may be absent)."""
    component = post.get("component")
    params = _params(post)
    kind = params.get("type", "").value
    kind = kind.lower() if isinstance(kind, str) else ""
    name = component.text().lower()
    if name == "simcclabeldecode" or kind == "simcclabel":
        return _simcc(params), params.get("input_size")
    if name in HEATMAP_DECODERS and kind in ("msraheatmap", "udpheatmap"):
        return _heatmap_v1(params, kind), params.get("input_size")
    if name in HEATMAP_DECODERS and not kind:
        return _heatmap_v0(params), params.get("input_size")
    what = f"{component.value!r} with codec {params.get('type').value!r}" if kind else repr(component.value)
    raise component.error(f"is {what}: edgepose decodes SimCCLabel (SimCCLabelDecode) and MSRA/UDP heatmaps "
                          "(TopdownHeatmapSimpleHeadDecode)")
