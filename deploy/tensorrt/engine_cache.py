"""A cache of TensorRT engines that never hands back a stale one.

    entry = EngineCache("~/.cache/edgepose/engines").get_or_build("pose.onnx", BuildOptions(precision="fp16"))
    entry.engine_path   # <root>/<id>/model.engine, with model.engine.card.json and meta.json beside it

An entry's folder is named by sha256(ONNX bytes) and the build options: one engine per model and options. Its
``meta.json`` (written last) records every part of the key: the ONNX hash, the TensorRT version, the GPU name and
compute capability, the options, and the engine's size and hash. On a lookup the entry is used only when all of
them match this machine and the engine file is intact; otherwise it is rebuilt in place (or, ``rebuild=False``,
refused with the reason). The GPU driver is recorded but not part of the key (engines survive driver updates).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.tensorrt.build import BuildOptions, build_engine, trt_version
from edgepose.errors import MissingDependencyError, ModelError

FORMAT = 1
ENGINE_NAME = "model.engine"
KEY_FIELDS = ("format", "onnx_sha256", "tensorrt", "gpu_name", "compute_capability", "options")


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is built for: name, compute capability ("8.7") and driver version (informative)."""

    name: str
    compute_capability: str
    driver: str = ""

    @classmethod
    def detect(cls, device: int = 0) -> GpuInfo:
        """Read GPU ``device`` through pycuda, else ``nvidia-smi``; MissingDependencyError when neither works."""
        info = _from_pycuda(device) or _from_nvidia_smi(device)
        if info is None:
            raise MissingDependencyError("cannot identify the GPU for the engine cache: neither pycuda (pip install "
                                         "pycuda) nor nvidia-smi works here; pass a GpuInfo explicitly")
        return info


def _from_pycuda(device: int) -> GpuInfo | None:
    try:
        import pycuda.driver as cuda

        cuda.init()
        dev = cuda.Device(device)
        major, minor = dev.compute_capability()
        return GpuInfo(dev.name(), f"{major}.{minor}", str(cuda.get_driver_version()))
    except Exception:  # no pycuda, no driver, no device
        return None


def parse_nvidia_smi(text: str, device: int = 0) -> GpuInfo | None:
    """GpuInfo from ``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader`` output."""
    rows = [line for line in text.strip().splitlines() if line.strip()]
    if len(rows) <= device:
        return None
    parts = [p.strip() for p in rows[device].split(",")]
    return GpuInfo(parts[0], parts[1], parts[2]) if len(parts) == 3 and parts[0] and parts[1] else None


def _from_nvidia_smi(device: int) -> GpuInfo | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(done.stdout, device)


@dataclass
class CacheEntry:
    """A usable cached engine: paths, its meta, whether it was a hit, and why it was (re)built."""

    engine_path: str
    card_path: str
    meta: dict
    hit: bool
    reason: str  # "hit" | "new" | why an old entry was rebuilt


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stale(meta: dict, want: dict, entry: Path) -> str | None:
    """Why the entry in ``entry`` with ``meta`` cannot serve ``want`` (None: it can)."""
    for field in KEY_FIELDS:
        if meta.get(field) != want[field]:
            return f"{field} differs (cached {meta.get(field)!r}, needed {want[field]!r})"
    engine = entry / ENGINE_NAME
    if not engine.is_file():
        return "the engine file is missing"
    if engine.stat().st_size != meta.get("engine_size") or file_sha256(engine) != meta.get("engine_sha256"):
        return "the engine file is truncated or modified"
    return None


class EngineCache:
    """Engines under ``root``, one folder per (ONNX bytes, build options), checked against this machine on use."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(os.path.expanduser(os.fspath(root)))

    def entry_dir(self, onnx_sha256: str, options: BuildOptions) -> Path:
        """The folder of the entry for this ONNX hash and these options."""
        text = json.dumps({"onnx": onnx_sha256, "options": options.key()}, sort_keys=True)
        return self.root / hashlib.sha256(text.encode()).hexdigest()[:24]

    def get_or_build(self, onnx_path: str | os.PathLike, options: BuildOptions | None = None,
                     gpu: GpuInfo | None = None, builder: Callable = build_engine, rebuild: bool = True,
                     tensorrt_version: str | None = None) -> CacheEntry:
        """The cached engine for ``onnx_path`` built with ``options`` on this TensorRT and GPU, building it if needed.

        ``gpu`` / ``tensorrt_version`` default to this machine's; ``builder(onnx, engine, options)`` writes the
        engine (and its card). With ``rebuild=False`` a stale or damaged entry raises ModelError instead of being
        rebuilt (a missing entry is still built).
        """
        from edgepose.io import atomic_write_text

        options = options or BuildOptions()
        src = os.fspath(onnx_path)
        if not os.path.isfile(src):
            raise ModelError(f"model file not found: {src}")
        version = tensorrt_version or trt_version()
        if version is None:
            from deploy.tensorrt.build import TRT_MISSING

            raise MissingDependencyError(TRT_MISSING)
        gpu = gpu or GpuInfo.detect()
        want = {"format": FORMAT, "onnx_sha256": file_sha256(src), "tensorrt": str(version), "gpu_name": gpu.name,
                "compute_capability": str(gpu.compute_capability), "options": options.key()}
        entry = self.entry_dir(want["onnx_sha256"], options)
        engine, meta_path = entry / ENGINE_NAME, entry / "meta.json"
        reason = "new"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                reason = _stale(meta, want, entry) if isinstance(meta, dict) else "meta.json is not an object"
            except (OSError, json.JSONDecodeError) as exc:
                reason = f"meta.json is unreadable ({exc})"
            if reason is None:
                return CacheEntry(str(engine), str(engine) + ".card.json", meta, True, "hit")
            if not rebuild:
                raise ModelError(f"cached engine {engine} cannot be used: {reason}. Rebuild it (rebuild=True, or "
                                 f"delete {entry})")
        entry.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)  # the entry is incomplete until the new meta is written
        builder(src, os.fspath(engine), options)
        if not engine.is_file() or engine.stat().st_size == 0:
            raise ModelError(f"the engine builder wrote no engine at {engine}")
        meta = {**want, "gpu_driver": gpu.driver, "gpu": asdict(gpu), "onnx": os.path.abspath(src),
                "engine_size": engine.stat().st_size, "engine_sha256": file_sha256(engine)}
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return CacheEntry(str(engine), str(engine) + ".card.json", meta, False, reason)
