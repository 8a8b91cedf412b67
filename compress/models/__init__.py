"""The model zoo: Lite-HRNet (paper variants and naive ones), Stacked Hourglass, SimpleBaseline, RTMPose, HRNet;
heatmap or SimCC heads.

``MODELS`` is a literal dict name -> constructor; ``build_model`` is the one entry point the trainer, distillation,
pruning, export and checkpoints use. Every model is a ``PoseModel``: ``model.arch`` holds the ``build_model``
arguments, so ``build_model(**model.arch)`` rebuilds it (checkpoints record the architecture this way).

Complexity at 256x192 (``count_params`` / ``count_flops``, MACs; see ``complexity.py`` for what is counted):
the paper's Lite-HRNet-18 is 1.1M / 0.20 G and Lite-HRNet-30 1.8M / 0.31 G; ``lite_hrnet_tiny`` is ours (not in the
paper): Lite-HRNet at half width with (1, 2, 1) modules, 0.18M / 0.056 G, for CPU tests and the quickstart.
RTMPose-t/s/m and HRNet-W32/W48 are MMPose's architectures, weight for weight (``load_mmpose_checkpoint`` loads
MMPose's checkpoints; tests/compress/test_mmpose_architectures.py checks the outputs against MMPose's).
"""

from __future__ import annotations

import inspect
import operator

from .complexity import count_flops, count_params
from .heads import HEADS, PoseModel
from .hourglass import HourglassPose
from .hrnet import HRNetPose
from .lite_hrnet import SPECS, LiteHRNetPose
from .mmpose_weights import load_mmpose_checkpoint, to_mmpose_state_dict
from .rtmpose import RTMPosePose
from .simple_baseline import SimpleBaselinePose

Size = tuple[int, int]


def _lite(name: str, num_keypoints: int, input_size: Size, head: str, simcc_split_ratio: float | None) -> PoseModel:
    model = LiteHRNetPose(SPECS[name], num_keypoints, input_size, head, simcc_split_ratio)
    return _record(model, name, simcc_split_ratio=simcc_split_ratio)


def _record(model: PoseModel, name: str, **kwargs) -> PoseModel:
    """Set ``model.arch`` for a constructor called directly (``build_model`` replaces it with its exact arguments)."""
    model.arch = {"name": name, "num_keypoints": model.num_keypoints, "input_size": model.input_size,
                  "head": model.head, **{k: v for k, v in kwargs.items() if v is not None}}
    return model


def lite_hrnet_18(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                  simcc_split_ratio: float | None = None) -> PoseModel:
    """Lite-HRNet-18 (paper: 1.1M params, 0.20 GFLOPs at 256x192)."""
    return _lite("lite_hrnet_18", num_keypoints, input_size, head, simcc_split_ratio)


def lite_hrnet_30(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                  simcc_split_ratio: float | None = None) -> PoseModel:
    """Lite-HRNet-30 (paper: 1.8M params, 0.31 GFLOPs at 256x192)."""
    return _lite("lite_hrnet_30", num_keypoints, input_size, head, simcc_split_ratio)


def naive_lite_hrnet_18(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                        simcc_split_ratio: float | None = None) -> PoseModel:
    """Naive Lite-HRNet-18: Lite-HRNet-18 with shuffle blocks instead of conditional channel weighting."""
    return _lite("naive_lite_hrnet_18", num_keypoints, input_size, head, simcc_split_ratio)


def naive_lite_hrnet_30(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                        simcc_split_ratio: float | None = None) -> PoseModel:
    """Naive Lite-HRNet-30: Lite-HRNet-30 with shuffle blocks instead of conditional channel weighting."""
    return _lite("naive_lite_hrnet_30", num_keypoints, input_size, head, simcc_split_ratio)


def lite_hrnet_tiny(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                    simcc_split_ratio: float | None = None) -> PoseModel:
    """Ours, not the paper's: Lite-HRNet at half width (20, 40, 80, 160), (1, 2, 1) modules; about 0.056 GFLOPs."""
    return _lite("lite_hrnet_tiny", num_keypoints, input_size, head, simcc_split_ratio)


