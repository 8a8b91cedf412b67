"""Stage stamps of ``edgepose quickstart``: what a finished stage consumed and produced, so a rerun can skip it.

``OUT/stamps/STAGE.json`` (written atomically)::

    {"stage": "teacher", "version": 1, "key": "<sha256 of the stage's config and its inputs' digests>",
     "status": "running" | "done", "outputs": {"teacher/last.pth": "<sha256>", ...}, "seconds": 41.2, ...}

A stage is skipped when its stamp is ``done``, carries the key the stage has now and every output still has its
recorded digest. A ``running`` stamp with the current key is an interrupted stage: it resumes (training continues
from ``last.pth``). Anything else (no stamp, an unreadable one, another key, a missing or changed output) reruns
the stage from a clean folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from compress.train.teacher_cache import file_digest
from edgepose.io import atomic_write_text

VERSION = 1
def tree_digest(path: str | os.PathLike) -> str:
    """sha256 over every file of a folder: relative paths and their digests, in sorted order."""
    root = Path(path)
    sha = hashlib.sha256()
    for item in sorted(p for p in root.rglob("*") if p.is_file()):
        sha.update(f"{item.relative_to(root).as_posix()}\0{file_digest(item)}\n".encode())
    return sha.hexdigest()


def digest(path: str | os.PathLike) -> str:
    """``tree_digest`` of a folder, ``file_digest`` of a file; FileNotFoundError when neither exists."""
    if os.path.isdir(path):
        return tree_digest(path)
    if os.path.isfile(path):
        return file_digest(path)
    raise FileNotFoundError(path)


def key_of(payload: dict) -> str:
    """A stable sha256 of a JSON-able dict (sorted keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Stamp:
    """One stage's record."""

    stage: str
    key: str
    status: str  # "running" | "done"
    outputs: dict[str, str] = field(default_factory=dict)  # path relative to OUT -> digest
    seconds: float = 0.0
    started: str = ""
    finished: str = ""
    version: int = VERSION


class Stamps:
    """The stamps folder of one quickstart output folder."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.dir = self.out / "stamps"

    def path(self, stage: str) -> Path:
        """Where ``stage``'s stamp lives."""
        return self.dir / f"{stage}.json"

    def read(self, stage: str) -> Stamp | None:
        """The stamp of ``stage``; None when it is missing, unreadable or not a stamp of this version."""
        try:
            data = json.loads(self.path(stage).read_text(encoding="utf-8"))
            stamp = Stamp(**data)
        except (OSError, ValueError, TypeError):
            return None
        ok = (stamp.stage == stage and stamp.version == VERSION and stamp.status in ("running", "done")
              and isinstance(stamp.outputs, dict))
        return stamp if ok else None

    def check(self, stage: str, key: str) -> tuple[str, str]:
        """(action, reason): action "skip", "resume" or "run" for ``stage`` whose inputs now give ``key``."""
        stamp = self.read(stage)
        if stamp is None:
            return "run", "unreadable stamp" if self.path(stage).exists() else "not run yet"
        if stamp.key != key:
            return "run", "its config or inputs changed"
        if stamp.status == "running":
            return "resume", "interrupted"
        for rel, recorded in stamp.outputs.items():
            try:
                if digest(self.out / rel) != recorded:
                    return "run", f"output {rel} changed"
            except FileNotFoundError:
                return "run", f"output {rel} is missing"
        return "skip", "up to date"

    def begin(self, stage: str, key: str) -> None:
        """Record that ``stage`` started with ``key``."""
        self._write(Stamp(stage, key, "running", started=_now()))

    def finish(self, stage: str, key: str, outputs: list[str], seconds: float) -> Stamp:
        """Record the finished ``stage`` with the digests of ``outputs`` (paths relative to OUT)."""
        previous = self.read(stage)
        stamp = Stamp(stage, key, "done", {rel: digest(self.out / rel) for rel in outputs}, round(seconds, 3),
                      started=previous.started if previous else "", finished=_now())
        self._write(stamp)
        return stamp

    def _write(self, stamp: Stamp) -> None:
        atomic_write_text(self.path(stamp.stage), json.dumps(asdict(stamp), indent=2) + "\n")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
