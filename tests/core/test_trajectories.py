"""Trajectories: seam-aware paths, jumps, transitions, dwell times, horizons, forecasts."""

import math

import numpy as np
import pytest

from core.analysis import (
    dwell_times,
    enrichment_at_horizons,
    forecast_state_accuracy,
    jump_lengths,
    mean_jump,
    node_path,
    transition_matrix,
)
from core.errors import InputError
from core.grid import SOMGrid

S3 = math.sqrt(3.0)


def _xy(segments):
    return [np.round(s.xy, 9).tolist() for s in segments]


# ---------------------------------------------------------------------------- node_path
def test_flat_path_is_one_segment_through_node_centres():
    grid = SOMGrid(4, 4, "rect", False)
    segs = node_path([0, 3, 3, 15], grid)
    assert len(segs) == 1
    assert segs[0].xy.tolist() == [[0.5, 0.5], [3.5, 0.5], [3.5, 0.5], [3.5, 3.5]]
    assert segs[0].t.tolist() == [0, 1, 2, 3]


def test_rect_torus_step_across_the_seam_is_split_at_the_edge():
    grid = SOMGrid(4, 4, "rect", True)
    segs = node_path([0, 3], grid)
    assert _xy(segs) == [[[0.5, 0.5], [0.0, 0.5]], [[4.0, 0.5], [3.5, 0.5]]]
    assert [s.t.tolist() for s in segs] == [[0.0, 0.5], [0.5, 1.0]]
    # Vertical seam, and a step of half the map that does not need to wrap.
    assert _xy(node_path([1, 13], grid)) == [[[1.5, 0.5], [1.5, 0.0]], [[1.5, 4.0], [1.5, 3.5]]]
    assert len(node_path([0, 2], grid)) == 1
    # Through a corner: both seams are crossed at the same point.
    assert _xy(node_path([0, 15], grid)) == [[[0.5, 0.5], [0.0, 0.0]], [[4.0, 4.0], [3.5, 3.5]]]


def test_step_crossing_two_seams_at_different_points_gives_three_pieces():
    grid = SOMGrid(5, 5, "rect", True)
    segs = node_path([0, 23, 24], grid)  # (0,0) -> (4,3): one row up and two columns left
    assert _xy(segs) == [
        [[0.5, 0.5], [0.0, 0.25]],
        [[5.0, 0.25], [4.5, 0.0]],
        [[4.5, 5.0], [3.5, 4.5], [4.5, 4.5]],
    ]
    assert segs[1].t.tolist() == [0.25, 0.5] and segs[2].t.tolist() == [0.5, 1.0, 2.0]


def test_hex_torus_seams():
    grid = SOMGrid(4, 4, "hex", True)
    y0 = 1 / S3
    left = node_path([0, 3], grid)
    assert _xy(left) == np.round([[[0.5, y0], [0.25, y0]], [[4.25, y0], [3.5, y0]]], 9).tolist()
    # Node 12 (row 3, odd, shifted right) is a neighbour of node 0 across the top/bottom seam.
    up = node_path([0, 12], grid)
    edge = y0 - S3 / 4
    expected = [[[0.5, y0], [0.75, edge]], [[0.75, edge + 2 * S3], [1.0, 3 * S3 / 2 + y0]]]
    assert _xy(up) == np.round(expected, 9).tolist()


@pytest.mark.parametrize("grid", [SOMGrid(5, 6, "rect", True), SOMGrid(6, 6, "hex", True)],
                         ids=["rect", "hex"])
def test_random_paths_stay_on_the_map_and_follow_shortest_steps(grid):
    rng = np.random.default_rng(0)
    seq = rng.integers(0, grid.n_nodes, 60)
    segs = node_path(seq, grid, length=50)
    pos = grid.positions()
    pts = np.concatenate([s.xy for s in segs])
    lo = pos.min(axis=0) - 0.5
    hi = pos.max(axis=0) + 0.5
    assert (pts >= lo - 1e-9).all() and (pts <= hi + 1e-9).all()
    ts = np.concatenate([s.t for s in segs])
    assert np.all(np.diff(ts) >= 0) and ts[-1] == 49
    assert np.allclose(segs[-1].xy[-1], pos[seq[49]])
    # Integer times are exactly the node centres.
    whole = ts == np.round(ts)
    assert np.allclose(pts[whole], pos[seq[ts[whole].astype(int)]])
    # Straight pieces: a step is drawn no longer than the shortest path's straight line,
    # which for one grid step is one cell (rect) or one hexagon width.
    dist = grid.distances()
    n_steps_drawn = 0
    for s in segs:
        for i in range(len(s.t) - 1):
            step = int(math.floor(s.t[i]))
            if s.t[i + 1] == s.t[i]:
                continue
            length = np.linalg.norm(s.xy[i + 1] - s.xy[i])
            frac = s.t[i + 1] - s.t[i]
            assert length <= dist[seq[step], seq[step + 1]] * frac + 1e-9
            n_steps_drawn += 1
    assert n_steps_drawn >= 49


