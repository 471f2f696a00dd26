"""Agreement between runs: assignments (ARI) and map layout (grid-distance correlation)."""

from unittest.mock import Mock

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.analysis import assignment_agreement, node_position_agreement, run_stability
from core.errors import InputError
from core.grid import SOMGrid

GRID = SOMGrid(6, 6, "rect", True)


def _torus_symmetry(bmu, grid, shift=(2, 5), mirror=True):
    """The same assignment on a shifted and mirrored copy of the torus (distances unchanged)."""
    r, c = divmod(bmu, grid.width)
    if mirror:
        c = (-c) % grid.width
    return ((r + shift[0]) % grid.height) * grid.width + (c + shift[1]) % grid.width


def test_assignment_agreement_matrix():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 36, 400)
    b = _torus_symmetry(a, GRID)  # same grouping, other node indices
    c = rng.integers(0, 36, 400)
    out = assignment_agreement([a, b, c])
    assert out["n_runs"] == 3 and out["matrix"].shape == (3, 3)
    assert np.allclose(np.diag(out["matrix"]), 1.0)
    assert out["matrix"][0, 1] == pytest.approx(1.0)
    assert out["matrix"][0, 2] == pytest.approx(adjusted_rand_score(a, c))
    assert out["mean"] == pytest.approx((1 + 2 * adjusted_rand_score(a, c)) / 3)
    with pytest.raises(InputError, match="at least two runs"):
        assignment_agreement([a])
    with pytest.raises(InputError, match="same samples"):
        assignment_agreement([a, a[:10]])


def test_node_position_agreement_is_blind_to_torus_symmetries():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 36, 500)
    b = _torus_symmetry(a, GRID)
    perm = rng.permutation(36)
    c = perm[a]  # same grouping, scrambled layout
    out = node_position_agreement([a, b, c], GRID, n_pairs=5000, seed=3)
    assert out["matrix"][0, 1] == pytest.approx(1.0)
    assert abs(out["matrix"][0, 2]) < 0.2
    # Pearson gives 1 as well for an exact symmetry, and the draw is seeded.
    assert node_position_agreement([a, b], GRID, n_pairs=5000, method="pearson")["mean"] == pytest.approx(1.0)
    again = node_position_agreement([a, b, c], GRID, n_pairs=5000, seed=3)
    assert np.array_equal(again["matrix"], out["matrix"]) and out["n_pairs"] == 5000


def test_node_position_agreement_respects_the_mask_and_collapse():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 36, (20, 10))
    mask = np.zeros((20, 10), dtype=bool)
    mask[:, :4] = True
    b = np.where(mask, _torus_symmetry(a, GRID), 999)  # padding holds a bad node index
    assert node_position_agreement([a, b], GRID, n_pairs=2000, sample_mask=mask)["mean"] == pytest.approx(1.0)
    collapsed = np.zeros_like(a)
    assert np.isnan(node_position_agreement([a, collapsed], GRID, n_pairs=500)["matrix"][0, 1])


def test_run_stability_calls_the_estimator_per_seed_and_reports_failures():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    base = labels * 9 + rng.integers(0, 9, 300)

    def fit_predict(seed):
        if seed == 13:
            raise RuntimeError("diverged")
        if seed == 7:
            return np.zeros(300, dtype=int)
        return _torus_symmetry(base, GRID, shift=(seed % 6, 0), mirror=False)

    spy = Mock(side_effect=fit_predict)
    out = run_stability(spy, [0, 1, 7, 13], grid=GRID, labels=labels, n_pairs=2000, on_error="record")
    assert [c.args[0] for c in spy.call_args_list] == [0, 1, 7, 13]
    assert out["seeds"] == [0, 1, 7] and set(out["failed"]) == {13} and "diverged" in out["failed"][13]
    assert out["nodes_used"] == [36, 36, 1]
    assert out["collapse"][7][0] is True and out["collapse"][0][0] is False
    assert out["assignment"]["matrix"][0, 1] == pytest.approx(1.0)
    assert out["layout"]["matrix"][0, 1] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="diverged"):
        run_stability(fit_predict, [0, 13])
