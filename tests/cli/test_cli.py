"""The ``dpsom`` command: exit codes, one-line messages, and train -> export -> apply -> resume."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.data.synthetic import cohort_to_frame, make_icu_cohort
from core.io.project_h5 import load_project, save_project
from core.workflow import ModelRun

FAST = ["--quiet", "--autosave", "0"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def table_csv(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(4, 5))
    labels = rng.integers(0, 4, size=240)
    x = centres[labels] + rng.normal(size=(240, 5))
    df = pd.DataFrame(x, columns=[f"v{i}" for i in range(5)])
    df.insert(0, "patient_id", [f"P{i:04d}" for i in range(240)])
    df["outcome"] = labels
    df["empty"] = np.nan
    path = tmp_path / "cohort.csv"
    df.to_csv(path, index=False)
    return path


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


BAD_INPUTS = [
    ("missing.csv", None, "file not found"),
    ("empty.csv", "", "empty"),
    ("header.csv", "a,b,c\n", "no data rows"),
    ("text.csv", "name,city\nann,paris\nbob,rome\n", "no numeric column"),
    ("textnum.csv", "a,b\n1,2\n3,oops\n5,6\n", "line 3, column 'b'"),
    ("inf.csv", "a,b\n1,2\n3,inf\n5,6\n", "column 'b'"),
    ("one.csv", "a,b\n1,2\n", "one data row"),
]


@pytest.mark.parametrize("name,text,expected", BAD_INPUTS)
def test_bad_input_exits_2_with_one_plain_line(tmp_path, capsys, name, text, expected):
    path = tmp_path / name if text is None else _write(tmp_path, name, text)
    code, out, err = run_cli(capsys, "train", path, "--out", tmp_path / "p.h5", *FAST)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("dpsom: error")]
    assert len(lines) == 1 and expected in lines[0] and name in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "p.h5").exists()


def test_grid_larger_than_data_is_refused(table_csv, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", table_csv, "--out", tmp_path / "p.h5", "--grid", "20x20", *FAST)
    assert code == 2
    assert "240 rows but a 20x20 map has 400 nodes" in err and "smaller grid" in err


def test_usage_errors_exit_2(capsys, tmp_path, table_csv):
    assert run_cli(capsys, "train", table_csv)[0] == 2  # --out missing
    code, _, err = run_cli(capsys, "train", table_csv, "--out", tmp_path / "p.h5", "--grid", "8by8", *FAST)
    assert code == 2 and "--grid" in err
    code, _, err = run_cli(capsys, "train", table_csv, "--out", tmp_path / "p.h5", "--device", "tpu", *FAST)
    assert code == 2 and "unknown device" in err
    assert run_cli(capsys, "frobnicate")[0] == 2


def test_train_export_evaluate_apply_info(table_csv, tmp_path, capsys):
    project = tmp_path / "p.h5"
    code, out, err = run_cli(capsys, "train", table_csv, "--out", project, "--grid", "4x4", "--labels", "outcome",
                             "--epochs", "3", *FAST)
    assert code == 0, err
    assert "Dropped empty column(s) 'empty'" in err
    assert project.exists()

    code, out, _ = run_cli(capsys, "export", project, "--assignments", tmp_path / "a.csv", "--nodes",
                           tmp_path / "n.csv", "--probabilities")
    assert code == 0
    a = pd.read_csv(tmp_path / "a.csv")
    assert list(a.columns[:7]) == ["row", "patient_id", "node", "node_row", "node_col", "p_max", "entropy"]
    assert len(a) == 240 and a["row"].tolist() == list(range(240))
    assert a["patient_id"].iloc[5] == "P0005"
    assert a["node"].between(0, 15).all()
    assert (a["node"] == a["node_row"] * 4 + a["node_col"]).all()
    probs = a[[f"p_{k}" for k in range(16)]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert np.allclose(probs.max(1), a["p_max"], atol=1e-6)
    n = pd.read_csv(tmp_path / "n.csv")
    assert len(n) == 16 and n["count"].sum() == 240
    assert {"v0", "mean_outcome"} <= set(n.columns)

    code, out, _ = run_cli(capsys, "evaluate", project, "--label", "outcome", "--json")
    assert code == 0
    import json

    res = json.loads(out)
    assert 0 <= res["nmi_geometric"] <= 1 and 0 < res["purity"] <= 1 and res["points"] == 240
    code, _, err = run_cli(capsys, "evaluate", project, "--label", "nope")
    assert code == 2 and "outcome" in err

    code, out, _ = run_cli(capsys, "info", project)
    assert code == 0 and "DPSOM" in out and "4x4" in out

    # Apply to new rows with the columns in another order: same assignments for the same rows.
    df = pd.read_csv(table_csv)
    shuffled = df[["v3", "patient_id", "v0", "v1", "v4", "v2", "outcome"]].head(50)
    new = tmp_path / "new.csv"
    shuffled.to_csv(new, index=False)
    code, out, err = run_cli(capsys, "apply", project, new, "--assignments", tmp_path / "new_a.csv")
    assert code == 0, err
    b = pd.read_csv(tmp_path / "new_a.csv")
    assert b["node"].tolist() == a["node"].head(50).tolist()


def test_apply_refuses_data_without_the_model_features(table_csv, tmp_path, capsys):
    project = tmp_path / "p.h5"
    assert run_cli(capsys, "train", table_csv, "--out", project, "--grid", "3x3", "--max-steps", "5", *FAST)[0] == 0
    other = _write(tmp_path, "other.csv", "v0,x\n1,2\n3,4\n")
    code, _, err = run_cli(capsys, "apply", project, other, "--assignments", tmp_path / "o.csv")
    assert code == 2 and "lacks the model's features" in err


def test_resume_continues_to_the_same_model(table_csv, tmp_path, capsys):
    common = ["--grid", "3x3", "--epochs", "2", "--deterministic", "--seed", "5", *FAST]
    full, part = tmp_path / "full.h5", tmp_path / "part.h5"
    assert run_cli(capsys, "train", table_csv, "--out", full, *common)[0] == 0
    assert run_cli(capsys, "train", table_csv, "--out", part, "--max-steps", "40", *common)[0] == 0
    _, out, _ = run_cli(capsys, "info", part, "--json")
    code, out, err = run_cli(capsys, "resume", part, "--quiet", "--autosave", "0")
    assert code == 0, err
    for p in (full, part):
        assert run_cli(capsys, "export", p, "--assignments", tmp_path / f"{p.stem}.csv")[0] == 0
    a, b = pd.read_csv(tmp_path / "full.csv"), pd.read_csv(tmp_path / "part.csv")
    assert a["node"].tolist() == b["node"].tolist()
    assert np.allclose(a["p_max"], b["p_max"])
    code, out, _ = run_cli(capsys, "resume", part, "--quiet")
    assert code == 0 and "already complete" in out


def test_time_series_train_exports_patient_steps_with_forecast_node(tmp_path, capsys):
    ds = make_icu_cohort(40, max_steps=12, min_steps=6, seed=2)
    frame = cohort_to_frame(ds, "wide")
    path = tmp_path / "icu.csv"
    frame.to_csv(path, index=False)
    project = tmp_path / "icu.h5"
    code, _, err = run_cli(capsys, "train", path, "--out", project, "--id-col", ds.id_col, "--time-col",
                           ds.time_col, "--grid", "3x3", "--max-steps", "12", *FAST)
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", project, "--assignments", tmp_path / "a.csv",
                           "--transitions", tmp_path / "t.csv")
    assert code == 0, err
    a = pd.read_csv(tmp_path / "a.csv")
    assert len(a) == int(ds.lengths.sum())
    assert {ds.id_col, ds.time_col, "next_node_pred"} <= set(a.columns)
    assert a["next_node_pred"].between(0, 8).all()
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 9
    # the smoothed path of every real step, as the run decodes it; padding never exported
    run = ModelRun.from_project(load_project(project))
    path = run.node_paths()
    assert a["path_node"].tolist() == path[run.dataset.step_mask].tolist()
    assert (a["path_row"] * 3 + a["path_col"]).tolist() == a["path_node"].tolist()
    # a project that saved the nodes alone (no soft assignment) still exports, without the path
    old = load_project(project)
    old.assignments = {k: v for k, v in old.assignments.items() if k != "proba"}
    save_project(tmp_path / "old.h5", old)
    code, _, err = run_cli(capsys, "export", tmp_path / "old.h5", "--assignments", tmp_path / "old.csv")
    assert code == 0, err
    b = pd.read_csv(tmp_path / "old.csv")
    assert "path_node" not in b.columns and b["node"].tolist() == a["node"].tolist()


def test_entry_point_runs_and_internal_errors_leave_a_log(tmp_path):
    env = dict(os.environ, DPSOM_LOG_DIR=str(tmp_path / "logs"))
    res = subprocess.run([sys.executable, "-m", "core.cli", "info", str(tmp_path / "none.h5")],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "none.h5" in res.stderr
    # An unexpected exception: exit 1, no traceback on screen, the traceback in a log file.
    code = ("import core.cli as c\n"
            "def boom(args): raise RuntimeError('unexpected')\n"
            "c.COMMANDS['info'] = boom\n"
            "raise SystemExit(c.main(['info', 'x.h5']))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "internal error" in res.stderr
    logs = list((tmp_path / "logs").glob("dpsom-error-*.log"))
    assert len(logs) == 1 and "RuntimeError: unexpected" in logs[0].read_text()


def test_project_can_reference_its_data_instead_of_embedding_it(table_csv, tmp_path, capsys):
    project = tmp_path / "ref.h5"
    code, _, err = run_cli(capsys, "train", table_csv, "--out", project, "--grid", "3x3", "--max-steps", "8",
                           "--no-embed", *FAST)
    assert code == 0, err
    from core.io.project_h5 import load_project

    loaded = load_project(project)
    assert loaded.dataset is None and loaded.data_ref["size"] == table_csv.stat().st_size
    assert run_cli(capsys, "export", project, "--assignments", tmp_path / "a.csv")[0] == 0
    assert len(pd.read_csv(tmp_path / "a.csv")) == 240
    # The referenced file changes: the project says so instead of using different data.
    table_csv.write_text(table_csv.read_text().replace("P0001", "P9999"))
    code, _, err = run_cli(capsys, "export", project, "--assignments", tmp_path / "b.csv")
    assert code == 2 and "changed" in err
    table_csv.unlink()
    code, _, err = run_cli(capsys, "export", project, "--assignments", tmp_path / "b.csv")
    assert code == 2 and "missing" in err


def test_kill_during_training_leaves_the_last_checkpoint_resumable(tmp_path, table_csv):
    """SIGKILL mid-training: the autosaved project still loads and training resumes from it."""
    import signal
    import time

    from core.io.project_h5 import load_project

    project = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "core.cli", "train", str(table_csv), "--out", str(project), "--grid", "3x3",
           "--epochs", "400", "--autosave", "0.2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not project.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # let a few more checkpoints land, so the kill may hit one mid-write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert project.exists(), "no checkpoint was written before the kill"
    loaded = load_project(project)
    step = loaded.train_state["position"]["global_step"]
    assert step > 0
    res = subprocess.run([sys.executable, "-m", "core.cli", "resume", str(project), "--max-steps", str(step + 3),
                          "--quiet", "--autosave", "0"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert load_project(project).train_state["position"]["global_step"] == step + 3


def test_prepare_chooses_the_scaling_as_train_does(capsys, tmp_path, table_csv):
    from core.io.cohort_h5 import Cohort

    rng = np.random.default_rng(1)
    unit = pd.DataFrame(rng.uniform(0.0, 1.0, size=(120, 6)), columns=[f"p{i}" for i in range(6)])
    unit_csv = tmp_path / "unit.csv"
    unit.to_csv(unit_csv, index=False)
    kept, scored = tmp_path / "unit-cohort.h5", tmp_path / "table-cohort.h5"

    code, out, _ = run_cli(capsys, "prepare", unit_csv, "--out", kept)
    assert code == 0 and "none scaling" in out and "Bernoulli" in out
    cohort = Cohort(kept)
    assert cohort.preprocessing["scaling"] == "none"
    _, x, m, _ = next(cohort.iter_chunks())
    np.testing.assert_allclose(x[m], unit.to_numpy()[m], rtol=1e-6)  # written as measured

    code, out, _ = run_cli(capsys, "prepare", table_csv, "--out", scored, "--labels", "outcome")
    assert code == 0 and "zscore scaling" in out
    assert Cohort(scored).preprocessing["scaling"] == "zscore"

    # A scaling given explicitly still wins.
    code, out, _ = run_cli(capsys, "prepare", unit_csv, "--out", tmp_path / "z.h5", "--scaling", "zscore")
    assert code == 0 and "zscore scaling: as given" in out
