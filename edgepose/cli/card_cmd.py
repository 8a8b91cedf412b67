"""``edgepose card``: print a model's embedded card, or embed one."""

from __future__ import annotations

import argparse
import json

HELP = "print the model card embedded in an ONNX model, or embed one with --set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose card``."""
    parser.add_argument("model", help="ONNX model")
    parser.add_argument("--set", metavar="CARD", help="card (YAML/JSON) to embed; needs --out")
    parser.add_argument("--out", help="where to write the model with the card embedded")


def run(args: argparse.Namespace) -> int:
    """Print or embed."""
    from edgepose.card import ModelCard
    from edgepose.errors import InputError
    from edgepose.onnx_card import embed_card, read_card

    if args.set is None:
        if args.out:
            raise InputError("--out needs --set CARD.yaml (the card to embed)")
        print(json.dumps(read_card(args.model).to_dict(), indent=2))
        return 0
    if not args.out:
        raise InputError("--set needs --out NEW.onnx (edgepose does not overwrite the input model)")
    embed_card(args.model, ModelCard.from_file(args.set), args.out)
    print(f"wrote {args.out} with the card from {args.set}")
    return 0
