"""The card MMPose's own COCO config implies for each architecture (what `edgepose export MMPOSE.pth --arch` embeds).

Values are those of MMPose 1.3.2's COCO top-down configs at 256x192 (``configs/body_2d_keypoint/...``):

- ``rtmpose_{t,s,m}``: ``rtmpose/coco/rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py``: SimCCLabel, input (192, 256),
  sigma (4.9, 5.66), simcc_split_ratio 2.0, use_dark False; data_preprocessor mean/std of ImageNet, bgr_to_rgb.
- ``hrnet_w32``/``hrnet_w48``: ``topdown_heatmap/coco/td-hm_hrnet-w{32,48}_8xb{64,32}-210e_coco-256x192.py``;
  ``simple_baseline_{50,101}``: ``td-hm_res{50,101}_8xb64-210e_coco-256x192.py``; ``lite_hrnet_{18,30}``:
  ``td-hm_litehrnet-{18,30}_8xb64-210e_coco-256x192.py``: MSRAHeatmap, heatmap (48, 64), sigma 2, unbiased False
  (MMPose decodes with the quarter-pixel shift).
Every config pads person boxes by 1.25 (GetBBoxCenterScale) and flips with COCO's pairs.
"""

from __future__ import annotations

from edgepose.card import ModelCard
from edgepose.errors import ConfigError
from edgepose.foreign.simcc_infer import rtmpose_sigma  # the one copy of RTMPose's sigma rule

IMAGENET = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "color": "rgb", "bbox_padding": 1.25}
SIMCC_RTMPOSE = {"codec": "simcc", "simcc_split_ratio": 2.0, "decode": "none", "output_names": ["simcc_x", "simcc_y"]}
HEATMAP_MSRA = {"codec": "msra", "sigma": 2.0, "decode": "shift", "output_names": ["heatmaps"]}

MMPOSE_CODECS = {
    **{name: SIMCC_RTMPOSE for name in ("rtmpose_t", "rtmpose_s", "rtmpose_m")},
    **{name: HEATMAP_MSRA for name in ("hrnet_w32", "hrnet_w48", "lite_hrnet_18", "lite_hrnet_30",
                                       "simple_baseline_50", "simple_baseline_101")},
}


def mmpose_card(arch: str, input_size: tuple[int, int] = (192, 256), name: str | None = None) -> ModelCard:
    """The card of MMPose's COCO config for ``arch`` at ``input_size`` (width, height)."""
    if arch not in MMPOSE_CODECS:
        raise ConfigError(f"no MMPose COCO config is known for arch {arch!r}; known: {sorted(MMPOSE_CODECS)} "
                          "(give --card for others)")
    w, h = (int(v) for v in input_size)
    fields = {**IMAGENET, **MMPOSE_CODECS[arch], "input_size": [w, h], "name": name or f"mmpose:{arch}"}
    if fields["codec"] == "simcc":
        fields["sigma"] = [rtmpose_sigma(w), rtmpose_sigma(h)]
    else:
        fields["heatmap_size"] = [w // 4, h // 4]
    return ModelCard.from_dict(fields)
