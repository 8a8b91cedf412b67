"""A Jetson bundle: everything a robot needs to build its own TensorRT engines and run the model.

    manifest = make_jetson_bundle("pose.onnx", "BUNDLE", calibration=CalibrationImages("pose.onnx", ann, images))
    problems = check_bundle("BUNDLE")        # [] when every file is there, intact and consistent

BUNDLE/ holds the ONNX variants (``pose_fp32.onnx``, ``pose_fp16.onnx``, ``pose_int8.onnx``, each with the card
embedded), ``card.json``, ``build_engines.sh`` (an ``edgepose build-engine`` line per variant, the equivalent
``trtexec`` line commented under it, DLA lines for Orin behind ``DLA=1``), ``requirements-jetson.txt``,
``README.md`` and ``manifest.json`` (every file's sha256 and size, the card, the variants). Engines are not shipped:
they are tied to the TensorRT version and GPU they are built on. The folder appears complete or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deploy.artifact import write_artifact
from deploy.tensorrt.build import BuildOptions, graph_precision
from deploy.tensorrt.engine_cache import file_sha256
from deploy.tensorrt.jetson import JETPACK_NOTES, trtexec_command
from edgepose.card import ModelCard
from edgepose.errors import EdgePoseError, InputError, ModelError

VARIANTS = ("fp32", "fp16", "int8")
FORMAT = 1
REQUIRED_FILES = ("card.json", "build_engines.sh", "requirements-jetson.txt", "README.md")
GPU_OPTIONS = BuildOptions(min_batch=1, opt_batch=4, max_batch=16, timing_cache="timing.cache")
DLA_OPTIONS = BuildOptions(min_batch=1, opt_batch=1, max_batch=1, dla_core=0, gpu_fallback=True,
                           timing_cache="timing_dla.cache")

REQUIREMENTS = """\
# The edgepose runtime on a Jetson (JetPack 6, Python 3.10). Then: pip install --no-deps edgepose
numpy
pyyaml
# OpenCV on the Jetson: JetPack 6's own 4.8.0 (nvidia-opencv, in the JetPack image; its GStreamer/CSI camera
# support is why) is supported. It warps in fixed point (1/32 pixel), so CPU crops differ from the GPU crop
# (crop="cuda") by up to 9 grey levels (edgepose.cuda.crop.cpu_parity_levels()). For the exact float warp the
# GPU crop follows (within 1 level), use pip's aarch64 wheel instead: pip install "opencv-python-headless>=4.11"
opencv-python-headless>=4.11; platform_machine != "aarch64"
# TensorRT engines: TensorRT's Python API comes with JetPack (python3-libnvinfer), not from pip; pycuda drives it.
# The GPU crop and argmax compile their kernels with nvcc at run time: export PATH=/usr/local/cuda/bin:$PATH
pycuda
# ONNX models on the GPU instead: the onnxruntime-gpu wheel for your JetPack from the Jetson Zoo
# (https://elinux.org/Jetson_Zoo#ONNX_Runtime); plain onnxruntime (CPU) works everywhere.
# onnxruntime-gpu
"""


def _build_script(card: ModelCard, variants: dict[str, dict]) -> str:
    lines = ["#!/bin/sh", "# Build this bundle's TensorRT engines on the device that will run them (an engine is",
             "# tied to the TensorRT version and GPU it is built on). Run: sh build_engines.sh",
             "# DLA engines on Jetson AGX/NX Orin as well: DLA=1 sh build_engines.sh",
             "# Under each edgepose line, trtexec lines build the same engine without edgepose: the first for",
             "# TensorRT 10 (JetPack 6), the labelled one for TensorRT 11 (DLA: 11.4.1+, JetPack 7.2.2+; 11.0-11.3",
             "# have no DLA). On 11 the precision is the ONNX's own: there is no --fp16 or --int8.",
             "set -eu", 'cd "$(dirname "$0")"', 'EDGEPOSE="${EDGEPOSE:-edgepose}"', ""]

    def block(onnx: str, engine: str, options: BuildOptions, graph: str | None, indent: str = "") -> list[str]:
        args = ["build-engine", onnx, "--out", engine, "--precision", options.precision,
                "--min-batch", options.min_batch, "--opt-batch", options.opt_batch, "--max-batch", options.max_batch,
                "--workspace-mib", options.workspace_mib, "--timing-cache", options.timing_cache]
        if options.dla_core is not None:
            args += ["--dla-core", options.dla_core]
        out = [indent + '"$EDGEPOSE" ' + " ".join(shlex.quote(str(a)) for a in args)]
        label = "TensorRT 11.4.1+" if options.dla_core is not None else "TensorRT 11"
        for prefix, version in (("", "10.3"), (f"{label}: ", "11.4.1")):
            trtexec = trtexec_command(onnx, engine, options, card=card, graph=graph, tensorrt=version)
            out.append(f"{indent}#   {prefix}{_comment(trtexec)}")
        return out

    dla = []
    for name, info in variants.items():
        options = GPU_OPTIONS if name != "fp32" else dataclasses.replace(GPU_OPTIONS, precision="fp32")
        graph = info["graph_precision"] if info["graph_precision"] in ("fp32", "fp16", "int8") else None
        lines.append(_comment(f"# {name}: {info['graph_precision']} graph"))
        lines += block(info["onnx"], info["engine"], options, graph)
        if graph in ("fp16", "int8"):  # DLA runs FP16/INT8 layers only; it wants a static batch
            dla += block(info["onnx"], info["engine"].replace(".engine", "_dla0.engine"), DLA_OPTIONS, graph, "  ")
    if dla:
        lines += ["", 'if [ "${DLA:-0}" = "1" ]; then', *dla, "fi"]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """``text`` for a shell comment line: a line break or other unprintable character is written escaped, so no
    part of it can become a command of its own."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def targets(variants: dict[str, dict]) -> dict[str, str]:
    """The variant to run per target: TensorRT on the Jetson the lowest precision made (int8, else fp16, else
    fp32); ONNX Runtime on a CPU FP32, since the bundle carries no measurement on that CPU and a quantized variant
    pays there only where measured faster (not INT8 on Lite-HRNet: ``deploy.quantize.choice``)."""
    order = [v for v in ("int8", "fp16", "fp32") if v in variants]
    return {"tensorrt": order[0], "onnxruntime_cpu": "fp32" if "fp32" in variants else order[-1]}


