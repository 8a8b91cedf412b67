"""Sweeps of the PoseEstimator over models x providers x threads x persons, interleaved round-robin in one run.

Every configuration is opened once and warmed up; then ``rounds`` rounds each run every configuration for a block
of iterations, in the same order, so slow drift of a shared machine hits every configuration alike and ratios
between them are fair. A block starts with one untimed call: a session that just ran may keep its worker threads
spinning for a moment and slow the next one down.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepose.backends.formats import FORMATS, suffix_of
from edgepose.bench.measure import ALL_STAGES, Config, Measurer
from edgepose.bench.stats import fps, persons_per_second, summarize
from edgepose.errors import InputError

SETTLE_CALLS = 1


@dataclass(frozen=True)
class BenchSettings:
    """Warm-up calls per configuration, timed iterations per configuration (split over ``rounds``), and
    whether each configuration runs in its own process (``isolate``: per-configuration peak memory)."""

    warmup: int = 5
    iters: int = 50
    rounds: int = 5
    isolate: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.iters < 1 or self.rounds < 1:
            raise InputError(f"need warmup >= 0, iters >= 1, rounds >= 1; got {self.warmup}, {self.iters}, "
                             f"{self.rounds}")

    def blocks(self) -> list[int]:
        """Timed iterations per round: ``iters`` split as evenly as possible over at most ``iters`` rounds."""
        rounds = min(self.rounds, self.iters)
        base, extra = divmod(self.iters, rounds)
        return [base + (1 if r < extra else 0) for r in range(rounds)]


@dataclass
class BenchResult:
    """One row per configuration (see ``make_row``) and the order blocks ran in (configuration indices)."""

    rows: list[dict]
    order: list[int] = field(default_factory=list)


def configurations(models: Sequence[str], persons: Sequence[int | str], threads: Sequence[int | None] = (None,),
                   providers: Sequence[str | None] = (None,), card: str | None = None,
                   detector: str | None = None) -> list[Config]:
    """Every combination; threads and providers apply to ONNX models only (others get one of each)."""
    if not models:
        raise InputError("give at least one model: --model pose.onnx")
    configs: list[Config] = []
    for model in models:
        if not os.path.isfile(model):
            raise InputError(f"model file not found: {model}")
        fmt = FORMATS.get(suffix_of(model))
        tunable = fmt is not None and fmt.threads  # ONNX Runtime threads and providers
        for provider, thread, count in itertools.product(providers if tunable else (None,),
                                                         threads if tunable else (None,), persons):
            configs.append(Config(model, count, thread, provider, card, detector))
    labels = [c.label for c in configs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InputError(f"configurations given twice: {duplicates} (models need distinct file names)")
    return configs


def _open(config: Config, frame: np.ndarray, settings: BenchSettings):
    if settings.isolate:
        from edgepose.bench.isolate import IsolatedMeasurer

        return IsolatedMeasurer(config, frame, settings.seed)
    return Measurer(config, frame, settings.seed)


def run_benchmark(configs: Sequence[Config], frame: np.ndarray, settings: BenchSettings,
                  progress: Callable[[str], None] | None = None) -> BenchResult:
    """Measure every configuration on ``frame``, interleaved; returns one summarised row per configuration."""
    say = progress or (lambda message: None)
    measurers: list = []
    try:
        for config in configs:
            say(f"opening {config.label}")
            measurers.append(_open(config, frame, settings))
        for m in measurers:
            m.run(settings.warmup)
        samples: list[list[dict]] = [[] for _ in configs]
        order: list[int] = []
        blocks = settings.blocks()
        for r, size in enumerate(blocks):
            say(f"round {r + 1}/{len(blocks)}: {size} iterations x {len(configs)} configurations")
            for i, m in enumerate(measurers):
                m.run(SETTLE_CALLS)
                samples[i] += m.run(size)
                order.append(i)
        memory = [m.memory() for m in measurers]
        infos = [m.describe() for m in measurers]
    finally:
        for m in measurers:
            m.close()
    rows = [make_row(c, s, info, mem, settings) for c, s, info, mem in zip(configs, samples, infos, memory,
                                                                           strict=True)]
    return BenchResult(rows, order)


def make_row(config: Config, samples: list[dict], info: dict, memory: dict, settings: BenchSettings) -> dict:
    """Summary of one configuration: per-stage latency statistics, FPS, persons/s, memory, and what ran."""
    stages = {stage: summarize([s[stage] for s in samples]) for stage in ALL_STAGES}
    persons_out = int(np.median([s["persons"] for s in samples]))
    e2e = stages["end_to_end"]["median_ms"]
    scope = "configuration (own process)" if settings.isolate else "process (all configurations of this run)"
    return {
        "model": os.path.splitext(os.path.basename(config.model))[0],
        "model_file": os.path.basename(config.model),
        "model_path": config.model,
        "backend": info["backend"],
        "provider": config.provider or "default",
        "providers_used": info["providers_used"],
        "threads": "default" if config.threads is None else config.threads,
        "persons": config.persons,
        "persons_out": persons_out,
        "boxes": info["boxes"],
        "batch_mode": info["batch_mode"],
        "input_dtype": info["input_dtype"],
        "iters": len(samples),
        "rounds": len(settings.blocks()),
        "warmup": settings.warmup,
        "stages": stages,
        "fps": fps(e2e),
        "persons_per_s": persons_per_second(persons_out, e2e),
        "peak_rss_mib": memory["peak_rss_mib"],
        "rss_scope": scope,
        "gpu_memory_mib": memory["gpu_memory_mib"],
        "gpu_memory_scope": scope if memory["gpu_memory_mib"] is not None else None,
        "pid": info["pid"],
    }
