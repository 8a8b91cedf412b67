"""A tiny pose network exported as TorchScript and torch.export programs (seconds, not a real model), and a way to
rewrite a ``.pt2`` archive member by member (for archives that torch.export.save would never write)."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from edgepose.card import ModelCard


class TinyPose(torch.nn.Module):
    """(N, 3, H, W) -> {"heatmaps": (N, 17, H/4, W/4)}: one strided convolution and a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 17, 4, stride=4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": torch.sigmoid(self.conv(x))}


def export_tiny(out_dir: Path, card: ModelCard) -> dict[str, Path]:
    """``tiny.pt2`` (card in ``tiny.pt2.card.json``), ``bare.pt2`` (no sidecar) and ``bare.ts`` (no card)."""
    from deploy.export_torch import export_torch

    model = TinyPose().eval()
    paths = {"pt2": out_dir / "tiny.pt2", "bare_pt2": out_dir / "bare.pt2", "bare_ts": out_dir / "bare.ts"}
    export_torch(model, card, paths["pt2"], kind="export")
    paths["bare_pt2"].write_bytes(paths["pt2"].read_bytes())
    w, h = card.input_size

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)["heatmaps"]

    with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it still works
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        torch.jit.save(torch.jit.trace(Wrapped().eval(), torch.zeros(1, 3, h, w)), paths["bare_ts"])
    return paths


def rewrite_pt2(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """Copy the archive ``src`` to ``dst``, letting ``edit`` change its members (names below the root folder)."""
    with zipfile.ZipFile(src) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    root = next(iter(files)).split("/")[0]
    members = {name.split("/", 1)[1]: data for name, data in files.items()}
    edit(members)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{root}/{name}", data)
    return dst