def test_node_path_input_checks():
    grid = SOMGrid(3, 3)
    assert node_path([4, 5, 99], grid, length=2)[0].xy.shape == (2, 2)  # padding not checked
    assert node_path([], grid) == []
    with pytest.raises(InputError, match="outside 0..8"):
        node_path([4, 9], grid)


# ---------------------------------------------------------------------- jumps, transitions
BMU = np.array([[0, 1, 1, 2, 0], [2, 0, 7, 7, 7]])
LENGTHS = np.array([4, 2])


def test_jump_lengths_and_mean_exclude_padding():
    grid = SOMGrid(3, 3, "rect", True)
    j = jump_lengths(BMU, LENGTHS, grid)
    assert j.shape == (2, 4)
    assert j[0, :3].tolist() == [1, 0, 1] and np.isnan(j[0, 3])
    assert j[1, 0] == 1 and np.isnan(j[1, 1:]).all()  # 2 -> 0 wraps around: one step
    assert mean_jump(BMU, LENGTHS, grid) == pytest.approx(3 / 4)
    flat = SOMGrid(3, 3, "rect", False)
    assert jump_lengths(BMU, LENGTHS, flat)[1, 0] == 2
    assert math.isnan(mean_jump(BMU, np.array([1, 0]), grid))


def test_transition_matrix_counts_only_real_steps():
    counts = transition_matrix(BMU, LENGTHS, 3, normalize=False)
    expected = np.zeros((3, 3), dtype=int)
    expected[0, 1] = 1
    expected[1, 1] = 1
    expected[1, 2] = 1
    expected[2, 0] = 1  # 2 -> 0 of patient 0 is into padding and does not count
    assert counts.tolist() == expected.tolist()
    probs = transition_matrix(BMU, LENGTHS, 3)
    assert probs.tolist() == [[0, 1, 0], [0, 0.5, 0.5], [1, 0, 0]]
    smooth = transition_matrix(BMU, LENGTHS, 4, smoothing=1.0)
    assert smooth[0].tolist() == pytest.approx([1 / 5, 2 / 5, 1 / 5, 1 / 5])
    assert smooth[3].tolist() == [0, 0, 0, 0]  # never left: stays empty
    # A gap in a boolean step mask breaks the chain: 0 -> 1 and 1 -> 1 around it are not steps.
    mask = np.array([[True, False, True, True, True], [True, True, False, False, False]])
    gap = transition_matrix(BMU, mask, 3, normalize=False)
    assert gap[0, 1] == 0 and gap[1, 1] == 0 and gap[1, 2] == 1 and gap[2, 0] == 2 and gap.sum() == 3


def test_lengths_are_checked():
    with pytest.raises(InputError, match="outside 0..5"):
        transition_matrix(BMU, np.array([6, 1]), 3)
    with pytest.raises(InputError, match="one step count per patient"):
        transition_matrix(BMU, np.array([1, 2, 3]), 3)
    with pytest.raises(InputError, match="outside 0..2"):
        transition_matrix(BMU, None, 3)  # node 7 of the padding is now a real step


def test_dwell_times_runs():
    bmu = np.array([[0, 0, 1, 1, 1, 0], [2, 2, 2, 2, 2, 2]])
    d = dwell_times(bmu, np.array([6, 2]), 4)
    assert d.run_node.tolist() == [0, 1, 0, 2]
    assert d.run_length.tolist() == [2, 3, 1, 2]  # padding does not lengthen the last run
    assert d.run_patient.tolist() == [0, 0, 0, 1] and d.run_start.tolist() == [0, 2, 5, 0]
    assert d.n_runs.tolist() == [2, 1, 1, 0]
    assert d.mean[:3].tolist() == [1.5, 3.0, 2.0] and np.isnan(d.mean[3])


def test_enrichment_at_horizons_uses_real_steps_and_per_patient_labels():
    bmu = np.array([[0, 0, 1], [1, 1, 1]])
    score = np.array([[2.0, 4.0, 100.0], [1.0, np.nan, 5.0]])
    died = np.array([1, 0])
    out = enrichment_at_horizons(bmu, np.array([2, 3]), {"score_now": score, "died": died}, 2)
    assert out["score_now"].mean.tolist() == [3.0, 3.0] and out["score_now"].n_missing == 1
    assert out["died"].kind == "binary"
    assert out["died"].count.tolist() == [2, 3] and out["died"].mean.tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="'bad'"):
        enrichment_at_horizons(bmu, None, {"bad": np.zeros(5)}, 2)


def test_forecast_state_accuracy():
    pred = np.array([[1, 2, 3], [1, 5, 6]])
    true = np.array([[1, 2, 0], [1, 0, 6]])
    assert forecast_state_accuracy(pred, true) == pytest.approx(4 / 6)
    overall, per_step = forecast_state_accuracy(pred, true, per_step=True)
    assert per_step.tolist() == [1.0, 0.5, 0.5]
    mask = np.array([[True, True, False], [True, False, False]])
    overall, per_step = forecast_state_accuracy(pred, true, sample_mask=mask, per_step=True)
    assert overall == 1.0 and per_step[:2].tolist() == [1.0, 1.0] and np.isnan(per_step[2])
