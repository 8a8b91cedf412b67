"""``edgepose quickstart``: the whole chain on a micro profile, and the stamps that make reruns skip or redo stages."""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from edgepose.errors import InputError
from quickstart import cli as quickstart
from quickstart.cli import Stage, run_quickstart
from quickstart.config import (
    FAST,
    BenchStage,
    DataStage,
    PruneStage,
    QuantizeStage,
    QuickstartProfile,
    StudentStage,
    TrainStage,
    load_profile,
)
from quickstart.stages import VARIANTS

# Test only: a handful of images, one epoch of two iterations per training stage, two latency rounds.
MICRO = QuickstartProfile(
    name="micro",
    data=DataStage(train=8, val=4, workers=1),
    teacher=TrainStage("simple_baseline_18", epochs=1, batch_size=4, warmup_iters=1, max_iters_per_epoch=2,
                       kwargs={"deconv_channels": 32}),
    student=StudentStage("lite_hrnet_tiny", epochs=1, batch_size=4, warmup_iters=1, max_iters_per_epoch=2,
                         features=[{"student": "backbone", "teacher": "keypoint_head.deconv_layers", "weight": 1e-3}]),
    prune=PruneStage(target_flops_ratio=0.25, epochs=1, warmup_iters=1, max_iters_per_epoch=2),
    quantize=QuantizeStage(calib_images=4),
    benchmark=BenchStage(rounds=2, warmup=1),
    loader_workers=0,
    low_accuracy=True,
)
ORDER = [s.name for s in quickstart.STAGES]


def actions(result) -> dict[str, str]:
    return {s.name: s.action for s in result.stages}


def after(name: str) -> list[str]:
    return ORDER[ORDER.index(name):]


def stamps(out: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in (out / "stamps").glob("*.json")}


@dataclass
class Run:
    """The micro run every end-to-end test shares; ``profile`` is the one ``out`` is up to date with."""

    out: Path
    profile: QuickstartProfile
    seconds: float
    first: object


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("quickstart") / "out"
    started = time.perf_counter()
    result = run_quickstart(MICRO, out, progress=False, log=lambda _: None)
    return Run(out, MICRO, time.perf_counter() - started, result)


def test_micro_run_writes_every_stage_output_and_the_report(micro):
    # a guard against the micro profile growing into a real run, not a timing claim (a shared CI machine varies)
    assert micro.seconds < 240, f"the micro profile took {micro.seconds:.1f} s"
    assert actions(micro.first) == {name: "ran" for name in ORDER}
    out = micro.out
    for rel in ("data/synth.json", "teacher/last.pth", "teacher/config.yaml", "student_alone/last.pth",
                "student_alone/config.yaml", "student/last.pth",
                "student/config.yaml", "pruned/pruned.pth", "pruned/job.yaml", "pruned/report.json",
                "export/export.json", "quantize/quantize.json", "engines/engines.json", "eval/metrics.json",
                "bench/latency.json", "plots/accuracy_vs_latency.png", "plots/latency.png", "report.md"):
        assert (out / rel).is_file(), rel
    for onnx, _, _ in VARIANTS.values():
        assert (out / onnx).stat().st_size > 10_000, onnx
    report = json.loads((out / "report.json").read_text())
    assert [r["variant"] for r in report["variants"]] == list(VARIANTS)
    for row in report["variants"]:
        assert 0.0 <= row["AP"] <= 1.0 and row["ms_per_person_b1"] > 0 and row["ms_per_person_b8"] > 0
        assert row["params"] > 0 and row["gflops"] > 0 and row["size_bytes"] > 0
    by = {r["variant"]: r for r in report["variants"]}
    assert by["pruned_fp32"]["gflops"] < by["student_fp32"]["gflops"] < by["teacher_fp32"]["gflops"]
    assert by["student_fp32"]["parity"]["passed"] and by["pruned_fp32"]["parity"]["passed"]
    assert report["engines"]["skipped"] or report["engines"]["engines"]
    # the student alone: same model and schedule as the distilled one, no teacher
    alone = yaml.safe_load((out / "student_alone" / "config.yaml").read_text())
    distilled = yaml.safe_load((out / "student" / "config.yaml").read_text())
    assert alone["distill"] is None and distilled["distill"]["teacher"].endswith("teacher/last.pth")
    assert distilled["distill"]["features"] == [{"student": "backbone", "teacher": "keypoint_head.deconv_layers",
                                                 "weight": 1e-3}]
    assert yaml.safe_load((out / "teacher" / "config.yaml").read_text())["model"]["kwargs"] == {"deconv_channels": 32}
    assert {k: v for k, v in alone.items() if k not in ("distill", "out_dir")} == \
        {k: v for k, v in distilled.items() if k not in ("distill", "out_dir")}
    assert by["student_alone_fp32"]["gflops"] == by["student_fp32"]["gflops"]
    assert [by[v]["source"] for v in ("teacher_fp32", "student_alone_fp32", "student_fp32", "pruned_fp32",
                                      "pruned_fp16", "pruned_int8")] == \
        [None, None, None, "student_fp32", "pruned_fp32", "pruned_fp32"]
    best = report["recommended"]
    assert best["variant"] in VARIANTS and best["AP"] >= by["student_fp32"]["AP"] - 0.01
    eligible = [r for r in report["variants"] if r["variant"] not in report["left_out_of_recommendation"]]
    assert best["ms_per_person_b1"] == min(r["ms_per_person_b1"] for r in eligible)
    assert best["command"].startswith("edgepose predict ") and best["onnx"] in best["command"]
    assert [s["stage"] for s in report["stages"]] == ORDER[:-1]
    text = (out / "report.md").read_text()
    for name in VARIANTS:
        assert sum(line.startswith(f"| {name} |") for line in text.splitlines()) == 1, name
    assert "Accuracy is low by design" in text and "## Machine" in text and "edgepose prune" in text
    assert "## Recommended for this CPU" in text and "Distillation: the student trained alone reaches AP" in text
    assert "teacher 1 epoch (deconv_channels 32)" in text and "'keypoint_head.deconv_layers' features" in text
    assert "skipped: no TensorRT" in text or "engines/" in text


