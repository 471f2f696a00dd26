"""Per-node maps: U-matrix, hits, enrichment, Moran's I, majority labels (hand-computed values)."""

import numpy as np
import pytest

from core.analysis import (
    component_planes,
    feature_plane,
    hit_map,
    label_enrichment,
    majority_labels,
    morans_i,
    neighbour_majority_agreement,
    node_entropy,
    soft_hit_map,
    umatrix,
    wilson_interval,
)
from core.errors import InputError
from core.grid import SOMGrid


# ----------------------------------------------------------------------------- U-matrix
def test_umatrix_3x3_flat_and_toroidal_hand_computed():
    # Prototype of node k is the point (k, 0): horizontal neighbours differ by 1, vertical by 3.
    proto = np.stack([np.arange(9.0), np.zeros(9)], axis=1)
    flat = umatrix(proto, SOMGrid(3, 3, "rect", False))
    assert flat == pytest.approx([2, 5 / 3, 2, 7 / 3, 2, 7 / 3, 2, 5 / 3, 2])
    torus = umatrix(proto, SOMGrid(3, 3, "rect", True))
    # Across the seam: row 0 <-> row 2 differ by 6, column 0 <-> column 2 by 2.
    h = {0: 1 + 2, 1: 1 + 1, 2: 1 + 2}
    v = {0: 3 + 6, 1: 3 + 3, 2: 3 + 6}
    expected = [(h[c] + v[r]) / 4 for r in range(3) for c in range(3)]
    assert torus == pytest.approx(expected)
    # Exactly the centre node, which has no seam neighbour, agrees between the two.
    same = np.isclose(flat, torus)
    assert same.tolist() == [k == 4 for k in range(9)]


def test_umatrix_of_prototypes_at_drawing_positions():
    hexgrid = SOMGrid(4, 5, "hex", False)
    assert umatrix(hexgrid.positions(), hexgrid) == pytest.approx(np.ones(20))
    rect = SOMGrid(2, 3, "rect", False)
    assert umatrix(rect.positions(), rect) == pytest.approx(np.ones(6))
    torus = SOMGrid(3, 4, "rect", True)
    u = umatrix(torus.positions(), torus).reshape(3, 4)
    # Column 0 and 3 see a neighbour 3 units away across the seam, rows 0 and 2 one 2 units away.
    expected = np.empty((3, 4))
    for r in range(3):
        for c in range(4):
            horiz = 1 + (3 if c in (0, 3) else 1)
            vert = 1 + (2 if r in (0, 2) else 1)
            expected[r, c] = (horiz + vert) / 4
    assert u == pytest.approx(expected)


def test_umatrix_rejects_wrong_number_of_prototypes():
    with pytest.raises(InputError, match="9 nodes"):
        umatrix(np.zeros((8, 2)), SOMGrid(3, 3))


# --------------------------------------------------------------------------------- hits
def test_hit_maps_with_mask_weights_and_chunks():
    bmu = np.array([[0, 2, 2, 9], [3, 3, 3, 3]])
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    assert hit_map(bmu, 4, sample_mask=mask).tolist() == [1, 0, 2, 2]
    w = np.array([[1.0, 0.5, 0.5, 7], [2, 2, 2, 2]])
    assert hit_map(bmu, 4, weights=w, sample_mask=mask) == pytest.approx([1, 0, 1, 4])
    with pytest.raises(InputError, match="outside 0..3"):
        hit_map(bmu, 4)
    p = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [1.0, 0.0, 0.0]])
    assert soft_hit_map(p) == pytest.approx([1.6, 0.7, 0.7])
    assert soft_hit_map(iter([p[:2], p[2:]])) == pytest.approx([1.6, 0.7, 0.7])
    assert soft_hit_map(p, sample_mask=np.array([True, False, True]), chunk_size=1) == pytest.approx([1.5, 0.5, 0])


