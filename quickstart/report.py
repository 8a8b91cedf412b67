"""The last stage of ``edgepose quickstart``: OUT/report.md, OUT/report.json and OUT/plots/*.png.

One row per variant (accuracy, latency, size, params, GFLOPs, parity), the stage wall times, the machine, the
equivalent step-by-step commands and two plots (AP vs latency; latency per variant at batch 1 and 8).
"""

from __future__ import annotations

import itertools
import json
import os

from edgepose.io import atomic_path, atomic_write_text
from quickstart.stages import SOURCES, VARIANTS, Context, load_output
from quickstart.stamps import Stamps

PLOTS = {"accuracy_vs_latency": "plots/accuracy_vs_latency.png", "latency": "plots/latency.png"}


def rows(ctx: Context) -> list[dict]:
    """One dict per variant, joining the eval, bench, export and quantize records."""
    metrics = load_output(ctx, "eval/metrics.json")
    latency = load_output(ctx, "bench/latency.json")["latency"]
    exported = load_output(ctx, "export/export.json")
    quantized = load_output(ctx, "quantize/quantize.json")
    out = []
    for name, (onnx, ckpt, precision) in VARIANTS.items():
        source = exported[name.rsplit("_", 1)[0]]  # int8 / fp16 copies: the pruned student's numbers
        parity = source["parity_vs_checkpoint"] if precision == "fp32" else quantized[name]["parity_vs_fp32"]
        out.append({"variant": name, "precision": precision, "source": SOURCES[name], "arch": source["arch"],
                    "onnx": onnx,
                    "checkpoint": ckpt, "AP": metrics[name]["AP"], "AP50": metrics[name]["AP50"],
                    "AR": metrics[name]["AR"], "persons": metrics[name]["persons"], **latency[name],
                    "size_bytes": os.path.getsize(ctx.path(onnx)), "params": source["params"],
                    "gflops": source["gflops"], "parity": parity})
    base = next(r for r in out if r["variant"] == "student_fp32")
    for r in out:
        r["speedup_vs_student_fp32_b1"] = base["ms_per_person_b1"] / r["ms_per_person_b1"]
    return out


def recommend(table: list[dict]) -> tuple[dict, dict[str, str]]:
    """The variant to deploy on this CPU: the lowest batch-1 latency among those within 1 AP point of the distilled
    student; a quantized variant that is not faster than the variant it was made from is left out (with why)."""
    by = {r["variant"]: r for r in table}
    floor = by["student_fp32"]["AP"] - 0.01
    left_out: dict[str, str] = {}
    candidates = []
    for r in table:
        source = by.get(r["source"] or "")
        why = []
        if r["AP"] < floor:
            why.append(f"AP {r['AP']:.3f} is more than 1 point below the distilled student's")
        if r["precision"] != "fp32" and source and r["ms_per_person_b1"] >= source["ms_per_person_b1"]:
            why.append(f"{r['precision'].upper()} is not faster than {source['variant']} on this CPU "
                       f"({r['ms_per_person_b1']:.2f} vs {source['ms_per_person_b1']:.2f} ms/person)")
        if why:
            left_out[r["variant"]] = "; ".join(why)
        else:
            candidates.append(r)
    return min(candidates, key=lambda r: r["ms_per_person_b1"]), left_out


