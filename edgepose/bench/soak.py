"""Soak a stream: run many frames through ``estimator.stream`` and sample the process's memory, threads and open
files, to show they stay flat. ``benchmarks/soak_stream.py`` runs 10,000 frames; a test runs a shorter soak."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np


def process_stats() -> dict:
    """Resident memory (MiB), live threads (OS-level, ONNX Runtime's included) and open file descriptors of this
    process, read from /proc (Linux); values are None where /proc is absent."""
    stats = {"rss_mib": None, "os_threads": None, "fds": None, "py_threads": threading.active_count()}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        stats["rss_mib"] = int(fields["VmRSS"].split()[0]) / 1024
        stats["os_threads"] = int(fields["Threads"])
        stats["fds"] = len(os.listdir("/proc/self/fd"))
    except (OSError, KeyError, ValueError):
        pass
    return stats


def settled_stats(wait: float = 1.0) -> dict:
    """``process_stats`` once the OS threads of just-joined Python threads are gone: ``join()`` returns a moment
    before the kernel removes the thread, so the count is read until it stops falling (at most ``wait`` s)."""
    stats = process_stats()
    for _ in range(int(wait / 0.05)):
        time.sleep(0.05)
        now = process_stats()
        if now["os_threads"] is None or now["os_threads"] >= stats["os_threads"]:
            return now
        stats = now
    return stats


def soak_stream(estimator, source, frames: int, sample_every: int = 250, warmup: int = 500, **options) -> dict:
    """Stream ``frames`` frames of ``source`` (an endless iterable is fine) and sample process stats every
    ``sample_every`` frames. Returns the samples, the RSS growth after ``warmup`` frames up to the last sample but
    one (MiB; MiB per 1000 frames from a least-squares line; max - min), the largest thread and fd counts seen,
    and the counts before and after."""
    gc.collect()
    before = process_stats()
    samples, persons, done = [], 0, 0
    stream = estimator.stream(source, max_frames=frames, keep_frames=False, **options)
    for result in stream:
        done += 1
        persons += len(result.poses)
        if done % sample_every == 0:
            samples.append({"frame": done, "fps": round(result.fps, 1), **process_stats()})
    stats = dict(stream.stats)
    gc.collect()
    after = settled_stats()
    # the last sample can fall after the workers finished and freed their queues: it is left out
    late = [s for s in samples[:-1] if s["frame"] >= warmup and s["rss_mib"] is not None]
    growth = slope = spread = None
    if len(late) >= 2:
        rss = np.array([s["rss_mib"] for s in late])
        frame = np.array([s["frame"] for s in late], float)
        growth, spread = float(rss[-1] - rss[0]), float(rss.max() - rss.min())
        slope = float(np.polyfit(frame / 1000, rss, 1)[0])
    return {"frames": done, "persons": persons, "stream_stats": stats, "before": before, "after": after,
            "samples": samples, "rss_growth_after_warmup_mib": growth, "rss_slope_mib_per_1000_frames": slope,
            "rss_spread_after_warmup_mib": spread,
            "max_os_threads": max((s["os_threads"] or 0) for s in samples) if samples else None,
            "max_fds": max((s["fds"] or 0) for s in samples) if samples else None, "warmup": warmup}
