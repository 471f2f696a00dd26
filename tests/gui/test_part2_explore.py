"""MapExplorer: the numbers the exploring views show are core's own numbers."""

import numpy as np
import pandas as pd
import pytest
from part2_fakes import FakeTrainedRun, make_cohort

from core.analysis import (agglomerative_superclusters, hit_map, label_enrichment, node_entropy, node_path,
                           soft_hit_map, suggest_n_superclusters, transition_matrix)
from core.grid import SOMGrid
from core.io.export import assignments_frame, node_summary_frame
from dpsom_gui.views.map_layers import label_short, label_title


def real(run):
    return run.results()["bmu"][run.dataset.step_mask]


def test_layers_are_core_maps(explorer):
    run = explorer.run
    bmu = real(run)
    proba = run.results()["proba"][run.dataset.step_mask]
    k = run.grid.n_nodes
    assert np.array_equal(explorer.layer("hits").values, hit_map(bmu, k))
    assert np.allclose(explorer.layer("hits", "soft").values, soft_hit_map(proba))
    assert np.allclose(explorer.layer("uncertainty").values, node_entropy(bmu, proba, k), equal_nan=True)
    lactate = explorer.layer("variable", "lactate")
    assert lactate.unit == "mmol/L"
    assert np.allclose(lactate.values, run.decoded_prototypes()[:, 1])
    death = explorer.layer("outcome", "death_24h")
    enr = label_enrichment(bmu, run.dataset.labels["death_24h"][run.dataset.step_mask], k)
    assert death.unit == "%" and np.allclose(death.values, 100 * enr.mean, equal_nan=True)
    assert np.array_equal(death.counts, enr.count)
    apache = explorer.layer("outcome", "apache_6")
    assert apache.unit == "" and np.nanmax(apache.values) <= 25
    with pytest.raises(KeyError):
        explorer.layer("variable", "no_such_variable")


def test_layer_choices_follow_what_the_run_offers(explorer):
    kinds = {c.kind: c for c in explorer.layer_choices()}
    assert list(kinds) == ["umatrix", "hits", "variable", "outcome", "uncertainty", "superclusters"]
    assert [o for o, _ in kinds["variable"].options] == ["heart_rate", "lactate", "creatinine"]
    assert ("death_24h", "Death within 24 h (death_24h)") in kinds["outcome"].options
    assert kinds["superclusters"].options[0] == ("", "suggested number")


def test_superclusters_suggested_by_silhouette_and_named_from_annotations(explorer):
    run = explorer.run
    best, scores = suggest_n_superclusters(run.prototypes(), run.grid, range(2, 11))
    layer = explorer.layer("superclusters")
    groups = agglomerative_superclusters(run.prototypes(), run.grid, best)
    assert np.array_equal(layer.values.astype(int), groups)
    assert layer.categories == tuple(f"Group {i + 1}" for i in range(best))
    three = explorer.layer("superclusters", "3")
    assert len(three.categories) == 3 and three.is_categorical
    saved = {"superclusters": groups.tolist(), "supercluster_names": ["Stable", "Shock"][:best]}
    named = explorer.layer("superclusters", "", saved)
    assert named.categories[:2] == tuple(saved["supercluster_names"])
    # names of another grouping are not carried over to a different one
    other = explorer.supercluster_layer(str(best + 1), saved)
    assert other.categories[0] == "Group 1"


def test_hover_text_names_the_cell_its_size_and_common_labels(explorer):
    run = explorer.run
    node = int(np.argmax(explorer.hits()))
    text = explorer.describe_node(node, explorer.layer("outcome", "death_24h"))
    lines = text.splitlines()
    row, col = run.grid.coords(node)
    assert lines[0] == f"Cell {node} (row {row + 1}, column {col + 1})"
    patients = len({p for p, b in zip(*np.nonzero(run.dataset.step_mask)) if run.results()["bmu"][p, b] == node})
    assert lines[1] == f"{explorer.hits()[node]} time points from {patients} patients"
    assert "Death within 24 h" in text and "95% interval" in text and "counting patients" in text
    assert "Most common: True health state" in text
    # a categorical outcome names its commonest category and share, never a mean
    state = explorer.layer("outcome", "state")
    assert state.is_categorical and state.title == "True health state (state): most frequent in each cell"
    text = explorer.describe_node(node, state)
    assert "% of its time points)" in text and "mean" not in text.lower()


