"""Record tests/data/mmpose_reference/NAME.npz: MMPose's own RTMPose-t/s/m and HRNet-W32/W48 on seeded weights (and
CSPNeXt-tiny with MMPose's heatmap head, our ``rtmpose_t`` with ``head="heatmap"``).

Not run by CI (CI has no MMPose); tests/compress/test_mmpose_architectures.py reads what this writes. Run it in a
separate virtual environment that has MMPose (not the project's .venv):

    python3 -m venv /tmp/mmvenv
    /tmp/mmvenv/bin/pip install torch==2.13.0 mmengine==0.10.7 mmcv-lite==2.2.0 "numpy<2" six json_tricks munkres scipy
    /tmp/mmvenv/bin/pip install --no-deps mmpose==1.3.2     # its chumpy/xtcocotools dependencies do not build
    /tmp/mmvenv/bin/python tests/helpers/record_mmpose_reference.py [NAME ...]

Modules that only unused heads, datasets and ops import (mmdet, mmcv's compiled ops, xtcocotools) are stubbed.
The models are built from the ``model`` dicts of MMPose's COCO 256x192 configs
(``rtmpose-{t,s,m}_8xb256-420e_coco``, ``td-hm_hrnet-w{32,48}_8xb{64,32}-210e_coco``,
``cspnext-tiny_udp_8xb256-210e_coco``), copied below with three changes that do not touch the network: no
pretrained ``init_cfg``; BN for SyncBN (the same eval arithmetic, eps 1e-5, on a CPU); and MMPose's own ``CSPNeXt``
for the configs' ``_scope_='mmdet'`` one (the same code; mmdet is not installed).

Each file holds: ``keys`` and ``shapes`` (MMPose's 1.x state dict), ``weights_checksum`` (see
tests/helpers/mmpose_weights.py, which generates the weights from the keys), ``input_shape`` and ``input_checksum``
(the input is ``seeded_input``), ``params`` (MMPose's parameter count), ``versions``, and the outputs: ``simcc_x`` and
``simcc_y``, or ``heatmaps``, float32.
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "mmpose_reference"
INPUT_SHAPE = (1, 3, 256, 192)  # N, C, H, W: COCO 256x192
SMALL_INPUT_SHAPE = (1, 3, 128, 96)


class _Stub(types.ModuleType):
    """A module whose every attribute is a placeholder class (enough for imports that are never used here)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def _stub_unused_modules() -> None:
    for name in ("mmdet", "mmdet.utils", "mmcv.ops", "xtcocotools", "xtcocotools.coco", "xtcocotools.cocoeval",
                 "xtcocotools.mask"):
        sys.modules.setdefault(name, _Stub(name))


