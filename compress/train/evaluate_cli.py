"""``edgepose evaluate CHECKPOINT --data DIR``: COCO OKS AP (and PCK) of a checkpoint with the runtime's decode."""

from __future__ import annotations

import argparse
import glob
import json
import os

from edgepose.errors import InputError

HELP = "COCO keypoint AP and PCK of a training checkpoint (the runtime's decode)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose evaluate``."""
    parser.add_argument("checkpoint", help="checkpoint written by edgepose train (last.pth / best.pth)")
    parser.add_argument("--data", help="COCO-layout root: annotations/person_keypoints_val*.json + val*/ images")
    parser.add_argument("--ann", help="annotation json (instead of --data)")
    parser.add_argument("--images", help="image folder (instead of --data)")
    parser.add_argument("--boxes", help="person boxes (COCO detection results json); default: ground-truth boxes")
    parser.add_argument("--box-threshold", type=float, default=0.0)
    parser.add_argument("--flip", action="store_true", help="flip test")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="edgepose_eval", help="folder for predictions.json and metrics.json")


def resolve_split(root: str, split: str = "val") -> tuple[str, str]:
    """(annotation json, image folder) of ``split`` under a COCO-layout root."""
    anns = sorted(glob.glob(os.path.join(root, "annotations", f"person_keypoints_{split}*.json")))
    if not anns:
        raise InputError(f"{root} has no annotations/person_keypoints_{split}*.json")
    suffix = os.path.basename(anns[0])[len("person_keypoints_"):-len(".json")]
    images = os.path.join(root, suffix)
    if not os.path.isdir(images):
        raise InputError(f"{root} has {os.path.basename(anns[0])} but no image folder {suffix}/")
    return anns[0], images


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the numbers; metrics.json is written atomically beside the predictions."""
    from compress.checkpoint import load_model
    from compress.data.coco import CocoPoseDataset
    from compress.data.loader import make_loader
    from compress.train.evaluate import evaluate
    from edgepose.io import atomic_write_text

    if args.data:
        ann, images = resolve_split(args.data)
    elif args.ann and args.images:
        ann, images = args.ann, args.images
    else:
        raise InputError("give --data DIR, or both --ann and --images")
    model, card, _ = load_model(args.checkpoint)
    dataset = CocoPoseDataset(ann, images, card, "val", boxes=args.boxes, box_threshold=args.box_threshold)
    loader = make_loader(dataset, args.batch_size, shuffle=False, workers=args.workers)
    stats = evaluate(model, loader, card, out_dir=args.out, flip=args.flip, progress=True)
    atomic_write_text(os.path.join(args.out, "metrics.json"), json.dumps(stats, indent=2) + "\n")
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR", "PCK@0.05"):
        value = stats.get(key)
        print(f"{key:>9}: {'n/a' if value is None else f'{value:.4f}'}")
    return 0
