"""What a benchmark ran on: CPU, cores, RAM, GPU, library versions, threads, providers, Jetson power mode.

Never imports torch or tensorrt (their versions come from package metadata) and never raises: a missing tool or an
unreadable file leaves its field None.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata

TEGRA_RELEASE = "/etc/nv_tegra_release"


def run_tool(cmd: list[str], timeout: float = 10.0) -> str | None:
    """stdout of ``cmd``, or None when it is not installed, fails or times out."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def package_version(*names: str) -> str | None:
    """Installed version of the first distribution in ``names`` that exists (nothing is imported)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else platform)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    """Total memory in GiB (/proc/meminfo)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 2)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpus() -> list[dict]:
    """Name, driver and total memory (MiB) of each NVIDIA GPU ``nvidia-smi`` lists; [] without one."""
    out = run_tool(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"])
    rows = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            rows.append({"name": parts[0], "driver": parts[1],
                         "memory_mib": int(parts[2]) if parts[2].isdigit() else None})
    return rows


def cuda_version() -> str | None:
    """The CUDA version the driver reports (nvidia-smi), else the toolkit's /usr/local/cuda/version.json."""
    match = re.search(r"CUDA Version:\s*([\d.]+)", run_tool(["nvidia-smi"]) or "")
    if match:
        return match.group(1)
    try:
        import json

        with open("/usr/local/cuda/version.json", encoding="utf-8") as fh:
            return str(json.load(fh)["cuda"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def gpu_memory_used_mib(pid: int | None = None) -> float | None:
    """GPU memory (MiB) used by process ``pid`` (all processes when None) per nvidia-smi; None without a GPU."""
    if pid is None:
        out = run_tool(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        values = [float(v) for v in (out or "").split() if v.replace(".", "", 1).isdigit()]
        return sum(values) if values else None
    out = run_tool(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
    if out is None:
        return None
    total = 0.0
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].replace(".", "", 1).isdigit():
            total += float(parts[1])
    return total


def jetson() -> dict | None:
    """L4T release line and ``nvpmodel -q`` power mode on a Jetson; None elsewhere."""
    try:
        with open(TEGRA_RELEASE, encoding="utf-8", errors="replace") as fh:
            release = fh.readline().strip()
    except OSError:
        return None
    query = run_tool(["nvpmodel", "-q"])
    mode = re.search(r"NV Power Mode:\s*(\S+)", query or "")
    return {"l4t_release": release, "power_mode": mode.group(1) if mode else None,
            "nvpmodel_q": query.strip() if query else None}


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: how busy the machine was while measuring."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _onnxruntime() -> tuple[str | None, list[str]]:
    try:
        import onnxruntime

        return onnxruntime.__version__, list(onnxruntime.get_available_providers())
    except Exception:  # a broken install must not break a benchmark record
        return package_version("onnxruntime", "onnxruntime-gpu"), []


def environment(threads: object = None, providers: object = None) -> dict:
    """The machine and software a benchmark ran on, plus the ``threads`` and ``providers`` it was asked for."""
    import cv2
    import numpy as np

    ort_version, available = _onnxruntime()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpus": gpus(),
        "cuda": cuda_version(),
        "versions": {
            "onnxruntime": ort_version,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "tensorrt": package_version("tensorrt", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_libs"),
            "torch": package_version("torch"),
            "cupy": package_version("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
            "pycuda": package_version("pycuda"),
        },
        "ort_providers_available": available,
        "threads": threads,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "providers": providers,
        "jetson": jetson(),
    }