def test_outcome_intervals_count_patients_not_time_points(explorer):
    from core.analysis.cohort_stats import clustered_summary

    run = explorer.run
    ds = run.dataset
    bmu = real(run)
    y = ds.labels["death_24h"][ds.step_mask]
    patients = np.nonzero(ds.step_mask)[0]
    layer = explorer.layer("outcome", "death_24h")
    want = clustered_summary(bmu, y, patients, run.grid.n_nodes)
    naive = label_enrichment(bmu, y, run.grid.n_nodes)
    assert np.allclose(layer.extra["upper"], 100 * want.upper, equal_nan=True)
    used = (want.n_patients < want.n_points) & (want.n_points > 0)
    assert used.any()
    # where several points share a patient, the honest interval is never narrower on average
    width = (want.upper - want.lower)[used]
    assert np.nanmean(width) > np.nanmean((naive.upper - naive.lower)[used])
    s = explorer.selection([0, 5])
    death = next(o for o in s.outcomes if o.name == "death_24h")
    assert death.n_patients == s.n_patients
    state = next(o for o in s.outcomes if o.name == "state")
    assert state.kind == "categorical" and sum(share for _, share in state.categories) == pytest.approx(1.0)
    assert state.mean == state.categories[0][0]


def test_selection_rows_profile_and_outcomes(explorer):
    run = explorer.run
    ds = run.dataset
    nodes = [0, 5]
    s = explorer.selection(nodes)
    frame = assignments_frame(bmu=run.results()["bmu"], grid=run.grid, proba=run.results()["proba"], dataset=ds,
                              next_node_pred=run.results()["next_node_pred"])
    expected = frame[frame["node"].isin(nodes)].reset_index(drop=True)
    assert s.n_points == len(expected)
    pd.testing.assert_frame_equal(s.frame[expected.columns], expected)
    assert list(s.frame.columns[-3:]) == ["death_24h", "apache_6", "state"]
    assert np.array_equal(ds.ids[s.patient], expected["patient_id"].to_numpy())
    # profile: measured mean over the selected points vs the cohort, in clinical units
    inside = np.isin(run.results()["bmu"], nodes) & ds.step_mask
    hr = ds.values[..., 0][inside & ds.mask[..., 0]].astype(float)
    row = s.profile[0]
    assert row.name == "heart_rate" and row.unit == "bpm"
    assert row.measured == pytest.approx(hr.mean())
    cohort = ds.values[..., 0][ds.step_mask & ds.mask[..., 0]].astype(float)
    assert row.z_measured == pytest.approx((hr.mean() - cohort.mean()) / cohort.std())
    hits = explorer.hits()[nodes]
    assert row.model == pytest.approx((run.decoded_prototypes()[nodes, 0] * hits).sum() / hits.sum())
    # outcomes: rate and count of the selected points, with an interval that counts patients
    death = next(o for o in s.outcomes if o.name == "death_24h")
    y = ds.labels["death_24h"][inside]
    assert death.count == y.size and death.mean == pytest.approx(y.mean())
    assert death.lower <= death.mean <= death.upper
    assert death.cohort_mean == pytest.approx(np.nanmean(ds.labels["death_24h"][ds.step_mask]))


def test_node_summary_is_core_frame_with_annotations(explorer):
    run = explorer.run
    ds = run.dataset
    bmu = real(run)
    means = {n: label_enrichment(bmu, ds.labels[n][ds.step_mask], 16).mean for n in ds.labels}
    notes = {"superclusters": [0] * 8 + [1] * 8, "supercluster_names": ["a", "b"]}
    expected = node_summary_frame(run.grid, counts=hit_map(bmu, 16), label_means=means,
                                  prototypes=run.decoded_prototypes(), feature_names=ds.feature_names,
                                  annotations=notes)
    ours = explorer.node_summary(notes)
    assert ours["supercluster_name"].tolist() == ["a"] * 8 + ["b"] * 8
    pd.testing.assert_frame_equal(ours.drop(columns="supercluster_name"), expected)
    assert "supercluster" in expected.columns


