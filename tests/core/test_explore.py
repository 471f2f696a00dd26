"""core.explore: the figures and tables the command line and the app report about a trained run.

The runs are small real trainings (a few optimiser steps), so every number below comes from
a real model; each is checked against the analysis function it must equal.
"""

import numpy as np
import pandas as pd
import pytest

from core.analysis import (cluster_metrics, hit_map, label_enrichment, local_move_share, node_path,
                           transition_matrix)
from core.config import make_config
from core.data.demo import demo_icu, demo_table
from core.errors import InputError
from core.explore import RunExplorer, evaluate_run, numeric_labels
from core.workflow import ModelRun


def _train(dataset, model, **changes):
    base = {"grid.height": 4, "grid.width": 4, "network.hidden": (16,), "network.latent_dim": 3,
            "train.max_steps": 6, "train.batch_size": 32, "train.seed": 7}
    if model == "tdpsom":
        base.update({"network.lstm_dim": 4, "train.batch_size": 8})
    base.update(changes)
    run = ModelRun(dataset, make_config(model, "quick", **base))
    for _ in run.iter_train():
        pass
    return run


@pytest.fixture(scope="module")
def series_run():
    icu = demo_icu("test").subset(np.arange(24))
    # A label per patient (N,) and a text label ride along with the per-step labels.
    icu.labels["ward"] = np.array(["A", "B", ""] * 8, dtype=object)
    icu.labels["died_any"] = np.nanmax(np.where(icu.step_mask, icu.labels["died"], np.nan), axis=1)
    return _train(icu, "tdpsom")


@pytest.fixture(scope="module")
def table_run():
    table = demo_table().subset(np.arange(200))
    table.labels["site"] = np.array(["north", "south"] * 100, dtype=object)
    return _train(table, "dpsom")


def test_evaluate_run_reports_core_metrics_of_the_real_points(series_run):
    run = series_run
    res = evaluate_run(run, "state")
    bmu = run.assignments()["bmu"]
    real = run.dataset.step_mask
    assert np.array_equal(bmu >= 0, real)
    expected = cluster_metrics(run.dataset.labels["state"][real], bmu[real])
    assert {k: res[k] for k in expected} == pytest.approx(expected)
    assert res["points"] == int(real.sum()) and res["nodes_used"] == np.unique(bmu[real]).size
    assert res["morans_i"] is not None and np.isfinite(res["mean_jump"])
    # Smoothness of the journeys, hour by hour and along the decoded paths.
    assert res["local_moves"] == pytest.approx(local_move_share(bmu, run.dataset.lengths, run.grid))
    assert res["path_local_moves"] == pytest.approx(local_move_share(run.node_paths(), run.dataset.lengths, run.grid))
    assert res["path_local_moves"] >= res["local_moves"]
    # A text label is grouped by value but has no mean, so no Moran's I.
    text = evaluate_run(run, "ward")
    assert text["morans_i"] is None and text["n_classes"] == 2
    with pytest.raises(InputError, match="no label named 'nope'.*state"):
        evaluate_run(run, "nope")


def test_node_summary_counts_label_means_profiles_and_named_groups(series_run):
    run = series_run
    ds = run.dataset
    real = ds.step_mask
    bmu = run.assignments()["bmu"][real]
    notes = {"superclusters": [0] * 8 + [1] * 8, "supercluster_names": ["calm", "sick"]}
    frame = RunExplorer(run).node_summary(notes)
    assert len(frame) == 16 and np.array_equal(frame["count"], hit_map(bmu, 16))
    assert frame["supercluster_name"].tolist() == ["calm"] * 8 + ["sick"] * 8
    expected = label_enrichment(bmu, ds.labels["death_24h"][real], 16).mean
    assert np.allclose(frame["mean_death_24h"], expected, equal_nan=True)
    # The per-patient label holds at every step of its patient.
    per_step = np.repeat(ds.labels["died_any"][:, None], real.shape[1], axis=1)[real]
    assert np.allclose(frame["mean_died_any"], label_enrichment(bmu, per_step, 16).mean, equal_nan=True)
    assert "mean_ward" not in frame.columns  # text has no mean
    assert np.allclose(frame[ds.feature_names].to_numpy(), run.decoded_prototypes())


