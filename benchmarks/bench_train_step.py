"""CPU training-step time of the quickstart's teacher (SimpleBaseline-18 at 64x96, batch 16) in its variants.

    python -m benchmarks.bench_train_step [--rounds 8] [--out benchmarks/results/train_step.json]

Variants: float32, bfloat16 autocast (``cpu_bf16``), channels-last memory, and a 128-channel deconvolution head
(``deconv_channels``), alone and combined. In every round each variant takes one full step (forward, MSE loss,
backward, AdamW) in turn, so that drifting machine load hits all alike; the first two rounds are warm-up. Reports
the median ms per step and the speed-up over float32. Weights and data are random: time does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name -> (deconv channels, channels-last, bfloat16 autocast)
VARIANTS = {"fp32": (256, False, False), "bf16": (256, False, True), "channels_last": (256, True, False),
            "channels_last_bf16": (256, True, True), "head128": (128, False, False),
            "head128_bf16": (128, False, True), "head128_channels_last_bf16": (128, True, True)}


def main(argv: list[str] | None = None) -> int:
    """Time every variant, print and write the table."""
    import torch

    from compress.models import build_model
    from compress.train.loop import native_bf16
    from edgepose.bench.environment import environment
    from edgepose.io import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_step.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 96, 64), torch.rand(16, 17, 24, 16)
    runs = {}
    for name, (channels, channels_last, _) in VARIANTS.items():
        model = build_model("simple_baseline_18", input_size=(64, 96), deconv_channels=channels).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        runs[name] = (model, torch.optim.AdamW(model.parameters(), 1e-3))
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds + 2):
        for name, (_, channels_last, bf16) in VARIANTS.items():
            model, optimizer = runs[name]
            inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = ((model(inputs)["heatmaps"].float() - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if r >= 2:
                times[name].append(time.perf_counter() - started)
    base = statistics.median(times["fp32"])
    rows = [{"variant": name, "ms_per_step": statistics.median(t) * 1e3, "speedup_vs_fp32": base / statistics.median(t)}
            for name, t in times.items()]
    for row in rows:
        print(f"{row['variant']:28s} {row['ms_per_step']:7.1f} ms  x{row['speedup_vs_fp32']:.2f}")
    record = {"benchmark": "train_step", "command": " ".join(["python -m benchmarks.bench_train_step", *(argv or [])]),
              "model": "simple_baseline_18", "input": "64x96", "batch": 16, "rounds": args.rounds,
              "native_bf16": native_bf16(), "torch_threads": torch.get_num_threads(), "rows": rows,
              "environment": environment(None)}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
