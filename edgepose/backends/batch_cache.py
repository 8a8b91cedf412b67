"""Cache of batch-rewritten ONNX models: keyed by the sha256 of the original model's bytes and the rewrite version,
written atomically, and trusted only when the cached file's sha256 matches the one recorded beside it.

Folder: ``$EDGEPOSE_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/edgepose`` or ``~/.cache/edgepose``; entries live in
its ``batch_axis`` subfolder as ``<sha256>.v<version>.onnx`` and ``.json`` (the record).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from edgepose.io import atomic_write_bytes, atomic_write_text

CACHE_ENV = "EDGEPOSE_CACHE_DIR"
SUBFOLDER = "batch_axis"


def cache_root() -> str:
    """The edgepose cache folder (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgepose")


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """Where the rewrite of one model (by content and rewrite version) is cached."""

    source_sha256: str
    version: int
    folder: str

    @classmethod
    def of(cls, model_bytes: bytes, version: int, folder: str | None = None) -> CacheEntry:
        """The entry of ``model_bytes`` in ``folder`` (default: ``cache_root()/batch_axis``)."""
        return cls(sha256(model_bytes), version, folder or os.path.join(cache_root(), SUBFOLDER))

    @property
    def model_path(self) -> str:
        return os.path.join(self.folder, f"{self.source_sha256}.v{self.version}.onnx")

    @property
    def record_path(self) -> str:
        return os.path.join(self.folder, f"{self.source_sha256}.v{self.version}.json")

    def record(self) -> tuple[dict | None, str]:
        """The entry's record when it is there, readable and of this model and version; else None and why not."""
        if not os.path.isfile(self.record_path):
            return None, "not cached yet"
        try:
            with open(self.record_path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError) as exc:
            return None, f"cache record unreadable ({type(exc).__name__}): redone"
        if not isinstance(record, dict) or record.get("source_sha256") != self.source_sha256 \
                or record.get("version") != self.version:
            return None, "cache record does not match this model: redone"
        return record, "cached"

    def load(self, record: dict) -> tuple[bytes | None, str]:
        """The cached rewritten model's bytes, or None and why not (missing, unreadable, or tampered with).

        The bytes returned are the ones whose hash was checked: load the session from them, not from the path."""
        try:
            with open(self.model_path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return None, f"cached model unreadable ({exc.strerror or type(exc).__name__}): redone"
        if record.get("sha256") != sha256(data):
            return None, "cached model does not match its recorded sha256 (corrupt or tampered with): redone"
        return data, "from cache"

    def store(self, data: bytes, details: dict) -> None:
        """Write the rewritten model, then its record (its sha256 and ``details``), each atomically.

        Raises edgepose.errors.WriteError when the folder cannot be written."""
        atomic_write_bytes(self.model_path, data)
        self._write_record({"sha256": sha256(data), **details})

    def store_refusal(self, reason: str) -> None:
        """Record that the graph of this model cannot be batched, and why (no model file): the next load keeps the
        loop without importing onnx. Only for reasons that depend on the model bytes alone. Raises WriteError."""
        self._write_record({"refused": reason})

    def _write_record(self, fields: dict) -> None:
        record = {"version": self.version, "source_sha256": self.source_sha256, **fields}
        atomic_write_text(self.record_path, json.dumps(record, indent=1, sort_keys=True))
