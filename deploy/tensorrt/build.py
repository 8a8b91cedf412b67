"""ONNX -> TensorRT engine (TensorRT 10 and 11), the ModelCard written beside it as ``<engine>.card.json``.

    result = build_engine("pose.onnx", "pose.engine", BuildOptions(precision="fp16", max_batch=16))

``tensorrt`` is imported only when an engine is built. Every TensorRT version difference lives in one small function:

- ``plan_precision``: which (requested precision, graph precision) pairs a TensorRT version can build, on the GPU
  or DLA, and how (strongly typed network or not, FP16/INT8 builder flags or not). TensorRT 11 removed
  ``BuilderFlag.FP16``/``INT8``: precision comes from the graph (an FP16 ONNX from ``edgepose quantize --mode fp16``,
  Q/DQ INT8 from ``deploy.quantize.ptq``). DLA: TensorRT 10 builds it weakly typed with the FP16 flag (trtexec 10.3
  sets that flag itself for ``--useDLACore``, and a strongly typed network rejects it: NVIDIA/TensorRT issues 4228,
  4253); 11.0-11.3 have no DLA; 11.4.1 brings it back, strongly typed, on Jetson AGX Orin with JetPack 7.2.2+.
- ``network_flags``: TensorRT < 10 needs ``EXPLICIT_BATCH``; 10 is explicit-batch always and strongly typed only
  on request (``STRONGLY_TYPED``); 11 is strongly typed always (no ``EXPLICIT_BATCH``, ``STRONGLY_TYPED`` ignored).
- ``set_fp16``: ``config.set_flag(BuilderFlag.FP16)``, refused on 11.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass

from edgepose.errors import ConfigError, MissingDependencyError, ModelError

PRECISIONS = ("fp32", "fp16", "from-graph")
DLA_IN_11 = (11, 4, 1)  # "Working with DLA" (TensorRT 11.4.1): DLA absent in 11.0-11.3, back in 11.4.1
TRT_MISSING = (
    "TensorRT is not installed here. On a Jetson it comes with JetPack (apt: python3-libnvinfer, already in the "
    "JetPack image); on an x86 NVIDIA GPU machine install NVIDIA's wheels (pip install tensorrt, which needs "
    "NVIDIA's package server)"
)


@dataclass(frozen=True)
class BuildOptions:
    """How to build an engine. ``precision``: "fp32" | "fp16" | "from-graph" (engine precision = the ONNX's).

    The batch range becomes the optimisation profile of the card's input; ``timing_cache`` (a file) is loaded when
    present and saved after the build; ``dla_core`` runs the engine on that DLA core (Jetson Orin/Xavier), with
    unsupported layers on the GPU when ``gpu_fallback``.
    """

    precision: str = "from-graph"
    min_batch: int = 1
    opt_batch: int = 4
    max_batch: int = 16
    workspace_mib: int = 1024
    dla_core: int | None = None
    gpu_fallback: bool = True
    timing_cache: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ConfigError(f"batch sizes must satisfy 1 <= min <= opt <= max, got min {self.min_batch}, "
                              f"opt {self.opt_batch}, max {self.max_batch}")
        if self.workspace_mib < 1:
            raise ConfigError(f"workspace_mib must be at least 1, got {self.workspace_mib}")
        if self.dla_core is not None and self.dla_core < 0:
            raise ConfigError(f"dla_core must be a core index (0 or 1), got {self.dla_core}")

    def key(self) -> dict:
        """The options that shape the engine (everything but the timing cache file, which only speeds builds up)."""
        out = dataclasses.asdict(self)
        del out["timing_cache"]
        return out


@dataclass(frozen=True)
class PrecisionPlan:
    """How ``plan_precision`` builds a precision request: network typing and the FP16 builder flag."""

    strongly_typed: bool
    fp16_flag: bool
    engine_precision: str  # "fp32" | "fp16" | "int8": what the engine computes in (mostly)
    int8_flag: bool = False  # a Q/DQ graph in a weakly typed network (TensorRT < 11) needs BuilderFlag.INT8


@dataclass
class BuildResult:
    """What ``build_engine`` wrote and how."""

    engine_path: str
    card_path: str
    tensorrt_version: str
    precision: str  # requested
    graph_precision: str
    engine_precision: str
    size_bytes: int
    seconds: float
    timing_cache: str | None = None


# ---------------------------------------------------------------------------------------------- versions


def import_tensorrt():
    """The ``tensorrt`` module, or MissingDependencyError saying where TensorRT comes from."""
    try:
        import tensorrt
    except ImportError as exc:
        raise MissingDependencyError(TRT_MISSING) from exc
    return tensorrt


def trt_version() -> str | None:
    """The installed TensorRT version ("10.3.0"), or None when TensorRT is not installed."""
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


def major_version(version: str | None = None) -> int:
    """Major version of ``version`` (default: the installed TensorRT; MissingDependencyError when absent)."""
    version = trt_version() if version is None else version
    if version is None:
        raise MissingDependencyError(TRT_MISSING)
    try:
        return int(str(version).split(".")[0])
    except ValueError as exc:
        raise ModelError(f"cannot read a TensorRT version from {version!r}") from exc


def version_tuple(version: str | int) -> tuple[int, int, int]:
    """(major, minor, patch) of a TensorRT version ("10.3.0.26" -> (10, 3, 0); a bare major 11 -> (11, 0, 0))."""
    try:
        parts = [int(p) for p in str(version).split(".")[:3]]
    except ValueError as exc:
        raise ModelError(f"cannot read a TensorRT version from {version!r}") from exc
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def plan_precision(precision: str, graph: str, trt: str | int, dla: bool = False) -> PrecisionPlan:
    """How TensorRT ``trt`` (a version, or a bare major) builds ``precision`` for a graph of precision ``graph``
    ("fp32"|"fp16"|"int8"), on DLA when ``dla``.

    Refuses (ConfigError) what would silently change the precision or cannot build: an FP32 request on an FP16/INT8
    graph; on TensorRT 11 (no FP16 builder flag) an FP16 request on a graph that is not FP16; an FP32 DLA engine;
    DLA on TensorRT 11.0-11.3.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    release = version_tuple(trt)
    major = release[0]
    if precision == "fp32" and graph != "fp32":
        raise ConfigError(f"an FP32 engine was asked for but the ONNX graph is {graph}: build it with precision "
                          f"'from-graph' (--precision from-graph), or give the FP32 ONNX")
    if major >= 11 and precision == "fp16" and graph != "fp16":
        raise ConfigError(
            f"TensorRT {major} has no FP16 builder flag: the precision comes from the ONNX graph, which is "
            f"{graph}. Convert the ONNX to FP16 first (edgepose quantize MODEL.onnx --out MODEL_fp16.onnx "
            f"--mode fp16) and build that one (--precision from-graph)"
        )
    if dla:
        return _plan_dla(precision, graph, release)
    if major >= 11:
        return PrecisionPlan(strongly_typed=True, fp16_flag=False, engine_precision=graph)
    if precision == "fp16":
        return PrecisionPlan(strongly_typed=False, fp16_flag=True, engine_precision="int8" if graph == "int8"
                             else "fp16", int8_flag=graph == "int8")
    if graph == "fp32":
        return PrecisionPlan(strongly_typed=False, fp16_flag=False, engine_precision="fp32")
    # from-graph, FP16 or Q/DQ graph: TensorRT 10 honours the graph's types in a strongly typed network;
    # 8.x/9.x (JetPack 5) has no such network: the FP16 flag runs FP16 layers in FP16, INT8 enables Q/DQ.
    if major >= 10:
        return PrecisionPlan(strongly_typed=True, fp16_flag=False, engine_precision=graph)
    return PrecisionPlan(strongly_typed=False, fp16_flag=graph == "fp16", engine_precision=graph,
                         int8_flag=graph == "int8")


def _plan_dla(precision: str, graph: str, release: tuple[int, int, int]) -> PrecisionPlan:
    """DLA: FP16/INT8 only; weakly typed with the FP16 flag before 11; strongly typed from 11.4.1; none between."""
    if graph == "fp32" and precision != "fp16":
        raise ConfigError("DLA runs FP16 and INT8 layers only: build with --fp16 (TensorRT 10) or from an FP16/INT8 "
                          "ONNX (--precision from-graph)")
    if release[0] >= 11:
        if release < DLA_IN_11:
            raise ConfigError(f"TensorRT {'.'.join(map(str, release))} has no DLA (NVIDIA removed it in 11.0-11.3; "
                              f"11.4.1 brings it back on Jetson AGX Orin with JetPack 7.2.2+): build DLA engines with "
                              f"TensorRT 10 (JetPack 6) or 11.4.1+, or leave out --dla-core")
        return PrecisionPlan(strongly_typed=True, fp16_flag=False, engine_precision=graph)
    return PrecisionPlan(strongly_typed=False, fp16_flag=True, engine_precision="int8" if graph == "int8" else "fp16",
                         int8_flag=graph == "int8")


def network_flags(trt, strongly_typed: bool = False) -> int:
    """``builder.create_network`` flags for this TensorRT version."""
    major = major_version(trt.__version__)
    flags = trt.NetworkDefinitionCreationFlag
    if major < 10:
        return 1 << int(flags.EXPLICIT_BATCH)  # implicit batch was the default before 10
    if major == 10 and strongly_typed:
        return 1 << int(flags.STRONGLY_TYPED)
    return 0  # 10: explicit batch is implicit; 11: strongly typed is the default


def set_fp16(config, trt) -> None:
    """Allow FP16 kernels (TensorRT < 11); TensorRT 11 removed the flag, so this refuses."""
    major = major_version(trt.__version__)
    if major >= 11:
        raise ConfigError(f"TensorRT {major} has no FP16 builder flag: convert the ONNX to FP16 "
                          f"(edgepose quantize --mode fp16) and build with precision 'from-graph'")
    config.set_flag(trt.BuilderFlag.FP16)


def set_int8(config, trt) -> None:
    """Enable the Q/DQ (INT8) layers of a weakly typed network (TensorRT < 11); TensorRT 11 removed the flag."""
    major = major_version(trt.__version__)
    if major >= 11:
        raise ConfigError(f"TensorRT {major} has no INT8 builder flag: a Q/DQ ONNX builds as it is (from-graph)")
    config.set_flag(trt.BuilderFlag.INT8)


# ---------------------------------------------------------------------------------------------- helpers


def graph_precision(onnx_path: str | os.PathLike) -> str:
    """"int8" for a Q/DQ graph, "fp16" for one with float16 weights or casts, else "fp32"."""
    import onnx

    try:
        model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"cannot parse {onnx_path} as ONNX (corrupt or truncated): {exc}") from exc
    nodes = model.graph.node
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in nodes):
        return "int8"
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer):
        return "fp16"
    casts = [a.i for n in nodes if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    return "fp16" if half in casts else "fp32"


def profile_shapes(shape: tuple[int, ...], card, options: BuildOptions, source: str = "the model"):
    """(min, opt, max) NCHW shapes for the network input ``shape`` (-1 = dynamic) and the card's H/W."""
    w, h = card.input_size
    if len(shape) != 4:
        raise ModelError(f"{source}: input '{card.input_name}' has shape {list(shape)}, expected 4-D NCHW")
    for axis, want in ((2, h), (3, w)):
        if shape[axis] not in (-1, want):
            raise ModelError(f"{source}: input '{card.input_name}' is {list(shape)} but the card's input_size "
                             f"[{w}, {h}] (width, height) means [N, 3, {h}, {w}]: fix the card or re-export")
    batches = (options.min_batch, options.opt_batch, options.max_batch)
    if shape[0] != -1 and set(batches) != {shape[0]}:
        raise ConfigError(f"{source} was exported with a fixed batch of {shape[0]}: re-export with a dynamic batch "
                          f"or use --min-batch {shape[0]} --opt-batch {shape[0]} --max-batch {shape[0]}")
    c = shape[1] if shape[1] > 0 else 3
    return tuple((b, c, h, w) for b in batches)


def format_parser_errors(parser, source: str) -> str:
    """Every error of a failed ``trt.OnnxParser``: index, node index/name/operator, description, code."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = f"node {err.node()}"
        for extra in ("node_name", "node_operator"):  # TensorRT >= 8.6
            value = getattr(err, extra, None)
            value = value() if callable(value) else value
            if value:
                where += f" {value!r}" if extra == "node_name" else f" ({value})"
        lines.append(f"  [{i + 1}] {where}: {err.desc()} [{err.code()}]")
    return (f"TensorRT's ONNX parser rejected {source} ({parser.num_errors} error(s)):\n" + "\n".join(lines)
            if lines else f"TensorRT's ONNX parser rejected {source} (it reported no details)")


def _set_profile(builder, network, config, card, options: BuildOptions, source: str) -> None:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if card.input_name not in inputs:
        raise ModelError(f"{source}: the card's input_name '{card.input_name}' is not among the inputs {list(inputs)}")
    low, opt, high = profile_shapes(tuple(inputs[card.input_name].shape), card, options, source)
    profile = builder.create_optimization_profile()
    profile.set_shape(card.input_name, low, opt, high)
    config.add_optimization_profile(profile)


def _set_dla(builder, config, trt, options: BuildOptions) -> None:
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if options.dla_core >= cores:
        raise ConfigError(f"DLA core {options.dla_core} asked for but this device has {cores} DLA core(s) "
                          f"(DLA exists on Jetson AGX/NX Orin and Xavier, not on discrete GPUs or Orin Nano)")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(options.dla_core)
    if options.gpu_fallback:
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _load_timing_cache(config, path: str | None) -> None:
    if not path:
        return
    data = b""
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            data = fh.read()
    # create_timing_cache returns None for a blob it cannot read (truncated, not a cache); set_timing_cache refuses
    # (False) a cache from another TensorRT version or GPU. Either way: a fresh cache, saved over the file after.
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        return
    if data:
        why = "is unreadable (truncated or not a timing cache)" if cache is None else "does not match this TensorRT/GPU"
        warnings.warn(f"timing cache {path} {why}; starting a new one", stacklevel=3)
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        raise ModelError(f"TensorRT could not start an empty timing cache for {path}")


def _save_timing_cache(config, path: str | None) -> None:
    from edgepose.io import atomic_write_bytes

    if path:
        atomic_write_bytes(path, bytes(config.get_timing_cache().serialize()))


# ---------------------------------------------------------------------------------------------- build


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                 options: BuildOptions | None = None) -> BuildResult:
    """Build a TensorRT engine from an ONNX pose model (card embedded) and write it with ``<engine>.card.json``.

    Both files are written atomically, the card after the engine. Raises ModelError (parse or build failure, every
    parser error listed), ConfigError (a precision/DLA request this TensorRT cannot honour) or
    MissingDependencyError (no TensorRT).
    """
    from deploy.artifact import write_artifact
    from edgepose.io import atomic_write_text
    from edgepose.onnx_card import read_card

    options = options or BuildOptions()
    src, dst = os.fspath(onnx_path), os.fspath(engine_path)
    if not os.path.isfile(src):
        raise ModelError(f"model file not found: {src}")
    card = read_card(src)
    graph = graph_precision(src)
    trt = import_tensorrt()
    plan = plan_precision(options.precision, graph, str(trt.__version__), dla=options.dla_core is not None)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, plan.strongly_typed))
    if network is None:
        raise ModelError(f"TensorRT {trt.__version__} could not create a network (see its messages above)")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(src):
        raise ModelError(format_parser_errors(parser, src))
    config = builder.create_builder_config()
    _set_profile(builder, network, config, card, options, src)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mib) << 20)
    if plan.fp16_flag:
        set_fp16(config, trt)
    if plan.int8_flag:
        set_int8(config, trt)
    if options.dla_core is not None:
        _set_dla(builder, config, trt, options)
    _load_timing_cache(config, options.timing_cache)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise ModelError(f"TensorRT could not build an engine from {src} (see TensorRT's messages above)")
    data = bytes(serialized)
    if trt.Runtime(logger).deserialize_cuda_engine(data) is None:
        raise ModelError(f"TensorRT built an engine from {src} that it cannot load back (see its messages above)")
    with write_artifact(dst, f"TensorRT {trt.__version__} {plan.engine_precision} engine") as tmp, \
            open(tmp, "wb") as fh:
        fh.write(data)
    card_path = dst + ".card.json"
    atomic_write_text(card_path, card.to_json() + "\n")
    _save_timing_cache(config, options.timing_cache)
    return BuildResult(dst, card_path, str(trt.__version__), options.precision, graph, plan.engine_precision,
                       len(data), seconds, options.timing_cache)