def plot(ctx: Context, table: list[dict], batches: list[int]) -> None:
    """AP vs batch-1 latency (scatter) and latency per variant (bars per batch size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["variant"] for r in table]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = itertools.cycle("osDv^<>p")
    for r in table:
        ax.scatter(r["ms_per_person_b1"], r["AP"], s=50, marker=next(markers), label=r["variant"])
    ax.legend(fontsize=8)
    ax.set(xlabel="ONNX Runtime CPU ms / person (batch 1, median)", ylabel="COCO AP (synthetic val, GT boxes)",
           title=f"quickstart ({ctx.profile.name}): accuracy vs latency")
    ax.grid(alpha=0.3)
    _save(fig, ctx.path(PLOTS["accuracy_vs_latency"]))
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    x = np.arange(len(names))
    width = 0.8 / len(batches)
    for i, n in enumerate(batches):
        ax.bar(x + (i - (len(batches) - 1) / 2) * width, [r[f"ms_per_person_b{n}"] for r in table], width,
               label=f"batch {n}")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="ms / person (median)", title="ONNX Runtime CPU latency per variant")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    _save(fig, ctx.path(PLOTS["latency"]))


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def commands(ctx: Context) -> list[str]:
    """The invocation, then the step-by-step commands that reproduce each stage from the files under OUT."""
    p, out = ctx.profile, str(ctx.out)
    train_ann, train_images = ctx.split("train")
    lines = [ctx.command or f"edgepose quickstart --out {out}",
             f"edgepose data synth --out {out}/data --train {p.data.train} --val {p.data.val} --seed {p.data.seed}",
             f"edgepose train {out}/teacher/config.yaml", f"edgepose distill {out}/student/config.yaml",
             f"edgepose prune {out}/pruned/job.yaml"]
    lines += [f"edgepose export {out}/{ckpt} --out {out}/export/{name}.onnx"
              for name, ckpt in (("teacher", "teacher/last.pth"), ("student", "student/last.pth"),
                                 ("pruned", "pruned/pruned.pth"))]
    lines += [f"edgepose quantize {out}/export/pruned.onnx --out {out}/quantize/pruned_int8.onnx --mode int8 "
              f"--calib-ann {train_ann} --calib-images {train_images} --num {p.quantize.calib_images} "
              f"--method {p.quantize.method}",
              f"edgepose quantize {out}/export/pruned.onnx --out {out}/quantize/pruned_fp16.onnx --mode fp16",
              f"edgepose build-engine {out}/quantize/pruned_int8.onnx --out {out}/engines/pruned_int8.engine "
              "--min-batch 1 --opt-batch 8 --max-batch 8   # TensorRT + GPU only"]
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _teacher(stage) -> str:
    """'16 epochs' plus what differs from the plain model: constructor arguments, bfloat16 training."""
    extra = [f"{k} {v}" for k, v in stage.kwargs.items()]
    if stage.cpu_bf16:
        extra.append("bfloat16 autocast where the CPU has it")
    return _plural(stage.epochs, "epoch") + (f" ({', '.join(extra)})" if extra else "")


def notes(ctx: Context, bench: dict, table: list[dict]) -> list[str]:
    """What the numbers mean (and do not); the last ones depend on what was measured."""
    p = ctx.profile
    level = ("easy level: one large upright person facing the camera per image, little clutter, no occluders"
             if p.data.level == "easy" else "hard level: 1-4 persons, clutter, distractors, occluders")
    size = (f"{p.data.train} train / {p.data.val} val synthetic images ({level}), "
            f"input {p.card['input_size'][0]}x{p.card['input_size'][1]}, teacher {_teacher(p.teacher)}, "
            f"student {_plural(p.student.epochs, 'epoch')}, pruning fine-tuned {_plural(p.prune.epochs, 'epoch')}")
    if p.low_accuracy:
        first = (f"**Accuracy is low by design.** The '{p.name}' profile ({size}) exercises every stage, it does "
                 "not learn the task: AP values are near zero and their differences are noise. Run "
                 "`edgepose quickstart` (the default profile) for accuracy that means something.")
    else:
        first = (f"AP is COCO keypoint AP on the synthetic val split with ground-truth boxes ({size}); the synthetic "
                 "set is not COCO: compare the variants with each other, not with published COCO numbers.")
    s = bench["settings"]
    load = bench["machine"].get("load_average")
    threads = "ONNX Runtime's default threads" if s["threads"] is None else _plural(s["threads"], "thread")
    out = [first,
           f"Latency: ONNX Runtime CPU, {threads}, median ms per person over {s['rounds']} rounds in which every "
           f"variant runs each batch size ({', '.join(map(str, s['batches']))}) once, in turn, after {s['warmup']} "
           f"warm-up runs; load average at the time {load} (other processes on the machine inflate these numbers)."]
    by = {r["variant"]: r for r in table}
    alone, distilled = by["student_alone_fp32"]["AP"], by["student_fp32"]["AP"]
    how = f"the teacher's heatmaps at weight {p.student.alpha:g}"
    if p.student.features:
        how += " plus " + ", ".join(f"its '{f['teacher']}' features imitated by the student's '{f['student']}' "
                                    f"(1x1 adapter, weight {f.get('weight', 1.0):g})" for f in p.student.features)
    out.append(f"Distillation: the student trained alone reaches AP {alone:.3f}; the same student, schedule and seed "
               f"distilled from the teacher ({by['teacher_fp32']['AP']:.3f}; {how}) reaches {distilled:.3f} "
               f"({100 * (distilled - alone):+.1f} points).")
    col = f"ms_per_person_b{max(s['batches'])}"  # the largest batch: the steadiest numbers
    if by["pruned_fp32"][col] >= 0.95 * by["student_fp32"][col]:
        cut = 1 - by["pruned_fp32"]["gflops"] / by["student_fp32"]["gflops"]
        out.append(f"Pruning removed {cut:.0%} of the student's FLOPs but hardly changed its CPU latency here, "
                   "most likely because a model this small spends its ONNX Runtime CPU time on the per-operator "
                   "overhead of many small layers (channel split/shuffle, weighting) more than on multiply-adds.")
    if by["pruned_int8"][col] > by["pruned_fp32"][col]:
        out.append("INT8 (explicit Q/DQ) is slower than FP32 on this CPU, likely because ONNX Runtime pays a "
                   "quantize/dequantize pair around every op it keeps in float, which outweighs the int8 convs "
                   "here; the Q/DQ graph is made for TensorRT, which fuses them. The first conv and the head stay "
                   "float (quantize/quantize.json lists what was excluded).")
    if by["pruned_fp16"][col] > by["pruned_fp32"][col]:
        out.append("FP16 is not faster than FP32 on a CPU (it runs through casts); it is meant for GPUs (TensorRT).")
    int8 = by["pruned_int8"]["parity"]
    if not int8["passed"]:
        out.append(f"INT8 parity vs FP32 failed ({int8['first_failure']}): judge INT8 by its AP drop, not by "
                   "keypoint agreement on a barely trained model." if p.low_accuracy else
                   f"INT8 parity vs FP32 failed ({int8['first_failure']}): judge it by its AP drop above.")
    return out


def _fmt_row(r: dict, batches: list[int]) -> str:
    cells = [r["variant"], r["arch"], r["precision"], f"{r['AP']:.3f}", f"{r['AP50']:.3f}"]
    cells += [f"{r[f'ms_per_person_b{n}']:.2f}" for n in batches]
    cells += [f"{r['size_bytes'] / 1e6:.2f}", f"{r['params'] / 1e6:.3f}", f"{r['gflops']:.4f}",
              f"{r['speedup_vs_student_fp32_b1']:.2f}x", "yes" if r["parity"]["passed"] else "no"]
    return "| " + " | ".join(cells) + " |"


def markdown(ctx: Context, record: dict) -> str:
    """report.md from the report record."""
    batches = record["benchmark"]["settings"]["batches"]
    head = ["variant", "model", "precision", "AP", "AP50", *(f"ms/person b{n}" for n in batches), "ONNX MB",
            "params (M)", "GFLOPs", "speed-up b1 vs student", "parity"]
    lines = [f"# edgepose quickstart: profile '{ctx.profile.name}'", "", *(f"> {n}" for n in record["notes"][:1]), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_fmt_row(r, batches) for r in record["variants"]]
    best = record["recommended"]
    lines += ["", "## Recommended for this CPU", "",
              f"**{best['variant']}**: AP {best['AP']:.3f}, {best['ms_per_person_b1']:.2f} ms/person at batch 1 (the "
              "fastest variant within 1 AP point of the distilled student).", "", "```bash", best["command"], "```"]
    lines += [f"- left out: {name}: {why}" for name, why in record["left_out_of_recommendation"].items()]
    lines += ["", "Parity: FP32 ONNX vs its checkpoint (deploy.verify, FP32 tolerances); FP16/INT8 vs the pruned FP32 "
              "ONNX with the precision's tolerances. GFLOPs are multiply-accumulates at the input size.", "",
              f"![accuracy vs latency]({PLOTS['accuracy_vs_latency']})", "", f"![latency]({PLOTS['latency']})", ""]
    prune = record["prune"]
    lines += ["## Pruning", "", f"GFLOPs {prune['flops_before']:.4f} -> {prune['flops_after']:.4f} "
              f"({1 - prune['flops_after'] / prune['flops_before']:.1%} fewer), params {prune['params_before']} -> "
              f"{prune['params_after']} (engine {prune['engine']}); fine-tuned with the unpruned student as teacher.",
              "", "## TensorRT", "", _engines_line(record["engines"]), "", "## Stages", "",
              "| stage | what | seconds | finished |", "|---|---|---|---|"]
    lines += [f"| {s['stage']} | {s['title']} | {s['seconds']:.1f} | {s['finished']} |" for s in record["stages"]]
    lines += ["", f"Sum of stage wall times (without this report): {record['stage_seconds_total']:.1f} s.", "",
              "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in record["machine"].items()]
    lines += ["", "## Commands", "", "```bash", *record["commands"], "```", "", "## Notes", ""]
    lines += [f"- {n}" for n in record["notes"]]
    return "\n".join(lines) + "\n"


def _engines_line(engines: dict) -> str:
    if engines.get("skipped"):
        return f"{engines['skipped']} (TensorRT {engines.get('tensorrt')}, GPU {engines.get('gpu')})."
    return "; ".join(f"{k}: {v.get('engine') or v.get('error')}" for k, v in engines["engines"].items())


def _recommendation(ctx: Context, table: list[dict]) -> dict:
    best, left_out = recommend(table)
    return {"recommended": {"variant": best["variant"], "onnx": best["onnx"], "AP": best["AP"],
                            "ms_per_person_b1": best["ms_per_person_b1"],
                            "command": f"edgepose predict IMAGES_OR_VIDEO --model {ctx.path(best['onnx'])}"},
            "left_out_of_recommendation": left_out}


def run_report(ctx: Context, resume: bool) -> list[str]:
    """Write report.json, the plots and report.md."""
    from compress.config import to_dict

    bench = load_output(ctx, "bench/latency.json")
    table = rows(ctx)
    stamps = Stamps(ctx.out)
    stages = []
    for name, title in ctx.stages:
        stamp = stamps.read(name)
        if stamp is not None and stamp.status == "done":
            stages.append({"stage": name, "title": title, "seconds": stamp.seconds, "finished": stamp.finished})
    prune = load_output(ctx, "pruned/report.json")
    record = {"profile": ctx.profile.name, "config": to_dict(ctx.profile), "variants": table,
              "benchmark": {"settings": bench["settings"]}, "machine": bench["machine"],
              "prune": {k: prune[k] for k in ("flops_before", "flops_after", "params_before", "params_after",
                                              "engine", "ap_before", "ap_after")},
              "engines": load_output(ctx, "engines/engines.json"), "stages": stages,
              "stage_seconds_total": sum(s["seconds"] for s in stages), "commands": commands(ctx),
              **_recommendation(ctx, table),
              "notes": notes(ctx, bench, table), "plots": dict(PLOTS)}
    plot(ctx, table, bench["settings"]["batches"])
    atomic_write_text(ctx.path("report.json"), json.dumps(record, indent=2, default=str) + "\n")
    atomic_write_text(ctx.path("report.md"), markdown(ctx, record))
    return ["report.md", "report.json", *PLOTS.values()]
