"""Parity between two forms of one model: a training checkpoint, an ONNX file, an engine or a torch program.

    report = verify("best.pth", "model.onnx")        # any two forms, by path
    report = verify(LoadedModel(model, card, "best.pth"), tmp)   # what `edgepose export` runs: the model it exported
    edgepose verify best.pth model.onnx              # the same check for any two of them

The inputs are real-looking: persons of rendered synthetic scenes (deterministic, no data needed), cropped with the
runtime's own preprocessing and the model's card. Compared: every output (max |a - b| against ``atol + rtol *
max|a|``) and the decoded keypoints (pixels of the model input). A failure names the first diverging output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepose.card import ModelCard
from edgepose.errors import ModelError

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


@dataclass(frozen=True)
class Tolerance:
    """What counts as the same model; FP32 defaults (FP16 / INT8 copies need looser ones, see ``for_precision``)."""

    atol: float = 1e-4
    rtol: float = 1e-3
    keypoint_px: float = 0.05

    @staticmethod
    def for_precision(precision: str) -> Tolerance:
        """Defaults per precision: fp32, fp16, int8."""
        return {"fp32": Tolerance(), "fp16": Tolerance(2e-3, 2e-2, 0.5),
                "int8": Tolerance(5e-2, 2e-1, 2.0)}[precision]


@dataclass(frozen=True)
class LoadedModel:
    """A torch model already in memory with its card, as the reference form (saves loading a checkpoint again)."""

    model: Any
    card: ModelCard
    name: str = "model"


@dataclass
class ParityReport:
    """The outcome of one comparison."""

    a: str
    b: str
    inputs: int
    outputs: dict[str, dict] = field(default_factory=dict)  # name -> {max_abs, allowed, ok}
    keypoint_max_px: float = 0.0
    keypoint_mean_px: float = 0.0
    keypoint_allowed_px: float = 0.0
    first_failure: str | None = None
    ambiguous_keypoints: int = 0  # peaks the two forms may place apart because their maps tie within tolerance

    @property
    def passed(self) -> bool:
        """Every output and the keypoints within tolerance."""
        return self.first_failure is None

    def summary(self) -> str:
        """One line per check."""
        lines = [f"{self.a} vs {self.b} on {self.inputs} person crops:"]
        for name, r in self.outputs.items():
            lines.append(f"  {name}: max |diff| {r['max_abs']:.3g} (allowed {r['allowed']:.3g}) "
                         f"{'ok' if r['ok'] else 'DIVERGES'}")
        lines.append(f"  keypoints: max {self.keypoint_max_px:.4f} px, mean {self.keypoint_mean_px:.4f} px "
                     f"(allowed {self.keypoint_allowed_px} px; {self.ambiguous_keypoints} tied peaks not compared)")
        lines.append("  PASSED" if self.passed else f"  FAILED: {self.first_failure}")
        return "\n".join(lines)


class _Runner:
    """Runs one form of the model on NCHW float32 batches; ``card`` is the form's own card."""

    def __init__(self, form: str | LoadedModel) -> None:
        if isinstance(form, LoadedModel):
            self.path, self.model, self.card, self.backend = form.name, form.model.eval(), form.card, None
            return
        path = self.path = form
        if path.endswith(CHECKPOINT_SUFFIXES):
            from compress.checkpoint import load_model

            self.model, self.card, _ = load_model(path)
            self.backend = None
        else:
            from edgepose.backends import open_backend
            from edgepose.contract import card_from_metadata

            self.backend = open_backend(path)
            self.card = card_from_metadata(self.backend.metadata, path)

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.backend is None:
            import torch

            with torch.no_grad():
                out = self.model(torch.from_numpy(batch))
            return {k: v.numpy() for k, v in out.items() if k in self.card.output_names}
        feed = batch.astype(self.backend.inputs[0].dtype, copy=False)
        out = {}
        for i in range(len(feed)):  # batch 1 works for fixed- and dynamic-batch models alike
            for k, v in self.backend.infer({self.card.input_name: feed[i:i + 1]}).items():
                out.setdefault(k, []).append(v)
        return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def _ambiguous_peaks(out_a: dict, out_b: dict, allowed: dict[str, float]) -> np.ndarray:
    """(N, K) True where a map's two argmaxes are interchangeable: each model's value at the other's peak is within
    twice the output tolerance of its own maximum (a flat or twin-peaked map, e.g. an untrained model), so their
    decoded keypoints may legitimately differ by whole cells."""
    flags = None
    for name in allowed:
        a, b = out_a[name], out_b[name]
        flat_a, flat_b = a.reshape(*a.shape[:2], -1), b.reshape(*b.shape[:2], -1)
        ia, ib = flat_a.argmax(-1)[..., None], flat_b.argmax(-1)[..., None]
        tie_a = flat_a.max(-1) - np.take_along_axis(flat_a, ib, -1)[..., 0] <= 2 * allowed[name]
        tie_b = flat_b.max(-1) - np.take_along_axis(flat_b, ia, -1)[..., 0] <= 2 * allowed[name]
        apart = (ia != ib)[..., 0]
        tied = apart & tie_a & tie_b
        flags = tied if flags is None else flags | tied
    return flags


