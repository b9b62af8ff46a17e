"""Region concepts: the boxes' feature-map cells, their place in the frame, which region
classes earn a segment, and one forward pass giving the whole-frame scores unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from workers.pipeline.concepts import REGIONS, feature_cells, frame_box, region_picks


def test_every_region_covers_some_cells_and_the_grid_overlaps():
    cells = feature_cells(REGIONS, 8, 8)
    assert cells[0] == (0, 5, 0, 5) and cells[3] == (3, 8, 3, 8)
    assert cells[4] == (1, 7, 1, 7)  # the centre
    assert all(y1 > y0 and x1 > x0 for y0, y1, x0, x1 in feature_cells(REGIONS, 1, 1))


def test_a_box_on_the_centred_square_maps_to_frame_fractions():
    assert frame_box((0.0, 0.0, 1.0, 1.0), 320, 180) == [0.2188, 0.0, 0.5625, 1.0]
    assert frame_box((0.4, 0.4, 0.6, 0.6), 100, 100) == [0.4, 0.4, 0.6, 0.6]


def _probs(*rows: dict[int, float], classes: int = 6) -> np.ndarray:
    out = np.zeros((len(rows), classes), dtype=np.float32)
    for n, row in enumerate(rows):
        for index, p in row.items():
            out[n, index] = p
    return out


def test_a_region_class_needs_the_floor_and_more_than_the_whole_frame_gives_it():
    whole = _probs({0: 0.7, 3: 0.05})
    regions = np.stack([_probs({3: 0.6}, {0: 0.8}, {3: 0.2}, {5: 0.35}, {0: 0.5})])
    picks = region_picks(whole, regions, min_probability=0.3)
    # region 0: class 3 at 0.6 (whole frame 0.05): kept; region 1: class 0 at 0.8 > 0.7: kept;
    # region 2 below the floor; region 3 kept; region 4: class 0 again, weaker than region 1.
    assert picks == [(0, 3, pytest.approx(0.6)), (1, 0, pytest.approx(0.8)),
                     (3, 5, pytest.approx(0.35))]


def test_region_scores_are_averaged_over_the_windows_frames():
    whole = _probs({0: 0.1}, {0: 0.1})
    regions = np.stack([_probs({2: 0.5}, *[{}] * 4), _probs({2: 0.1}, *[{}] * 4)])
    assert region_picks(whole, regions, 0.3) == [(0, 2, pytest.approx(0.3))]
    assert region_picks(whole, regions, 0.31) == []
    assert region_picks(whole, np.zeros((0, 5, 6)), 0.1) == []
