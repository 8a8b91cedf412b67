"""DataLoader for the pose datasets: seeded epoch-aware sampling, worker set-up for small CPUs, batch collation.

The sampler yields ``(epoch, index)`` keys, so every item's augmentation depends only on (seed, epoch, index):
persistent workers (which keep their own copy of the dataset) still see the new epoch, and a run resumed at epoch
e, or read with another worker count, gets the same samples. Call ``set_epoch(loader, e)`` before each epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, default_collate

from edgepose.errors import InputError


class EpochSampler(Sampler):
    """Yields ``(epoch, index)``: in order, shuffled by (seed, epoch), or a DistributedSampler's share."""

    def __init__(self, dataset: Dataset, shuffle: bool, seed: int = 0, distributed: bool = False,
                 drop_last: bool = False) -> None:
        self.size, self.shuffle, self.seed, self.epoch = len(dataset), shuffle, int(seed), 0
        self.base = None
        if distributed:
            self.base = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass draws its order and augmentation for."""
        self.epoch = int(epoch)
        if self.base is not None:
            self.base.set_epoch(self.epoch)

    def _order(self) -> Sequence[int]:
        if self.base is not None:
            return list(self.base)
        if self.shuffle:
            return np.random.default_rng((self.seed, self.epoch)).permutation(self.size).tolist()
        return range(self.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self._order())

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.size


def collate(items: list[dict]) -> dict:
    """Stack "image", "targets" (per key) and "weights" into batch tensors; "meta" stays a list of dicts.

    torch's ``default_collate`` does the stacking: inside a worker it stacks straight into shared memory, which
    saves one copy of every batch on its way to the trainer.
    """
    return {
        "image": default_collate([it["image"] for it in items]),
        "targets": default_collate([it["targets"] for it in items]),
        "weights": default_collate([it["weights"] for it in items]),
        "meta": [it["meta"] for it in items],
    }


def worker_init(_worker_id: int) -> None:
    """One thread each for OpenCV and torch inside a worker: N workers on N cores, no oversubscription."""
    cv2.setNumThreads(0)  # 0: OpenCV runs its functions sequentially, no thread pool
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int, distributed: bool = False,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` (items as ``compress.data.coco.CocoPoseDataset`` returns them).

    ``workers`` > 0 keeps the worker processes across epochs (``persistent_workers``); memory is pinned when CUDA
    is available; with ``distributed`` a DistributedSampler splits the items over the ranks.
    """
    if batch_size < 1 or workers < 0:
        raise InputError(f"make_loader needs batch_size >= 1 and workers >= 0, got {batch_size}, {workers}")
    sampler = EpochSampler(dataset, shuffle, seed, distributed, drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=workers > 0,
        worker_init_fn=worker_init if workers > 0 else None,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Start epoch ``epoch``: the sampler's order (and DistributedSampler's) and the dataset's augmentation."""
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
