"""ModelRun: data + preprocessing + model, trained, saved, reopened and analysed together."""

import numpy as np
import pytest

from core.config import Config, make_config
from core.data.demo import demo_icu, demo_table
from core.errors import InputError
from core.io.project_h5 import load_project, save_project
from core.workflow import ModelRun, propose_config, suggest_grid, suggest_series_batch


@pytest.fixture(scope="module")
def table():
    return demo_table()


def _tiny(model="dpsom", **changes):
    base = {"grid.height": 3, "grid.width": 3, "network.hidden": (32,), "network.latent_dim": 4,
            "train.epochs_pretrain": 1, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
            "train.epochs_joint": 1, "train.batch_size": 256}
    if model == "tdpsom":
        base.update({"train.epochs_pred": 1, "network.lstm_dim": 8, "train.batch_size": 64})
    base.update(changes)
    return make_config(model, "quick", **base)


def test_suggest_grid_follows_rule_of_thumb():
    assert suggest_grid(10_000) == (20, 20)  # 500 nodes suggested, capped at 20x20
    assert suggest_grid(1500) == (14, 14)
    assert suggest_grid(12) == (3, 3)
    h, w = suggest_grid(30)
    assert h * w <= 30


def test_propose_config_picks_model_and_fits_grid(table):
    assert propose_config(table).model == "dpsom"
    icu = demo_icu("test")
    cfg = propose_config(icu)
    assert cfg.model == "tdpsom" and cfg.grid.n_nodes <= icu.n_points
    small = table.subset(np.arange(30))
    assert propose_config(small).grid.n_nodes <= 30


def test_series_batch_keeps_about_twenty_steps_per_epoch():
    assert suggest_series_batch(300) == 16 and suggest_series_batch(10) == 16
    assert suggest_series_batch(2000) == 100 and suggest_series_batch(801) == 41
    assert suggest_series_batch(10**6) == 256
    assert propose_config(demo_icu("test")).train.batch_size == 16
    assert propose_config(demo_icu("test").subset(np.arange(10))).train.batch_size == 10  # never above the cohort


def test_wrong_model_for_data_is_refused(table):
    with pytest.raises(InputError, match="T-DPSOM needs patient time series"):
        list(ModelRun(table, _tiny("tdpsom")).iter_train())


def test_prototypes_come_back_in_clinical_units(table):
    run = ModelRun(table, _tiny())
    for _ in run.iter_train():
        pass
    decoded = run.decoded_prototypes()
    assert decoded.shape == (9, table.n_features)
    hr = table.feature_names.index("HR")
    observed = table.values[:, hr][table.mask[:, hr]]
    # A z-scored decoder output maps back into heart rates, not into standard units.
    assert observed.min() - 20 < decoded[:, hr].mean() < observed.max() + 20
    assert decoded[:, hr].mean() > 30
    assert run.umatrix().shape == (9,) and run.hits().sum() == table.n_samples


def test_save_reopen_same_assignments_and_resume(tmp_path):
    icu = demo_icu("test")
    run = ModelRun(icu, _tiny("tdpsom"))
    gen = run.iter_train()
    for _ in range(3):
        next(gen)
    gen.close()
    assert run.is_fitted and not run.is_complete
    path = tmp_path / "run.h5"
    save_project(path, run.to_project())
    again = ModelRun.from_project(load_project(path))
    a, b = run.assignments(), again.assignments()
    assert np.array_equal(a["bmu"], b["bmu"]) and np.allclose(a["proba"], b["proba"])
    again._cache.clear()  # recomputed from the reloaded weights, not read from the file
    assert np.array_equal(again.assignments()["bmu"], a["bmu"])
    for _ in again.iter_train(resume=True):
        pass
    assert again.is_complete
    f = again.forecast(4, patients=[0, 1, 2], n_samples=3)
    assert f.features.shape == (3, 4, icu.n_features) and f.sample_features.shape == (3, 3, 4, icu.n_features)


def test_extend_reopens_a_finished_run(table):
    run = ModelRun(table, _tiny())
    for _ in run.iter_train():
        pass
    steps = run.estimator.n_iter_
    run.extend(3)
    assert not run.is_complete
    for _ in run.iter_train(resume=True):
        pass
    assert run.is_complete
    joint = [r for r in run.estimator.history_ if r["phase"] == "joint"]
    assert [r["epoch"] for r in joint] == [0, 1, 2]
    assert run.estimator.n_iter_ > steps


def test_estimate_reports_time_memory_and_steps(table):
    run = ModelRun(table, _tiny())
    est = run.estimate()
    assert est["steps"] == 3 * 6  # 1500 rows / 256 per batch -> 6 batches, over 3 epochs
    assert est["seconds"] > 0 and est["memory_bytes"] > table.values.nbytes and est["device"] == "cpu"


def test_stability_across_seeds(table):
    run = ModelRun(table.subset(np.arange(300)), _tiny())
    res = run.stability(seeds=[1, 2, 3], label="phenotype")
    assert res["seeds"] == [1, 2, 3] and not res["failed"]
    matrix = np.asarray(res["assignment"]["matrix"])
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1.0)
    assert -1.0 <= res["assignment"]["mean"] <= 1.0


def test_cohort_file_gets_the_proposal_of_the_same_data_in_memory(tmp_path):
    """``dpsom train COHORT.h5`` proposes what ``propose_config`` proposes for the data loaded whole."""
    from core.cli import main
    from core.data.preprocessing import Preprocessor
    from core.io.cohort_h5 import cohort_from_dataset

    icu = demo_icu("demo")  # 2,000 patients: the proposal differs from the preset's batch and grid rule
    expected = propose_config(icu)
    assert expected.train.batch_size == suggest_series_batch(icu.n_samples) == 100
    cohort = cohort_from_dataset(icu, Preprocessor().fit(icu), tmp_path / "icu-cohort.h5")
    project = tmp_path / "p.h5"
    assert main(["train", str(cohort), "--out", str(project), "--max-steps", "1", "--quiet"]) == 0
    cfg = Config.from_dict(load_project(project).config)
    assert (cfg.grid.height, cfg.grid.width) == (expected.grid.height, expected.grid.width)
    assert cfg.train.batch_size == expected.train.batch_size
    assert cfg.network == expected.network