NORM = dict(type="BN")  # the configs' SyncBN
PREPROCESSOR = dict(type="PoseDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True)


def rtmpose(deepen: float, widen: float, channels: int) -> dict:
    """``model`` of rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py."""
    codec = dict(type="SimCCLabel", input_size=(192, 256), sigma=(4.9, 5.66), simcc_split_ratio=2.0,
                 normalize=False, use_dark=False)
    return dict(
        type="TopdownPoseEstimator", data_preprocessor=PREPROCESSOR,
        backbone=dict(type="CSPNeXt", arch="P5", expand_ratio=0.5, deepen_factor=deepen, widen_factor=widen,
                      out_indices=(4,), channel_attention=True, norm_cfg=NORM, act_cfg=dict(type="SiLU"),
                      init_cfg=None),
        head=dict(type="RTMCCHead", in_channels=channels, out_channels=17, input_size=codec["input_size"],
                  in_featuremap_size=tuple(s // 32 for s in codec["input_size"]), simcc_split_ratio=2.0,
                  final_layer_kernel_size=7,
                  gau_cfg=dict(hidden_dims=256, s=128, expansion_factor=2, dropout_rate=0.0, drop_path=0.0,
                               act_fn="SiLU", use_rel_bias=False, pos_enc=False),
                  loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0, label_softmax=True),
                  decoder=codec),
        test_cfg=dict(flip_test=True))


def hrnet(width: int) -> dict:
    """``model`` of td-hm_hrnet-w{32,48}_8xb{64,32}-210e_coco-256x192.py."""
    codec = dict(type="MSRAHeatmap", input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
    widths = [width * 2**i for i in range(4)]
    extra = dict(
        stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(4,), num_channels=(64,)),
        stage2=dict(num_modules=1, num_branches=2, block="BASIC", num_blocks=(4, 4), num_channels=tuple(widths[:2])),
        stage3=dict(num_modules=4, num_branches=3, block="BASIC", num_blocks=(4, 4, 4),
                    num_channels=tuple(widths[:3])),
        stage4=dict(num_modules=3, num_branches=4, block="BASIC", num_blocks=(4, 4, 4, 4),
                    num_channels=tuple(widths)))
    return dict(
        type="TopdownPoseEstimator", data_preprocessor=PREPROCESSOR,
        backbone=dict(type="HRNet", in_channels=3, extra=extra, init_cfg=None),
        head=dict(type="HeatmapHead", in_channels=width, out_channels=17, deconv_out_channels=None,
                  loss=dict(type="KeypointMSELoss", use_target_weight=True), decoder=codec),
        test_cfg=dict(flip_test=True, flip_mode="heatmap", shift_heatmap=True))


def cspnext_udp(deepen: float, widen: float, channels: int) -> dict:
    """``model`` of cspnext-{tiny,s,m}_udp_8xb256-210e_coco-256x192.py: our RTMPose with ``head="heatmap"``."""
    model = rtmpose(deepen, widen, channels)
    model["head"] = dict(type="HeatmapHead", in_channels=channels, out_channels=17,
                         loss=dict(type="KeypointMSELoss", use_target_weight=True),
                         decoder=dict(type="UDPHeatmap", input_size=(192, 256), heatmap_size=(48, 64), sigma=2))
    model["test_cfg"] = dict(flip_test=True, flip_mode="heatmap", shift_heatmap=False)
    return model


CONFIGS = {
    "rtmpose_t": rtmpose(0.167, 0.375, 384),
    "rtmpose_s": rtmpose(0.33, 0.5, 512),
    "rtmpose_m": rtmpose(0.67, 0.75, 768),
    "hrnet_w32": hrnet(32),
    "hrnet_w48": hrnet(48),
    "rtmpose_t_heatmap": cspnext_udp(0.167, 0.375, 384),
}
SMALL = {"rtmpose_t_heatmap"}  # recorded on a 96x128 input: it only checks the heatmap head on top of rtmpose_t


def record(name: str) -> Path:
    """Build MMPose's model ``name``, load the seeded weights, run the seeded input, write the npz; returns its path."""
    import mmcv
    import mmengine
    import mmpose
    import mmpose.codecs  # noqa: F401  (registers SimCCLabel, MSRAHeatmap)
    from mmengine.registry import init_default_scope
    from mmpose.models import build_pose_estimator

    from tests.helpers.mmpose_weights import checksum, seeded_input, seeded_state_dict

    init_default_scope("mmpose")
    model = build_pose_estimator(copy.deepcopy(CONFIGS[name])).eval()
    reference = model.state_dict()
    keys = list(reference)
    shapes = [tuple(v.shape) for v in reference.values()]
    state = seeded_state_dict(keys, shapes)
    model.load_state_dict(state, strict=True)
    x = seeded_input(SMALL_INPUT_SHAPE if name in SMALL else INPUT_SHAPE)
    with torch.no_grad():
        out = model(x, None, mode="tensor")
    outputs = {"simcc_x": out[0], "simcc_y": out[1]} if isinstance(out, tuple) else {"heatmaps": out}
    padded = np.full((len(shapes), 4), -1, np.int64)
    for i, shape in enumerate(shapes):
        padded[i, :len(shape)] = shape
    versions = f"mmpose {mmpose.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, " \
               f"torch {torch.__version__}"
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.npz"
    np.savez_compressed(
        path, keys=np.array(keys), shapes=padded, weights_checksum=np.float64(checksum(state)),
        input_shape=np.array(x.shape, np.int64), input_checksum=np.float64(x.double().sum()),
        params=np.int64(sum(p.numel() for p in model.parameters())), versions=np.array(versions),
        **{k: v.numpy().astype(np.float32) for k, v in outputs.items()})
    shown = ", ".join(f"{k} {tuple(v.shape)} max |{float(v.abs().max()):.3g}|" for k, v in outputs.items())
    print(f"{path.relative_to(ROOT)}: {len(keys)} keys, {path.stat().st_size / 1024:.0f} KB; {shown}")
    return path


def main(names: list[str]) -> None:
    """Record the named architectures (all by default)."""
    _stub_unused_modules()
    sys.path.insert(0, str(ROOT))
    for name in names or list(CONFIGS):
        if name not in CONFIGS:
            raise SystemExit(f"unknown architecture {name!r}; known: {', '.join(CONFIGS)}")
        record(name)


if __name__ == "__main__":
    main(sys.argv[1:])
