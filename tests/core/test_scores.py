"""APACHE-style points (METHOD.md Appendix B) and the window-worst score."""

import numpy as np
import pytest

from core.data.scores import APACHE_VARIABLES, apache_points, window_worst_score
from core.errors import InputError

# Values that score 0 on every variable (creatinine 1.0 mg/dL = 88.4 µmol/L).
NORMAL = {"temperature": 37.0, "map": 85.0, "resp_rate": 16.0, "hco3": 26.0,
          "sodium": 140.0, "potassium": 4.2, "creatinine": 1.0}


def points_for(variable, values, **kw):
    args = [np.full(len(values), NORMAL[v]) for v in APACHE_VARIABLES]
    args[APACHE_VARIABLES.index(variable)] = np.asarray(values, dtype=float)
    return apache_points(*args, **kw)


CASES = {
    "temperature": [(45, 4), (41, 4), (40.99, 3), (39, 3), (38.99, 1), (38.5, 1), (38.49, 0),
                    (36, 0), (35.99, 1), (34, 1), (33.9, 2), (32, 2), (31.99, 3), (30, 3),
                    (29.9, 4)],
    "map": [(170, 4), (160, 4), (159, 3), (130, 3), (129, 2), (110, 2), (109.9, 0), (70, 0),
            (69.9, 2), (50, 2), (49.9, 4), (20, 4)],
    "resp_rate": [(50, 4), (49, 3), (35, 3), (34, 1), (25, 1), (24, 0), (12, 0), (11.9, 1),
                  (10, 1), (9.9, 2), (6, 2), (5.9, 4)],
    "hco3": [(52, 4), (51.9, 3), (41, 3), (40.9, 1), (32, 1), (31.9, 0), (23, 0), (22.9, 2),
             (18, 2), (17.9, 3), (15, 3), (14.9, 4)],
    "sodium": [(180, 4), (179, 3), (160, 3), (159, 2), (155, 2), (154.9, 1), (150, 1),
               (149, 0), (130, 0), (129, 2), (120, 2), (119, 3), (111, 3), (110.9, 4)],
    "potassium": [(7, 4), (6.9, 3), (6, 3), (5.9, 1), (5.5, 1), (5.4, 0), (3.5, 0), (3.4, 1),
                  (3, 1), (2.9, 2), (2.5, 2), (2.4, 4)],
}


@pytest.mark.parametrize("variable", sorted(CASES))
def test_points_match_appendix_b_including_boundaries(variable):
    values, expected = zip(*CASES[variable])
    pts = points_for(variable, values)
    j = APACHE_VARIABLES.index(variable)
    assert pts[:, j].tolist() == list(expected)
    # The other six variables stay at 0 points.
    assert np.delete(pts, j, axis=1).sum() == 0


def test_creatinine_table_in_micromol():
    values, expected = zip(*[(400, 4), (350, 4), (349, 3), (200, 3), (199, 2), (150, 2),
                             (149, 0), (60, 0), (59, 2), (20, 2)])
    pts = points_for("creatinine", values, creatinine_factor=1.0)
    assert pts[:, 6].tolist() == list(expected)


def test_creatinine_mg_dl_converted_by_88_4_or_reference_100():
    mg_dl = [1.0, 0.6, 2.0, 2.3, 3.9, 4.0]
    # x 88.4: 88.4, 53.0, 176.8, 203.3, 344.8, 353.6 µmol/L
    assert points_for("creatinine", mg_dl)[:, 6].tolist() == [0, 2, 2, 3, 3, 4]
    # x 100 (reference): 100, 60, 200, 230, 390, 400 µmol/L
    assert points_for("creatinine", mg_dl, creatinine_factor=100)[:, 6].tolist() == [0, 0, 3, 3, 4, 4]


def test_nan_scores_zero_and_shapes_broadcast():
    nan = np.nan
    pts = apache_points(nan, nan, nan, nan, nan, nan, nan)
    assert pts.shape == (7,) and pts.sum() == 0
    temp = np.array([[41.0, nan, 37.0], [29.0, 36.0, nan]])
    pts = apache_points(temp, 85, 16, 24, 140, 4.0, 1.0)
    assert pts.shape == (2, 3, 7)
    assert pts[..., 0].tolist() == [[4, 0, 0], [4, 0, 0]]


def test_worst_values_reach_28():
    pts = apache_points(42.0, 170, 55, 10, 185, 8.0, 5.0)
    assert pts.tolist() == [4] * 7 and pts.sum() == 28


def test_window_worst_takes_each_variables_own_maximum_and_ignores_padding():
    pts = np.zeros((1, 5, 2), dtype=np.int64)
    pts[0, :, 0] = [0, 3, 0, 1, 9]    # step 4 is padding: its 9 must never count
    pts[0, :, 1] = [2, 0, 0, 0, 4]
    lengths = [4]
    now = window_worst_score(pts, lengths, 0)
    np.testing.assert_array_equal(now[0, :4], [2, 3, 0, 1])
    assert np.isnan(now[0, 4])
    np.testing.assert_array_equal(window_worst_score(pts, lengths, 1), now)
    # Per-variable maxima add up (3 + 2 at step 0), unlike the maximum of the hourly sums (3).
    np.testing.assert_array_equal(window_worst_score(pts, lengths, 2)[0, :4], [5, 3, 1, 1])
    np.testing.assert_array_equal(window_worst_score(pts, lengths, 24)[0, :4], [5, 3, 1, 1])
    assert window_worst_score(pts, lengths, 24).dtype == np.float32


def test_window_worst_is_monotone_in_horizon():
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 5, size=(20, 30, 7))
    lengths = rng.integers(1, 31, size=20)
    prev = window_worst_score(pts, lengths, 0)
    for h in (3, 6, 12, 24):
        cur = window_worst_score(pts, lengths, h)
        real = ~np.isnan(prev)
        assert (cur[real] >= prev[real]).all()
        assert np.array_equal(np.isnan(cur), ~real)
        prev = cur


def test_window_worst_rejects_bad_arguments():
    pts = np.zeros((2, 3, 7))
    with pytest.raises(InputError, match="horizon_h"):
        window_worst_score(pts, [3, 3], -1)
    with pytest.raises(InputError, match="lengths"):
        window_worst_score(pts, [3], 6)
    with pytest.raises(InputError, match="points_per_var"):
        window_worst_score(np.zeros((3, 7)), [3, 3, 3], 6)
