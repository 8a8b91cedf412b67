"""A disk cache of a frozen teacher's outputs, computed once and reused by every student distilled from it.

Augmentation is a pure function of (seed, epoch, index) (see ``compress.data.loader``), so the teacher's output for
item ``index`` in epoch ``epoch`` is fixed by: the teacher's weights, the training data, the crop settings, the
augmentation config and the seed. Those make the cache key; changing any of them gives another key, hence another
directory, and a stale entry is never read. Per epoch and per output name, one ``.npy`` memory map of shape
(items, ...) in float16 plus a ``filled`` byte per item; a row is marked filled only after its data is flushed, so a
run killed mid-epoch leaves rows that are either complete or recomputed. A damaged file is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from edgepose.io import atomic_write_text

FORMAT = "edgepose-teacher-cache-1"
DTYPE = np.float16  # teacher heatmaps are in [0, ~1]: float16 keeps ~3 significant digits and halves the disk


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_listing_digest(folder: str | os.PathLike) -> str:
    """SHA-256 of a folder's file names and sizes (cheap; images are not rewritten in place without a size change
    in practice, and the annotation file is hashed in full)."""
    digest = hashlib.sha256()
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            digest.update(f"{entry.name}\0{entry.stat().st_size}\n".encode())
    return digest.hexdigest()


def cache_key(parts: dict) -> str:
    """A stable hex key of the JSON-serialisable ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class TeacherCache:
    """Teacher outputs per (epoch, item), under ``root/<key>/``.

    ``parts`` describe everything the outputs depend on (written to ``meta.json`` for people to read);
    ``num_items`` is the dataset size; ``shapes`` maps each output name to its per-item shape.
    """

    def __init__(self, root: str | os.PathLike, parts: dict, num_items: int, shapes: dict[str, Sequence[int]]):
        self.key = cache_key({"format": FORMAT, **parts})
        self.dir = os.path.join(os.fspath(root), self.key)
        self.num_items = int(num_items)
        self.shapes = {name: tuple(int(s) for s in shape) for name, shape in shapes.items()}
        self.hits = self.misses = 0
        self._epoch: int | None = None
        self._maps: dict[str, np.memmap] = {}
        self._filled: np.memmap | None = None
        os.makedirs(self.dir, exist_ok=True)
        meta = os.path.join(self.dir, "meta.json")
        if not os.path.isfile(meta):
            atomic_write_text(meta, json.dumps({"format": FORMAT, "key": self.key, "parts": parts,
                                                "num_items": self.num_items,
                                                "shapes": {k: list(v) for k, v in self.shapes.items()}},
                                               indent=2, default=str) + "\n")

    def _paths(self, epoch: int) -> dict[str, str]:
        stem = os.path.join(self.dir, f"epoch_{epoch:04d}")
        return {"filled": f"{stem}.filled.npy", **{name: f"{stem}.{name}.npy" for name in self.shapes}}

    def prepare(self, epoch: int) -> None:
        """Create (or check, rebuilding if damaged) the files of ``epoch``; call on one process before ``open``."""
        paths = self._paths(epoch)
        expected = {"filled": ((self.num_items,), np.uint8),
                    **{name: ((self.num_items, *shape), DTYPE) for name, shape in self.shapes.items()}}
        try:
            for name, (shape, dtype) in expected.items():
                arr = np.load(paths[name], mmap_mode="r")
                if arr.shape != shape or arr.dtype != dtype:
                    raise ValueError(f"{paths[name]} holds {arr.dtype}{arr.shape}, expected {np.dtype(dtype)}{shape}")
            return
        except FileNotFoundError:
            if any(os.path.exists(p) for p in paths.values()):
                warnings.warn(f"teacher cache epoch {epoch} in {self.dir} is incomplete: rebuilding it", stacklevel=2)
        except ValueError as exc:  # truncated file, wrong header, wrong shape
            warnings.warn(f"teacher cache epoch {epoch} in {self.dir} is damaged ({exc}): rebuilding it", stacklevel=2)
        for name, (shape, dtype) in expected.items():
            tmp = paths[name] + ".tmp"
            np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape).flush()
            os.replace(tmp, paths[name])

    def open(self, epoch: int) -> None:
        """Map the files of ``epoch`` (prepared before) for reading and writing."""
        self.close()
        paths = self._paths(epoch)
        self._filled = np.load(paths["filled"], mmap_mode="r+")
        self._maps = {name: np.load(paths[name], mmap_mode="r+") for name in self.shapes}
        self._epoch = epoch

    def lookup(self, indices: Sequence[int], device: torch.device | str = "cpu") -> dict[str, torch.Tensor] | None:
        """The cached outputs of these items (float32 tensors), or None when any of them is missing."""
        if self._filled is None:
            raise RuntimeError("TeacherCache.open(epoch) must be called before lookup")
        rows = np.asarray(indices, dtype=np.int64)
        if not self._filled[rows].all():
            self.misses += 1
            return None
        self.hits += 1
        return {name: torch.from_numpy(np.asarray(m[rows], dtype=np.float32)).to(device)
                for name, m in self._maps.items()}

    def store(self, indices: Sequence[int], outputs: dict[str, torch.Tensor]) -> None:
        """Write the outputs of these items, data first, then the filled marks."""
        rows = np.asarray(indices, dtype=np.int64)
        for name, m in self._maps.items():
            m[rows] = outputs[name].detach().float().cpu().numpy().astype(DTYPE)
            m.flush()
        self._filled[rows] = 1
        self._filled.flush()

    def close(self) -> None:
        """Flush and unmap the current epoch."""
        for m in [*self._maps.values(), *([self._filled] if self._filled is not None else [])]:
            m.flush()
        self._maps, self._filled, self._epoch = {}, None, None
