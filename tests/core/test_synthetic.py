"""Synthetic ICU cohorts, manifold clusters and the built-in demos."""

import numpy as np
import pandas as pd
import pytest

from core.data.demo import demo_icu, demo_table
from core.data.scores import apache_points, window_worst_score
from core.data.synthetic import (
    cohort_to_frame,
    lattice_levels,
    make_icu_cohort,
    make_manifold_clusters,
    manifold_centres,
)
from core.errors import InputError

APACHE_INPUTS = ["Temp", "MAP", "RespRate", "HCO3", "Sodium", "Potassium", "Creatinine"]
VITALS = ["HR", "MAP", "SysBP", "DiasBP", "RespRate", "Temp", "SpO2"]


@pytest.fixture(scope="module")
def cohort():
    return make_icu_cohort(300, seed=0)


@pytest.fixture(scope="module")
def complete_cohort():
    return make_icu_cohort(300, seed=0, complete=True)


def assert_same_dataset(a, b):
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.times, b.times)
    assert a.labels.keys() == b.labels.keys()
    for k in a.labels:
        np.testing.assert_array_equal(a.labels[k], b.labels[k])


def real_end(ds, label):
    return ds.labels[label][np.arange(ds.n_samples), ds.lengths - 1]


# --- ICU cohort -------------------------------------------------------------------------

def test_same_seed_same_cohort_other_seed_differs(cohort):
    assert_same_dataset(cohort, make_icu_cohort(300, seed=0))
    other = make_icu_cohort(300, seed=1)
    assert not np.array_equal(np.nan_to_num(cohort.values), np.nan_to_num(other.values))
    assert not np.array_equal(cohort.labels["state"], other.labels["state"])


def test_shapes_ids_times_and_padding(cohort):
    n, t, d = 300, 72, 16
    assert cohort.values.shape == cohort.mask.shape == (n, t, d)
    assert cohort.values.dtype == np.float32
    assert len(cohort.feature_names) == len(cohort.units) == d
    assert set(APACHE_INPUTS) <= set(cohort.feature_names)
    assert cohort.ids[0] == "P0001" and cohort.ids[-1] == "P0300" and len(set(cohort.ids)) == n
    assert cohort.lengths.min() >= 24 and cohort.lengths.max() <= 72
    assert len(np.unique(cohort.lengths)) > 10
    assert cohort.time_unit == "h"

    real = cohort.step_mask
    np.testing.assert_array_equal(np.isnan(cohort.times), ~real)
    np.testing.assert_array_equal(cohort.times[real], np.nonzero(real)[1])
    # Padding holds nothing; the mask says exactly where values are.
    assert np.isnan(cohort.values[~real]).all() and not cohort.mask[~real].any()
    np.testing.assert_array_equal(cohort.mask, ~np.isnan(cohort.values))
    for name, lab in cohort.labels.items():
        assert lab.shape == (n, t), name
        assert np.isnan(lab[~real]).all() and not np.isnan(lab[real]).any(), name


def test_units_are_clinical(cohort):
    units = dict(zip(cohort.feature_names, cohort.units))
    assert units["HR"] == "bpm" and units["MAP"] == "mmHg" and units["Temp"] == "°C"
    assert units["Creatinine"] == "mg/dL" and units["Potassium"] == "mmol/L"
    med = {nm: np.nanmedian(cohort.values[..., j]) for j, nm in enumerate(cohort.feature_names)}
    assert 60 < med["HR"] < 130 and 55 < med["MAP"] < 100 and 36 < med["Temp"] < 38.5
    assert 125 < med["Sodium"] < 150 and 0.5 < med["Creatinine"] < 5


def test_feature_count_keeps_apache_variables_and_simulated_values():
    small = make_icu_cohort(40, n_features=7, seed=3, complete=True)
    assert sorted(small.feature_names) == sorted(APACHE_INPUTS)
    full = make_icu_cohort(40, n_features=24, seed=3, complete=True)
    assert len(set(full.feature_names)) == 24
    for j, name in enumerate(small.feature_names):
        np.testing.assert_array_equal(small.values[..., j], full.values[..., full.feature_names.index(name)])
    for bad in (6, 25):
        with pytest.raises(InputError, match="n_features"):
            make_icu_cohort(10, n_features=bad)
    with pytest.raises(InputError, match="min_steps"):
        make_icu_cohort(10, min_steps=80, max_steps=72)


def test_transitions_only_to_lattice_neighbours_and_sticky(cohort):
    c, r = lattice_levels(cohort.labels["state"], 3)
    real_pair = cohort.step_mask[:, 1:]
    jump = (np.abs(np.diff(c, axis=1)) + np.abs(np.diff(r, axis=1)))[real_pair]
    assert set(np.unique(jump)) == {0.0, 1.0}
    stay = (jump == 0).mean()
    assert 0.85 <= stay <= 0.99
    np.testing.assert_array_equal(cohort.labels["severity"], c + r)


