"""Extending a training schedule through the trainer's public ``reschedule``.

A live trainer and a model reopened from its saved state must continue the same way: back
to the first joint epoch not yet run, with the weights, optimiser moments and random
generators they had.
"""

import numpy as np
import pytest

from core.config import make_config
from core.data.demo import demo_table
from core.io.project_h5 import load_project, save_project
from core.training import reopened_position, rescheduled_state
from core.workflow import ModelRun


def _config(**changes):
    base = {"grid.height": 3, "grid.width": 3, "network.hidden": (16,), "network.latent_dim": 3,
            "train.epochs_pretrain": 1, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
            "train.epochs_joint": 1, "train.batch_size": 100, "train.seed": 3, "train.deterministic": True}
    base.update(changes)
    return make_config("dpsom", "quick", **base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = ModelRun(demo_table().subset(np.arange(300)), _config())
    for _ in run.iter_train():
        pass
    path = tmp_path_factory.mktemp("reschedule") / "run.h5"
    save_project(path, run.to_project())
    return run, path


def test_live_trainer_reopens_a_finished_schedule_at_the_next_joint_epoch(finished):
    run, _ = finished
    trainer = run.estimator.trainer_
    assert trainer.finished and trainer.global_step == 9  # 3 phases x 1 epoch x 3 batches
    before = trainer.net.prototypes.detach().clone()
    run.extend(3)
    joint = [p.name for p in trainer.phases].index("joint")
    assert trainer.state_position() == {"phase": joint, "epoch": 1, "batch": 0, "global_step": 9}
    assert trainer.phases[joint].n_epochs == 3 and not trainer.finished and trainer.total_steps == 15
    assert trainer.net.prototypes.detach().equal(before)  # nothing was re-initialised
    for _ in run.iter_train(resume=True):
        pass
    assert run.is_complete and run.estimator.n_iter_ == 15
    assert [(r["phase"], r["epoch"]) for r in run.estimator.history_] == [
        ("pretrain", 0), ("som_init", 0), ("joint", 0), ("joint", 1), ("joint", 2)]


def test_reopened_project_extends_like_the_live_trainer(finished, tmp_path):
    _, path = finished
    live = ModelRun.from_project(load_project(path))
    saved = ModelRun.from_project(load_project(path))
    # One goes through a live trainer (built by a first resume step), the other through its saved state.
    live.set_max_steps(9)
    for _ in live.iter_train(resume=True):
        pass
    assert live.estimator.trainer_ is not None and saved.estimator.trainer_ is None
    live.set_max_steps(None)
    for r in (live, saved):
        r.extend(2)
        for _ in r.iter_train(resume=True):
            pass
        assert r.estimator.n_iter_ == 12
    assert np.array_equal(live.prototypes(), saved.prototypes())
    assert live.estimator.history_ == saved.estimator.history_


def test_reopened_position_only_moves_a_run_that_left_the_joint_phase():
    cfg = _config(**{"train.epochs_joint": 3})
    history = [{"phase": "pretrain"}, {"phase": "som_init"}, {"phase": "joint"}]
    done = {"phase": 3, "epoch": 0, "batch": 0, "global_step": 9}
    assert reopened_position(done, history, cfg) == {"phase": 2, "epoch": 1, "batch": 0, "global_step": 9}
    inside = {"phase": 2, "epoch": 0, "batch": 2, "global_step": 8}
    assert reopened_position(inside, history[:2], cfg) is None
    assert reopened_position(done, history + [{"phase": "joint"}] * 2, cfg) is None
    state = {"position": done, "history": history, "perm": np.arange(3), "target": np.ones(3),
             "ranks": {"0": {"perm": np.arange(3), "rng": 1}}}
    moved = rescheduled_state(state, cfg)
    assert moved["position"]["phase"] == 2 and "perm" not in moved and "target" not in moved
    assert moved["ranks"] == {"0": {"rng": 1}} and state["position"] is done and "perm" in state
