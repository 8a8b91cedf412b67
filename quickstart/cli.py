"""``edgepose quickstart``: the toolkit's whole job on an embedded default, in one resumable command.

    edgepose quickstart [--fast | --config PROFILE.yaml] [--out runs/quickstart] [--force] [--no-progress]
    python -m quickstart.cli --fast --out /tmp/qs

Stages (one header line each; outputs under OUT, see ``quickstart.stages``):

    data -> teacher -> student (distilled) -> prune (+ fine-tune) -> export (FP32 ONNX, parity-checked)
      -> quantize (INT8 QDQ PTQ, FP16) -> engines (TensorRT, when present) -> evaluate (COCO AP) -> benchmark
      (ONNX Runtime CPU latency) -> report (OUT/report.md, OUT/report.json, OUT/plots/)

Each finished stage leaves a stamp (``quickstart.stamps``) keyed on its config section and its inputs'
digests. A rerun skips every stage whose stamp and outputs are intact and whose key is unchanged; a stage that
must run (changed config or inputs, a missing or altered output, an unreadable stamp) reruns from a clean folder,
and so do all the stages after it. An interrupted stage resumes (training continues from ``last.pth``).
``--force`` redoes everything. Profiles: ``quickstart.config``.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgepose.errors import EdgePoseError, InputError
from edgepose.io import read_json
from quickstart import stages as st
from quickstart.config import PROFILES, QuickstartProfile, load_profile
from quickstart.report import run_report
from quickstart.stamps import Stamps, key_of

HELP = "the whole job on the synthetic set: train, distil, prune, quantize, report"
DEFAULT_OUT = "runs/quickstart"


def _train_key(section: str) -> Callable[[QuickstartProfile], dict]:
    return lambda p: {section: asdict(getattr(p, section)), "card": p.card, "augment": p.augment, "seed": p.seed}


def _alone_key(p: QuickstartProfile) -> dict:
    """The student-alone run depends on the student's schedule, not on its distillation weight."""
    student = {k: v for k, v in asdict(p.student).items() if k != "alpha"}
    return {"student": student, "card": p.card, "augment": p.augment, "seed": p.seed}


@dataclass(frozen=True)
class Stage:
    """One step: its inputs (earlier stages), the profile part it depends on, what it owns under OUT, its code."""

    name: str
    title: Callable[[QuickstartProfile], str]
    deps: tuple[str, ...]
    config: Callable[[QuickstartProfile], dict]
    owns: tuple[str, ...]  # paths under OUT emptied before a clean run
    run: Callable[[st.Context, bool], list[str]]


STAGES: tuple[Stage, ...] = (
    Stage("data", lambda p: f"synthetic dataset ({p.data.train} train / {p.data.val} val images)", (),
          lambda p: {"data": {k: v for k, v in asdict(p.data).items() if k != "workers"}}, ("data",), st.run_data),
    Stage("teacher", lambda p: f"train the teacher {p.teacher.model} ({p.teacher.epochs} epochs)", ("data",),
          _train_key("teacher"), ("teacher",), st.run_teacher),
    Stage("alone", lambda p: f"train the student {p.student.model} alone ({p.student.epochs} epochs, no teacher)",
          ("data",), _alone_key, ("student_alone",), st.run_student_alone),
    Stage("student", lambda p: f"distil the student {p.student.model} ({p.student.epochs} epochs)",
          ("data", "teacher"), _train_key("student"), ("student",), st.run_student),
    Stage("prune", lambda p: f"prune {p.prune.target_flops_ratio:.0%} of the student's FLOPs, fine-tune "
          f"{p.prune.epochs} epochs", ("data", "student"), lambda p: {"prune": asdict(p.prune)}, ("pruned",),
          st.run_prune),
    Stage("export", lambda p: "export FP32 ONNX (teacher, both students, pruned), parity-checked",
          ("teacher", "alone", "student", "prune"), lambda p: {}, ("export",), st.run_export),
    Stage("quantize", lambda p: f"INT8 PTQ ({p.quantize.method}, {p.quantize.calib_images} train crops) and FP16",
          ("data", "export"), lambda p: {"quantize": asdict(p.quantize)}, ("quantize",), st.run_quantize),
    Stage("engines", lambda p: "TensorRT engines (when TensorRT and a GPU are present)", ("export", "quantize"),
          lambda p: st.tensorrt_here(), ("engines",), st.run_engines),
    Stage("evaluate", lambda p: "COCO AP of every variant (val split, ground-truth boxes)",
          ("data", "export", "quantize"), lambda p: {}, ("eval",), st.run_evaluate),
    Stage("benchmark", lambda p: f"ONNX Runtime CPU latency (batch {p.benchmark.batches}, {p.benchmark.rounds} "
          "rounds)", ("data", "export", "quantize"), lambda p: {"benchmark": asdict(p.benchmark)}, ("bench",),
          st.run_benchmark),
    Stage("report", lambda p: "report.md, report.json, plots",
          ("data", "teacher", "alone", "student", "prune", "export", "quantize", "engines", "evaluate", "benchmark"),
          lambda p: {"profile": p.name, "low_accuracy": p.low_accuracy}, ("report.md", "report.json", "plots"),
          run_report),
)


