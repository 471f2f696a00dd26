"""Clustering and map-quality metrics: known values and agreement with scikit-learn."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from core.analysis import (
    adjusted_rand_index,
    ami,
    assignment_entropy,
    best_matching_units,
    cluster_metrics,
    collapse_check,
    count_missing_labels,
    mutual_information,
    label_enrichment,
    nmi,
    purity,
    quantisation_error,
    topographic_error,
    wilson_interval,
)
from core.errors import InputError
from core.grid import SOMGrid


def _random_labelings(seed, n_cases=25):
    rng = np.random.default_rng(seed)
    for case in range(n_cases):
        n = int(rng.integers(2, 400))
        a = rng.integers(0, int(rng.integers(1, 9)), n)
        b = rng.integers(0, int(rng.integers(1, 40)), n)
        if case % 3 == 0:  # correlated, so scores are not all near zero
            b = a * 3 + rng.integers(0, 2, n)
        yield a, b


@pytest.mark.parametrize("average", ["geometric", "arithmetic"])
def test_nmi_and_ami_equal_sklearn_on_random_labels(average):
    for a, b in _random_labelings(0):
        assert nmi(a, b, average) == pytest.approx(
            skm.normalized_mutual_info_score(a, b, average_method=average), abs=1e-12)
        assert ami(a, b, average) == pytest.approx(
            skm.adjusted_mutual_info_score(a, b, average_method=average), abs=1e-9)


def test_ari_purity_mi_equal_sklearn_on_random_labels():
    for a, b in _random_labelings(1):
        assert adjusted_rand_index(a, b) == pytest.approx(skm.adjusted_rand_score(a, b), abs=1e-12)
        assert mutual_information(a, b) == pytest.approx(skm.mutual_info_score(a, b), abs=1e-12)
        table = skm.cluster.contingency_matrix(a, b)
        assert purity(a, b) == pytest.approx(table.max(axis=0).sum() / table.sum(), abs=1e-15)


def test_ami_matches_sklearn_on_a_larger_unbalanced_problem():
    rng = np.random.default_rng(5)
    a = rng.choice(6, 20000, p=[0.5, 0.2, 0.15, 0.1, 0.04, 0.01])
    b = (a * 7 + rng.integers(0, 12, a.size)) % 64
    assert ami(a, b) == pytest.approx(skm.adjusted_mutual_info_score(a, b), abs=1e-9)


def test_nmi_hand_computed_value():
    # Two classes of 2 samples; clusters split one class: H(Y)=ln2, H(C)=1.5 ln2, I=ln2.
    y = [0, 0, 1, 1]
    c = [0, 0, 1, 2]
    assert nmi(y, c, "geometric") == pytest.approx(1.0 / math.sqrt(1.5))
    assert nmi(y, c, "arithmetic") == pytest.approx(1.0 / 1.25)
    assert purity(y, c) == 1.0
    assert nmi(y, y) == pytest.approx(1.0) and adjusted_rand_index(y, [5, 5, 9, 9]) == 1.0


def test_labels_of_any_type_and_missing_ones_are_left_out_and_counted():
    y_str = np.array(["a", "a", "b", "", "b", "c"], dtype=object)
    y_str[3] = None
    y_float = np.array([0.0, 0.0, 1.0, np.nan, 1.0, 2.0])
    c = np.array([3, 3, 7, 7, 7, 1])
    keep = np.array([True, True, True, False, True, True])
    expected = skm.normalized_mutual_info_score(y_float[keep], c[keep], average_method="geometric")
    assert nmi(y_str, c) == pytest.approx(expected)
    assert nmi(y_float, c) == pytest.approx(expected)
    assert count_missing_labels(y_str) == 1 and count_missing_labels(y_float) == 1
    assert count_missing_labels(np.array(["x", "", "y"])) == 1
    out = cluster_metrics(y_float, c)
    assert out["n_missing_labels"] == 1 and out["n_samples"] == 5
    assert out["nmi_geometric"] == pytest.approx(expected)
    assert out["ami"] == pytest.approx(skm.adjusted_mutual_info_score(y_float[keep], c[keep]))
    assert out["n_classes"] == 3 and out["n_clusters_used"] == 3


def test_sample_mask_excludes_padding_of_2d_assignments():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, (6, 10))
    b = (y * 4 + rng.integers(0, 3, y.shape)) % 9
    mask = np.arange(10)[None, :] < np.array([10, 3, 7, 1, 10, 5])[:, None]
    b_padded = np.where(mask, b, 99)  # garbage in the padding must not matter
    assert nmi(y, b_padded, sample_mask=mask) == pytest.approx(
        skm.normalized_mutual_info_score(y[mask], b[mask], average_method="geometric"))
    assert purity(y, b_padded, sample_mask=mask) == pytest.approx(purity(y[mask], b[mask]))


def test_degenerate_cases():
    assert nmi([1, 1, 1], [0, 0, 0]) == 1.0
    assert nmi([1, 1, 2], [0, 0, 0]) == 0.0
    assert ami([1, 1, 2], [0, 0, 0]) == 0.0
    assert math.isnan(nmi([np.nan, np.nan], [0, 1]))
    with pytest.raises(InputError, match="different shapes"):
        nmi([0, 1, 2], [0, 1])


def test_quantisation_error_on_hand_made_points():
    proto = np.array([[0.0, 0.0], [10.0, 0.0]])
    z = np.array([[3.0, 4.0], [10.0, 1.0], [9.0, 0.0]])
    # nearest: node 0 at distance 5, node 1 at 1, node 1 at 1
    assert quantisation_error(z, proto) == pytest.approx(7.0 / 3.0)
    assert quantisation_error(z, proto, bmu=[1, 1, 1]) == pytest.approx((math.hypot(7, 4) + 1 + 1) / 3)
    assert quantisation_error(z, proto, sample_mask=np.array([True, False, False])) == pytest.approx(5.0)
    with pytest.raises(InputError, match="outside 0..1"):
        quantisation_error(z, proto, bmu=[0, 2, 1])


def test_topographic_error_counts_non_adjacent_first_and_second_best():
    grid = SOMGrid(1, 4, "rect", False)  # a row of 4 nodes: 0-1-2-3
    proto = np.array([[0.0], [1.0], [2.0], [3.0]])
    z = np.array([[0.1], [1.6], [2.9]])
    assert topographic_error(z, proto, grid) == 0.0
    # Swap the prototypes of nodes 1 and 3, so that map order no longer follows the data.
    proto2 = np.array([[0.0], [3.0], [2.0], [1.0]])
    z2 = np.array([[0.6], [2.4], [1.4]])
    # 0.6 -> nodes 3 (1.0) then 0 (0.0): not adjacent; 2.4 -> 2 then 1: adjacent;
    # 1.4 -> 3 then 2: adjacent.
    assert topographic_error(z2, proto2, grid) == pytest.approx(1.0 / 3.0)
    torus = SOMGrid(3, 4, "rect", True)
    proto3 = np.zeros((12, 1))
    proto3[[0, 3]] = [[0.0], [1.0]]
    proto3[[1, 2, 4, 5, 6, 7, 8, 9, 10, 11]] = 50.0
    # Nodes 0 and 3 are neighbours across the seam of the torus.
    assert topographic_error(np.array([[0.4]]), proto3, torus) == 0.0
    flat = SOMGrid(3, 4, "rect", False)
    assert topographic_error(np.array([[0.4]]), proto3, flat) == 1.0


def test_best_matching_units_chunked_equals_brute_force():
    rng = np.random.default_rng(3)
    z, proto = rng.normal(size=(500, 4)), rng.normal(size=(20, 4))
    d = ((z[:, None, :] - proto[None]) ** 2).sum(axis=2)
    assert np.array_equal(best_matching_units(z, proto, chunk_size=37), d.argmin(axis=1))
    two = best_matching_units(z, proto, n_best=2, chunk_size=64)
    assert np.array_equal(two, np.argsort(d, axis=1)[:, :2])


def test_assignment_entropy_values_and_chunks():
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    h = assignment_entropy(p)
    assert h == pytest.approx([0.0, math.log(4), math.log(2)])
    assert assignment_entropy(iter([p[:1], p[1:]])) == pytest.approx(h)


def test_collapse_check():
    bmu = np.zeros(1000, dtype=int)
    bmu[:10] = 1
    collapsed, msg = collapse_check(bmu, 64)
    assert collapsed and "2 of 64" in msg
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    good = y * 16 + rng.integers(0, 16, y.size)
    assert collapse_check(good, 64, labels=y)[0] is False
    random_bmu = rng.integers(0, 64, y.size)
    collapsed, msg = collapse_check(random_bmu, 64, labels=y)
    assert collapsed and "AMI" in msg


def test_enrichment_intervals_use_published_quantiles():
    # Student-t 97.5 % quantiles (published tables) for nodes of 2, 3, 6, 11 and 31 points.
    published = [12.706204736, 4.302652730, 2.570581836, 2.228138852, 2.042272456]
    sizes = [2, 3, 6, 11, 31]
    bmu = np.repeat(np.arange(len(sizes)), sizes)
    x = np.concatenate([np.linspace(0.0, 1.0, n) ** 2 for n in sizes])
    e = label_enrichment(bmu, x, len(sizes))
    tq = (e.upper - e.mean) * np.sqrt(e.count) / e.std
    assert tq == pytest.approx(published, abs=1e-8)
    # Wilson's interval with z = 1.959963984540054 for 3 events in 10.
    lo, hi = wilson_interval([3], [10])
    assert (lo[0], hi[0]) == pytest.approx((0.1078, 0.6032), abs=1e-4)


@pytest.mark.parametrize("grid", [SOMGrid(4, 6, "hex", True), SOMGrid(4, 6, "rect", False)], ids=["hex", "rect"])
def test_topographic_error_chunked_equals_brute_force(grid):
    rng = np.random.default_rng(4)
    proto = rng.normal(size=(grid.n_nodes, 3))
    z = rng.normal(size=(300, 3))
    order = np.argsort(((z[:, None] - proto[None]) ** 2).sum(axis=2), axis=1)
    expected = np.mean([order[i, 1] not in grid.neighbours_of(order[i, 0]) for i in range(300)])
    assert topographic_error(z, proto, grid, chunk_size=11) == pytest.approx(expected)
    mask = np.arange(300) < 100
    assert topographic_error(z, proto, grid, sample_mask=mask) == pytest.approx(
        np.mean([order[i, 1] not in grid.neighbours_of(order[i, 0]) for i in range(100)]))