def person_crops(card: ModelCard, count: int = 8, seed: int = 90210) -> np.ndarray:
    """(count, 3, H, W) float32 crops of persons in rendered synthetic scenes, preprocessed as the runtime does."""
    from compress.data.synthetic import render_scene
    from edgepose.preprocess import Cropper

    cropper = Cropper(card)
    crops: list[np.ndarray] = []
    index = 0
    while len(crops) < count:
        scene = render_scene(seed, "val", index)  # a seed no dataset config uses
        index += 1
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (p["bbox"] for p in scene.people)]
        if boxes:
            batch, _ = cropper(scene.image, np.asarray(boxes, np.float32))
            crops.extend(np.array(b) for b in batch)
        if index > 10 * count:
            raise RuntimeError("synthetic scenes gave no persons")  # pragma: no cover
    return np.stack(crops[:count]).astype(np.float32)


def verify(a: str | os.PathLike | LoadedModel, b: str | os.PathLike, tolerance: Tolerance | None = None,
           count: int = 8) -> ParityReport:
    """Compare forms ``a`` (the reference: a path, or a ``LoadedModel`` already in memory) and ``b`` of one model;
    see the module docstring."""
    from edgepose.codecs import build_codec

    ra = _Runner(a if isinstance(a, LoadedModel) else os.fspath(a))
    a, b = ra.path, os.fspath(b)
    tolerance = tolerance or Tolerance()
    try:
        rb = _Runner(b)
    except BaseException:
        ra.close()
        raise
    try:
        for name in ("input_size", "mean", "std", "color", "codec", "heatmap_size", "keypoints"):
            if getattr(ra.card, name) != getattr(rb.card, name):
                raise ModelError(f"{a} and {b} are not the same model: card field '{name}' differs "
                                 f"({getattr(ra.card, name)} vs {getattr(rb.card, name)})")
        batch = person_crops(ra.card, count)
        out_a, out_b = ra(batch), rb(batch)
        report = ParityReport(a, b, len(batch), keypoint_allowed_px=tolerance.keypoint_px)
        for name in ra.card.output_names:
            if name not in out_b:
                raise ModelError(f"{b} has no output '{name}' (it has {sorted(out_b)})")
            if out_a[name].shape != out_b[name].shape:
                report.first_failure = report.first_failure or (
                    f"output '{name}' has shape {out_b[name].shape} in {b}, {out_a[name].shape} in {a}")
                continue
            diff = float(np.abs(out_a[name] - out_b[name]).max())
            allowed = tolerance.atol + tolerance.rtol * float(np.abs(out_a[name]).max())
            ok = bool(np.isfinite(out_b[name]).all()) and diff <= allowed
            report.outputs[name] = {"max_abs": diff, "allowed": allowed, "ok": ok}
            if not ok and report.first_failure is None:
                report.first_failure = f"output '{name}' diverges: max |diff| {diff:.3g} > allowed {allowed:.3g}"
        if report.first_failure is None:
            codec = build_codec(ra.card)
            kp_a, _ = codec.decode(out_a)
            kp_b, _ = codec.decode(out_b)
            err = np.linalg.norm(kp_a - kp_b, axis=-1)
            ambiguous = _ambiguous_peaks(out_a, out_b, {k: r["allowed"] for k, r in report.outputs.items()})
            report.ambiguous_keypoints = int(ambiguous.sum())
            err = err[~ambiguous]
            if err.size:
                report.keypoint_max_px, report.keypoint_mean_px = float(err.max()), float(err.mean())
            if report.keypoint_max_px > tolerance.keypoint_px:
                report.first_failure = (f"decoded keypoints differ by up to {report.keypoint_max_px:.3f} px "
                                        f"(> {tolerance.keypoint_px} px)")
        return report
    finally:
        ra.close()
        rb.close()
