"""Training losses, weighted per keypoint: heatmap MSE (MMPose KeypointMSELoss) and SimCC KL (RTMPose)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over (N, K, h, w) of ``weights[n, k] * (pred - target)^2``; pred/target (N, K, h, w), weights (N, K)."""
    if pred.shape != target.shape:
        raise ValueError(f"heatmap shapes differ: prediction {tuple(pred.shape)}, target {tuple(target.shape)}")
    per_keypoint = ((pred.float() - target.float()) ** 2).mean(dim=(2, 3))
    return (per_keypoint * weights).mean()


def simcc_kl(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, beta: float = 10.0,
             label_softmax: bool = True) -> torch.Tensor:
    """RTMPose's KLDiscretLoss for one axis: KL(target || softmax(beta * pred)) per keypoint, weighted, averaged.

    pred/target (N, K, L) (target: Gaussian labels from the SimCC codec), weights (N, K).
    """
    log_p = F.log_softmax(pred.float() * beta, dim=-1)
    q = F.softmax(target.float() * beta, dim=-1) if label_softmax else target.float()
    kl = (q * (torch.log(q.clamp_min(1e-12)) - log_p)).sum(-1)
    return (kl * weights).mean()


def pose_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
              weights: torch.Tensor) -> torch.Tensor:
    """The codec's loss over the model's outputs; hourglass intermediate stacks are supervised too."""
    if "heatmaps" in targets:
        stacks = outputs.get("intermediate") or [outputs["heatmaps"]]
        return sum(heatmap_mse(p, targets["heatmaps"], weights) for p in stacks)
    return simcc_kl(outputs["simcc_x"], targets["simcc_x"], weights) + simcc_kl(
        outputs["simcc_y"], targets["simcc_y"], weights)
