"""What ``trtexec`` of TensorRT 10.x / 11.x makes of a command line: the builder configuration, the engine precision,
or a refusal. A model of the flag handling, written from trtexec's source and NVIDIA's migration guide:

- samples/common/sampleOptions.cpp (10.x) ``BuildOptions::parse``: with ``--stronglyTyped``, ``--fp16``/``--int8``
  are dropped with a warning ("Invalid usage, setting fp16 mode is not allowed if graph is strongly typed");
  ``--stronglyTyped`` makes the network with ``kSTRONGLY_TYPED`` (sampleEngines.cpp ``modelToBuildEnv``).
- samples/common/sampleEngines.cpp (10.x) ``setupNetworkAndConfig``: ``--useDLACore`` sets the DLA device,
  ``kPREFER_PRECISION_CONSTRAINTS``, ``kGPU_FALLBACK`` (``--allowGPUFallback``) or ``kDIRECT_IO``, and
  ``kFP16`` unless ``--int8``. FP16/INT8/precision-constraint flags on a strongly typed network fail the build
  ("condition: !config.getFlag(BuilderFlag::kFP16)", NVIDIA/TensorRT issues 4228, 4253).
- TensorRT 11 ("Migrating trtexec Usage from TensorRT 10.x to 11.x"): ``--fp16``, ``--int8``, ``--bf16``, ``--fp8``,
  ``--int4``, ``--best`` removed (an unknown option ends trtexec with an error); ``--stronglyTyped`` is a no-op,
  every network being strongly typed. DLA ("Working with DLA", 11.4.1): absent in 11.0-11.3, back in 11.4.1 for
  Jetson AGX Orin (JetPack 7.2.2+), strongly typed, GPU fallback as in 10.x.

Only the options edgepose writes are known; any other one is refused, as trtexec refuses unknown options.
"""

from __future__ import annotations

import shlex

from tests.helpers.fake_tensorrt import version_tuple

COMMON = {"--onnx", "--saveEngine", "--minShapes", "--optShapes", "--maxShapes", "--memPoolSize", "--stronglyTyped",
          "--useDLACore", "--allowGPUFallback", "--timingCacheFile"}
PRECISION_FLAGS = {"--fp16", "--int8"}
WEAK_ONLY = {"FP16", "INT8", "PREFER_PRECISION_CONSTRAINTS"}


class TrtexecRefused(Exception):
    """trtexec would exit with an error (bad option) or its engine build would fail."""


def parse(line: str) -> dict[str, str]:
    """``{"--onnx": "pose.onnx", "--fp16": "", ...}`` of a ``trtexec ...`` line (shell-quoted as edgepose writes)."""
    words = shlex.split(line)
    if not words or words[0] != "trtexec":
        raise TrtexecRefused(f"not a trtexec line: {line!r}")
    options: dict[str, str] = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key in options:
            raise TrtexecRefused(f"{key} given twice")
        options[key] = value
    return options


def trtexec_outcome(line: str, version: str, graph: str) -> dict:
    """``{"config": {strongly_typed, flags, device}, "precision": ..., "warnings": [...]}`` for ``line`` run by
    trtexec ``version`` on an ONNX graph of precision ``graph`` ("fp32" | "fp16" | "int8"); TrtexecRefused where
    trtexec exits with an error or the build fails. ``flags`` holds FP16 / INT8 / GPU_FALLBACK, the flags
    edgepose's own builder sets, so the two configurations compare directly."""
    release = version_tuple(version)
    options = parse(line)
    known = COMMON | (PRECISION_FLAGS if release[0] < 11 else set())
    unknown = sorted(set(options) - known)
    if unknown:
        raise TrtexecRefused(f"trtexec {version}: unknown option(s) {unknown}")
    strongly = release[0] >= 11 or "--stronglyTyped" in options
    fp16, int8, warnings = "--fp16" in options, "--int8" in options, []
    if strongly and (fp16 or int8):
        warnings.append("precision flags dropped: the graph is strongly typed")
        fp16 = int8 = False
    flags = {name for name, on in (("FP16", fp16), ("INT8", int8)) if on}
    device = "GPU"
    if "--useDLACore" in options:
        if release[0] >= 11 and release < (11, 4, 1):
            raise TrtexecRefused(f"TensorRT {version} has no DLA")
        device = "DLA"
        flags.add("GPU_FALLBACK" if "--allowGPUFallback" in options else "DIRECT_IO")
        if release[0] < 11:
            flags.add("PREFER_PRECISION_CONSTRAINTS")
            if not int8:
                flags.add("FP16")
    if strongly and flags & WEAK_ONLY:
        raise TrtexecRefused(f"condition: !config.getFlag(BuilderFlag::k{sorted(flags & WEAK_ONLY)[0]})")
    if strongly:
        precision = graph
    elif graph == "int8":
        if "INT8" not in flags:
            raise TrtexecRefused("a Q/DQ graph in a weakly typed network needs --int8")
        precision = "int8"
    else:
        precision = "fp16" if "FP16" in flags else "fp32"
    config = {"strongly_typed": strongly, "flags": sorted(flags & {"FP16", "INT8", "GPU_FALLBACK"}),
              "device": device}
    return {"config": config, "precision": precision, "warnings": warnings}
