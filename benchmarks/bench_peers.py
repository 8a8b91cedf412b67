"""edgepose against rtmlib and the plain per-person loop: same ONNX model, same frames, same boxes, one run.

    python -m benchmarks.bench_peers [--threads 1] [--runs 7] [--iters 3] [--out benchmarks/results/peers.json]
        [--heatmap-model PATH] [--simcc-model PATH]

Needs torch (the models are exported here) and rtmlib: ``pip install --no-deps rtmlib`` (numpy, onnxruntime,
OpenCV and tqdm are already there; its declared opencv-python / opencv-contrib-python would overwrite cv2).

rtmlib (PyPI ``rtmlib``; ONNX Runtime + OpenCV) crops every box with MMPose's top-down affine (padding 1.25, aspect
fixed, ``model_input_size`` (w, h), the mean/std it is given) and runs one ``session.run`` per person. Its pose
classes: ``RTMPose`` decodes SimCC (argmax / split ratio 2.0), ``ViTPose`` decodes heatmaps with UDP + DARK.
So three model contracts are compared, each on a Lite-HRNet-18 exported here (random weights, rescaled so outputs
are not degenerate; speed does not depend on the weights):

- SimCC (decode 'none'):        edgepose vs rtmlib ``RTMPose``
- heatmap UDP + DARK:           edgepose vs rtmlib ``ViTPose``
- heatmap MSRA + DARK:          edgepose vs the plain loop (benchmarks/plain_loop.py; it decodes MSRA heatmaps)

How rtmlib is configured to see the same input: it normalises the frame it is given, as is, with the mean/std given
(it never swaps channels), while our models take RGB; it gets ``cv2.cvtColor(frame, BGR2RGB)`` inside its timed
call. Its session is created without options, so for a thread count it is replaced by one with the same
``intra_op_num_threads`` as the others. Latency: every contender does ``--iters`` passes over all frames per run,
runs are interleaved (the starting contender rotates); the ratio is peer / edgepose of the mean per-frame latency,
median over runs. Writes benchmarks/results/peers.json with the machine.

Trained models: random weights give near-tied peaks, so crops that differ by one grey level can flip an argmax and
spoil end-to-end keypoint agreement. ``--heatmap-model`` / ``--simcc-model`` take a trained checkpoint (.pth,
exported here with ``deploy.export.export_checkpoint``) or an .onnx with an embedded card, and replace the
random-weight model(s); the card comes from the model (its real input size and mean/std, also given to rtmlib).
A heatmap model is compared by its codec: MSRA against the plain loop only, UDP against rtmlib ``ViTPose`` only
(ViTPose expects UDP heatmaps). A SimCC model is compared with rtmlib ``RTMPose`` with the card's decode set to
'none' (RTMPose decodes plain argmax / split ratio), recorded as ``decode_compared``. The models used (path,
trained or random) are recorded under ``models``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.plain_loop import dark_offsets, plain_topdown
from edgepose.bench.environment import environment, package_version
from edgepose.card import ModelCard
from edgepose.codecs import build_codec
from edgepose.io import atomic_write_text, read_image
from edgepose.pipeline import PoseEstimator, decode_to_frame

ROOT = Path(__file__).resolve().parents[1]

SAMPLES = ROOT / "tests" / "data" / "coco_val_samples"
IMAGENET = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375), "color": "rgb"}
SIZE = (192, 256)
CARDS = {
    "simcc": ModelCard(input_size=SIZE, codec="simcc", simcc_split_ratio=2.0, sigma=(4.9, 5.66), decode="none",
                       name="lite_hrnet_18-simcc (random weights)", **IMAGENET),
    "udp": ModelCard(input_size=SIZE, codec="udp", heatmap_size=(48, 64), decode="dark",
                     name="lite_hrnet_18-heatmap (random weights)", **IMAGENET),
    "msra": ModelCard(input_size=SIZE, codec="msra", heatmap_size=(48, 64), decode="dark",
                      name="lite_hrnet_18-heatmap (random weights)", **IMAGENET),
}
# contract -> (edgepose label, peer label, peer kind)
PAIRS = {"simcc": ("edgepose/simcc", "rtmlib.RTMPose/simcc", "rtmlib"),
         "udp": ("edgepose/udp", "rtmlib.ViTPose/udp", "rtmlib"),
         "msra": ("edgepose/msra", "plain_loop/msra", "plain")}


def lively(model, seed: int = 0):
    """Random weights with real magnitudes (compress.models.random_init)."""
    from compress.models.random_init import realistic_random_weights

    return realistic_random_weights(model, seed)


def export(head: str, card: ModelCard, path: str) -> str:
    """Lite-HRNet-18 with ``head`` (lively random weights) exported with ``card`` embedded."""
    from compress.models import build_model
    from deploy.export import export_model

    model = lively(build_model("lite_hrnet_18", head=head, num_keypoints=17, input_size=SIZE))
    return export_model(model, card, path)


def frames_and_boxes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The COCO val2017 samples and their annotated person boxes (xyxy), every annotation."""
    data = json.loads((SAMPLES / "test_coco.json").read_text())
    out = []
    for image in sorted(data["images"], key=lambda i: i["id"]):
        boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == image["id"]]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float64)
        out.append((image["file_name"], read_image(SAMPLES / image["file_name"]), xyxy))
    return out