def test_rerun_skips_every_stage(micro):
    before = stamps(micro.out)
    started = time.perf_counter()
    result = run_quickstart(micro.profile, micro.out, progress=False, log=lambda _: None)
    assert actions(result) == {name: "skipped" for name in ORDER}
    assert time.perf_counter() - started < 15
    assert stamps(micro.out) == before


def test_cli_rerun_with_a_profile_file_skips_everything(micro, tmp_path, capsys):
    import yaml

    from compress.config import to_dict

    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(to_dict(micro.profile)))
    assert load_profile(path) == micro.profile
    parser = argparse.ArgumentParser()
    quickstart.add_arguments(parser)
    args = parser.parse_args(["--config", str(path), "--out", str(micro.out), "--no-progress"])
    assert quickstart.run(args) == 0
    printed = capsys.readouterr().out
    assert "0 of 11 stages ran" in printed and "pruned_int8" in printed
    with pytest.raises(SystemExit):
        parser.parse_args(["--fast", "--config", str(path)])


def test_changing_one_stage_config_reruns_it_and_the_later_ones_only(micro):
    changed = replace(micro.profile, quantize=replace(micro.profile.quantize, calib_images=3))
    result = run_quickstart(changed, micro.out, progress=False, log=lambda _: None)
    micro.profile = changed
    assert actions(result) == {n: "skipped" if n not in after("quantize") else "ran" for n in ORDER}
    assert {s.name: s.reason for s in result.stages}["quantize"] == "its config or inputs changed"
    assert json.loads((micro.out / "quantize/quantize.json").read_text())["pruned_int8"]["num_calibration"] == 3


def test_a_corrupted_output_or_stamp_reruns_that_stage(micro):
    metrics = micro.out / "eval/metrics.json"
    metrics.write_text(metrics.read_text().replace('"AP"', '"XP"', 1))
    result = run_quickstart(micro.profile, micro.out, progress=False, log=lambda _: None)
    assert actions(result) == {n: "skipped" if n not in after("evaluate") else "ran" for n in ORDER}
    assert {s.name: s.reason for s in result.stages}["evaluate"] == "output eval/metrics.json changed"
    assert '"AP"' in metrics.read_text()

    (micro.out / "stamps/benchmark.json").write_text('{"stage": "benchm')
    result = run_quickstart(micro.profile, micro.out, progress=False, log=lambda _: None)
    assert actions(result) == {n: "skipped" if n not in after("benchmark") else "ran" for n in ORDER}
    assert {s.name: s.reason for s in result.stages}["benchmark"] == "unreadable stamp"


# ----------------------------------------------------------------------------- the runner on cheap stand-in stages


