"""PyTorch DDP plumbing for runs under ``torchrun`` (NCCL on GPUs, gloo on CPU); a no-op for one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def init() -> Context:
    """Join the process group torchrun set up (env RANK/WORLD_SIZE/LOCAL_RANK), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if world > 1:
        if cuda:
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        return Context(dist.get_rank(), dist.get_world_size(), local, device)
    return Context(device=device)


def barrier(ctx: Context) -> None:
    """Wait for every rank."""
    if ctx.distributed:
        dist.barrier()


def mean(ctx: Context, value: float) -> float:
    """The mean of a scalar over ranks (for logging)."""
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def broadcast(ctx: Context, value: float) -> float:
    """Rank 0's scalar on every rank."""
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return float(t.item())


def cleanup(ctx: Context) -> None:
    """Leave the process group."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def same_on_all_ranks(ctx: Context, value: float) -> bool:
    """Whether every rank holds the same scalar (used to prove the replicas did not diverge)."""
    if not ctx.distributed:
        return True
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    gathered = [torch.zeros_like(t) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, t)
    return all(float(g.item()) == value for g in gathered)