def ort_session(path: str, threads: int | None):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (ORT's default when None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def rtmlib_tool(kind: str, path: str, card: ModelCard, threads: int | None):
    """rtmlib's RTMPose / ViTPose on ``path`` with the card's input size and mean/std (its own session replaced
    by one with ``threads`` when given)."""
    try:
        from rtmlib import RTMPose, ViTPose
    except ImportError as exc:
        raise SystemExit(f"bench_peers needs rtmlib ({exc}): .venv/bin/pip install --no-deps rtmlib (its declared "
                         "opencv-python / opencv-contrib-python would overwrite opencv-python-headless's cv2)") from exc

    cls = RTMPose if kind == "simcc" else ViTPose
    with contextlib.redirect_stdout(io.StringIO()):  # it prints 'load ... with onnxruntime backend'
        tool = cls(path, model_input_size=card.input_size, mean=card.mean, std=card.std, backend="onnxruntime",
                   device="cpu")
    if threads:
        tool.session = ort_session(path, threads)
    return tool


def contenders(paths: dict[str, str], cards: dict[str, ModelCard], threads: int | None) -> tuple[dict, dict, list]:
    """label -> callable(frame, boxes) -> (keypoints (N, K, 2) frame px, scores (N, K) or None); the rtmlib tools
    by contract; the estimators to close. One pair per contract in ``paths``."""
    options = {"threads": threads} if threads else {}
    calls, tools, owned = {}, {}, []
    for contract in paths:
        ours, peer, kind = PAIRS[contract]
        card = cards[contract]
        estimator = PoseEstimator(paths[contract], card=card, backend_options=options)
        owned.append(estimator)
        calls[ours] = lambda f, b, e=estimator: (lambda p: (p.xy, p.scores))(e(f, b))
        if kind == "rtmlib":
            tools[contract] = tool = rtmlib_tool(contract, paths[contract], card, threads)
            calls[peer] = lambda f, b, t=tool: t(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), list(b))
        else:
            session = ort_session(paths[contract], threads)
            calls[peer] = lambda f, b, s=session, c=card: (plain_topdown(f, b, s, c), None)
    return calls, tools, owned