def hourglass(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap", stacks: int = 8,
              channels: int = 256, simcc_split_ratio: float | None = None) -> PoseModel:
    """Stacked Hourglass; the defaults are Fast Pose Distillation's teacher (8 stacks, 256 channels)."""
    model = HourglassPose(num_keypoints, input_size, head, stacks, channels, simcc_split_ratio)
    return _record(model, "hourglass", stacks=stacks, channels=channels, simcc_split_ratio=simcc_split_ratio)


def hourglass_student(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap", stacks: int = 4,
                      channels: int = 128, simcc_split_ratio: float | None = None) -> PoseModel:
    """Fast Pose Distillation's student: a Stacked Hourglass of 4 stacks, 128 channels."""
    model = HourglassPose(num_keypoints, input_size, head, stacks, channels, simcc_split_ratio)
    return _record(model, "hourglass_student", stacks=stacks, channels=channels, simcc_split_ratio=simcc_split_ratio)


def _simple(depth: int, num_keypoints: int, input_size: Size, head: str, simcc_split_ratio: float | None,
            deconv_channels: int) -> PoseModel:
    model = SimpleBaselinePose(depth, num_keypoints, input_size, head, simcc_split_ratio, deconv_channels)
    return _record(model, f"simple_baseline_{depth}", simcc_split_ratio=simcc_split_ratio,
                   deconv_channels=None if deconv_channels == 256 else deconv_channels)


def simple_baseline_18(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                       simcc_split_ratio: float | None = None, deconv_channels: int = 256) -> PoseModel:
    """SimpleBaseline with a ResNet-18 backbone."""
    return _simple(18, num_keypoints, input_size, head, simcc_split_ratio, deconv_channels)


def simple_baseline_34(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                       simcc_split_ratio: float | None = None, deconv_channels: int = 256) -> PoseModel:
    """SimpleBaseline with a ResNet-34 backbone."""
    return _simple(34, num_keypoints, input_size, head, simcc_split_ratio, deconv_channels)


def simple_baseline_50(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                       simcc_split_ratio: float | None = None, deconv_channels: int = 256) -> PoseModel:
    """SimpleBaseline-ResNet-50 (paper: 34.0M params, 8.9 GFLOPs at 256x192), the usual strong teacher."""
    return _simple(50, num_keypoints, input_size, head, simcc_split_ratio, deconv_channels)


def simple_baseline_101(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
                        simcc_split_ratio: float | None = None, deconv_channels: int = 256) -> PoseModel:
    """SimpleBaseline-ResNet-101 (paper: 53.0M params, 12.4 GFLOPs at 256x192)."""
    return _simple(101, num_keypoints, input_size, head, simcc_split_ratio, deconv_channels)


def _rtmpose(name: str, num_keypoints: int, input_size: Size, head: str, simcc_split_ratio: float | None,
             spp: bool = True) -> PoseModel:
    model = RTMPosePose(name, num_keypoints, input_size, head, simcc_split_ratio, spp)
    return _record(model, name, simcc_split_ratio=simcc_split_ratio, **({} if spp else {"spp": False}))


def rtmpose_t(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "simcc",
              simcc_split_ratio: float | None = None, spp: bool = True) -> PoseModel:
    """RTMPose-t: CSPNeXt-tiny + RTMCC SimCC head (MMPose: 3.34M params, 0.36 GFLOPs at 256x192)."""
    return _rtmpose("rtmpose_t", num_keypoints, input_size, head, simcc_split_ratio, spp)


def rtmpose_s(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "simcc",
              simcc_split_ratio: float | None = None, spp: bool = True) -> PoseModel:
    """RTMPose-s: CSPNeXt-s + RTMCC SimCC head (MMPose: 5.47M params, 0.68 GFLOPs at 256x192)."""
    return _rtmpose("rtmpose_s", num_keypoints, input_size, head, simcc_split_ratio, spp)