def test_transitions_and_flows_are_wrap_aware(explorer):
    run = explorer.run
    counts = transition_matrix(run.results()["bmu"], run.dataset.lengths, 16, normalize=False)
    assert np.array_equal(explorer.transition_counts(), counts)
    flows = explorer.top_flows(5)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    assert [f.count for f in flows] == sorted(off.ravel())[::-1][:5]
    for f in flows:
        pieces = node_path(np.array([f.source, f.target]), run.grid)
        assert len(f.pieces) == len(pieces)
    # odd patients walk down a 4-high torus: 15 -> 3 leaves at the bottom and re-enters at the top
    wrap = [f for f in explorer.top_flows(50) if (f.source, f.target) == (15, 3)]
    assert wrap and len(wrap[0].pieces) == 2
    assert np.allclose(wrap[0].pieces[0][-1], [3.5, 4.0]) and np.allclose(wrap[0].pieces[1][0], [3.5, 0.0])


def test_track_positions_follow_node_path_and_split_at_the_seam(explorer):
    track = explorer.track(0)
    grid = explorer.grid
    centres = grid.positions()
    n = int(explorer.dataset.lengths[0])
    assert track.length == n
    for t in range(n):
        assert np.allclose(track.position(t), centres[track.nodes[t]])
    # from cell 3 (right edge) to cell 4 (next row, left edge) the marker leaves at x = 4 ...
    assert track.nodes[3] == 3 and track.nodes[4] == 4
    assert np.allclose(track.position(3.5), [4.0, 1.0])
    assert track.position(3.75)[0] < 1.0  # ... and re-enters from the left
    assert np.allclose(track.position(99), centres[track.nodes[-1]])


def test_soft_assignment_filters_and_cached_forecasts(explorer):
    run = explorer.run
    proba = run.results()["proba"]
    assert np.allclose(explorer.soft_at([0, 1], 3), proba[[0, 1], 3].mean(axis=0))
    short = int(np.argmin(run.dataset.lengths))
    last = int(run.dataset.lengths[short]) - 1
    assert np.allclose(explorer.soft_at([short], 99), proba[short, last])
    assert list(explorer.patients_matching("P01")) == list(range(10, 16))
    died = explorer.patients_matching(outcome="death_24h")
    assert all(np.nanmax(run.dataset.labels["death_24h"][p]) == 1 for p in died)
    through = explorer.patients_matching(nodes=[0])
    assert all((run.results()["bmu"][p, : run.dataset.lengths[p]] == 0).any() for p in through)
    f = explorer.forecast([0, 1], 4, n_steps=3, n_samples=5)
    again = explorer.forecast([0, 1], 4, n_steps=3, n_samples=5)
    assert again is f and run.forecast_calls == [((0, 1), 5, 3, 5)]  # history = step + 1, computed once
    assert f.nodes.shape == (2, 3) and f.sample_nodes.shape == (2, 5, 3)


def test_table_runs_have_no_tracks_or_forecasts():
    from dpsom_gui.map_explorer import MapExplorer

    from core.data.dataset import Dataset

    ds = make_cohort()
    t = Dataset(values=ds.values[:, 0, :], mask=ds.mask[:, 0, :], feature_names=ds.feature_names, units=ds.units,
                labels={"death_24h": ds.labels["death_24h"][:, 0]})
    run = FakeTrainedRun(make_cohort(), SOMGrid(4, 4, "rect", True))
    run.temporal = False
    results = {"bmu": np.arange(t.n_samples) % 16, "proba": np.full((t.n_samples, 16), 1 / 16)}
    e = MapExplorer(run, results, t)
    assert not e.series and not e.can("forecast") and e.forecast([0], 0) is None
    assert e.transition_counts().sum() == 0 and e.top_flows() == []
    assert e.selection([1]).step.tolist() == [-1]


def test_plain_titles_of_labels():
    assert label_title("death_6h") == "Death within 6 h (death_6h)"
    assert label_short("apache_0") == "APACHE score now"
    assert label_short("apache_12") == "APACHE score in 12 h"
    assert label_title("lactate_peak") == "lactate_peak"
