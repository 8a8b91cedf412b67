"""``edgepose card``: print a model's embedded card, or embed one (a card file, or one read from an MMDeploy SDK
model folder or inferred from an rtmlib RTMPose ONNX)."""

from __future__ import annotations

import argparse
import json
import os
import sys

HELP = "print the model card embedded in an ONNX model, or embed one with --set / --from-mmdeploy / --infer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose card``."""
    parser.add_argument("model", help="ONNX model, or an MMDeploy SDK model folder with --from-mmdeploy")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--set", metavar="CARD", help="card (YAML/JSON) to embed; needs --out")
    source.add_argument("--from-mmdeploy", action="store_true",
                        help="MODEL is an MMDeploy SDK folder: the card its pipeline.json implies (--out embeds it)")
    source.add_argument("--infer", action="store_true",
                        help="MODEL is a bare RTMPose SimCC ONNX (rtmlib): the card inferred from its shapes")
    parser.add_argument("--out", help="where to write the model with the card embedded")


def _derived_card(args: argparse.Namespace):
    """(the ONNX the card belongs to, the card) for --from-mmdeploy or --infer."""
    import warnings

    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    from edgepose.errors import CardError
    from edgepose.foreign import card_from_mmdeploy_dir
    from edgepose.foreign.simcc_infer import infer_simcc_card, inferred_message

    if args.from_mmdeploy:
        return card_from_mmdeploy_dir(args.model)
    with OnnxRuntimeBackend(args.model) as backend, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said below, once
        card = infer_simcc_card(backend)
    if card is None:
        raise CardError(f"{args.model} has no RTMPose SimCC outputs (two outputs, N x K x W*r and N x K x H*r): "
                        "its card cannot be inferred; write one and use --set")
    print(inferred_message(card, os.fspath(args.model)), file=sys.stderr)
    return os.fspath(args.model), card


def run(args: argparse.Namespace) -> int:
    """Print or embed."""
    from edgepose.card import ModelCard
    from edgepose.errors import InputError
    from edgepose.onnx_card import embed_card, read_card

    if args.from_mmdeploy or args.infer:
        net, card = _derived_card(args)
        if args.out:
            embed_card(net, card, args.out)
            print(f"wrote {args.out} with the card derived from {args.model}")
        else:
            print(json.dumps(card.to_dict(), indent=2))
        return 0
    if args.set is None:
        if args.out:
            raise InputError("--out needs --set CARD.yaml, --from-mmdeploy or --infer (the card to embed)")
        print(json.dumps(read_card(args.model).to_dict(), indent=2))
        return 0
    if not args.out:
        raise InputError("--set needs --out NEW.onnx (edgepose does not overwrite the input model)")
    embed_card(args.model, ModelCard.from_file(args.set), args.out)
    print(f"wrote {args.out} with the card from {args.set}")
    return 0
