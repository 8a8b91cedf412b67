"""edgepose runtime: person boxes -> affine crop -> inference -> heatmap decoding -> keypoints in frame pixels.

Imports only numpy, OpenCV, PyYAML and (when a model is opened) ONNX Runtime; never torch.

    from edgepose import PoseEstimator
    estimator = PoseEstimator("pose.onnx", detector="yolox_nano.onnx")
    poses = estimator(frame)            # frame: (H, W, 3) uint8 BGR
    poses.xy, poses.scores              # (N, 17, 2), (N, 17) in frame pixels
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> defining module, loaded on first use so that `import edgepose` stays cheap.
_EXPORTS = {
    "Affine": "edgepose.affine",
    "ModelCard": "edgepose.card",
    "PoseEstimator": "edgepose.pipeline",
    "Poses": "edgepose.poses",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
