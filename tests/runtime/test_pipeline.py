"""PoseEstimator wiring: card resolution, one batch per frame, flip test, empty and bad input, Poses output."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.card import ModelCard
from edgepose.coco.layout import flip_index
from edgepose.errors import CardError, InputError, OutputError
from edgepose.pipeline import PoseEstimator
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="dark")
FRAME = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
BOXES = np.array([[10, 20, 120, 300], [200, 40, 330, 350], [300, 10, 470, 200]], float)


@pytest.fixture()
def model(tmp_path):
    return conv_heatmap_model(tmp_path / "m.onnx", CARD)


class CountingBackend:
    """Wraps a backend and records the batch sizes it is called with."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def infer(self, feeds):
        self.calls.append(len(next(iter(feeds.values()))))
        return self.inner.infer(feeds)

    def close(self):
        self.inner.close()


def test_all_persons_in_one_batch_and_frame_coordinates(model):
    from edgepose.backends import open_backend

    backend = CountingBackend(open_backend(model))
    with PoseEstimator(backend) as est:
        poses = est(FRAME, BOXES, np.array([0.9, 0.8, 0.7]))
        assert backend.calls == [3]
        assert poses.xy.shape == (3, 17, 2) and poses.scores.shape == (3, 17) and len(poses) == 3
        # Reference: decode the heatmaps by hand and map back with the inverse affine.
        batch, affine = est.cropper(FRAME, BOXES)
        heatmaps = est.backend.infer({"input": batch})["heatmaps"]
        xy, scores = est.codec.decode({"heatmaps": heatmaps})
        np.testing.assert_allclose(poses.xy, affine.inverse().apply(xy), atol=1e-3)
        np.testing.assert_allclose(poses.scores, scores, atol=1e-6)
        assert poses.meta["batch_mode"] == "dynamic" and poses.meta["seconds"]["infer"] > 0
        coco = poses.to_coco(image_id=5)
        assert len(coco) == 3 and len(coco[0]["keypoints"]) == 51 and coco[0]["image_id"] == 5


def test_flip_test_averages_with_mirrored_crop(model):
    from edgepose.backends import open_backend

    backend = CountingBackend(open_backend(model))
    with PoseEstimator(backend, flip=True) as est:
        poses = est(FRAME, BOXES)
        assert backend.calls == [6]  # original and mirrored crops in one batch
        batch, affine = est.cropper(FRAME, BOXES)
        plain = est.backend.infer({"input": batch})["heatmaps"]
        mirrored = est.backend.infer({"input": np.ascontiguousarray(batch[..., ::-1])})["heatmaps"]
        back = est.codec.flip_back({"heatmaps": mirrored}, flip_index(17, CARD.flip_pairs))["heatmaps"]
        xy, _ = est.codec.decode({"heatmaps": (plain + back) / 2})
        np.testing.assert_allclose(poses.xy, affine.inverse().apply(xy), atol=1e-3)
    with PoseEstimator(model) as est:
        assert np.abs(est(FRAME, BOXES).xy - poses.xy).max() > 0.5  # the flip test changed something


def test_fixed_batch_model_reports_loop(tmp_path):
    model = conv_heatmap_model(tmp_path / "fixed.onnx", CARD, fixed_batch=1)
    with PoseEstimator(model, backend_options={"batch_rewrite": False}) as est:  # rewritten: test_batch_rewrite
        poses = est(FRAME, BOXES)
    assert poses.meta["batch_mode"] == "loop" and len(poses) == 3


def test_card_resolution(tmp_path, model):
    plain = conv_heatmap_model(tmp_path / "plain.onnx", None)
    with pytest.raises(CardError, match="carries no edgepose model card"):
        PoseEstimator(plain)
    CARD.save(tmp_path / "card.yaml")
    with PoseEstimator(plain, card=tmp_path / "card.yaml") as est:
        assert est.card == CARD
    wrong = ModelCard(**{**CARD.to_dict(), "input_size": [256, 256]})
    with pytest.raises(CardError, match="contradicts"):
        PoseEstimator(model, card=wrong)


def test_empty_and_bad_input(model):
    with PoseEstimator(model) as est:
        empty = est(FRAME, np.zeros((0, 4)))
        assert empty.xy.shape == (0, 17, 2) and empty.to_coco(1) == []
        assert len(est(FRAME, [])) == 0 and len(est(FRAME, [], [])) == 0
        with pytest.raises(InputError, match="no detector"):
            est(FRAME)
        with pytest.raises(InputError, match="zero or negative"):
            est(FRAME, [[10, 10, 10, 50]])
        with pytest.raises(InputError, match="outside"):
            est(FRAME, [[1000, 1000, 1100, 1100]])
        with pytest.raises(InputError, match="box scores"):
            est(FRAME, BOXES, [0.5])
        with pytest.raises(InputError, match="uint8"):
            est(FRAME.astype(np.float32), BOXES)


def test_nan_output_is_an_output_error(model):
    with PoseEstimator(model) as est:
        real = est.backend.infer

        def poisoned(feeds):
            out = real(feeds)
            out["heatmaps"][0, 3, 5, 5] = np.nan
            return out

        est.backend.infer = poisoned
        with pytest.raises(OutputError, match="NaN"):
            est(FRAME, BOXES)
