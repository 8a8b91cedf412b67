"""Benchmark results as JSON lines, CSV and a Markdown table (one row per configuration), and optional plots."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence

from edgepose.bench.measure import ALL_STAGES
from edgepose.bench.stats import SUMMARY_KEYS
from edgepose.errors import InputError
from edgepose.io import atomic_write_text, read_json

ID_COLUMNS = ("model", "backend", "provider", "threads", "persons", "persons_out", "boxes", "batch_mode",
              "input_dtype", "iters", "rounds")
TAIL_COLUMNS = ("fps", "persons_per_s", "peak_rss_mib", "rss_scope", "gpu_memory_mib", "ap")
STACKED = ("detect", "crop", "infer", "decode")


def csv_columns() -> list[str]:
    """CSV header: identity, ``<stage>_<stat>`` for every stage and statistic, throughput, memory, AP."""
    stats = [k for k in SUMMARY_KEYS if k != "n"]
    return [*ID_COLUMNS, *(f"{s}_{k}" for s in ALL_STAGES for k in stats), *TAIL_COLUMNS]


def flatten(row: dict) -> dict:
    """A result row as one flat CSV record."""
    flat = {k: row.get(k) for k in ID_COLUMNS}
    for stage in ALL_STAGES:
        for key, value in row["stages"][stage].items():
            if key != "n":
                flat[f"{stage}_{key}"] = value
    flat.update({k: row.get(k) for k in TAIL_COLUMNS})
    return flat


def load_ap(path: str | os.PathLike) -> dict[str, float]:
    """``{model: AP}`` from JSON mapping a model (stem, file name or path) to a number or to an
    ``edgepose eval --json`` summary (its ``AP``)."""
    data = read_json(path, "AP")
    if not isinstance(data, dict):
        raise InputError(f"{path} must map model -> AP (a number or an 'edgepose eval --json' summary)")
    out = {}
    for model, value in data.items():
        ap = value.get("AP") if isinstance(value, dict) else value
        if isinstance(ap, bool) or not isinstance(ap, (int, float)):
            raise InputError(f"{path}: AP of {model!r} must be a number or a dict with 'AP', got {value!r}")
        out[str(model)] = float(ap)
    return out


def attach_ap(rows: list[dict], ap: dict[str, float]) -> None:
    """Set ``row["ap"]`` where ``ap`` names the row's model by stem, file name or path (None otherwise)."""
    for row in rows:
        keys = (row["model"], row["model_file"], row["model_path"], os.path.abspath(row["model_path"]))
        row["ap"] = next((ap[k] for k in keys if k in ap), None)


def to_jsonl(rows: Sequence[dict]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def to_csv(rows: Sequence[dict]) -> str:
    """The flat CSV table."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(flatten(row))
    return buffer.getvalue()


def persons_text(row: dict) -> str:
    """Persons per frame; with the requested value when it differs (``4 (det)``)."""
    out, asked = row["persons_out"], row["persons"]
    return str(out) if out == asked else f"{out} ({asked})"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def to_markdown(rows: Sequence[dict], environment: dict | None = None) -> str:
    """Median ms per stage, end to end (p90, p99), FPS, persons/s, peak RSS and AP per configuration."""
    lines = []
    if environment:
        gpus = ", ".join(g["name"] for g in environment.get("gpus") or []) or "none"
        versions = ", ".join(f"{k} {v}" for k, v in environment["versions"].items() if v)
        load = environment.get("load_average")
        load_text = f"; load average {'/'.join(str(v) for v in load)}" if load else ""
        lines += [f"CPU: {environment['cpu']} ({environment['cores']} cores, {environment['ram_gib']} GiB{load_text}); "
                  f"GPU: {gpus}; {versions}", ""]
    lines += ["| model | backend | provider | threads | persons | detect | crop | infer | decode | "
              "end-to-end (p90, p99) | FPS | persons/s | peak RSS MiB | AP |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        st = row["stages"]
        e2e = st["end_to_end"]
        ap = "" if row.get("ap") is None else f"{row['ap']:.3f}"
        rss = "" if row.get("peak_rss_mib") is None else f"{row['peak_rss_mib']:.0f}"
        persons = persons_text(row)
        lines.append(
            f"| {row['model']} | {row['backend']} | {row['provider']} | {row['threads']} | {persons} | "
            + " | ".join(_ms(st[s]["median_ms"]) for s in STACKED)
            + f" | {_ms(e2e['median_ms'])} ({_ms(e2e['p90_ms'])}, {_ms(e2e['p99_ms'])}) | {row['fps']:.1f} | "
            f"{row['persons_per_s']:.1f} | {rss} | {ap} |")
    if rows:
        lines += ["", f"Median ms per frame over {rows[0]['iters']} timed calls per configuration, interleaved in "
                      f"{rows[0]['rounds']} rounds; peak RSS scope: {rows[0]['rss_scope']}."]
    return "\n".join(lines) + "\n"


def write_reports(rows: list[dict], out_dir: str | os.PathLike, environment: dict | None = None) -> dict[str, str]:
    """Write bench.jsonl, bench.csv, bench.md and environment.json into ``out_dir``; returns the paths."""
    out_dir = os.fspath(out_dir)
    paths = {name: os.path.join(out_dir, name) for name in ("bench.jsonl", "bench.csv", "bench.md",
                                                            "environment.json")}
    atomic_write_text(paths["bench.jsonl"], to_jsonl(rows))
    atomic_write_text(paths["bench.csv"], to_csv(rows))
    atomic_write_text(paths["bench.md"], to_markdown(rows, environment))
    atomic_write_text(paths["environment.json"], json.dumps(environment or {}, indent=2) + "\n")
    return paths
