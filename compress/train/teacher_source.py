"""What the trainer asks for a distillation step: the teacher's outputs (online or cached) and the full loss."""

from __future__ import annotations

import torch

from compress.train.distill import DistillConfig, FrozenTeacher, MMPoseTeacher, distill_loss, teacher_checkpoint
from compress.train.feature_distill import FeatureAdapters, FeatureTaps, feature_loss, probe_channels
from compress.train.teacher_cache import TeacherCache, file_digest, folder_listing_digest
from edgepose.card import ModelCard


def cache_parts(config: DistillConfig, train_set, seed: int) -> dict:
    """Everything the teacher's outputs on the augmented training items depend on (the cache key)."""
    from compress.config import to_dict

    card = train_set.card
    parts = {
        "teacher_sha256": file_digest(teacher_checkpoint(config.teacher)),
        "train_ann_sha256": file_digest(train_set.ann_file),
        "train_images": folder_listing_digest(train_set.image_dir),
        "items": len(train_set),
        "crop": {k: getattr(card, k) for k in ("input_size", "mean", "std", "color", "bbox_padding")},
        "augment": to_dict(train_set.augment),
        "seed": int(seed),
    }
    if isinstance(config.teacher, MMPoseTeacher):  # the same weights read as another arch give other outputs
        parts["teacher_arch"] = config.teacher.arch
    return parts


class TeacherSource:
    """The frozen teacher of a distillation run, with its optional disk cache and feature adapters."""

    def __init__(self, config: DistillConfig, student: torch.nn.Module, student_card: ModelCard, train_set,
                 seed: int, device: torch.device) -> None:
        self.config, self.card = config, student_card
        self.teacher = FrozenTeacher(config.teacher, student_card).to(device)
        self.device = device
        self.cache: TeacherCache | None = None
        if config.cache:
            with torch.no_grad():
                w, h = student_card.input_size
                probe = self.teacher(torch.zeros(1, 3, h, w, device=device))
            self.cache = TeacherCache(config.cache, cache_parts(config, train_set, seed), len(train_set),
                                      {name: tuple(t.shape[1:]) for name, t in probe.items()})
        self.adapters: FeatureAdapters | None = None
        self.student_taps = self.teacher_taps = None
        if config.features:
            s_names = [p.student for p in config.features]
            t_names = [p.teacher for p in config.features]
            s_ch = probe_channels(student, s_names, student_card.input_size)
            t_ch = probe_channels(self.teacher.model, t_names, student_card.input_size)
            self.adapters = FeatureAdapters(s_ch, t_ch).to(device)
            self.student_taps = FeatureTaps(student, s_names, "student")
            self.teacher_taps = FeatureTaps(self.teacher.model, t_names, "teacher")

    @property
    def teacher_card(self) -> ModelCard:
        """The teacher's own card."""
        return self.teacher.card

    def begin_epoch(self, epoch: int, is_main: bool, barrier) -> None:
        """Prepare the cache files of ``epoch`` (main process), wait, then map them (every process)."""
        if self.cache is None:
            return
        if is_main:
            self.cache.prepare(epoch)
        barrier()
        self.cache.open(epoch)

    def outputs(self, images: torch.Tensor, meta: list[dict]) -> dict[str, torch.Tensor]:
        """The teacher's outputs for this batch: from the cache when every item is there, else computed (and
        stored)."""
        if self.cache is None:
            return self.teacher(images)
        indices = [int(m["index"]) for m in meta]
        hit = self.cache.lookup(indices, self.device)
        if hit is not None:
            return hit
        out = self.teacher(images)
        self.cache.store(indices, out)
        return out

    def loss(self, student_out: dict, images: torch.Tensor, meta: list[dict], targets: dict,
             weights: torch.Tensor, adapters: torch.nn.Module | None = None) -> torch.Tensor:
        """FPD loss, plus the feature terms when configured (``adapters``: the possibly DDP-wrapped adapters)."""
        teacher_out = self.outputs(images, meta)
        loss = distill_loss(student_out, teacher_out, targets, weights, self.card, self.teacher_card, self.config)
        if self.adapters is not None:
            pairs = self.config.features
            student_feats = [self.student_taps.outputs[p.student] for p in pairs]
            teacher_feats = [self.teacher_taps.outputs[p.teacher] for p in pairs]
            adapted = (adapters or self.adapters)(student_feats)
            loss = loss + feature_loss(adapted, teacher_feats, pairs)
        return loss

    def close(self) -> None:
        """Unmap the cache and remove the hooks."""
        if self.cache is not None:
            self.cache.close()
        for taps in (self.student_taps, self.teacher_taps):
            if taps is not None:
                taps.remove()