def rtmpose_m(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "simcc",
              simcc_split_ratio: float | None = None, spp: bool = True) -> PoseModel:
    """RTMPose-m: CSPNeXt-m + RTMCC SimCC head (MMPose: 13.59M params, 1.93 GFLOPs at 256x192)."""
    return _rtmpose("rtmpose_m", num_keypoints, input_size, head, simcc_split_ratio, spp)


def _hrnet(name: str, num_keypoints: int, input_size: Size, head: str, simcc_split_ratio: float | None) -> PoseModel:
    model = HRNetPose(name, num_keypoints, input_size, head, simcc_split_ratio)
    return _record(model, name, simcc_split_ratio=simcc_split_ratio)


def hrnet_w32(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
              simcc_split_ratio: float | None = None) -> PoseModel:
    """HRNet-W32 with MMPose's heatmap head (MMPose: 28.5M params, 7.7 GFLOPs at 256x192)."""
    return _hrnet("hrnet_w32", num_keypoints, input_size, head, simcc_split_ratio)


def hrnet_w48(num_keypoints: int = 17, input_size: Size = (192, 256), head: str = "heatmap",
              simcc_split_ratio: float | None = None) -> PoseModel:
    """HRNet-W48 with MMPose's heatmap head (MMPose: 63.6M params, 15.8 GFLOPs at 256x192)."""
    return _hrnet("hrnet_w48", num_keypoints, input_size, head, simcc_split_ratio)


MODELS = {
    "lite_hrnet_18": lite_hrnet_18,
    "lite_hrnet_30": lite_hrnet_30,
    "naive_lite_hrnet_18": naive_lite_hrnet_18,
    "naive_lite_hrnet_30": naive_lite_hrnet_30,
    "lite_hrnet_tiny": lite_hrnet_tiny,
    "hourglass": hourglass,
    "hourglass_student": hourglass_student,
    "simple_baseline_18": simple_baseline_18,
    "simple_baseline_34": simple_baseline_34,
    "simple_baseline_50": simple_baseline_50,
    "simple_baseline_101": simple_baseline_101,
    "rtmpose_t": rtmpose_t,
    "rtmpose_s": rtmpose_s,
    "rtmpose_m": rtmpose_m,
    "hrnet_w32": hrnet_w32,
    "hrnet_w48": hrnet_w48,
}

_COMMON = ("num_keypoints", "input_size", "head")


def default_head(name: str) -> str:
    """The head ``MODELS[name]`` is built with when none is asked for (its constructor's default)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return inspect.signature(MODELS[name]).parameters["head"].default


def build_model(name: str, num_keypoints: int = 17, input_size: Size = (192, 256), head: str | None = None,
                **kwargs) -> PoseModel:
    """Build ``MODELS[name]``; ``input_size`` is (width, height), ``head`` one of ``HEADS`` or None for the model's
    own default (``default_head(name)``: "simcc" for RTMPose, "heatmap" for the others).

    Extra keyword arguments go to the constructor (e.g. ``stacks``/``channels`` for the hourglasses,
    ``simcc_split_ratio`` for SimCC heads). Unknown names raise ValueError listing the valid ones; unknown keyword
    arguments raise TypeError naming them and the accepted ones. ``model.arch`` records exactly these arguments.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    constructor = MODELS[name]
    accepted = [p for p in inspect.signature(constructor).parameters if p not in _COMMON]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{name} got unknown argument(s) {', '.join(unknown)}; it accepts: "
                        f"{', '.join(_COMMON + tuple(accepted))}")
    if head is None:
        head = default_head(name)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
    if isinstance(num_keypoints, bool) or not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ValueError(f"num_keypoints must be a positive int, got {num_keypoints!r}")
    try:
        width, height = (operator.index(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (width, height) ints, got {input_size!r}") from None
    input_size = (width, height)
    model = constructor(num_keypoints=num_keypoints, input_size=input_size, head=head, **kwargs)
    model.arch = {"name": name, "num_keypoints": num_keypoints, "input_size": input_size, "head": head, **kwargs}
    return model


__all__ = ["MODELS", "HEADS", "PoseModel", "build_model", "count_flops", "count_params", "default_head",
           "load_mmpose_checkpoint", "to_mmpose_state_dict", *MODELS]
