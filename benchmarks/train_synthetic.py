"""Train a small Lite-HRNet on the synthetic dataset on this CPU and record the AP curve.

    python -m benchmarks.train_synthetic                      # compress/configs/synthetic_lite_hrnet_tiny.yaml
    python -m benchmarks.train_synthetic --config CONFIG --epochs 12

Writes benchmarks/results/synthetic_training.json: the untrained model's AP, the AP after every epoch, wall time,
params/FLOPs and the machine, with the command that reproduces it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from compress.config import load_yaml
from compress.train.config import TrainConfig
from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def untrained_ap(config: TrainConfig) -> float:
    """AP of the freshly initialised model on the val set (the floor the curve starts from)."""
    import torch

    from compress.train import distributed
    from compress.train.evaluate import evaluate
    from compress.train.loop import build_for, build_loaders, seed_all

    seed_all(config.seed)
    card = config.model_card()
    model = build_for(config, card)
    _, val = build_loaders(config, card, distributed.Context())
    with torch.no_grad():
        return evaluate(model, val, card, out_dir=os.path.join(config.out_dir, "untrained"))["AP"]


def main(argv: list[str] | None = None) -> int:
    """Generate data if needed, train, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "compress" / "configs" / "synthetic_lite_hrnet_tiny.yaml"))
    parser.add_argument("--data", default="data/synthetic", help="synthetic dataset folder (made if missing)")
    parser.add_argument("--train", type=int, default=2000, help="training images to generate")
    parser.add_argument("--val", type=int, default=200, help="validation images to generate")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "synthetic_training.json"))
    args = parser.parse_args(argv)

    import torch

    from compress.data.synthetic import generate
    from compress.models.complexity import count_flops, count_params
    from compress.train.loop import build_for, train

    generate(args.data, args.train, args.val, seed=0)
    config = load_yaml(TrainConfig, args.config)
    if args.epochs:
        config.epochs = args.epochs
    card = config.model_card()
    model = build_for(config, card)
    floor = untrained_ap(config)
    started = time.time()
    result = train(config, resume=False, progress=True, overwrite=True)  # a benchmark run starts afresh
    minutes = (time.time() - started) / 60
    with open(os.path.join(config.out_dir, "log.csv"), encoding="utf-8") as fh:
        curve = [{"epoch": int(r["epoch"]), "AP": float(r["AP"]), "AP50": float(r["AP50"]),
                  "PCK@0.05": float(r["PCK@0.05"]) if r.get("PCK@0.05") else None,
                  "train_loss": float(r["train_loss"]), "epoch_seconds": float(r["epoch_seconds"])}
                 for r in csv.DictReader(fh) if r.get("AP")]
    record = {
        "benchmark": "synthetic_training",
        "command": " ".join(["python -m benchmarks.train_synthetic", *(argv if argv is not None else sys.argv[1:])]),
        "config": os.path.relpath(args.config, ROOT), "model": config.model.name,
        "params": count_params(model), "gflops": count_flops(model, card.input_size),
        "data": {"folder": args.data, "train_images": args.train, "val_images": args.val},
        "untrained_ap": floor, "final_ap": result.get("AP"), "best_ap": result["best_ap"], "curve": curve,
        "train_minutes": minutes, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "environment": environment(None),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"untrained AP {floor:.4f} -> final AP {record['final_ap']:.4f} (best {record['best_ap']:.4f}) "
          f"in {minutes:.1f} min; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
