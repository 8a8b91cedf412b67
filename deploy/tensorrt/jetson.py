"""Jetson helpers: the ``trtexec`` line equivalent to ``edgepose build-engine``, the board's power state, and
JetPack <-> TensorRT notes (``JETPACK_NOTES``)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable

from deploy.tensorrt.build import BuildOptions
from edgepose.card import ModelCard
from edgepose.errors import ConfigError

JETPACK_NOTES = """\
## JetPack, TensorRT and OpenCV

| JetPack | L4T     | TensorRT | CUDA | OpenCV | Devices                        |
|---------|---------|----------|------|--------|--------------------------------|
| 5.1.x   | R35.2-6 | 8.5.2    | 11.4 | 4.5.4  | Xavier, Orin                   |
| 6.0     | R36.3   | 8.6.2    | 12.2 | 4.8.0  | Orin                           |
| 6.1     | R36.4.0 | 10.3     | 12.6 | 4.8.0  | Orin                           |
| 6.2     | R36.4.3 | 10.3     | 12.6 | 4.8.0  | Orin (adds the "Super" modes)  |

- A TensorRT engine is tied to the TensorRT version and the GPU (compute capability) it was built with; it is not
  portable between JetPack releases, between Jetson models, or from a workstation GPU to a Jetson. Ship ONNX and
  build the engine on the robot (``edgepose build-engine`` or ``trtexec``); the engine cache rebuilds on a change.
- TensorRT 11 (JetPack 7.2.2+ with 11.4.1; not for JetPack 6) drops the FP16/INT8 builder flags and trtexec's
  ``--fp16``/``--int8``: precision comes from the ONNX graph (an FP16 model from ``edgepose quantize --mode fp16``,
  Q/DQ INT8 from ``edgepose quantize --mode int8``), so an FP16 request on an FP32 ONNX is refused, not built as FP32.
  On TensorRT 10 both ways work.
- DLA (AGX/NX Orin: 2 cores; Orin Nano: none) runs FP16/INT8 layers only, prefers static shapes (build with
  min = opt = max batch) and falls back to the GPU for unsupported layers with ``--allowGPUFallback``. On TensorRT 10
  it builds weakly typed: trtexec's ``--useDLACore`` turns FP16 on itself, which a ``--stronglyTyped`` network
  rejects. TensorRT 11.0-11.3 have no DLA; 11.4.1 (JetPack 7.2.2+, AGX Orin) builds it strongly typed.
- OpenCV: JetPack 6 ships 4.8.0, which warps in fixed point (1/32 pixel), so CPU crops differ from the GPU crop
  (``crop="cuda"``) by up to 9 grey levels; OpenCV >= 4.11 (``pip install "opencv-python-headless>=4.11"``, aarch64
  wheels) warps in floating point like the GPU and they agree within 1 level.
- Measure in a known power mode: ``sudo nvpmodel -m 0`` (MAXN) and ``sudo jetson_clocks``; record both
  (``jetson_power_state()``) with every benchmark.