def test_larger_lattice_stays_on_neighbours():
    ds = make_icu_cohort(60, n_states_side=4, seed=2)
    state = ds.labels["state"][ds.step_mask]
    assert state.min() >= 0 and state.max() <= 15
    c, r = lattice_levels(ds.labels["state"], 4)
    jump = (np.abs(np.diff(c, axis=1)) + np.abs(np.diff(r, axis=1)))[ds.step_mask[:, 1:]]
    assert jump.max() == 1


def test_subgroups_drift_in_their_direction(cohort):
    group = cohort.labels["subgroup"][:, 0]
    start = cohort.labels["severity"][:, 0]
    end = real_end(cohort, "severity")
    assert set(np.unique(group)) == {0, 1, 2}
    det, rec = group == 1, group == 2
    assert end[det].mean() > start[det].mean() + 0.5
    assert end[rec].mean() < start[rec].mean() - 0.5
    # Deterioration is what kills: the deteriorating group dies most often.
    died = cohort.labels["died"][:, 0]
    assert died[det].mean() > died[group == 0].mean()


def test_terminal_state_absorbs_and_means_death(cohort):
    terminal = cohort.labels["state"] == 8
    died = cohort.labels["died"][:, 0] == 1
    assert 0 < died.sum() < 300 * 0.5
    # Every death ends in the worst corner, and nobody leaves it.
    assert (real_end(cohort, "state")[died] == 8).all()
    assert not terminal.any(axis=1)[~died].any()
    first = np.where(terminal.any(axis=1), terminal.argmax(axis=1), 72)
    after = np.arange(72)[None, :] >= first[:, None]
    assert terminal[after & cohort.step_mask].all()


def test_death_labels_only_on_last_steps_of_patients_who_die(cohort):
    died = cohort.labels["died"][:, 0] == 1
    real = cohort.step_mask
    steps_left = cohort.lengths[:, None] - np.arange(72)[None, :]
    for h in (6, 12, 24):
        lab = cohort.labels[f"death_{h}h"]
        expected = died[:, None] & (steps_left <= h)
        np.testing.assert_array_equal(lab[real] == 1, expected[real])
        assert set(np.unique(lab[real])) == {0.0, 1.0}
    assert (np.nanmax(cohort.labels["died"], axis=1) == np.nanmin(cohort.labels["died"], axis=1)).all()


def test_vitals_observed_much_more_often_than_labs(cohort):
    rate = cohort.mask[cohort.step_mask].mean(axis=0)
    by_name = dict(zip(cohort.feature_names, rate))
    for name in cohort.feature_names:
        if name in VITALS:
            assert 0.85 <= by_name[name] <= 0.98, name
        else:
            assert 0.02 <= by_name[name] <= 0.25, name


def test_labs_come_in_draws_at_most_every_six_hours(cohort):
    creat = cohort.mask[..., cohort.feature_names.index("Creatinine")]
    for i in range(0, 300, 10):
        hours = np.nonzero(creat[i])[0]
        if len(hours) > 1:
            assert np.diff(hours).min() >= 6


def test_apache_labels_are_the_score_of_the_complete_values(cohort, complete_cohort):
    full = complete_cohort
    assert full.mask[full.step_mask].all()
    # The complete cohort is the same simulation, before values were left unrecorded.
    np.testing.assert_array_equal(full.values[cohort.mask], cohort.values[cohort.mask])
    cols = [full.values[..., full.feature_names.index(nm)] for nm in APACHE_INPUTS]
    points = apache_points(*cols)
    for h in (0, 6, 12, 24):
        expected = window_worst_score(points, full.lengths, h)
        np.testing.assert_array_equal(cohort.labels[f"apache_{h}"], expected)
        np.testing.assert_array_equal(full.labels[f"apache_{h}"], expected)


def test_apache_rises_with_severity_and_organ_loadings_point_the_right_way(complete_cohort):
    ds = complete_cohort
    real = ds.step_mask
    sev = ds.labels["severity"][real]
    score = ds.labels["apache_0"][real]
    means = [score[sev == s].mean() for s in range(5)]
    assert np.all(np.diff(means) > 0)
    c, r = (a[real] for a in lattice_levels(ds.labels["state"], 3))
    col = {nm: ds.values[..., j][real] for j, nm in enumerate(ds.feature_names)}
    assert col["MAP"][c == 2].mean() < col["MAP"][c == 0].mean() - 15
    assert col["HR"][c == 2].mean() > col["HR"][c == 0].mean() + 20
    assert col["Lactate"][c == 2].mean() > 2 * col["Lactate"][c == 0].mean()
    assert col["Creatinine"][r == 2].mean() > 2 * col["Creatinine"][r == 0].mean()
    assert col["Potassium"][r == 2].mean() > col["Potassium"][r == 0].mean() + 1
    assert col["HCO3"][r == 2].mean() < col["HCO3"][r == 0].mean() - 5


# --- tables written from a cohort ------------------------------------------------------