class Recorder:
    """Three stand-in stages a -> b -> c writing small files; ``b`` can be made to fail once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail_b = False

    def stage(self, name: str, deps: tuple[str, ...], config) -> Stage:
        def run(ctx, resume: bool) -> list[str]:
            self.calls.append((name, resume))
            folder = ctx.out / name
            folder.mkdir(exist_ok=True)
            (folder / "partial.txt").write_text("started")
            if name == "b" and self.fail_b:
                self.fail_b = False
                raise KeyboardInterrupt
            inputs = "".join((ctx.out / d / "out.txt").read_text() for d in deps)
            (folder / "out.txt").write_text(f"{name}({inputs}){config(ctx.profile)}")
            return [f"{name}/out.txt"]

        return Stage(name, lambda p: name, deps, config, (name,), run)


@pytest.fixture
def fake(monkeypatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(quickstart, "STAGES", (
        rec.stage("a", (), lambda p: {"train": p.data.train}),
        rec.stage("b", ("a",), lambda p: {"epochs": p.prune.epochs}),
        rec.stage("c", ("b",), lambda p: {}),
    ))
    return rec


def run_fake(out: Path, profile: QuickstartProfile = FAST, force: bool = False) -> dict[str, str]:
    return actions(run_quickstart(profile, out, force=force, progress=False, log=lambda _: None))


def test_runner_skips_reruns_changed_stages_and_everything_after(fake, tmp_path):
    out = tmp_path / "out"
    assert run_fake(out) == {"a": "ran", "b": "ran", "c": "ran"}
    assert run_fake(out) == {"a": "skipped", "b": "skipped", "c": "skipped"}
    changed = copy.deepcopy(FAST)
    changed.prune.epochs += 1
    assert run_fake(out, changed) == {"a": "skipped", "b": "ran", "c": "ran"}
    changed.data.workers = 1  # not part of any key
    assert run_fake(out, changed) == {"a": "skipped", "b": "skipped", "c": "skipped"}
    (out / "a/out.txt").unlink()  # a missing output
    assert run_fake(out, changed) == {"a": "ran", "b": "ran", "c": "ran"}
    assert run_fake(out, changed, force=True) == {"a": "ran", "b": "ran", "c": "ran"}
    assert all(resume is False for _, resume in fake.calls)


def test_runner_resumes_an_interrupted_stage_without_clearing_it(fake, tmp_path):
    out = tmp_path / "out"
    fake.fail_b = True
    with pytest.raises(KeyboardInterrupt):
        run_fake(out)
    assert json.loads((out / "stamps/b.json").read_text())["status"] == "running"
    (out / "b/keep.txt").write_text("from the interrupted run")
    assert run_fake(out) == {"a": "skipped", "b": "resumed", "c": "ran"}
    assert fake.calls[-2:] == [("b", True), ("c", False)]
    assert (out / "b/keep.txt").exists()  # resumed, not cleared
    assert run_fake(out, force=True) == {"a": "ran", "b": "ran", "c": "ran"}
    assert not (out / "b/keep.txt").exists()  # a clean rerun empties the stage's folder


def test_runner_refuses_a_folder_that_is_not_a_quickstart_run(fake, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("not ours")
    with pytest.raises(InputError, match="holds no quickstart run"):
        run_fake(tmp_path, force=True)
    assert (tmp_path / "data" / "precious.txt").exists()


def test_engines_stage_gives_tensorrt_an_int8_activation_copy(micro, tmp_path, monkeypatch):
    """Where TensorRT and a GPU are present, the INT8 engine is built from a copy quantized with int8 activations
    (TensorRT's Q/DQ format), not from the CPU copy with uint8 activations; the other variants build as they are."""
    import shutil

    import onnx

    from quickstart import stages as st

    out = tmp_path / "out"
    shutil.copytree(micro.out, out)
    shutil.rmtree(out / "engines")
    built = {}

    def fake_build(src, dst, options):
        built[Path(dst).stem] = src
        Path(dst).write_bytes(b"engine")
        return argparse.Namespace(engine_precision="fake", size_bytes=6, seconds=0.0)

    monkeypatch.setattr(st, "tensorrt_here", lambda: {"tensorrt": "10.fake", "gpu": "fake GPU"})
    monkeypatch.setattr("deploy.tensorrt.build.build_engine", fake_build)
    st.run_engines(st.Context(out, micro.profile, progress=False), resume=False)
    assert set(built) == set(VARIANTS)
    assert built["pruned_fp32"] == str(out / VARIANTS["pruned_fp32"][0])
    trt_int8 = onnx.load(built["pruned_int8"])
    zero_points = [i for i in trt_int8.graph.initializer if i.name.endswith("zero_point")]
    assert built["pruned_int8"].endswith("engines/pruned_int8_tensorrt.onnx") and zero_points
    kinds = {z.data_type for z in zero_points} - {onnx.TensorProto.INT32}  # int32: the quantized biases
    assert kinds == {onnx.TensorProto.INT8}
    cpu_int8 = onnx.load(out / VARIANTS["pruned_int8"][0])
    assert onnx.TensorProto.UINT8 in {i.data_type for i in cpu_int8.graph.initializer if i.name.endswith("zero_point")}


def test_recommendation_names_every_reason_a_variant_was_left_out():
    from quickstart.report import recommend

    def row(variant, precision, ap, ms, source=None):
        return {"variant": variant, "precision": precision, "AP": ap, "ms_per_person_b1": ms, "source": source}

    table = [row("teacher_fp32", "fp32", 0.55, 6.0), row("student_fp32", "fp32", 0.30, 2.0),
             row("pruned_fp32", "fp32", 0.295, 1.5, "student_fp32"),
             row("pruned_int8", "int8", 0.20, 2.5, "pruned_fp32"),
             row("pruned_fp16", "fp16", 0.295, 1.6, "pruned_fp32")]
    best, left_out = recommend(table)
    assert best["variant"] == "pruned_fp32"
    assert set(left_out) == {"pruned_int8", "pruned_fp16"}
    assert "AP 0.200" in left_out["pruned_int8"] and "INT8 is not faster than pruned_fp32" in left_out["pruned_int8"]
    assert "AP" not in left_out["pruned_fp16"] and "FP16 is not faster" in left_out["pruned_fp16"]
