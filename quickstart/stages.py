"""The stages of ``edgepose quickstart``: each builds its outputs under OUT and returns their paths (relative to OUT).

    data/       synthetic dataset               teacher/    SimpleBaseline training run (config.yaml, last.pth)
    student/    distilled Lite-HRNet run        pruned/     prune job (job.yaml, pruned.pth, report.json)
    export/     FP32 ONNX of every checkpoint   quantize/   INT8 (QDQ) and FP16 ONNX of the pruned student
    engines/    TensorRT engines, or why none   eval/       COCO AP of every variant (GT boxes, val split)
    bench/      ONNX Runtime CPU latency

A stage called with ``resume`` continues an interrupted run of the same inputs (training from ``last.pth``, the
dataset from its last finished chunk); otherwise its folder was emptied before the call.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgepose.io import atomic_write_text
from quickstart.config import QuickstartProfile, TrainStage

# Every model the report compares: name -> (ONNX file, checkpoint it came from, precision). Relative to OUT.
VARIANTS = {
    "teacher_fp32": ("export/teacher.onnx", "teacher/last.pth", "fp32"),
    "student_alone_fp32": ("export/student_alone.onnx", "student_alone/last.pth", "fp32"),
    "student_fp32": ("export/student.onnx", "student/last.pth", "fp32"),
    "pruned_fp32": ("export/pruned.onnx", "pruned/pruned.pth", "fp32"),
    "pruned_fp16": ("quantize/pruned_fp16.onnx", "pruned/pruned.pth", "fp16"),
    "pruned_int8": ("quantize/pruned_int8.onnx", "pruned/pruned.pth", "int8"),
}
# The variant each one was made from (None: trained); the distilled student learnt from the teacher.
SOURCES = {"teacher_fp32": None, "student_alone_fp32": None, "student_fp32": None, "pruned_fp32": "student_fp32",
           "pruned_fp16": "pruned_fp32", "pruned_int8": "pruned_fp32"}
EXPORTS = {"teacher": "teacher/last.pth", "student_alone": "student_alone/last.pth", "student": "student/last.pth",
           "pruned": "pruned/pruned.pth"}


@dataclass
class Context:
    """What every stage sees: the output folder, the profile, progress bars or not, the command line and the
    (name, title) of every stage (for the report)."""

    out: Path
    profile: QuickstartProfile
    progress: bool = True
    command: str = ""
    stages: tuple[tuple[str, str], ...] = ()

    def path(self, rel: str) -> str:
        """An absolute path under OUT."""
        return str(self.out / rel)

    def split(self, name: str) -> tuple[str, str]:
        """(annotation file, image folder) of the dataset's ``train`` or ``val`` split."""
        return self.path(f"data/annotations/person_keypoints_{name}.json"), self.path(f"data/{name}")