def test_cohort_to_frame_long_and_wide_hold_every_observed_value(cohort):
    ds = cohort.subset(np.arange(25))
    n_obs = int(ds.mask.sum())
    wide = cohort_to_frame(ds, "wide")
    assert len(wide) == ds.n_points
    assert list(wide.columns[:2]) == ["patient_id", "hour"]
    assert int(wide[ds.feature_names].notna().to_numpy().sum()) == n_obs
    assert set(ds.labels) <= set(wide.columns)

    long = cohort_to_frame(ds, "long", id_col="id", time_col="time")
    assert list(long.columns) == ["id", "time", "variable", "value"]
    assert len(long) == n_obs and long["value"].notna().all()
    back = long.pivot(index=["id", "time"], columns="variable", values="value")
    back = back.reindex(columns=ds.feature_names)
    wide_idx = wide.set_index(["patient_id", "hour"])[ds.feature_names]
    wide_idx = wide_idx[wide_idx.notna().any(axis=1)]
    wide_idx.index.names = ["id", "time"]
    pd.testing.assert_frame_equal(back, wide_idx, check_names=False, check_dtype=False)


def test_cohort_to_frame_table_and_bad_layout():
    table = demo_table()
    wide = cohort_to_frame(table)
    assert len(wide) == table.n_samples and wide.columns[0] == "admission_id"
    assert int(wide[table.feature_names].notna().to_numpy().sum()) == int(table.mask.sum())
    assert len(cohort_to_frame(table, "long")) == int(table.mask.sum())
    with pytest.raises(InputError, match="layout"):
        cohort_to_frame(table, "tall")


# --- manifold clusters -------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["ring", "sheet"])
def test_manifold_clusters_balanced_and_deterministic(layout):
    X, y, pos = make_manifold_clusters(500, n_clusters=16, n_features=30, layout=layout, seed=0)
    assert X.shape == (500, 30) and X.dtype == np.float32 and pos.shape == (500, 2)
    counts = np.bincount(y, minlength=16)
    assert counts.max() - counts.min() <= 1 and len(counts) == 16
    X2, y2, pos2 = make_manifold_clusters(500, n_clusters=16, n_features=30, layout=layout, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _, _ = make_manifold_clusters(500, n_clusters=16, n_features=30, layout=layout, seed=1)
    assert not np.allclose(X, X3)


def _pair_distances(points, y, k):
    cent = np.stack([points[y == c].mean(axis=0) for c in range(k)])
    return np.linalg.norm(cent[:, None] - cent[None, :], axis=-1)


@pytest.mark.parametrize("layout", ["ring", "sheet"])
def test_neighbouring_clusters_are_closer_than_distant_ones(layout):
    k = 16
    X, y, pos = make_manifold_clusters(1600, n_clusters=k, layout=layout, seed=4)
    centres = manifold_centres(k, layout)
    grid = np.linalg.norm(centres[:, None] - centres[None, :], axis=-1)
    near = np.isclose(grid, 1.0)
    far = grid >= 2.5
    assert near.any() and far.any()
    d_pos = _pair_distances(pos, y, k)
    assert d_pos[near].max() < d_pos[far].min()
    # The nonlinear embedding keeps the neighbourhood structure of the layout.
    d_x = _pair_distances(X.astype(np.float64), y, k)
    assert d_x[near].mean() < 0.6 * d_x[far].mean()


def test_manifold_rejects_bad_layout():
    with pytest.raises(InputError, match="layout"):
        make_manifold_clusters(10, layout="torus")


# --- demos ---------------------------------------------------------------------------------

def test_demo_icu_sizes_and_determinism():
    small = demo_icu("test")
    assert small.n_samples == 300 and small.is_series and small.source == "demo:icu"
    assert_same_dataset(small, demo_icu("test"))
    assert_same_dataset(small, demo_icu("test", seed=7))
    assert demo_icu("demo").n_samples == 2000
    with pytest.raises(InputError, match="size"):
        demo_icu("huge")


def test_demo_table_is_a_clinical_table():
    t = demo_table()
    assert not t.is_series and t.values.shape == (1500, 21)
    assert t.feature_names[0] == "Age" and t.units[0] == "years"
    assert set(APACHE_INPUTS) <= set(t.feature_names)
    assert t.ids[0] == "A00001" and len(set(t.ids)) == 1500
    np.testing.assert_array_equal(t.mask, ~np.isnan(t.values))
    missing = 1 - t.mask.mean(axis=0)
    by_name = dict(zip(t.feature_names, missing))
    assert by_name["Age"] == 0 and by_name["HR"] < 0.05 and 0.2 < by_name["Lactate"] < 0.6
    assert set(t.labels) == {"phenotype", "severity", "apache", "in_hospital_death"}
    for lab in t.labels.values():
        assert lab.shape == (1500,) and not np.isnan(lab).any()
    assert set(np.unique(t.labels["phenotype"])) == set(range(9))
    deaths = t.labels["in_hospital_death"]
    assert 0.05 < deaths.mean() < 0.4
    # Phenotype is visible in the features: shock rows have lower MAP than healthy rows.
    c, _ = lattice_levels(t.labels["phenotype"], 3)
    map_col = t.values[:, t.feature_names.index("MAP")]
    assert np.nanmean(map_col[c == 2]) < np.nanmean(map_col[c == 0]) - 15
    np.testing.assert_array_equal(demo_table().values, t.values)
