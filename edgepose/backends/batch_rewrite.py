"""Batch what the model file would not: an ONNX model exported with a fixed batch of 1 gets a dynamic batch axis at
load time, so the ONNX Runtime backend runs all persons in one call instead of one call per person.

The rewrite (``edgepose.backends.batch_axis``, needs the ``onnx`` package) is trusted only after the rewritten model,
run on a probe batch of ``PROBE_BATCH`` random inputs, gives the outputs of the original run once per sample: equal,
or within ``ATOL + RTOL * |reference|`` (1e-6 each) where ONNX Runtime's kernels round differently by batch size.
A model that passes is cached (``edgepose.backends.batch_cache``); the next load takes the cached file after checking
its sha256, with no rewrite and no probe. Anything else keeps the per-person loop and says why in the note; a graph
that bakes the batch in is recorded as such in the cache too, so the next load of it does not import onnx again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.backends.base import TensorSpec
from edgepose.backends.batch_cache import CacheEntry
from edgepose.errors import ModelError, WriteError

REWRITE_VERSION = 1  # bump when batch_axis rewrites differently: old cache entries are then ignored
PROBE_BATCH = 3
ATOL = RTOL = 1e-6
LOOP = "per-person loop: "


@dataclass(frozen=True)
class BatchRewrite:
    """The outcome: ``session`` runs the rewritten model (None: keep the loop); ``note`` says what happened."""

    session: object | None
    note: str
    cached: bool = False


class ProbeMismatch(Exception):
    """The rewritten model's batch outputs differ from the original's per-sample ones."""


def random_feeds(specs: list[TensorSpec], batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of ``specs`` with the leading dim ``batch``: normal floats, 0/1 integers and booleans."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        if any(d is None for d in spec.shape[1:]):
            raise ProbeMismatch(f"input {spec.describe()} has dynamic dims besides the batch: no probe shape")
        shape = (batch, *spec.shape[1:])
        if np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.normal(0.0, 1.0, shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(spec.dtype)
    return feeds


def probe(original, rewritten, inputs: list[TensorSpec], batch: int = PROBE_BATCH) -> float:
    """Run ``rewritten`` on a random batch and ``original`` once per sample; the largest absolute difference, or
    ProbeMismatch naming the output whose shape, dtype or values differ beyond the tolerance."""
    feeds = random_feeds(inputs, batch)
    names = [o.name for o in original.get_outputs()]
    singles = [original.run(names, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(batch)]
    batched = rewritten.run(names, feeds)
    worst = 0.0
    for j, name in enumerate(names):
        want, got = np.concatenate([s[j] for s in singles]), batched[j]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ProbeMismatch(f"output '{name}' of a batch of {batch} is {got.dtype}{list(got.shape)}, the "
                                f"per-sample runs give {want.dtype}{list(want.shape)}")
        if not np.issubdtype(want.dtype, np.floating):
            if not np.array_equal(got, want):
                raise ProbeMismatch(f"output '{name}' of a batch differs from the per-sample runs")
            continue
        diff = np.abs(got.astype(np.float64) - want)
        same_nan = np.isnan(got) == np.isnan(want)
        bad = ~same_nan | (np.nan_to_num(diff) > ATOL + RTOL * np.abs(np.nan_to_num(want.astype(np.float64))))
        if bad.any():
            raise ProbeMismatch(f"output '{name}' of a batch differs from the per-sample runs by up to "
                                f"{np.nanmax(diff):.3g} (tolerance {ATOL:g} + {RTOL:g}*|value|)")
        worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
    return worst


def _signature(session) -> list:
    return [(n.name, n.type, tuple(n.shape[1:])) for n in session.get_inputs() + session.get_outputs()]


def rewrite_batch(path: str | os.PathLike, original, inputs: list[TensorSpec],
                  open_session: Callable[[bytes], object], cache_folder: str | None = None) -> BatchRewrite:
    """Make the fixed batch of 1 of the model at ``path`` dynamic, or say why not.

    ``original`` is the session of the model as it is (the probe's reference), ``inputs`` its input specs and
    ``open_session(model_bytes)`` opens a session the way the caller opened ``original`` (same options and
    providers), raising ModelError when it cannot. A cache entry whose hash does not check out is redone."""
    with open(path, "rb") as fh:
        data = fh.read()
    entry = CacheEntry.of(data, REWRITE_VERSION, cache_folder)
    record, why = entry.record()
    if record is not None and isinstance(record.get("refused"), str):
        return BatchRewrite(None, LOOP + record["refused"] + " (cached finding)", cached=True)
    if record is not None:
        cached, why = entry.load(record)
        if cached is not None:
            try:
                session = open_session(cached)
            except ModelError:
                why = "cached model does not load: redone"
            else:
                if _signature(session) == _signature(original):
                    return BatchRewrite(session, f"batch axis made dynamic: checked rewrite from the cache "
                                                 f"{entry.model_path}", cached=True)
                why = "cached model has other inputs or outputs than this one: redone"
    try:
        import onnx
    except ImportError:
        return BatchRewrite(None, LOOP + "batch rewrite needs the onnx package (pip install onnx, or the [deploy] "
                                         "extra)")
    from edgepose.backends.batch_axis import NotBatchable, make_dynamic

    try:
        model = onnx.load_model_from_string(data)
        rewritten = make_dynamic(model).SerializeToString()
    except NotBatchable as exc:  # a finding about the graph alone: cached, so the next load skips onnx
        with contextlib.suppress(WriteError):
            entry.store_refusal(str(exc))
        return BatchRewrite(None, LOOP + str(exc))
    except Exception as exc:  # protobuf decode errors and the like: ORT read the file, onnx cannot
        return BatchRewrite(None, LOOP + f"the onnx package cannot rewrite this model ({type(exc).__name__})")
    try:
        session = open_session(rewritten)
        worst = probe(original, session, inputs)
    except ModelError as exc:
        return BatchRewrite(None, LOOP + f"ONNX Runtime cannot load the rewritten model: {exc}")
    except ProbeMismatch as exc:
        return BatchRewrite(None, LOOP + f"the rewritten model fails the probe: {exc}")
    except Exception as exc:  # ORT's own errors when the rewritten graph cannot run a batch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BatchRewrite(None, LOOP + f"the rewritten model cannot run a batch of {PROBE_BATCH}: {first}")
    note = (f"batch axis made dynamic: rewritten and checked on a probe batch of {PROBE_BATCH} "
            f"(max |diff| {worst:.3g} vs per-sample runs; {why})")
    try:
        entry.store(rewritten, {"probe_batch": PROBE_BATCH, "max_abs_diff": worst, "atol": ATOL, "rtol": RTOL})
    except WriteError as exc:
        note += f"; not cached: {exc}"
    return BatchRewrite(session, note)