def test_component_planes_and_feature_plane():
    decoded = np.arange(12.0).reshape(4, 3)
    planes = component_planes(decoded)
    assert planes.shape == (3, 4) and planes[2].tolist() == [2, 5, 8, 11]
    assert feature_plane(decoded, -1).tolist() == [2, 5, 8, 11]
    with pytest.raises(InputError, match="out of range"):
        feature_plane(decoded, 3)


# --------------------------------------------------------------------------- enrichment
def test_wilson_interval_known_values():
    lo, hi = wilson_interval([0, 5, 10], [10, 10, 10])
    assert lo == pytest.approx([0.0, 0.2366, 0.7225], abs=1e-4)
    assert hi == pytest.approx([0.2775, 0.7634, 1.0], abs=1e-4)
    lo, hi = wilson_interval([0], [0])
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_label_enrichment_binary_uses_wilson_and_ignores_missing():
    bmu = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2])
    died = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, np.nan, 1.0])
    e = label_enrichment(bmu, died, 3)
    assert e.kind == "binary" and e.n_missing == 1
    assert e.count.tolist() == [10, 0, 1]
    assert e.mean[0] == 0.5 and np.isnan(e.mean[1]) and e.mean[2] == 1.0
    assert (e.lower[0], e.upper[0]) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert np.isnan(e.lower[1])
    assert e.global_mean == pytest.approx(6 / 11)


def test_label_enrichment_continuous_t_interval_and_padding():
    bmu = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]])
    score = np.array([[1.0, 2, 3, 4, 99], [50, 7, 8, 9, 10]])
    mask = np.array([[True, True, True, True, False], [False, True, True, False, False]])
    e = label_enrichment(bmu, score, 2, sample_mask=mask)
    assert e.kind == "continuous"
    assert e.count.tolist() == [2, 4]
    assert e.mean == pytest.approx([7.5, 2.5])
    sd = np.std([1, 2, 3, 4], ddof=1)
    half = 3.182446305 * sd / 2  # t_{0.975, 3}
    assert (e.lower[1], e.upper[1]) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-8)
    half0 = 12.706204736 * np.std([7, 8], ddof=1) / np.sqrt(2)
    assert e.upper[0] == pytest.approx(7.5 + half0, abs=1e-7)


def test_label_enrichment_category_label_needs_positive():
    bmu = np.array([0, 0, 1, 1])
    outcome = np.array(["died", "alive", "alive", ""])
    with pytest.raises(InputError, match="positive="):
        label_enrichment(bmu, outcome, 2)
    e = label_enrichment(bmu, outcome, 2, positive="died")
    assert e.mean.tolist() == [0.5, 0.0] and e.n_missing == 1 and e.kind == "binary"


def test_node_entropy_from_probabilities_or_entropies():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    bmu = np.array([0, 0, 1])
    out = node_entropy(bmu, p, 3)
    assert out[0] == pytest.approx(np.log(2) / 2) and out[1] == pytest.approx(np.log(2))
    assert np.isnan(out[2])
    assert node_entropy(bmu, np.array([0.0, 1.0, 3.0]), 2) == pytest.approx([0.5, 3.0])


# ---------------------------------------------------------------------------- Moran's I
def test_morans_i_hand_computed_on_a_row():
    row = SOMGrid(1, 3, "rect", False)
    # values 0,0,3: mean 1, deviations -1,-1,2; neighbour products 1 and -2, each counted twice
    assert morans_i([0, 0, 3], row, weights="adjacency") == pytest.approx(3 / 4 * (-2) / 6)


