"""The quickstart fast profile's two students over several seeds, against one teacher: how steady is the gain?

    python -m benchmarks.distill_seeds_fast OUT --seeds 0,1,2 [--set alpha=0.8] [--set epochs=10]

OUT is a finished ``edgepose quickstart --fast --out OUT`` (its data and teacher/last.pth are reused). For each seed
the student is trained alone and distilled (the profile's student schedule, with ``--set`` overrides) under
OUT/seeds/; prints one JSON line per seed (final val AP of each, the gain) and the mean and minimum gain.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import yaml


def final_ap(run_dir: str) -> float:
    """The last validated AP in a run's log.csv."""
    with open(Path(run_dir) / "log.csv", encoding="utf-8") as fh:
        return float([r for r in csv.DictReader(fh) if r.get("AP")][-1]["AP"])


def main(argv: list[str] | None = None) -> int:
    from compress.train.loop import train
    from quickstart.config import FAST
    from quickstart.stages import Context, train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a finished quickstart --fast output folder")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a student field (YAML value), e.g. alpha=0.8 or epochs=10")
    args = parser.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    tag = "_".join(f"{k}{v}" for k, v in overrides.items()) or "profile"
    gains = []
    for seed in (int(s) for s in args.seeds.split(",")):
        student = dataclasses.replace(FAST.student, **overrides)
        ctx = Context(out=args.out, profile=dataclasses.replace(FAST, seed=seed, student=student), progress=False)
        row: dict = {"seed": seed, **overrides}
        for name, teacher in (("alone", None), ("distilled", ctx.path("teacher/last.pth"))):
            run = f"seeds/{tag}_{name}_s{seed}"
            started = time.time()
            train(train_config(ctx, student, run, teacher=teacher), resume=False, overwrite=True, progress=False)
            row[name], row[f"{name}_s"] = final_ap(ctx.path(run)), round(time.time() - started, 1)
        row["gain"] = row["distilled"] - row["alone"]
        gains.append(row["gain"])
        print(json.dumps(row), flush=True)
    print(json.dumps({"mean_gain": sum(gains) / len(gains), "min_gain": min(gains), "seeds": len(gains)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
