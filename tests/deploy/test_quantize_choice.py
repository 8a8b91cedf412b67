"""The CPU format choice (a quantized variant only where measured faster) and the bundle's format per target."""

from __future__ import annotations

import pytest

from deploy.quantize.choice import cpu_format
from deploy.tensorrt.bundle import targets
from edgepose.errors import InputError


def _row(b1: float, b8: float) -> dict:
    return {"ms_per_person_b1": b1, "ms_per_person_b8": b8, "p90_ms_per_person_b1": 99.0}


def test_int8_slower_than_fp32_is_not_chosen():
    """A variant slower than FP32 at batch 1 is not chosen, however much faster it is at batch 8."""
    choice = cpu_format({"fp32": _row(14.0, 9.0), "int8": _row(17.5, 8.0)}, "fp32")
    assert choice["variant"] == "fp32" and choice["speedup_vs_reference"] == {"b1": 1.0, "b8": 1.0}
    assert choice["left_out"]["int8"] == "not faster than fp32: x0.80 at batch 1"


def test_fastest_of_the_faster_variants_is_chosen():
    latency = {"fp32": _row(10.0, 8.0), "fp16": _row(9.0, 7.0), "int8": _row(4.0, 4.0), "other": _row(1.0, 1.0)}
    choice = cpu_format(latency, "fp32", candidates=["fp16", "int8"])
    assert choice["variant"] == "int8" and choice["speedup_vs_reference"] == {"b1": 2.5, "b8": 2.0}
    assert choice["left_out"] == {}
    # a threshold: fp16's 1.11-1.14x does not clear 1.2, int8 still does
    assert cpu_format(latency, "fp32", candidates=["fp16"], min_speedup=1.2)["variant"] == "fp32"
    assert cpu_format(latency, "fp32", candidates=["int8"], min_speedup=1.2)["variant"] == "int8"


def test_equal_or_unmeasured_variants_are_left_out():
    latency = {"fp32": _row(10.0, 8.0), "same": _row(10.0, 8.0), "b16_only": {"ms_per_person_b16": 1.0},
               "broken": _row(float("nan"), 1.0)}
    choice = cpu_format(latency, "fp32", candidates=["same", "b16_only", "missing", "broken"])
    assert choice["variant"] == "fp32"
    assert set(choice["left_out"]) == {"same", "b16_only", "missing", "broken"}
    assert choice["left_out"]["same"] == "not faster than fp32: x1.00 at batch 1, x1.00 at batch 8"
    assert choice["left_out"]["b16_only"] == "no latency at batch 1, 8"
    assert choice["left_out"]["broken"] == "no latency at batch 1"  # NaN is no measurement, 8x at batch 8 or not
    with pytest.raises(InputError, match="reference variant 'fp32' has no latency"):
        cpu_format({"int8": _row(1.0, 1.0)}, "fp32")


def test_bundle_targets_keep_int8_for_tensorrt_and_fp32_for_cpus():
    assert targets({"fp32": {}, "fp16": {}, "int8": {}}) == {"tensorrt": "int8", "onnxruntime_cpu": "fp32"}
    assert targets({"fp32": {}, "fp16": {}}) == {"tensorrt": "fp16", "onnxruntime_cpu": "fp32"}
    assert targets({"fp16": {}}) == {"tensorrt": "fp16", "onnxruntime_cpu": "fp16"}