def _readme(card: ModelCard, variants: dict[str, dict], skipped: dict[str, str]) -> str:
    w, h = card.input_size
    rows = "\n".join(f"- `{v['onnx']}`: {v['graph_precision']} graph -> `{v['engine']}`" for v in variants.values())
    rows += "".join(f"\n- {name}: not made ({why})" for name, why in skipped.items())
    best = variants.get("fp16", next(iter(variants.values())))
    cpu = variants[targets(variants)["onnxruntime_cpu"]]
    return f"""# edgepose Jetson bundle{': ' + card.name if card.name else ''}

Pose model {w}x{h} ({card.color}), codec {card.codec}, {card.num_keypoints} keypoints. `card.json` is its card
(also embedded in every ONNX file); `manifest.json` lists every file with its sha256.

{rows}

## On the robot

1. Runtime: `pip install -r requirements-jetson.txt` (read its comments: OpenCV and TensorRT come from JetPack),
   then `pip install --no-deps edgepose`.
2. Engines, built on the robot itself: `sh build_engines.sh` (`DLA=1 sh build_engines.sh` adds DLA engines on
   AGX/NX Orin). Each engine gets its card beside it (`<engine>.card.json`). Without edgepose, run the commented
   `trtexec` lines instead and copy `card.json` to `<engine>.card.json`.
3. Run: `edgepose predict FRAMES_OR_VIDEO --model {best['engine']} --detector DETECTOR.onnx --out out/`
   (or `--model {cpu['onnx']}` through ONNX Runtime on a CPU, no engine needed: on a CPU, a quantized variant
   pays only where measured faster there, e.g. not INT8 on Lite-HRNet).

{JETPACK_NOTES}"""


def _quantized_info(report) -> dict:
    """The report's facts worth shipping: calibration, converted Convs, nodes kept float (named for INT8)."""
    info = {"quantized_convs": report.quantized_convs, "kept_float": len(report.excluded)}
    if report.variant == "int8":
        info |= {"method": report.method, "num_calibration": report.num_calibration, "int8_scope": report.scope,
                 "kept_float_nodes": {node: reason for node, reason in report.excluded}}
    return info


