"""core.runs without the command line: lock, checkpoints, the final save, resuming, progress."""

import hashlib

import numpy as np
import pytest

from core.config import make_config
from core.data.demo import demo_table
from core.errors import InputError, ProjectFileError
from core.io.outputs import ProjectBusy, lock_path, unfinished_path
from core.io.project_h5 import load_project
from core.runs import (ProjectTraining, TrainingInterrupted, TrainOptions, load_run, local_group_command, new_run,
                       prepare_resume, save_run)
from core.workflow import ModelRun


@pytest.fixture(scope="module")
def table():
    return demo_table().subset(np.arange(240))


def _config(**changes):
    base = {"grid.height": 3, "grid.width": 3, "network.hidden": (16,), "network.latent_dim": 3,
            "train.epochs_pretrain": 1, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
            "train.epochs_joint": 2, "train.batch_size": 64, "train.seed": 3, "train.deterministic": True}
    base.update(changes)
    return make_config("dpsom", "quick", **base)


def _steps(path) -> int:
    """Optimiser steps a saved project's run has taken."""
    return load_project(path).train_state["position"]["global_step"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_run_applies_the_options_over_the_proposal_and_checks_them(table):
    run, proposal = new_run(table, TrainOptions(grid=(4, 5), seed=11, max_steps=3))
    assert (run.config.grid.height, run.config.grid.width) == (4, 5)
    assert run.config.train.seed == 11 and run.config.train.max_steps == 3
    assert proposal.config.model == run.config.model == "dpsom" and not run.is_fitted
    with pytest.raises(InputError):  # more nodes than rows
        new_run(table.subset(np.arange(10)), TrainOptions(grid=(5, 5)))
    with pytest.raises(InputError, match="device"):
        new_run(table, TrainOptions(device="tpu"))


def test_every_step_is_reported_and_the_project_saved(table, tmp_path):
    out = tmp_path / "p.h5"
    run = ModelRun(table, _config(**{"train.max_steps": 7}))
    seen = []
    with ProjectTraining(out) as target:
        assert not target.keeps_existing and target.checkpoint == out
        result = target.train(run, autosave=0, on_progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 8))
    assert result.path == out and result.step == 7 and not result.complete and result.total_steps > 7
    assert load_project(out).train_state is not None
    assert not lock_path(out).exists()


def test_autosave_checkpoints_beside_an_existing_project_until_the_run_completes(table, tmp_path):
    out = tmp_path / "p.h5"
    first = ModelRun(table, _config(**{"train.max_steps": 3}))
    with ProjectTraining(out) as target:
        target.train(first, autosave=0)
    before = _digest(out)
    checkpoints = []

    def checked(path):
        # Mid-run: the checkpoint holds this run, the saved project is untouched.
        assert path == unfinished_path(out) and path.exists() and _digest(out) == before
        checkpoints.append(_steps(path))

    run = ModelRun(table, _config(**{"train.max_steps": 6, "train.seed": 4}))
    with ProjectTraining(out) as target:
        assert target.keeps_existing and target.checkpoint == unfinished_path(out)
        target.train(run, autosave=1e-9, on_checkpoint=checked)
    assert checkpoints == list(range(1, 7))
    assert _digest(out) != before and _steps(out) == 6
    assert not unfinished_path(out).exists()


def test_a_second_lock_on_the_project_is_refused(tmp_path):
    out = tmp_path / "p.h5"
    with ProjectTraining(out):
        with pytest.raises(ProjectBusy):
            ProjectTraining(out).acquire()
    with ProjectTraining(out) as again:  # released: free again
        assert again.held


def test_resume_continues_the_schedule_to_the_same_model(table, tmp_path):
    full, part = tmp_path / "full.h5", tmp_path / "part.h5"
    with ProjectTraining(full) as target:
        whole = target.train(ModelRun(table, _config()), autosave=0)
    assert whole.complete
    with ProjectTraining(part) as target:
        stopped = target.train(ModelRun(table, _config(**{"train.max_steps": 10})), autosave=0)
    assert stopped.step == 10 and stopped.total_steps == whole.total_steps

    _, run = load_run(part, lazy_cohort=True)
    prepare_resume(run, max_steps=None)  # the trial's limit goes
    seen = []
    with ProjectTraining(part, resume=True) as target:
        assert target.checkpoint == part
        done = target.train(run, autosave=0, on_progress=seen.append)
    assert seen[0].step == 11 and done.complete and done.step == whole.step
    _, reference = load_run(full)
    _, resumed = load_run(part)
    assert np.allclose(resumed.prototypes(), reference.prototypes(), atol=1e-5)


def test_an_interrupt_saves_the_progress_to_the_checkpoint(table, tmp_path):
    out = tmp_path / "p.h5"

    def stop_at_four(p):
        if p.step == 4:
            raise KeyboardInterrupt

    run = ModelRun(table, _config())
    with ProjectTraining(out) as target, pytest.raises(TrainingInterrupted) as stopped:
        target.train(run, autosave=0, on_progress=stop_at_four)
    assert stopped.value.saved and stopped.value.checkpoint == out and not stopped.value.distributed
    _, again = load_run(out)
    assert again.estimator.n_iter_ == 4


def test_save_run_refuses_a_folder_that_is_not_there(table, tmp_path):
    run = ModelRun(table, _config(**{"train.max_steps": 2}))
    for _ in run.iter_train():
        pass
    with pytest.raises(ProjectFileError, match="does not exist"):
        save_run(tmp_path / "missing" / "p.h5", run)


def test_a_local_group_runs_the_same_command_with_distributed_instead_of_nproc():
    cmd = local_group_command(2, ["train", "d.csv", "--nproc", "2", "--out", "p.h5", "--nproc=3"])
    assert cmd[cmd.index("-m", 3):] == ["-m", "core.cli", "train", "d.csv", "--out", "p.h5", "--distributed"]
    assert "--nproc-per-node=2" in cmd and cmd[1:3] == ["-m", "torch.distributed.run"]
    again = local_group_command(4, ["resume", "p.h5", "--distributed"])
    assert again.count("--distributed") == 1 and "--nproc-per-node=4" in again
