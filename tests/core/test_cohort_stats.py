"""Patient-clustered summaries: intervals that count patients, categories, forecast bands."""

import numpy as np
import pytest

from core.analysis import label_enrichment, wilson_interval
from core.analysis.cohort_stats import category_shares, clustered_summary, forecast_band


def test_no_events_in_many_hours_of_few_patients_is_not_near_certainty():
    # The case from the field: 172 hours of 10 patients, none with the outcome.
    patients = np.repeat(np.arange(10), [17] * 9 + [19])
    y = np.zeros(172)
    s = clustered_summary(np.zeros(172, int), y, patients, 1)
    naive = label_enrichment(np.zeros(172, int), y, 1)
    assert s.n_points[0] == 172 and s.n_patients[0] == 10
    assert naive.upper[0] == pytest.approx(0.0218, abs=1e-3)  # what the hours alone would claim
    assert s.upper[0] == pytest.approx(wilson_interval(0, 10)[1], abs=0.01)  # what 10 patients allow
    assert s.upper[0] > 0.25 and s.lower[0] == pytest.approx(0.0, abs=1e-12)


def test_coverage_holds_when_a_patients_hours_are_alike():
    # 3000 simulated selections of 12 patients x 15 h; each patient has their own rate, so
    # hours within a patient are strongly correlated. Every selection is one group.
    rng = np.random.default_rng(3)
    n_sim, n_pat, hours, truth = 3000, 12, 15, 0.3
    rate = rng.beta(0.6, 1.4, (n_sim, n_pat))  # mean 0.3
    y = (rng.random((n_sim, n_pat, hours)) < rate[..., None]).astype(float).ravel()
    groups = np.repeat(np.arange(n_sim), n_pat * hours)
    patients = np.repeat(np.arange(n_sim * n_pat), hours)
    s = clustered_summary(groups, y, patients, n_sim)
    naive = label_enrichment(groups, y, n_sim)
    covered = np.mean((s.lower <= truth) & (truth <= s.upper))
    naive_covered = np.mean((naive.lower <= truth) & (truth <= naive.upper))
    assert covered > 0.9  # near the promised 95 %
    assert naive_covered < 0.7  # treating hours as independent misses far more often
    assert np.all(s.n_effective <= n_pat * hours)


def test_one_point_per_patient_is_the_ordinary_interval():
    rng = np.random.default_rng(0)
    y = (rng.random(60) < 0.2).astype(float)
    s = clustered_summary(np.zeros(60, int), y, np.arange(60), 1)
    lo, hi = wilson_interval(y.sum(), 60)
    # The robust variance is the binomial one times n / (n - 1): nearly the same interval.
    assert s.lower[0] == pytest.approx(float(lo), abs=0.01) and s.upper[0] == pytest.approx(float(hi), abs=0.01)


def test_continuous_equal_stays_equal_the_t_interval_of_patient_means():
    from scipy import stats

    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, (8, 6)) + rng.normal(0, 2, (8, 1))  # 8 patients x 6 h
    s = clustered_summary(np.zeros(48, int), values.ravel(), np.repeat(np.arange(8), 6), 1)
    means = values.mean(axis=1)
    half = stats.t.ppf(0.975, 7) * means.std(ddof=1) / np.sqrt(8)
    assert s.kind == "continuous" and s.n_patients[0] == 8
    assert s.mean[0] == pytest.approx(means.mean())
    assert s.lower[0] == pytest.approx(means.mean() - half) and s.upper[0] == pytest.approx(means.mean() + half)


def test_groups_missing_labels_and_a_single_patient():
    groups = np.array([0, 0, 0, 1, 1, 2])
    y = np.array([1.0, np.nan, 0.0, 5.0, 7.0, 1.0])
    patients = np.array([4, 4, 9, 2, 2, 3])
    s = clustered_summary(groups, y, patients, 4, kind="continuous")
    assert s.n_missing == 1
    assert s.n_points.tolist() == [2, 2, 1, 0] and s.n_patients.tolist() == [2, 1, 1, 0]
    assert np.isnan(s.lower[1]) and np.isnan(s.mean[3])  # one patient: no interval; empty: no mean
    with pytest.raises(ValueError, match="one entry per point"):
        clustered_summary(groups, y[:3], patients, 4)


def test_category_shares_count_points_and_patients():
    groups = np.array([0, 0, 0, 0, 1, 1])
    state = np.array([3, 3, 3, 5, 1, np.nan])
    patients = np.array([0, 0, 0, 1, 2, 2])
    c = category_shares(groups, state, patients, 3)
    assert c.categories.tolist() == [1.0, 3.0, 5.0]
    assert c.shares[0].tolist() == [0.0, 0.75, 0.25]
    assert c.patient_shares[0].tolist() == [0.0, 0.5, 0.5]
    assert c.top.tolist() == [1, 0, -1] and np.isnan(c.top_share()[2])
    assert c.n_points.tolist() == [4, 1, 0] and c.n_patients.tolist() == [2, 1, 0]


def test_forecast_band_starts_at_the_last_value_and_spans_the_samples():
    samples = np.arange(100, dtype=float)[:, None] * np.ones((1, 3))  # 100 futures, 3 steps
    lo, hi = forecast_band(7.0, samples)
    assert lo.tolist()[0] == 7.0 and hi.tolist()[0] == 7.0
    assert lo[1:] == pytest.approx([9.9] * 3) and hi[1:] == pytest.approx([89.1] * 3)