def make_jetson_bundle(onnx_fp32: str | os.PathLike, out_dir: str | os.PathLike,
                       calibration: object | Sequence[np.ndarray] | None = None,
                       variants: Sequence[str] = VARIANTS, card: ModelCard | None = None) -> dict:
    """Write the bundle for an FP32 ONNX pose model (card embedded) into ``out_dir``; returns the manifest.

    ``calibration``: a ``CalibrationImages`` or preprocessed (1, 3, H, W) tensors for the INT8
    variant, which is skipped (and noted in the manifest and README) when None. ``out_dir`` must not exist or be
    empty. ``card``: the card embedded in ``onnx_fp32`` when the caller has it (read from the file when None).
    The folder is written as one artifact (``deploy.artifact.write_artifact``): built beside ``out_dir``, checked
    by ``check_bundle``, then renamed into place.
    """
    from edgepose.io import atomic_write_text
    from edgepose.onnx_card import read_card

    src, out = os.fspath(onnx_fp32), Path(out_dir)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise InputError(f"unknown bundle variant(s) {unknown or list(variants)}; valid: {list(VARIANTS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"bundle folder {out} already exists and is not empty: choose a new folder or remove it")
    card = card or read_card(src)
    if graph_precision(src) != "fp32":
        raise InputError(f"{src} is not an FP32 graph: make the bundle from the FP32 export")
    with write_artifact(out, "Jetson bundle", check=_refuse_problems, folder=True) as tmp_dir:
        tmp = Path(tmp_dir)
        made, skipped = _write_variants(src, tmp, calibration, variants, card)
        atomic_write_text(tmp / "card.json", json.dumps(card.to_dict(), indent=2) + "\n")
        atomic_write_text(tmp / "build_engines.sh", _build_script(card, made))
        os.chmod(tmp / "build_engines.sh", 0o755)
        atomic_write_text(tmp / "requirements-jetson.txt", REQUIREMENTS)
        atomic_write_text(tmp / "README.md", _readme(card, made, skipped))
        files = {p.name: {"sha256": file_sha256(p), "size": p.stat().st_size} for p in sorted(tmp.iterdir())}
        manifest = {"format": FORMAT, "card": card.to_dict(), "variants": made, "skipped": skipped,
                    "targets": targets(made), "files": files}
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _refuse_problems(folder: str) -> None:
    """The bundle writer's check: a bundle that ``check_bundle`` faults is never renamed into place."""
    problems = check_bundle(folder)
    if problems:  # pragma: no cover - would be a bug in the writer
        raise ModelError(f"the bundle just written is inconsistent: {'; '.join(problems)}")


def _write_variants(src: str, tmp: Path, calibration, variants: Sequence[str],
                    card: ModelCard) -> tuple[dict, dict]:
    from deploy.quantize.ptq import convert_fp16, quantize_int8

    made, skipped = {}, {}
    fp32 = tmp / "pose_fp32.onnx"
    shutil.copyfile(src, fp32)
    for name in VARIANTS:
        if name not in variants:
            continue
        dst, info = tmp / f"pose_{name}.onnx", {}
        if name == "fp16":
            info = _quantized_info(convert_fp16(fp32, dst, card=card))
        elif name == "int8":
            if calibration is None:
                skipped[name] = "no calibration data given: pass CalibrationImages or preprocessed tensors"
                continue
            # TensorRT's format: every op it can take in INT8, symmetric int8 activations (not the CPU choice)
            info = _quantized_info(quantize_int8(fp32, dst, calibration, card=card, scope="all", activations="int8"))
        made[name] = {"onnx": dst.name, "engine": f"pose_{name}.engine", "graph_precision": graph_precision(dst),
                      "build_precision": "fp32" if name == "fp32" else "from-graph", **info}
    if "fp32" not in variants:
        fp32.unlink()
    return made, skipped


def _card_problems(folder: Path, manifest: dict) -> list[str]:
    from edgepose.onnx_card import read_card

    try:
        card = ModelCard.from_file(folder / "card.json")
    except EdgePoseError as exc:
        return [f"card.json: {exc}"]
    problems = []
    try:
        if ModelCard.from_dict(manifest.get("card")) != card:
            problems.append("manifest.json's card differs from card.json")
    except EdgePoseError as exc:
        problems.append(f"manifest.json's card is not a valid card: {exc}")
    for name, variant in manifest.get("variants", {}).items():
        onnx = folder / str(variant.get("onnx"))
        if not onnx.is_file():
            problems.append(f"variant {name}: {onnx.name} is missing")
            continue
        try:
            embedded = read_card(onnx)
        except EdgePoseError as exc:
            problems.append(f"variant {name}: {exc}")
            continue
        if embedded != card:
            want, got = card.to_dict(), embedded.to_dict()
            fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            problems.append(f"variant {name}: the card embedded in {onnx.name} differs from card.json in {fields}")
    return problems


def check_bundle(bundle_dir: str | os.PathLike) -> list[str]:
    """Problems of a bundle: missing or modified files, cards that disagree, a build script naming absent models.

    An empty list means the bundle is complete and consistent. Files not in the manifest (engines built on the
    robot, timing caches) are ignored.
    """
    folder = Path(bundle_dir)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"manifest.json is missing or unreadable in {folder}: {exc}"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return [f"manifest.json in {folder} has no 'files' table"]
    problems, files = [], manifest["files"]
    for name, info in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is listed in manifest.json but missing")
        elif path.stat().st_size != info.get("size"):
            problems.append(f"{name} is {path.stat().st_size} bytes, manifest.json says {info.get('size')}")
        elif file_sha256(path) != info.get("sha256"):
            problems.append(f"{name}: sha256 differs from manifest.json (modified or corrupt)")
    listed = [*REQUIRED_FILES, *(v.get("onnx") for v in manifest.get("variants", {}).values())]
    problems += [f"manifest.json does not list {name}" for name in listed if name not in files]
    problems += _card_problems(folder, manifest)
    script = folder / "build_engines.sh"
    if script.is_file():
        named = dict.fromkeys(re.findall(r"[\w.-]+\.onnx", script.read_text(encoding="utf-8")))
        problems += [f"build_engines.sh names {n}, which is not in the bundle" for n in named
                     if not (folder / n).is_file()]
    return problems
