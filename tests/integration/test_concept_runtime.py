"""The concept classifier through onnxruntime against the torch network it was exported from."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageDraw

from workers.pipeline import concept_net
from workers.pipeline.concepts import (
    REGIONS,
    ConceptClassifier,
    classifier_weights,
    feature_cells,
    pooling_matrix,
)

pytestmark = [pytest.mark.models]
NAME = "efficientnet-lite1"


def pictures() -> list[np.ndarray]:
    """Four different frames: shapes, stripes, a gradient, noise; not all square."""
    rng = np.random.default_rng(7)
    frames = []
    for n, size in enumerate([(320, 180), (240, 240), (400, 300), (180, 320)]):
        picture = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(picture)
        for _ in range(6 + n):
            x, y = int(rng.integers(0, size[0] - 20)), int(rng.integers(0, size[1] - 20))
            box = (x, y, x + int(rng.integers(10, 120)), y + int(rng.integers(10, 120)))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if n % 2 else draw.rectangle)(box, fill=colour)
        frames.append(np.asarray(picture))
    frames.append(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    return frames


def classifier(settings, runtime: str) -> ConceptClassifier:
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_RUNTIME": runtime}
    return ConceptClassifier(NAME)


def test_the_default_runtime_is_onnx():
    assert concept_net.runtime() == "onnx"
    assert isinstance(ConceptClassifier(NAME).network, concept_net.OnnxNetwork)


def test_onnx_gives_torchs_probabilities_whole_frame_and_per_region(settings):
    frames = pictures()
    onnx, torch = classifier(settings, "onnx"), classifier(settings, "torch")
    assert isinstance(torch.network, concept_net.TorchNetwork)
    assert onnx.size == torch.size and onnx.network.feature_size == torch.network.feature_size
    whole_onnx, regions_onnx = onnx.region_probabilities(frames, threads=1)
    whole_torch, regions_torch = torch.region_probabilities(frames, threads=1)
    assert regions_onnx.shape == (len(frames), len(REGIONS), 1000)
    np.testing.assert_allclose(whole_onnx, whole_torch, atol=1e-4)
    np.testing.assert_allclose(regions_onnx, regions_torch, atol=1e-4)
    assert (whole_onnx.argmax(1) == whole_torch.argmax(1)).all()
    np.testing.assert_allclose(whole_onnx.sum(1), 1.0, atol=1e-5)
    # The whole-frame row is the network's own average pooling, batched or alone.
    np.testing.assert_allclose(onnx.probabilities(frames[:2]), whole_onnx[:2], atol=1e-5)
    np.testing.assert_allclose(onnx.probabilities(frames[2:3], threads=2), whole_onnx[2:3],
                               atol=1e-5)
    # Regions see different parts of a frame, so they do not all agree with each other.
    assert np.abs(regions_onnx[0, 0] - regions_onnx[0, 3]).max() > 1e-3


def test_the_pooling_rows_average_the_whole_map_and_each_boxs_cells():
    rows = pooling_matrix(REGIONS, 8, 8)
    assert rows.shape == (1 + len(REGIONS), 64)
    np.testing.assert_allclose(rows.sum(1), 1.0, rtol=1e-6)
    assert np.allclose(rows[0], 1 / 64)
    for row, (y0, y1, x0, x1) in zip(rows[1:], feature_cells(REGIONS, 8, 8), strict=True):
        cells = row.reshape(8, 8)
        assert (cells[y0:y1, x0:x1] > 0).all() and cells.sum() == pytest.approx(1.0)
        cells[y0:y1, x0:x1] = 0
        assert not cells.any()


def test_an_export_writes_a_file_that_runs_like_torch(settings, tmp_path):
    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_DIR": str(tmp_path)}
    weights, version = classifier_weights(NAME)
    path = concept_net.export(NAME, weights, version)
    assert path.parent == tmp_path and path.exists() and not list(tmp_path.glob(".*"))
    network = concept_net.OnnxNetwork(path)
    pixels = np.random.default_rng(3).uniform(-1, 1, (2, 3, network.size, network.size))
    pooling = pooling_matrix(REGIONS[:2], *network.feature_size)
    reference = concept_net.TorchNetwork(NAME, weights)
    np.testing.assert_allclose(network.logits(pixels.astype(np.float32), pooling),
                               reference.logits(pixels.astype(np.float32), pooling), atol=2e-3)
    assert concept_net.export(NAME, weights, version) == path  # kept, not made again


def test_a_missing_onnx_file_says_what_to_run_and_fails_the_checks(settings, tmp_path):
    from workers.checks import check_concept_model

    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_DIR": str(tmp_path)}
    with pytest.raises(ImproperlyConfigured, match="make concept-model.*export_concept_model"):
        ConceptClassifier(NAME)
    assert "reelsearch.E006" in [problem.id for problem in check_concept_model(None)]
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_RUNTIME": "torch"}
    assert "reelsearch.E006" not in [problem.id for problem in check_concept_model(None)]


def test_an_unknown_runtime_is_refused(settings):
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_RUNTIME": "tensorflow"}
    with pytest.raises(ImproperlyConfigured, match="onnx, torch"):
        ConceptClassifier(NAME)