"""

# L4T release (from /etc/nv_tegra_release) -> JetPack, longest prefix first.
L4T_TO_JETPACK = {
    "36.4.3": "6.2", "36.4": "6.1", "36.3": "6.0", "36.2": "6.0 DP",
    "35.6": "5.1.4", "35.5": "5.1.3", "35.4": "5.1.2", "35.3": "5.1.1", "35.2": "5.1", "35.1": "5.0.2",
}


def trtexec_command(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, options: BuildOptions,
                    card: ModelCard | None = None, trt_major: int | None = None, graph: str | None = None,
                    tensorrt: str | None = None) -> str:
    """The ``trtexec`` command line building the same engine as ``build_engine(onnx_path, engine_path, options)``.

    ``card`` (input name and size) defaults to the one embedded in ``onnx_path``, ``graph`` (the ONNX precision,
    "fp32" | "fp16" | "int8") to the file's. The TensorRT version is ``tensorrt`` ("11.4.1"), else ``trt_major``,
    else the installed one, else 10 (JetPack 6). Raises ConfigError for what ``build_engine`` refuses (the same
    message), and for an FP16 request on TensorRT 11 when the ONNX precision cannot be read.
    """
    from deploy.tensorrt.build import graph_precision, trt_version

    if card is None:
        from edgepose.onnx_card import read_card

        card = read_card(onnx_path)
    if graph is None and os.path.isfile(onnx_path):
        graph = graph_precision(onnx_path)
    version = tensorrt or (str(trt_major) if trt_major is not None else trt_version()) or "10"
    w, h = card.input_size
    shape = {k: f"{card.input_name}:{b}x3x{h}x{w}" for k, b in
             (("min", options.min_batch), ("opt", options.opt_batch), ("max", options.max_batch))}
    parts = ["trtexec", f"--onnx={os.fspath(onnx_path)}", f"--saveEngine={os.fspath(engine_path)}",
             f"--minShapes={shape['min']}", f"--optShapes={shape['opt']}", f"--maxShapes={shape['max']}",
             f"--memPoolSize=workspace:{options.workspace_mib}M"]
    parts += precision_flags(options.precision, version, graph, dla=options.dla_core is not None)
    if options.dla_core is not None:
        parts.append(f"--useDLACore={options.dla_core}")
        if options.gpu_fallback:
            parts.append("--allowGPUFallback")
    if options.timing_cache:
        parts.append(f"--timingCacheFile={options.timing_cache}")
    return " ".join(shlex.quote(p) for p in parts)


def precision_flags(precision: str, tensorrt: str | int, graph: str | None = None, dla: bool = False) -> list[str]:
    """trtexec precision flags for ``build_engine``'s plan (``plan_precision``) on TensorRT ``tensorrt``.

    10.x: ``--stronglyTyped`` for a strongly typed plan, else ``--fp16`` / ``--int8`` for its builder flags (DLA is
    weakly typed: trtexec sets FP16 itself for ``--useDLACore``). 11.x: none (precision is the graph's; the plan
    refuses what the graph cannot give). ``graph`` None (no file to read): the flags that suit any graph, or
    ConfigError where they depend on it.
    """
    from deploy.tensorrt.build import plan_precision, version_tuple

    major = version_tuple(tensorrt)[0]
    if graph is None:
        if major >= 11 and precision == "fp16":
            raise ConfigError("TensorRT 11's trtexec has no --fp16 and cannot tell the ONNX precision here: give "
                              "the FP16 ONNX (edgepose quantize --mode fp16) with --precision from-graph")
        if dla and major < 11 and precision != "fp32":
            raise ConfigError("cannot tell whether the ONNX is a Q/DQ (INT8) graph, which a TensorRT 10 DLA line "
                              "needs --int8 for: give the ONNX file or its precision")
        graph = "fp32" if precision == "fp32" or (precision == "fp16" and not dla) else "fp16"
    plan = plan_precision(precision, graph, tensorrt, dla=dla)
    if major >= 11:
        return []
    if plan.strongly_typed:
        return ["--stronglyTyped"]
    return ["--fp16"] * plan.fp16_flag + ["--int8"] * plan.int8_flag


def _run(cmd: list[str]) -> str | None:
    """stdout+stderr of ``cmd``, or None when it is not installed, fails to start, or times out."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or "") + (done.stderr or "")


def parse_tegra_release(text: str) -> str | None:
    """"36.4.3" from ``# R36 (release), REVISION: 4.3, ...`` (the first line of /etc/nv_tegra_release)."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def jetpack_from_l4t(l4t: str | None) -> str | None:
    """The JetPack release of an L4T version ("36.4.3" -> "6.2"), or None when unknown."""
    if not l4t:
        return None
    for prefix in sorted(L4T_TO_JETPACK, key=len, reverse=True):
        if l4t == prefix or l4t.startswith(prefix + "."):
            return L4T_TO_JETPACK[prefix]
    return None


def _parse_nvpmodel(text: str | None) -> tuple[str | None, int | None]:
    if not text:
        return None, None
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    number = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    return (name.group(1) if name else None), (int(number.group(1)) if number else None)


def _parse_clocks(text: str | None) -> tuple[str | None, bool | None]:
    """(machine name, whether every CPU core's minimum frequency equals its maximum, i.e. jetson_clocks is on)."""
    if not text:
        return None, None
    machine = re.search(r"Machine:\s*(.+)", text)
    cpus = re.findall(r"^cpu\d+:.*?MinFreq=(\d+).*?MaxFreq=(\d+)", text, re.MULTILINE)
    locked = all(lo == hi for lo, hi in cpus) if cpus else None
    return (machine.group(1).strip() if machine else None), locked


def jetson_power_state(release_file: str = "/etc/nv_tegra_release",
                       run: Callable[[list[str]], str | None] = _run) -> dict:
    """The board's L4T/JetPack release, nvpmodel power mode and jetson_clocks state; every field None off-Jetson.

    Never raises: a missing tool, a refused ``sudo`` or an unreadable file leaves its fields None. ``run`` (a
    command -> output or None) is injectable for tests.
    """
    l4t = None
    try:
        with open(release_file, encoding="utf-8", errors="replace") as fh:
            l4t = parse_tegra_release(fh.read())
    except OSError:
        pass
    try:
        mode, mode_id = _parse_nvpmodel(run(["nvpmodel", "-q"]))
        machine, locked = _parse_clocks(run(["jetson_clocks", "--show"]))
    except Exception:  # a broken tool must not break a benchmark record
        mode = mode_id = machine = locked = None
    return {"l4t": l4t, "jetpack": jetpack_from_l4t(l4t), "power_mode": mode, "power_mode_id": mode_id,
            "machine": machine, "clocks_locked": locked}