@dataclass
class StageRun:
    """What one stage did in this invocation."""

    name: str
    action: str  # "skipped" | "ran" | "resumed"
    reason: str
    seconds: float


@dataclass
class QuickstartResult:
    """The outcome of ``run_quickstart``."""

    out: Path
    stages: list[StageRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def report(self) -> Path:
        """OUT/report.md."""
        return self.out / "report.md"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a new or empty folder, or an earlier quickstart's folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "stamps").is_dir():
        raise InputError(f"--out {out} is not empty and holds no quickstart run (no stamps/ folder): give a new or "
                         "empty folder, or an earlier quickstart's folder")


def _clear(out: Path, owned: tuple[str, ...]) -> None:
    for rel in owned:
        path = out / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def run_quickstart(profile: QuickstartProfile, out: str | os.PathLike, force: bool = False, progress: bool = True,
                   command: str = "", log: Callable[[str], None] = print) -> QuickstartResult:
    """Run (or bring up to date) every stage for ``profile`` under ``out``; see the module docstring."""
    started = time.perf_counter()
    out = Path(out)
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    stamps = Stamps(out)
    command = command or f"run_quickstart(profile '{profile.name}', out '{out}') from Python"
    ctx = st.Context(out, copy.deepcopy(profile), progress, command, tuple((s.name, s.title(profile)) for s in STAGES))
    result = QuickstartResult(out)
    digests: dict[str, dict[str, str]] = {}
    earlier_ran = False
    for i, stage in enumerate(STAGES, 1):
        key = key_of({"stage": stage.name, "config": stage.config(ctx.profile),
                      "inputs": {d: digests[d] for d in stage.deps}})
        action, reason = stamps.check(stage.name, key)
        if force:
            action, reason = "run", "--force"
        elif earlier_ran and action == "skip":
            action, reason = "run", "an earlier stage ran"
        verb = {"skip": "skipped", "resume": "resuming", "run": "running"}[action]
        log(f"[{i}/{len(STAGES)}] {stage.name}: {stage.title(ctx.profile)} -- {verb} ({reason})")
        if action == "skip":
            digests[stage.name] = stamps.read(stage.name).outputs
            result.stages.append(StageRun(stage.name, "skipped", reason, 0.0))
            continue
        if action == "run":
            _clear(out, stage.owns)
        stamps.begin(stage.name, key)
        t0 = time.perf_counter()
        outputs = stage.run(ctx, action == "resume")
        seconds = time.perf_counter() - t0
        digests[stage.name] = stamps.finish(stage.name, key, outputs, seconds).outputs
        result.stages.append(StageRun(stage.name, "resumed" if action == "resume" else "ran", reason, seconds))
        log(f"      {stage.name} done in {seconds:.1f} s")
        earlier_ran = True
    result.seconds = time.perf_counter() - started
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose quickstart``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--fast", action="store_true",
                       help="the fast profile: 3-4 minutes on 2 CPU cores, on an easy synthetic task")
    which.add_argument("--config", metavar="PROFILE.yaml",
                       help="a profile of your own (see quickstart/config.py)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="redo every stage, even those that are up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Pick the profile, run the stages, print where the report is."""
    profile = load_profile(args.config) if args.config else PROFILES["fast" if args.fast else "default"]
    argv = ["edgepose", "quickstart", *(["--fast"] if args.fast else []),
            *(["--config", args.config] if args.config else []), "--out", args.out,
            *(["--force"] if args.force else [])]
    result = run_quickstart(profile, args.out, force=args.force, progress=not args.no_progress,
                            command=shlex.join(argv))
    ran = [s.name for s in result.stages if s.action != "skipped"]
    for row in read_json(result.out / "report.json", "quickstart report")["variants"]:
        print(f"  {row['variant']:<13} AP {row['AP']:.3f}  {row['ms_per_person_b1']:7.2f} ms/person (batch 1)  "
              f"{row['size_bytes'] / 1e6:6.2f} MB")
    print(f"done in {result.seconds:.1f} s ({len(ran)} of {len(result.stages)} stages ran): {result.report}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m quickstart.cli [--fast] [--out DIR] [--force]``."""
    parser = argparse.ArgumentParser(prog="edgepose quickstart", description=HELP)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except EdgePoseError as exc:
        print(f"edgepose quickstart: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
