"""flip_back: outputs of the horizontally flipped crop, mirrored back, must average with the unflipped outputs
without bias. The "flipped model output" is the encoding of the mirrored keypoints (x -> W-1-x, pairs swapped)."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.card import ModelCard
from edgepose.coco.layout import FLIP_PAIRS, flip_index
from edgepose.codecs import Codec, build_codec
from edgepose.errors import InputError

INPUT = (192, 256)
FLIP = flip_index(17, FLIP_PAIRS)
W = INPUT[0]


def make_codec(codec: str, decode: str) -> Codec:
    """The set-up of tests/runtime/test_codecs.py: heatmaps 48x64 sigma 2; SimCC ratio 2.0 sigma (4.9, 5.66)."""
    extra = {"simcc_split_ratio": 2.0, "sigma": (4.9, 5.66)} if codec == "simcc" else {"heatmap_size": (48, 64)}
    card = ModelCard(input_size=INPUT, mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec=codec, decode=decode, **extra)
    return build_codec(card)


def crop_keypoints(seed: int) -> np.ndarray:
    """(8, 17, 2) crop keypoints >= 3 sigma (24 px) from the border, with sub-pixel positions."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(30, W - 31, (8, 17)), rng.uniform(30, INPUT[1] - 31, (8, 17))], axis=2)


def mirrored(keypoints: np.ndarray) -> np.ndarray:
    """Where each keypoint lands in the flipped crop, indexed as the model would label it there."""
    out = keypoints[:, FLIP].copy()
    out[..., 0] = W - 1 - out[..., 0]
    return out


# Expected x error (input px) of the naive mirror (flip + permute, no shift), from x_t = a x_in + b over L cells:
# the flipped-back peak sits L - 1 - a (W - 1) - 2b target cells off, i.e. that / a input pixels.
#   msra: a = 48/192, L = 48 -> -0.75 cells = -3 px | udp: a = 47/191 -> 0 | simcc: a = 2, L = 384 -> +1 bin = +0.5 px
NAIVE_DX = {"msra": -3.0, "udp": 0.0, "simcc": 0.5}
# Measured max error (DARK decode, 8 x 17 keypoints, seed 0) of decode(average) / decode(flipped-back alone):
# msra 0.013 / 0.025 px (linear interpolation of the fractional 0.75-cell shift skews the flipped Gaussian a little),
# udp 0.00015 / 0.00015 px, simcc 1e-5 / 1e-5 px. Asserted: < 0.05 px for all.
TOL = 0.05


@pytest.mark.parametrize("codec_name", ["msra", "udp", "simcc"])
def test_flip_back_averages_without_bias(codec_name: str) -> None:
    codec = make_codec(codec_name, "dark")
    kp = crop_keypoints(0)
    vis = np.ones(kp.shape[:2])
    outputs, _ = codec.encode(kp, vis)
    flipped_outputs, _ = codec.encode(mirrored(kp), vis)
    back = codec.flip_back(flipped_outputs, FLIP)
    assert all(back[k].shape == outputs[k].shape and back[k].dtype == np.float32 for k in outputs)
    averaged = {k: 0.5 * (outputs[k] + back[k]) for k in outputs}
    decoded, scores = codec.decode(averaged)
    assert np.abs(decoded - kp).max() < TOL
    assert (scores > 0.9).all()
    alone, _ = codec.decode(back)  # the flipped-back output alone is also unbiased
    assert np.abs(alone - kp).max() < TOL


@pytest.mark.parametrize("codec_name", ["msra", "udp", "simcc"])
def test_naive_mirror_is_off_by_the_expected_shift(codec_name: str) -> None:
    """Without the codec's shift the peak moves by NAIVE_DX: the test above cannot pass by accident."""
    codec = make_codec(codec_name, "dark")
    kp = crop_keypoints(1)
    flipped_outputs, _ = codec.encode(mirrored(kp), np.ones(kp.shape[:2]))
    naive = {k: v[:, FLIP][..., ::-1] if k != "simcc_y" else v[:, FLIP] for k, v in flipped_outputs.items()}
    decoded, _ = codec.decode(naive)
    err = decoded - kp
    assert np.abs(err[..., 0] - NAIVE_DX[codec_name]).max() < TOL
    assert np.abs(err[..., 1]).max() < TOL
    # and without the permutation, left/right keypoints trade places (far more than TOL apart)
    unpermuted, _ = codec.decode(codec.flip_back(flipped_outputs, np.arange(17)))
    assert np.linalg.norm(unpermuted - kp, axis=2)[:, 1:].mean() > 10


@pytest.mark.parametrize("codec_name", ["msra", "udp", "simcc"])
def test_flip_back_twice_is_the_identity(codec_name: str) -> None:
    """udp (shift 0) and simcc (-1 bin, whole) come back exactly away from the edges; msra's two 0.75-cell
    interpolations add a symmetric blur only, so its DARK peak stays put (same TOL)."""
    codec = make_codec(codec_name, "dark")
    kp = crop_keypoints(2)
    outputs, _ = codec.encode(kp, np.ones((8, 17)))
    twice = codec.flip_back(codec.flip_back(outputs, FLIP), FLIP)
    if codec_name == "msra":
        assert np.abs(codec.decode(twice)[0] - kp).max() < TOL
    else:
        for key in outputs:
            np.testing.assert_array_equal(twice[key][..., 2:-2], outputs[key][..., 2:-2])


def test_flip_index_is_checked() -> None:
    codec = make_codec("msra", "dark")
    outputs, _ = codec.encode(crop_keypoints(3), np.ones((8, 17)))
    with pytest.raises(InputError, match="permutation"):
        codec.flip_back(outputs, np.arange(16))
    with pytest.raises(InputError, match="permutation"):
        codec.flip_back(outputs, np.zeros(17, int))
