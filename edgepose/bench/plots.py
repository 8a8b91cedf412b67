"""matplotlib figures of benchmark rows (no pyplot state): stacked stage latencies and AP vs latency (Pareto)."""

from __future__ import annotations

import os

from edgepose.bench.report import persons_text
from edgepose.io import atomic_path

STAGE_COLORS = {"detect": "#8c8c8c", "crop": "#4c72b0", "infer": "#dd8452", "decode": "#55a868"}


def _label(row: dict) -> str:
    provider = str(row["provider"]).replace("ExecutionProvider", "")
    return f"{row['model']}\n{provider} t={row['threads']} p={persons_text(row)}"


def stage_bars(figure_class, rows: list[dict]):
    """One bar per configuration: median detect / crop / infer / decode ms stacked; a dot at end-to-end median."""
    figure = figure_class(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5))
    ax = figure.add_subplot()
    positions = range(len(rows))
    bottom = [0.0] * len(rows)
    for stage, color in STAGE_COLORS.items():
        heights = [row["stages"][stage]["median_ms"] for row in rows]
        ax.bar(positions, heights, bottom=bottom, color=color, label=stage)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.plot(list(positions), [row["stages"]["end_to_end"]["median_ms"] for row in rows], "k.", label="end to end")
    ax.set_xticks(list(positions), [_label(r) for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("median ms per frame")
    ax.set_title("Latency per stage")
    ax.legend(fontsize=8)
    return figure


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, AP) points no other point beats on both (lower latency, higher AP), by latency."""
    front: list[tuple[float, float]] = []
    for latency, ap in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or ap > front[-1][1]:
            front.append((latency, ap))
    return front


def pareto_plot(figure_class, rows: list[dict]):
    """AP against end-to-end median latency at the smallest person count, one series per provider/threads."""
    with_ap = [r for r in rows if r.get("ap") is not None]
    smallest = min(r["persons_out"] for r in with_ap)
    figure = figure_class(figsize=(6.0, 4.5))
    ax = figure.add_subplot()
    series: dict[str, list[dict]] = {}
    for row in with_ap:
        if row["persons_out"] == smallest:
            series.setdefault(f"{row['provider']} t={row['threads']}", []).append(row)
    for name, members in series.items():
        points = [(r["stages"]["end_to_end"]["median_ms"], r["ap"]) for r in members]
        ax.scatter(*zip(*points, strict=True), label=name)
        for r, (x, y) in zip(members, points, strict=True):
            ax.annotate(r["model"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto_front(points)
        ax.plot(*zip(*front, strict=True), "--", linewidth=1)
    ax.set_xlabel(f"end-to-end median ms ({smallest} person{'s' if smallest != 1 else ''})")
    ax.set_ylabel("AP")
    ax.set_title("Accuracy vs latency (dashed: Pareto front)")
    ax.legend(fontsize=8)
    return figure


def write_plots(rows: list[dict], out_dir: str | os.PathLike) -> tuple[list[str], str | None]:
    """Stacked per-stage latency bars, and an AP-vs-latency Pareto plot when rows carry AP.

    Returns (written paths, a message when plots were skipped). matplotlib is imported here only.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install matplotlib, or 'edgepose[train]')"
    written = [_save(stage_bars(Figure, rows), os.path.join(out_dir, "latency_stages.png"))]
    if any(row.get("ap") is not None for row in rows):
        written.append(_save(pareto_plot(Figure, rows), os.path.join(out_dir, "pareto_ap_latency.png")))
    return written, None


def _save(figure, path: str) -> str:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
    return path
