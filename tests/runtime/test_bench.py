"""``edgepose bench``: statistics, interleaved per-stage runner, consistent reports, torch-free environment, CLI."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepose.bench import cli as bench_cli
from edgepose.bench import runner as bench_runner
from edgepose.bench.measure import ALL_STAGES, Measurer
from edgepose.bench.plots import pareto_front
from edgepose.bench.report import csv_columns, load_ap, to_markdown, write_reports
from edgepose.bench.runner import BenchSettings, configurations, run_benchmark
from edgepose.bench.stats import fps, persons_per_second, summarize
from edgepose.card import ModelCard
from edgepose.errors import InputError
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(48, 64), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(12, 16), decode="dark")
FRAME = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("bench_models")
    return [conv_heatmap_model(folder / f"{name}.onnx", CARD, input_size=(48, 64), seed=i)
            for i, name in enumerate(("fp32", "other"))]


def test_summarize_matches_numpy_percentiles():
    samples = np.random.default_rng(1).gamma(2.0, 0.004, 257)
    got = summarize(list(samples))
    ms = samples * 1e3
    assert got["n"] == 257
    for key, q in (("median_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        assert got[key] == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert got["max_ms"] == pytest.approx(ms.max()) and got["mean_ms"] == pytest.approx(ms.mean())
    assert fps(20.0) == pytest.approx(50.0) and persons_per_second(4, 20.0) == pytest.approx(200.0)
    with pytest.raises(InputError, match="no timing samples"):
        summarize([])


def test_runner_times_every_stage_with_the_asked_persons(models):
    configs = configurations(models, [1, 3], threads=[1])
    result = run_benchmark(configs, FRAME, BenchSettings(warmup=1, iters=4, rounds=2))
    assert [(r["model"], r["persons"]) for r in result.rows] == [("fp32", 1), ("fp32", 3), ("other", 1), ("other", 3)]
    for row in result.rows:
        assert row["persons_out"] == row["persons"] and row["threads"] == 1 and row["backend"] == "onnxruntime"
        assert set(row["stages"]) == set(ALL_STAGES)
        assert all(row["stages"][s]["n"] == 4 for s in ALL_STAGES)
        parts = sum(row["stages"][s]["median_ms"] for s in ("crop", "infer", "decode"))
        assert 0 < parts <= row["stages"]["end_to_end"]["max_ms"] * 3
        assert row["peak_rss_mib"] > 0 and row["rss_scope"].startswith("process")
    assert result.order == [0, 1, 2, 3, 0, 1, 2, 3]


def test_configurations_are_interleaved_round_robin(models, monkeypatch):
    calls: list[tuple[str, int]] = []

    class Recording(Measurer):
        def run(self, count):
            calls.append((self.config.label, count))
            return super().run(count)

    monkeypatch.setattr(bench_runner, "Measurer", Recording)
    configs = configurations(models[:1], [1, 2])
    run_benchmark(configs, FRAME, BenchSettings(warmup=2, iters=5, rounds=3))
    a, b = (c.label for c in configs)
    settle = bench_runner.SETTLE_CALLS
    blocks = [(a, settle), (a, 2), (b, settle), (b, 2), (a, settle), (a, 2), (b, settle), (b, 2), (a, settle),
              (a, 1), (b, settle), (b, 1)]
    assert calls == [(a, 2), (b, 2), *blocks]


def test_isolated_configuration_runs_in_its_own_process(models):
    import os

    result = run_benchmark(configurations(models[:1], [2]), FRAME, BenchSettings(warmup=0, iters=2, isolate=True))
    row = result.rows[0]
    assert row["persons_out"] == 2 and row["rss_scope"].startswith("configuration")
    assert row["peak_rss_mib"] > 0 and row["stages"]["end_to_end"]["n"] == 2
    assert row["pid"] != os.getpid()


def test_bad_sweeps_are_refused(models, tmp_path):
    with pytest.raises(InputError, match="not found"):
        configurations([str(tmp_path / "missing.onnx")], [1])
    with pytest.raises(InputError, match="given twice"):
        configurations([models[0], models[0]], [1])
    with pytest.raises(InputError, match="needs a detector"):
        run_benchmark(configurations(models[:1], ["det"]), FRAME, BenchSettings(warmup=0, iters=1))
    with pytest.raises(InputError, match="--persons"):
        bench_cli.parse_list("1,zero", "persons", int)
    with pytest.raises(InputError, match="iters"):
        BenchSettings(iters=0)


def test_reports_agree_with_each_other(models, tmp_path):
    rows = run_benchmark(configurations(models, [2]), FRAME, BenchSettings(warmup=0, iters=3, rounds=3)).rows
    paths = write_reports(rows, tmp_path, {"cpu": "x", "cores": 2, "ram_gib": 1.0, "gpus": [], "versions": {}})
    lines = [json.loads(line) for line in Path(paths["bench.jsonl"]).read_text().splitlines()]
    with open(paths["bench.csv"]) as fh:
        table = list(csv.DictReader(fh))
    md_rows = [line for line in Path(paths["bench.md"]).read_text().splitlines()
               if line.startswith("| ") and "---" not in line][1:]
    assert len(lines) == len(table) == len(md_rows) == len(rows) == 2
    assert list(table[0]) == csv_columns()
    for line, record, md in zip(lines, table, md_rows, strict=True):
        assert record["model"] == line["model"] and md.startswith(f"| {line['model']} |")
        for stage in ALL_STAGES:
            assert float(record[f"{stage}_median_ms"]) == pytest.approx(line["stages"][stage]["median_ms"])
        assert f"{line['stages']['end_to_end']['median_ms']:.2f}" in md or \
            f"{line['stages']['end_to_end']['median_ms']:.3f}" in md
    assert "| model |" in to_markdown(rows)


def test_ap_file_and_pareto_front(tmp_path):
    path = tmp_path / "ap.json"
    path.write_text(json.dumps({"a": 0.5, "b.onnx": {"AP": 0.6, "AP50": 0.9}}))
    assert load_ap(path) == {"a": 0.5, "b.onnx": 0.6}
    path.write_text(json.dumps({"a": "high"}))
    with pytest.raises(InputError, match="must be a number"):
        load_ap(path)
    assert pareto_front([(10, 0.5), (5, 0.4), (12, 0.45), (20, 0.7)]) == [(5, 0.4), (10, 0.5), (20, 0.7)]


def test_environment_keys_and_no_torch_import():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'tensorrt', 'compress', 'deploy', 'benchmarks', 'matplotlib'}:\n"
        "            raise ImportError(name + ' is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import json, edgepose.bench.cli, edgepose.bench.runner, edgepose.bench.report\n"
        "from edgepose.bench.environment import environment\n"
        "env = environment([1], ['CPUExecutionProvider'])\n"
        "print(json.dumps({'env': env, 'heavy': [m for m in sys.modules if m.split('.')[0] == 'torch']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["heavy"] == []
    env = got["env"]
    for key in ("cpu", "cores", "ram_gib", "load_average", "gpus", "cuda", "versions", "threads", "providers", "jetson",
                "ort_providers_available", "OMP_NUM_THREADS"):
        assert key in env
    assert set(env["versions"]) == {"onnxruntime", "opencv", "numpy", "tensorrt", "torch", "cupy", "pycuda"}
    assert env["versions"]["onnxruntime"] and env["threads"] == [1] and env["cores"] >= 1


def test_cli_end_to_end(models, tmp_path, yolox_path, capsys):
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments(parser)
    ap = tmp_path / "ap.json"
    ap.write_text(json.dumps({"fp32": 0.7, "other": 0.6}))
    out = tmp_path / "out"
    args = parser.parse_args(["--model", models[0], "--model", models[1], "--detector", str(yolox_path),
                              "--persons", "2,det", "--threads", "1", "--warmup", "1", "--iters", "3",
                              "--ap", str(ap), "--out", str(out)])
    assert bench_cli.run(args) == 0
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert [(r["model"], r["persons"]) for r in rows] == [("fp32", 2), ("fp32", "det"), ("other", 2), ("other", "det")]
    assert all(r["persons_out"] == 2 for r in rows if r["persons"] == 2)
    assert all(r["stages"]["detect"]["median_ms"] > 0.5 for r in rows)  # the detector ran every frame
    assert {r["ap"] for r in rows} == {0.7, 0.6}
    for name in ("bench.csv", "bench.md", "environment.json", "latency_stages.png", "pareto_ap_latency.png"):
        assert (out / name).stat().st_size > 0
    assert "| fp32 |" in capsys.readouterr().out
