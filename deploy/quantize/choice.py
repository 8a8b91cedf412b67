"""Which format to run on a CPU: the fastest measured variant, a quantized one only where it was measured faster.

    choice = cpu_format({"fp32": {"ms_per_person_b1": 14.0, "ms_per_person_b8": 9.0},
                         "int8": {"ms_per_person_b1": 17.5, "ms_per_person_b8": 10.1}}, reference="fp32")
    choice["variant"]  # "fp32": INT8 is slower here (Lite-HRNet on ONNX Runtime's x86 CPU provider)

INT8 is not faster everywhere: on ONNX Runtime's x86 CPU provider SimpleBaseline-18 runs 2.2-2.8x faster in INT8,
Lite-HRNet-18 0.6-0.8x FP32 (benchmarks/results/int8_lite_hrnet.json): most of its time is in small ops between
the Convs, and its depthwise Convs run about 3x slower as QLinearConv than as FP32 NCHWc Convs. So the choice for a
CPU comes from latencies measured on it (the quickstart's ``latency_table``), never from the precision's name;
TensorRT targets keep full INT8 (``scope="all"``), which is what its kernels are made for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from edgepose.errors import InputError

KEY = re.compile(r"ms_per_person_b(\d+)$")


def cpu_format(latency: dict[str, dict], reference: str, candidates: Sequence[str] | None = None,
               min_speedup: float = 1.0) -> dict:
    """The variant to run on the CPU that ``latency`` was measured on.

    ``latency``: {variant: {"ms_per_person_bN": median ms, ...}} (``quickstart.bench.latency_table``).
    ``reference``: the FP32 variant the others were made from; it is the answer unless a candidate is faster than
    it by more than ``min_speedup`` at every batch size measured for the reference (a candidate lacking one, or
    with a non-finite time there, is left out). Among such candidates the one with the
    highest geometric-mean speedup wins. ``candidates``: the variants to consider (default: all in ``latency``).
    Returns {"variant", "speedup_vs_reference": {"bN": ratio}, "left_out": {variant: why}}.
    """
    if reference not in latency:
        raise InputError(f"the reference variant {reference!r} has no latency (measured: {sorted(latency)})")
    ref = _per_batch(latency[reference])
    if not ref:
        raise InputError(f"the reference variant {reference!r} has no ms_per_person_bN entry")
    names = [n for n in (latency if candidates is None else candidates) if n != reference]
    best, best_score, speedups, left_out = reference, 1.0, {f"b{n}": 1.0 for n in sorted(ref)}, {}
    for name in names:
        times = _per_batch(latency.get(name, {}))
        missing = sorted(set(ref) - set(times))
        if missing:
            left_out[name] = f"no latency at batch {', '.join(map(str, missing))}"
            continue
        shared = sorted(ref)
        ratio = {n: ref[n] / times[n] for n in shared}
        slow = [n for n in shared if not ratio[n] > min_speedup]
        if slow:
            left_out[name] = "not faster than {}: {}".format(
                reference, ", ".join(f"x{ratio[n]:.2f} at batch {n}" for n in slow))
            continue
        score = math.exp(sum(math.log(r) for r in ratio.values()) / len(ratio))
        if score > best_score:
            best, best_score, speedups = name, score, {f"b{n}": r for n, r in ratio.items()}
    return {"variant": best, "speedup_vs_reference": speedups, "left_out": left_out}


def _per_batch(row: dict) -> dict[int, float]:
    """{batch: ms per person} from a latency row's ``ms_per_person_bN`` keys (positive, finite values only)."""
    out = {}
    for key, value in row.items():
        match = KEY.match(key)
        if match and isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            out[int(match.group(1))] = float(value)
    return out