def test_numeric_labels_leave_out_text(table_run):
    assert "site" not in numeric_labels(table_run.dataset)
    assert {"phenotype", "in_hospital_death"} <= set(numeric_labels(table_run.dataset))


def test_selection_profile_and_outcomes_of_chosen_nodes(series_run):
    run = series_run
    ds = run.dataset
    e = RunExplorer(run)
    bmu = run.assignments()["bmu"]
    nodes = [int(k) for k in np.flatnonzero(e.hits())[:3]]
    s = e.selection(nodes)
    inside = np.isin(bmu, nodes) & ds.step_mask
    assert s.n_points == int(inside.sum()) and s.nodes == tuple(sorted(nodes))
    assert s.n_patients == np.unique(np.nonzero(inside)[0]).size
    assert (s.frame["node"].isin(nodes)).all() and "death_24h" in s.frame.columns
    j = ds.feature_names.index("HR")
    hr = ds.values[..., j][inside & ds.mask[..., j]].astype(float)
    cohort = ds.values[..., j][ds.step_mask & ds.mask[..., j]].astype(float)
    row = s.profile[j]
    assert row.name == "HR" and row.unit == "bpm" and row.n_measured == hr.size
    assert row.measured == pytest.approx(hr.mean()) and row.cohort_mean == pytest.approx(cohort.mean())
    assert row.z_measured == pytest.approx((hr.mean() - cohort.mean()) / cohort.std())
    hits = e.hits()[nodes]
    assert row.model == pytest.approx((run.decoded_prototypes()[nodes, j] * hits).sum() / hits.sum(), rel=1e-5)
    death = next(o for o in s.outcomes if o.name == "death_24h")
    y = ds.labels["death_24h"][inside]
    assert death.kind == "binary" and death.count == np.isfinite(y).sum()
    assert death.mean == pytest.approx(np.nanmean(y)) and death.lower <= death.mean <= death.upper
    assert death.cohort_mean == pytest.approx(np.nanmean(ds.labels["death_24h"][ds.step_mask]))
    assert not any(o.name == "ward" for o in s.outcomes)


def test_top_flows_are_the_most_frequent_moves_largest_first(series_run):
    run = series_run
    e = RunExplorer(run)
    counts = transition_matrix(run.assignments()["bmu"], run.dataset.lengths, 16, normalize=False)
    assert np.array_equal(e.transition_counts(), counts)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    flows = e.top_flows(6)
    assert [f.count for f in flows] == sorted(off.ravel()[off.ravel() > 0])[::-1][:6]
    for f in flows:
        assert f.source != f.target and off[f.source, f.target] == f.count
        assert len(f.pieces) == len(node_path(np.array([f.source, f.target]), run.grid))
    # Ties: the lower source node first, then the lower target.
    keys = [(-f.count, f.source, f.target) for f in flows]
    assert keys == sorted(keys)


def test_tables_have_no_moves_and_the_same_summary_as_the_command_line(table_run, tmp_path):
    from core.cli import main
    from core.io.project_h5 import save_project

    e = RunExplorer(table_run)
    assert not e.transition_counts().any() and e.top_flows(5) == []
    project = tmp_path / "t.h5"
    save_project(project, table_run.to_project())
    assert main(["export", str(project), "--nodes", str(tmp_path / "n.csv")]) == 0
    written = pd.read_csv(tmp_path / "n.csv")
    ours = e.node_summary()
    assert list(written.columns) == list(ours.columns)
    assert np.allclose(written["mean_phenotype"], ours["mean_phenotype"], equal_nan=True)
    assert np.array_equal(written["count"], ours["count"])