def time_runs(calls: dict, data: list, runs: int, iters: int) -> dict[str, list[float]]:
    """Per contender and run: mean over frames of the per-frame median latency (ms)."""
    labels = list(calls)
    out: dict[str, list[float]] = {label: [] for label in labels}
    for run in range(runs):
        for label in labels[run % len(labels):] + labels[:run % len(labels)]:
            call = calls[label]
            for _, frame, boxes in data:  # settle: the previous contender's session may still be spinning
                call(frame, boxes)
            per_frame = []
            for _, frame, boxes in data:
                samples = []
                for _ in range(iters):
                    t0 = time.perf_counter()
                    call(frame, boxes)
                    samples.append(time.perf_counter() - t0)
                per_frame.append(np.median(samples) * 1e3)
            out[label].append(float(np.mean(per_frame)))
        print(f"run {run + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in out.items()), file=sys.stderr)
    return out


def agreement(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Euclidean distance (frame px) between two (P, K, 2) keypoint sets, over ``mask`` (P, K) when given."""
    d = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    d = d[mask] if mask is not None else d.reshape(-1)
    if d.size == 0:
        return {"keypoints": 0}
    return {"max_px": float(d.max()), "mean_px": float(d.mean()), "median_px": float(np.median(d)),
            "share_within_0.01px": float(np.mean(d < 0.01)), "share_within_0.5px": float(np.mean(d < 0.5)),
            "share_within_1px": float(np.mean(d < 1.0)),
            "keypoints": int(d.size)}


def plain_decode(heatmaps: np.ndarray, matrix: np.ndarray, card: ModelCard) -> np.ndarray:
    """benchmarks/plain_loop.py's decode of one person's (K, h, w) heatmaps (argmax + MMPose DARK, MSRA scale)."""
    k, h, w = heatmaps.shape
    ys, xs = np.divmod(heatmaps.reshape(k, -1).argmax(1), w)
    points = np.stack([xs, ys], 1).astype(np.float64) + dark_offsets(heatmaps, xs, ys, card.blur_kernel_size)
    points *= (card.input_size[0] / w, card.input_size[1] / h)
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]


def decode_agreement(contract: str, path: str, card: ModelCard, tool, data: list, encoded: bool) -> dict:
    """Both decoders on the same outputs, so only the decode + inverse-map paths differ.

    ``encoded`` False: the model's outputs on edgepose's crops. True: well-formed outputs, the codec's own targets
    (Gaussian heatmaps / SimCC labels) for seeded points inside every box, which also gives each decoder's error
    against those points. For DARK contracts the keypoints are also split by whether edgepose refined them: it
    keeps the integer argmax where the log-heatmap's Hessian is not negative-definite (no maximum to step to),
    where MMPose's formula, the plain loop and rtmlib take the Newton step anyway.
    """
    rng = np.random.default_rng(0)
    argmax_codec = build_codec(dataclasses.replace(card, decode="none"))
    ours, theirs, refined, truth = [], [], [], []
    with PoseEstimator(path, card=card) as estimator:
        for _, frame, boxes in data:
            batch, affine = estimator.crop(frame, boxes)
            if encoded:
                lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
                points = lo + rng.uniform(0.05, 0.95, (len(boxes), card.num_keypoints, 2)) * (hi - lo)
                truth.append(points)
                outputs, _ = estimator.codec.encode(affine.apply(points), np.ones(points.shape[:2], bool))
            else:
                outputs = estimator.infer(batch)
            xy, _ = estimator.decode(outputs, affine)
            kept, _ = decode_to_frame(argmax_codec, outputs, affine)
            ours.append(xy)
            refined.append(np.any(xy != kept, axis=-1))
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            for i, box in enumerate(boxes):
                if contract == "msra":
                    theirs.append(plain_decode(outputs["heatmaps"][i], affine.matrices[i], card)[None])
                    continue
                _, center, scale = tool.preprocess(rgb, box)
                raw = [np.array(outputs[name][i:i + 1]) for name in card.output_names]  # postprocess writes in place
                theirs.append(tool.postprocess(raw, center, scale)[0].reshape(1, -1, 2))
    a, b, moved = np.concatenate(ours), np.concatenate(theirs), np.concatenate(refined)
    out = {"all": agreement(a, b)}
    if card.decode == "dark" and not encoded:
        out["edgepose_refined"] = agreement(a, b, moved)
        out["edgepose_kept_argmax"] = agreement(a, b, ~moved)
    if encoded:
        points = np.concatenate(truth)
        out["edgepose_vs_encoded_points"] = agreement(a, points)
        out["peer_vs_encoded_points"] = agreement(b, points)
    return out


def crop_difference(path: str, card: ModelCard, tool, data: list) -> float:
    """Max |edgepose crop - rtmlib crop| of the normalised model inputs (same boxes; rtmlib given the RGB frame)."""
    worst = 0.0
    with PoseEstimator(path, card=card) as estimator:
        for _, frame, boxes in data:
            ours, _ = estimator.crop(frame, boxes)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            theirs = np.stack([tool.preprocess(rgb, box)[0].transpose(2, 0, 1) for box in boxes])
            worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def end_to_end_agreement(calls: dict, contracts: list[str], data: list) -> dict:
    """Each pair's keypoints from its full pipeline; rtmlib keypoints it marks invalid (score <= 0) left out."""
    out = {}
    for contract in contracts:
        ours, peer, _ = PAIRS[contract]
        results = {label: [calls[label](f, b) for _, f, b in data] for label in (ours, peer)}
        a = np.concatenate([r[0] for r in results[ours]])
        b = np.concatenate([r[0] for r in results[peer]])
        scores = [r[1] for r in results[peer]]
        valid = np.concatenate(scores) > 0 if scores[0] is not None else np.ones(a.shape[:2], bool)
        out[peer] = {**agreement(a, b, valid), "peer_invalid_keypoints": int((~valid).sum())}
    return out


def prepare_model(spec: str, tmp: str, name: str) -> tuple[str, ModelCard]:
    """An ONNX path and its card from a trained checkpoint (.pth, exported into ``tmp``) or an .onnx with a card."""
    from edgepose.onnx_card import read_card

    if not os.path.isfile(spec):
        raise SystemExit(f"bench_peers: model not found: {spec}")
    if spec.endswith(".onnx"):
        path = spec
    else:
        from deploy.export import export_checkpoint

        path = export_checkpoint(spec, os.path.join(tmp, f"{name}.onnx"))
    return path, read_card(path)


def models_to_compare(args, tmp: str) -> tuple[dict[str, str], dict[str, ModelCard], dict[str, dict]]:
    """contract -> ONNX path, card and description; trained models replace the random-weight ones."""
    paths, cards, info = {}, {}, {}

    def describe(contract: str, source: str, trained: bool, card: ModelCard, **extra) -> None:
        info[contract] = {"path": source, "weights": "trained" if trained else "random (lively)",
                          "input_size_wh": list(card.input_size), "mean": list(card.mean), "std": list(card.std),
                          "codec": card.codec, "decode_compared": card.decode, **extra}

    if args.simcc_model:
        paths["simcc"], card = prepare_model(args.simcc_model, tmp, "simcc")
        if card.codec != "simcc":
            raise SystemExit(f"bench_peers: --simcc-model {args.simcc_model} has codec {card.codec!r}, not simcc")
        cards["simcc"] = dataclasses.replace(card, decode="none")  # rtmlib.RTMPose: argmax / split ratio
        describe("simcc", args.simcc_model, True, cards["simcc"], decode_card=card.decode)
    else:
        paths["simcc"] = export("simcc", CARDS["simcc"], os.path.join(tmp, "simcc.onnx"))
        cards["simcc"] = CARDS["simcc"]
        describe("simcc", "lite_hrnet_18 simcc head, exported here", False, CARDS["simcc"])
    if args.heatmap_model:
        path, card = prepare_model(args.heatmap_model, tmp, "heatmap")
        if card.codec not in ("msra", "udp"):
            raise SystemExit(f"bench_peers: --heatmap-model {args.heatmap_model} has codec {card.codec!r}; "
                             "msra (vs the plain loop) or udp (vs rtmlib.ViTPose) needed")
        paths[card.codec], cards[card.codec] = path, card
        describe(card.codec, args.heatmap_model, True, card)
    else:
        paths["udp"] = export("heatmap", CARDS["udp"], os.path.join(tmp, "heatmap.onnx"))
        paths["msra"] = paths["udp"]  # the same file; edgepose gets the MSRA card, the plain loop decodes MSRA
        cards["udp"], cards["msra"] = CARDS["udp"], CARDS["msra"]
        for contract in ("udp", "msra"):
            describe(contract, "lite_hrnet_18 heatmap head, exported here (one file for udp and msra)", False,
                     CARDS[contract])
    order = [c for c in PAIRS if c in paths]
    return {c: paths[c] for c in order}, cards, {c: info[c] for c in order}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print a summary and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every session (0: ORT default)")
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs (the ratio is their median)")
    parser.add_argument("--iters", type=int, default=3, help="passes over the frames per contender and run")
    parser.add_argument("--heatmap-model", metavar="PATH",
                        help="trained heatmap model (.pth checkpoint or .onnx with a card) instead of random weights; "
                             "MSRA is compared with the plain loop, UDP with rtmlib.ViTPose")
    parser.add_argument("--simcc-model", metavar="PATH",
                        help="trained SimCC model (.pth checkpoint or .onnx with a card) instead of random weights; "
                             "compared with rtmlib.RTMPose (decode 'none')")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peers.json"))
    args = parser.parse_args(argv)
    threads = args.threads or None
    data = frames_and_boxes()
    with tempfile.TemporaryDirectory() as tmp:
        paths, cards, models = models_to_compare(args, tmp)
        contracts = list(paths)
        calls, tools, owned = contenders(paths, cards, threads)
        end_to_end = end_to_end_agreement(calls, contracts, data)
        model_outputs = {c: decode_agreement(c, paths[c], cards[c], tools.get(c), data, False) for c in contracts}
        encoded = {c: decode_agreement(c, paths[c], cards[c], tools.get(c), data, True) for c in contracts}
        crops = {}
        if "simcc" in tools:
            crops["rtmlib.RTMPose vs edgepose simcc card"] = crop_difference(paths["simcc"], cards["simcc"],
                                                                             tools["simcc"], data)
        if "udp" in tools:
            crops["rtmlib.ViTPose vs edgepose udp card"] = crop_difference(paths["udp"], cards["udp"], tools["udp"],
                                                                           data)
            if paths.get("msra") == paths["udp"]:
                crops["rtmlib.ViTPose vs edgepose msra card (plain affine)"] = crop_difference(
                    paths["udp"], cards["msra"], tools["udp"], data)
        latency = time_runs(calls, data, args.runs, args.iters)
        for estimator in owned:
            estimator.close()
    pairs = {}
    for contract in contracts:
        ours, peer, _ = PAIRS[contract]
        ratios = [p / e for p, e in zip(latency[peer], latency[ours], strict=True)]
        pairs[contract] = {
            "edgepose": ours, "peer": peer, "model": models[contract],
            "edgepose_ms_per_frame_median": float(np.median(latency[ours])),
            "peer_ms_per_frame_median": float(np.median(latency[peer])),
            "latency_ratio_peer_over_edgepose": {"median": float(np.median(ratios)), "min": float(min(ratios)),
                                                 "max": float(max(ratios)), "runs": ratios},
            "keypoint_agreement_end_to_end": end_to_end[peer],
            "keypoint_agreement_same_model_outputs": model_outputs[contract],
            "keypoint_agreement_same_encoded_outputs": encoded[contract],
        }
    trained = [c for c, m in models.items() if m["weights"] == "trained"]
    if trained:
        summary = "; ".join(f"{c}: {m['path']} ({m['weights']}, {m['input_size_wh'][0]}x{m['input_size_wh'][1]})"
                            for c, m in models.items())
    else:
        summary = "lite_hrnet_18 192x256, random weights rescaled (lively); SimCC head and heatmap head"
    record = {
        "benchmark": "peers", "command": " ".join(["python -m benchmarks.bench_peers", *(argv or sys.argv[1:])]),
        "model": summary, "models": models,
        "frames": [name for name, _, _ in data], "persons": int(sum(len(b) for _, _, b in data)),
        "boxes": "COCO ground-truth person boxes of the frames (test_coco.json), xyxy",
        "threads": threads or "default", "runs": args.runs, "iters": args.iters, "rtmlib": package_version("rtmlib"),
        "crop_max_abs_difference": crops,
        "notes": NOTES + (TRAINED_NOTES if trained else []), "pairs": pairs,
        "environment": environment([threads or "default"], ["CPUExecutionProvider"]),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"{record['persons']} persons on {len(data)} COCO frames; threads {record['threads']}; "
          f"{record['environment']['cpu']}")
    for contract, m in models.items():
        print(f"{contract}: {m['path']} ({m['weights']}; {m['input_size_wh'][0]}x{m['input_size_wh'][1]}, "
              f"decode compared {m['decode_compared']})")
    print("| contract | peer | edgepose ms/frame | peer ms/frame | peer/edgepose (min-max) | end-to-end max / mean px"
          " (share < 0.01 / 0.5 px) | same model outputs max / mean px | same encoded outputs max / mean px |")
    print("|---|---|---|---|---|---|---|---|")
    for contract, p in pairs.items():
        r, e = p["latency_ratio_peer_over_edgepose"], p["keypoint_agreement_end_to_end"]
        same, enc = p["keypoint_agreement_same_model_outputs"]["all"], p["keypoint_agreement_same_encoded_outputs"]
        print(f"| {contract} | {p['peer']} | {p['edgepose_ms_per_frame_median']:.1f} | "
              f"{p['peer_ms_per_frame_median']:.1f} | {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f}) | "
              f"{e['max_px']:.3g} / {e['mean_px']:.3g} ({100 * e['share_within_0.01px']:.0f}% / "
              f"{100 * e['share_within_0.5px']:.0f}%) | "
              f"{same['max_px']:.3g} / {same['mean_px']:.3g} | {enc['all']['max_px']:.3g} / {enc['all']['mean_px']:.3g}"
              f" |")
    for name, value in crops.items():
        print(f"normalised model input, {name}: max abs difference {value:.3g}")
    print(f"wrote {args.out}")
    return 0


NOTES = [
    "rtmlib normalises the image it is given without swapping channels; our models take RGB, so rtmlib gets "
    "cv2.cvtColor(frame, BGR2RGB) inside its timed call (edgepose swaps channels inside its crop).",
    "rtmlib creates its ONNX Runtime session without options; with a thread count it is replaced by a session with "
    "the same intra_op_num_threads as edgepose's and the plain loop's.",
    "Crops: rtmlib and edgepose warp with the same MMPose top-down affine; their normalised inputs differ by at most "
    "one grey level (1/std) where OpenCV's fixed-point bilinear rounding meets slightly different matrices "
    "(float32 points in rtmlib). On a random-weight SimCC model a few near-tied argmaxes flip because of that.",
    "rtmlib.ViTPose crops with the plain (non-UDP) affine but maps heatmaps back with UDP's (w-1) scale; edgepose "
    "crops UDP models with the UDP affine, as MMPose does (see crop_max_abs_difference). Its end-to-end agreement "
    "measures that mismatch on a random-weight model, whose argmax moves with any change of the crop.",
    "DARK: edgepose keeps the integer argmax where the log-heatmap's Hessian is not negative-definite (no maximum "
    "to step to); MMPose's formula (the plain loop) and rtmlib step anyway, up to thousands of pixels on the noisy "
    "heatmaps of a random-weight model, and near-singular Hessians amplify float32/float64 blur differences. "
    "Hence 'same encoded outputs': the codec's own targets (well-formed peaks), decoded by both.",
    "rtmlib's SimCC score is mean(max_x, max_y) and it sets a keypoint to -1 when that is <= 0 (counted as "
    "peer_invalid_keypoints and left out); edgepose's score is min(max_x, max_y) (MMPose). Only positions compared.",
]

TRAINED_NOTES = [
    "Trained models (see 'models'): their card (input size, mean/std, codec) is the model's own and rtmlib is built "
    "with the same model_input_size (w, h) and mean/std. An MSRA heatmap model is compared with the plain loop only "
    "(rtmlib.ViTPose expects UDP heatmaps); a SimCC model with rtmlib.RTMPose, with edgepose's decode set to 'none' "
    "(RTMPose's plain argmax / split ratio) whatever the card's decode ('decode_card').",
]


if __name__ == "__main__":
    sys.exit(main())