def test_morans_i_gradient_positive_checkerboard_negative_on_torus():
    grid = SOMGrid(6, 6, "rect", True)
    r, c = np.divmod(np.arange(36), 6)
    smooth = np.cos(2 * np.pi * c / 6) + np.cos(2 * np.pi * r / 6)
    checker = ((r + c) % 2).astype(float)
    assert morans_i(smooth, grid) > 0.3
    # Checkerboard: every pair at odd distance disagrees. On a 6x6 torus each node has
    # 4, 8, 10, 8, 4, 1 nodes at distance 1..6, so I = sum (-1)^d n_d e^-d / sum n_d e^-d.
    n_d = np.array([4, 8, 10, 8, 4, 1])
    d = np.arange(1, 7)
    expected = (n_d * (-1.0) ** d * np.exp(-d)).sum() / (n_d * np.exp(-d)).sum()
    assert morans_i(checker, grid) == pytest.approx(expected, rel=1e-12)
    assert expected < -0.2
    # With neighbour weights a perfect checkerboard on an even torus is exactly -1.
    assert morans_i(checker, grid, weights="adjacency") == pytest.approx(-1.0)


def _brute_moran(v, w, centre):
    n = len(v)
    num = sum(w[j, k] * (v[j] - centre) * (v[k] - centre) for j in range(n) for k in range(n))
    den = sum((x - centre) ** 2 for x in v)
    return n / w.sum() * num / den


def test_morans_i_leaves_out_empty_nodes_and_offers_the_reference_variant():
    grid = SOMGrid(3, 4, "rect", True)
    rng = np.random.default_rng(0)
    values = rng.normal(size=12)
    counts = rng.integers(1, 5, 12)
    values[2] = np.nan
    counts[7] = 0
    keep = np.array([k not in (2, 7) for k in range(12)])
    w = np.exp(-grid.distances().astype(float))
    w_clean = w.copy()
    np.fill_diagonal(w_clean, 0)
    expected = _brute_moran(values[keep], w_clean[np.ix_(keep, keep)], values[keep].mean())
    assert morans_i(values, grid, counts=counts) == pytest.approx(expected, rel=1e-12)
    # Changing the value of an empty node must not matter.
    values2 = values.copy()
    values2[7] = 1e6
    assert morans_i(values2, grid, counts=counts) == pytest.approx(expected, rel=1e-12)
    ref_values = np.where(keep, values, 0.0)
    ref = _brute_moran(ref_values, w, 0.3)
    got = morans_i(values, grid, counts=counts, global_mean=0.3, self_weight=True, empty_as_zero=True)
    assert got == pytest.approx(ref, rel=1e-12)
    assert got != pytest.approx(expected)


# ----------------------------------------------------------------------- majority labels
def test_majority_labels_and_neighbour_agreement():
    row = SOMGrid(1, 5, "rect", False)
    bmu = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4])
    lab = np.array(["a", "b", "a", "b", "b", "a", "b", "x", ""], dtype=object)
    codes, cats, share = majority_labels(bmu, lab, 5)
    assert cats.tolist() == ["a", "b", "x"]
    assert codes.tolist() == [0, 0, 1, 1, 2]  # node 0 ties a/b -> first in sorted order
    assert share[2] == pytest.approx(2 / 3) and share[0] == 0.5
    # pairs (0,1) agree, (1,2) differ, (2,3) agree, (3,4) differ
    assert neighbour_majority_agreement(bmu, lab, row) == pytest.approx(0.5)
    # node 4 loses its only known label: pair (3,4) no longer counts
    lab2 = lab.copy()
    lab2[7] = None
    assert neighbour_majority_agreement(bmu, lab2, row) == pytest.approx(2 / 3)


def test_neighbour_agreement_counts_seam_pairs_on_a_torus():
    torus = SOMGrid(3, 3, "rect", True)
    flat = SOMGrid(3, 3, "rect", False)
    # Columns 0 and 1 carry "a", column 2 "b": on the torus column 2 also touches column 0.
    bmu = np.arange(9)
    lab = np.array(["a", "a", "b"] * 3)
    # flat: 6 horizontal pairs (3 agree) + 6 vertical (all agree) -> 9/12
    assert neighbour_majority_agreement(bmu, lab, flat) == pytest.approx(9 / 12)
    # torus: 9 horizontal (3 agree) + 9 vertical (all agree) -> 12/18
    assert neighbour_majority_agreement(bmu, lab, torus) == pytest.approx(12 / 18)
