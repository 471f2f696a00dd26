"""The memory printed before training: what it grows with, and one real run measured against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import make_config
from core.estimate import _PROBES, EstimateStopped, estimate_training

ROOT = Path(__file__).resolve().parents[2]


def _memory(model="dpsom", preset="quick", *, n_features=20, n_samples=2000, n_points=None, mean_length=None,
            max_length=None, changes=None, **kw):
    cfg = make_config(model, preset).replace(**{"train.device": "cpu", **(changes or {})})
    n_points = n_points or n_samples
    cells = n_samples * (max_length or 1) * n_features
    return estimate_training(cfg, n_features=n_features, n_samples=n_samples, n_points=n_points,
                             mean_length=mean_length, data_bytes=4 * cells, probe=False, **kw)


def test_memory_grows_with_batch_grid_features_and_data():
    base = _memory()["memory_bytes"]
    assert _memory(changes={"train.batch_size": 512})["memory_bytes"] > base
    assert _memory(changes={"grid.height": 16, "grid.width": 16})["memory_bytes"] > base
    assert _memory(n_features=200)["memory_bytes"] > base
    assert _memory(n_samples=20000)["memory_bytes"] > base
    # Patient series: longer stays mean more rows per batch and per pass.
    short = _memory("tdpsom", n_samples=300, n_points=300 * 20, mean_length=20, max_length=24)
    long = _memory("tdpsom", n_samples=300, n_points=300 * 60, mean_length=60, max_length=72)
    assert long["memory_bytes"] > short["memory_bytes"]
    assert long["memory_parts"]["steps"] > short["memory_parts"]["steps"]


def test_memory_parts_add_up_and_count_adam_state():
    est = _memory("dpsom", "paper", n_features=784, n_samples=3000)
    parts = est["memory_parts"]
    assert sum(parts.values()) == est["memory_bytes"]
    # weights, gradients and Adam's two moments, float32
    assert parts["model"] == 16 * est["parameters"]
    # The paper network's 14 M parameters dominate; more rows only add data and targets.
    assert parts["model"] > 200 * 2**20
    big = _memory("dpsom", "paper", n_features=784, n_samples=30000)["memory_parts"]
    assert big["model"] == parts["model"] and big["data"] > parts["data"] and big["targets"] > parts["targets"]


def test_target_pass_in_pieces_needs_less_than_in_one():
    one = _memory(n_samples=50000, changes={"train.target_chunks": 1, "train.som_init": "kohonen"})
    ten = _memory(n_samples=50000, changes={"train.target_chunks": 10, "train.som_init": "kohonen"})
    assert ten["memory_parts"]["pass"] < one["memory_parts"]["pass"]


_CHILD = r"""
import gc, json, sys, time, ctypes
import numpy as np, torch
from core.data.dataset import Dataset
from core.workflow import ModelRun, propose_settings

def kib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

torch.set_num_threads(1)
rng = np.random.default_rng(0)
centres = rng.normal(size=(8, 40)) * 3
X = (centres[rng.integers(0, 8, 5000)] + rng.normal(size=(5000, 40))).astype(np.float32)
ds = Dataset(X, np.ones_like(X, bool), [f"f{i}" for i in range(40)])
cfg = propose_settings(ds, "quick", device="cpu").config.replace(**{
    "train.epochs_pretrain": 1, "train.som_init_epochs": (1, 1), "train.epochs_joint": 1, "train.seed": 0})
run = ModelRun(ds, cfg)
est = run.estimate()
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
base = kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
for _ in run.iter_train():
    pass
print(json.dumps({"est": est["memory_bytes"], "growth": (kib("VmHWM") - base) * 1024}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs Linux's resettable peak resident set size")
def test_small_run_peak_memory_is_within_a_factor_of_two_of_the_estimate():
    # A fresh process, so memory freed by earlier tests cannot hide the run's growth; its peak
    # resident set over the one right before training, from the kernel's high-water mark.
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["growth"] > 0
    assert 0.5 <= r["est"] / r["growth"] <= 2.0, r


def test_the_probe_stops_between_steps_when_asked_and_keeps_nothing():
    cfg = make_config("dpsom", "quick").replace(**{"train.device": "cpu", "grid.height": 3, "grid.width": 3})
    asked = []

    def stop():
        asked.append(1)
        return len(asked) >= 3

    _PROBES.clear()
    with pytest.raises(EstimateStopped):
        estimate_training(cfg, n_features=5, n_samples=200, n_points=200, stop=stop)
    assert len(asked) == 3 and not _PROBES  # stopped at the third step; no half-timed probe kept
    done = estimate_training(cfg, n_features=5, n_samples=200, n_points=200, stop=lambda: False)
    assert done["method"] == "probe" and done["seconds"] > 0
