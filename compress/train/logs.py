"""Run logs: one CSV row per epoch, mirrored to TensorBoard when it is installed."""

from __future__ import annotations

import csv
import os


class RunLog:
    """Appends epoch metrics to ``out_dir/log.csv`` and TensorBoard scalars. A row with a column the file lacks (the
    validation metrics of a run that validates every few epochs) widens the file: its earlier rows leave it empty."""

    def __init__(self, out_dir: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = os.path.join(out_dir, "log.csv")
        self._writer = None
        if not enabled:
            return
        os.makedirs(out_dir, exist_ok=True)  # a new run's folder was cleared by the caller: rows always append
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(os.path.join(out_dir, "tb"))
        except ImportError:  # tensorboard is optional
            self._writer = None

    def write(self, metrics: dict) -> None:
        """Add one epoch's numbers."""
        if not self.enabled:
            return
        row = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
        # empty: a run stopped between creating the file and writing its header (Ctrl-C right after a save)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        columns = list(row) if new else _header(self.path)
        if not new and any(k not in columns for k in row):
            columns += [k for k in row if k not in columns]
            _rewrite(self.path, columns)
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            for key, value in row.items():
                if value is not None and key != "epoch":
                    self._writer.add_scalar(key, value, metrics.get("epoch", 0))
            self._writer.flush()

    def drop_after(self, epoch: int) -> None:
        """Remove the rows of epochs after ``epoch`` (a resumed run trains them again)."""
        if not self.enabled or not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return
        with open(self.path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if float(r.get("epoch") or 0) <= epoch]
        if len(kept) < len(rows):
            _rewrite(self.path, _header(self.path), kept)

    def note(self, text: str) -> None:
        """Append a line to ``out_dir/notes.txt``."""
        if self.enabled:
            with open(os.path.join(os.path.dirname(self.path), "notes.txt"), "a", encoding="utf-8") as fh:
                fh.write(text + "\n")

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def _rewrite(path: str, columns: list[str], rows: list[dict] | None = None) -> None:
    """Rewrite the CSV (or ``rows``) under ``columns`` (atomically; missing cells empty)."""
    from edgepose.io import atomic_path

    if rows is None:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _header(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return next(csv.reader(fh))
