"""Microbenchmark: median decode time per person for every codec / decode mode.

    python -m benchmarks.bench_decode [--persons 1 4 16] [--iterations 200]

Inputs are the codec's own targets for random keypoints plus a little uniform noise (float32), as a model gives.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from edgepose.codecs import CODECS
from edgepose.codecs.base import Codec

MODES = [("msra", "none"), ("msra", "shift"), ("msra", "dark"), ("udp", "none"), ("udp", "dark")]
MODES += [("simcc", "none"), ("simcc", "dark")]


def make(name: str, decode: str, input_size: tuple[int, int], heatmap_size: tuple[int, int]) -> Codec:
    """A codec with the benchmark's sizes (sigma 2 for heatmaps, (4.9, 5.66) and ratio 2 for SimCC)."""
    if name == "simcc":
        return CODECS[name](input_size, 2.0, (4.9, 5.66), decode)
    return CODECS[name](input_size, heatmap_size, (2.0, 2.0), decode)


def bench(codec: Codec, persons: int, keypoints: int, iterations: int, warmup: int, seed: int = 0) -> float:
    """Median milliseconds per person of ``codec.decode`` on ``persons`` x ``keypoints`` outputs."""
    rng = np.random.default_rng(seed)
    w, h = codec.input_size
    kp = np.stack([rng.uniform(0, w - 1, (persons, keypoints)), rng.uniform(0, h - 1, (persons, keypoints))], axis=2)
    targets, _ = codec.encode(kp, np.ones((persons, keypoints)))
    outputs = {k: v + rng.uniform(0, 0.02, v.shape).astype(np.float32) for k, v in targets.items()}
    for _ in range(warmup):
        codec.decode(outputs)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        codec.decode(outputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / persons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--keypoints", type=int, default=17)
    parser.add_argument("--input-size", type=int, nargs=2, default=[192, 256], metavar=("W", "H"))
    parser.add_argument("--heatmap-size", type=int, nargs=2, default=[48, 64], metavar=("W", "H"))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(
        f"decode, median ms per person ({args.keypoints} keypoints, input {args.input_size[0]}x{args.input_size[1]},"
        f" heatmap {args.heatmap_size[0]}x{args.heatmap_size[1]}, {args.iterations} iterations)"
    )
    print(f"{'codec':8s} {'decode':7s}" + "".join(f"{f'N={n}':>10s}" for n in args.persons))
    for name, decode in MODES:
        codec = make(name, decode, tuple(args.input_size), tuple(args.heatmap_size))
        row = [bench(codec, n, args.keypoints, args.iterations, args.warmup) for n in args.persons]
        print(f"{name:8s} {decode:7s}" + "".join(f"{ms:10.3f}" for ms in row))


if __name__ == "__main__":
    main()