def _dump_json(path: str, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _dump_yaml(path: str, data: dict) -> None:
    import yaml

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def run_data(ctx: Context, resume: bool) -> list[str]:
    """Generate the synthetic dataset (resumes by chunks)."""
    from compress.data.synthetic import generate

    d = ctx.profile.data
    generate(ctx.out / "data", d.train, d.val, seed=d.seed, progress=ctx.progress, workers=d.workers, level=d.level)
    return ["data"]


def train_config(ctx: Context, stage: TrainStage, name: str, teacher: str | None = None):
    """The TrainConfig of a training stage, also written to OUT/NAME/config.yaml (for ``edgepose train``)."""
    from compress.config import from_dict, to_dict
    from compress.train.config import TrainConfig

    p = ctx.profile
    train_ann, train_images = ctx.split("train")
    val_ann, val_images = ctx.split("val")
    spec = {
        "card": dict(p.card),
        "data": {"train_ann": train_ann, "train_images": train_images, "val_ann": val_ann, "val_images": val_images,
                 "batch_size": stage.batch_size, "val_batch_size": 64, "workers": p.loader_workers},
        "model": {"name": stage.model, "kwargs": dict(stage.kwargs)}, "augment": dict(p.augment),
        "optim": {"name": "adamw", "lr": stage.lr, "weight_decay": 1e-4, "warmup_iters": stage.warmup_iters,
                  "schedule": "cosine", "min_lr_ratio": 0.02},
        "epochs": stage.epochs, "out_dir": ctx.path(name), "seed": p.seed,
        "max_iters_per_epoch": stage.max_iters_per_epoch, "eval_every": stage.eval_every,
        "save_every": stage.eval_every,  # a checkpoint per validation: resumable, without a write every epoch
        "cpu_bf16": stage.cpu_bf16,
    }
    if teacher is not None:
        spec["distill"] = {"teacher": teacher, "alpha": stage.alpha,
                           "features": [dict(f) for f in getattr(stage, "features", [])]}
    config = from_dict(TrainConfig, spec, f"quickstart {name}")
    _dump_yaml(ctx.path(f"{name}/config.yaml"), to_dict(config))
    return config


def run_teacher(ctx: Context, resume: bool) -> list[str]:
    """Train the teacher (resumable)."""
    from compress.train.loop import train

    train(train_config(ctx, ctx.profile.teacher, "teacher"), resume="auto" if resume else False, progress=ctx.progress)
    return ["teacher/last.pth"]


def run_student_alone(ctx: Context, resume: bool) -> list[str]:
    """Train the student without a teacher: the same model, schedule and seed as the distilled one (the baseline
    that shows what distillation adds)."""
    from compress.train.loop import train

    config = train_config(ctx, ctx.profile.student, "student_alone")
    train(config, resume="auto" if resume else False, progress=ctx.progress)
    return ["student_alone/last.pth"]


def run_student(ctx: Context, resume: bool) -> list[str]:
    """Distil the student from the teacher (resumable)."""
    from compress.train.loop import train

    config = train_config(ctx, ctx.profile.student, "student", teacher=ctx.path("teacher/last.pth"))
    train(config, resume="auto" if resume else False, progress=ctx.progress)
    return ["student/last.pth"]


def run_prune(ctx: Context, resume: bool) -> list[str]:
    """Prune the student to the FLOPs target, fine-tuned with the unpruned student as the teacher."""
    from compress.config import to_dict
    from compress.prune.job import FinetuneSettings, PruneJob, run_job
    from compress.prune.structured import PruneSettings

    s = ctx.profile.prune
    job = PruneJob(ctx.path("student/last.pth"), ctx.path("pruned"),
                   PruneSettings(target_flops_ratio=s.target_flops_ratio, importance=s.importance),
                   FinetuneSettings(epochs=s.epochs, lr=s.lr, warmup_iters=s.warmup_iters,
                                    distill_alpha=s.distill_alpha, max_iters_per_epoch=s.max_iters_per_epoch))
    _dump_yaml(ctx.path("pruned/job.yaml"), to_dict(job))
    run_job(job, progress=ctx.progress)
    return ["pruned/pruned.pth", "pruned/report.json"]


def _parity(report) -> dict:
    return {"passed": report.passed, "keypoint_max_px": report.keypoint_max_px,
            "keypoint_mean_px": report.keypoint_mean_px, "first_failure": report.first_failure}


def run_export(ctx: Context, resume: bool) -> list[str]:
    """FP32 ONNX of the teacher, both students and the pruned student, each parity-checked against its checkpoint
    (each checkpoint is loaded once; a diverging export never appears under its name)."""
    from compress.checkpoint import load_model
    from compress.models.complexity import count_flops, count_params
    from compress.progress import bar
    from deploy.export import export_model
    from deploy.verify import LoadedModel, verify
    from edgepose.errors import ModelError

    record = {}
    for name, ckpt in bar(EXPORTS.items(), desc="export", enabled=ctx.progress):
        onnx = ctx.path(f"export/{name}.onnx")
        model, card, _ = load_model(ctx.path(ckpt))
        reports = []

        def check(tmp: str, model=model, card=card, ckpt=ckpt, reports=reports) -> None:
            parity = verify(LoadedModel(model, card, ckpt), tmp)
            if not parity.passed:
                raise ModelError(f"the ONNX export of {ckpt} does not match it: {parity.summary()}")
            reports.append(parity)

        export_model(model, card, onnx, check=check)
        record[name] = {"checkpoint": ckpt, "onnx": f"export/{name}.onnx", "arch": model.arch["name"],
                        "params": count_params(model), "gflops": count_flops(model, card.input_size),
                        "parity_vs_checkpoint": _parity(reports[0])}
    _dump_json(ctx.path("export/export.json"), record)
    return [*(f"export/{n}.onnx" for n in EXPORTS), "export/export.json"]


def _pruned_int8(ctx: Context, dst: str, activations: str):
    """The pruned student's ONNX quantized to ``dst`` (calibrated on train crops); returns (report, its card)."""
    from deploy.quantize.calibration import CalibrationImages
    from deploy.quantize.ptq import quantize_int8
    from edgepose.onnx_card import read_card

    q = ctx.profile.quantize
    src = ctx.path("export/pruned.onnx")
    train_ann, train_images = ctx.split("train")
    card = read_card(src)  # read once, passed to calibration and the conversion
    calibration = CalibrationImages(src, train_ann, train_images, num=q.calib_images, card=card)
    report = quantize_int8(src, dst, calibration, method=q.method, activations=activations, card=card)
    return report, card


def run_quantize(ctx: Context, resume: bool) -> list[str]:
    """INT8 (QDQ PTQ, calibrated on train crops) and FP16 copies of the pruned student's ONNX."""
    from deploy.quantize.ptq import convert_fp16
    from deploy.verify import Tolerance, verify

    src = ctx.path("export/pruned.onnx")
    int8, card = _pruned_int8(ctx, ctx.path("quantize/pruned_int8.onnx"), activations="uint8")  # ORT's x86 path
    fp16 = ctx.path("quantize/pruned_fp16.onnx")
    reports = {"int8": int8,
               "fp16": convert_fp16(src, fp16, card=card)}
    record = {}
    for precision, report in reports.items():
        parity = verify(src, report.dst, Tolerance.for_precision(precision))
        record[f"pruned_{precision}"] = {**report.to_dict(), "src": "export/pruned.onnx",
                                         "dst": f"quantize/pruned_{precision}.onnx",
                                         "parity_vs_fp32": _parity(parity)}
    _dump_json(ctx.path("quantize/quantize.json"), record)
    return ["quantize/pruned_int8.onnx", "quantize/pruned_fp16.onnx", "quantize/quantize.json"]


def tensorrt_here() -> dict:
    """{"tensorrt": version or None, "gpu": device name or None}: whether engines can be built here."""
    from deploy.tensorrt.build import trt_version

    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA setup counts as no GPU
        gpu = None
    return {"tensorrt": trt_version(), "gpu": gpu}


def _tensorrt_int8(ctx: Context) -> str:
    """The pruned student quantized for TensorRT (int8 activations, full scope), calibrated as the CPU copy was;
    made only where an engine is built. Returns its path under OUT."""
    rel = "engines/pruned_int8_tensorrt.onnx"
    _pruned_int8(ctx, ctx.path(rel), activations="int8")
    return rel


def run_engines(ctx: Context, resume: bool) -> list[str]:
    """A TensorRT engine per variant when TensorRT imports and a GPU is present; otherwise the reason why not."""
    from deploy.tensorrt.build import BuildOptions, build_engine

    here = tensorrt_here()
    record: dict = {**here, "engines": {}, "skipped": None}
    if here["tensorrt"] is None or here["gpu"] is None:
        record["skipped"] = "skipped: no TensorRT" if here["tensorrt"] is None else "skipped: no GPU"
    else:
        options = BuildOptions(precision="from-graph", min_batch=1, opt_batch=8, max_batch=8)
        for name, (onnx, _, _) in VARIANTS.items():
            engine = f"engines/{name}.engine"
            try:
                if name == "pruned_int8":  # the CPU copy has uint8 activations; TensorRT's Q/DQ format is int8
                    onnx = _tensorrt_int8(ctx)
                    record["engines"][name] = {"onnx": onnx}
                result = build_engine(ctx.path(onnx), ctx.path(engine), options)
                record["engines"][name] = {**record["engines"].get(name, {}), "engine": engine,
                                           "precision": result.engine_precision, "size_bytes": result.size_bytes,
                                           "seconds": result.seconds}
            except Exception as exc:  # TensorRT support is unverified: one failing variant must not hide the rest
                record["engines"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    _dump_json(ctx.path("engines/engines.json"), record)
    built = [e["engine"] for e in record["engines"].values() if "engine" in e]
    return [*built, "engines/engines.json"]


def run_evaluate(ctx: Context, resume: bool) -> list[str]:
    """COCO keypoint AP of every variant on the val split with ground-truth boxes (the runtime's pipeline)."""
    from compress.progress import bar
    from edgepose.coco.evaluate import evaluate_model

    val_ann, val_images = ctx.split("val")
    record = {}
    for name, (onnx, _, _) in bar(VARIANTS.items(), desc="evaluate", enabled=ctx.progress):
        metrics, results = evaluate_model(ctx.path(onnx), val_ann, val_images)
        record[name] = {**metrics, "persons": len(results)}
    _dump_json(ctx.path("eval/metrics.json"), record)
    return ["eval/metrics.json"]


def run_benchmark(ctx: Context, resume: bool) -> list[str]:
    """ONNX Runtime CPU latency per person of every variant (round-robin, medians), and the format to run the pruned
    student in on this CPU: a quantized copy only where it measured faster than its FP32 source at every batch size
    (``deploy.quantize.choice.cpu_format``; INT8 loses to FP32 on Lite-HRNet with ONNX Runtime's CPU provider)."""
    from deploy.quantize.choice import cpu_format
    from edgepose.bench.environment import environment
    from quickstart.bench import latency_table, val_crops

    b = ctx.profile.benchmark
    val_ann, val_images = ctx.split("val")
    paths = {name: ctx.path(onnx) for name, (onnx, _, _) in VARIANTS.items()}
    crops = val_crops(paths["student_fp32"], val_ann, val_images, max(b.batches))
    timing = latency_table(paths, crops, b, progress=ctx.progress)
    choice = cpu_format(timing, "pruned_fp32", candidates=[n for n in VARIANTS if SOURCES[n] == "pruned_fp32"])
    _dump_json(ctx.path("bench/latency.json"), {"latency": timing, "cpu_choice": choice,
                                                 "machine": environment(b.threads, ["CPUExecutionProvider"]),
                                                 "settings": {"rounds": b.rounds, "warmup": b.warmup,
                                                              "batches": list(b.batches), "threads": b.threads}})
    return ["bench/latency.json"]


def load_output(ctx: Context, rel: str):
    """A JSON output of an earlier stage."""
    with open(os.path.join(ctx.out, rel), encoding="utf-8") as fh:
        return json.load(fh)
