"""How long and how much memory a training run will take, said before it starts.

The command line and the desktop app print the same figures (``ModelRun.estimate``). A
formula from parameter counts and a machine's nominal speed was off by up to twenty times
(about 11 min printed for a 30 s run): small networks are bound by per-step overheads, not by
arithmetic. So the estimate times the real thing: it builds the configured network on the
chosen device, runs a few optimiser steps of every phase and one target pass on a small
synthetic batch of the data's shape (well under a second for the quick preset), and scales each
phase's time per step by the steps the schedule will take.

``benchmarks/panel.py`` prints the estimate beside every measured run (column ``est/run``).

Without timing (``probe=False``) a formula stands in, for a device that is not at hand:

    seconds = sum over phases of steps x max(overhead, 6 x P x rows / speed)
              + joint epochs x 2 x P x n_points / speed

where ``P`` counts the network's parameters, ``rows`` the rows per batch (patients x mean
stay length for series), ``overhead`` the fixed cost of a step (about 3 ms on a CPU with the
quick networks, 1.5 ms on a GPU: kernel launches of a few hundred small operations) and
``speed`` the sustained matrix-multiply speed (measured on a CPU; 2e13 FLOP/s for a CUDA GPU,
a third of an H100's dense float32 peak as small batches reach).

Memory is what training adds to the process (its peak resident set over the one right before
training), from a model of what takes it (``memory_parts``):

- ``model``: 16 bytes per parameter (float32 weights, gradients and Adam's two moments);
- ``steps``: 4 bytes x 4 x the floats one row holds in a training step (input, reconstruction,
  both networks' layers, posterior head, distances to every node; for series the LSTM's gates
  and states) x rows per batch. The factor 4 covers the activations autograd keeps, their
  gradients, and what the allocator holds on to between steps of varying shape;
- ``pass``: the whole-data passes (prototype start, target distribution) run without gradients
  in pieces of up to 65,536 rows: 1.6 x 4 bytes x (input, encoder layers, head, nodes) per row
  of the largest piece;
- ``data``: the scaled values and mask the model trains on and the scaling's temporaries
  (3.25 x the float32 value array, padded for series); ``targets``: the target distribution,
  4 bytes per node and row;
- ``fixed``: 8 MiB (allocator arenas, thread pools); on a CPU, series add 56 MiB: their batches
  differ in rows from step to step, and the math library keeps compiled kernels for each shape.

The factors were fitted on six CPU runs of ``benchmarks/estimate_accuracy.py`` and checked on
six more it was not fitted to: estimate over measured 0.94-1.34 on the first, 0.76-1.58 on
the others over repeated runs (see benchmarks/README.md).
The program itself (Python, torch, the loaded data; 550-620 MiB in those runs) is not counted.
On a GPU the same model is used, without the CPU kernel term; it is not yet checked on one: it
counts the parameters, optimiser state and activations that live on the device and the data and
targets that stay in host memory as one sum, and leaves out the CUDA context and library
workspaces (several hundred MiB of device memory).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from .config import Config
from .nets import DPSOMNet, TDPSOMNet, count_parameters
from .training import _PASS_ROWS, TrainData, Trainer, batches_per_epoch, phase_epochs, select_device

__all__ = ["EstimateStopped", "estimate_training", "formula_seconds", "memory_parts"]

#: Batches per phase the probe runs; only the later half of each phase's steps is counted (the
#: first steps warm up allocators and caches and ran up to twice as slow as the run's steps).
_PROBE_BATCHES = 6
#: Rows per probe batch at most (series: patients x steps); larger batches are scaled from it.
_PROBE_ROWS = 8192
_STEP_OVERHEAD = {"cpu": 3e-3, "cuda": 1.5e-3, "mps": 3e-3}
_GPU_SPEED = {"cuda": 2.0e13, "mps": 2.0e12}
#: Memory model constants (module docstring), fitted on benchmarks/estimate_accuracy.py's CPU runs.
_STEP_FACTOR = 4.0
_PASS_FACTOR = 1.6
_FIXED_BYTES = {"cpu": 8 * 2**20, "cuda": 8 * 2**20, "mps": 8 * 2**20}
_SERIES_KERNEL_BYTES = 56 * 2**20


class EstimateStopped(Exception):
    """The probe was asked to stop (``stop()`` returned True) before it had timed every phase."""


def estimate_training(config: Config, *, n_features: int, n_samples: int, n_points: int,
                      mean_length: float | None = None, likelihood: str = "gaussian",
                      data_bytes: int = 0, probe: bool = True,
                      stop: Callable[[], bool] | None = None) -> dict:
    """Time and memory a training run of ``config`` on such data will take.

    Parameters
    ----------
    config : Config
    n_features : int
    n_samples : int
        Rows (tables) or patients (series).
    n_points : int
        Rows, or real steps over all patients.
    mean_length : float, optional
        Series: mean real steps per patient.
    likelihood : {"gaussian", "bernoulli"}
    data_bytes : int
        Size of the training arrays (counted twice in memory: values and mask copies).
    probe : bool
        Time a few real steps (default); False uses the formula of the module docstring.
    stop : callable, optional
        Asked between the probe's steps; when it returns True the probe ends at once with
        :class:`EstimateStopped` (a window that closes, or settings changed meanwhile). The
        probe takes 0.2 s to a minute, and nothing in PyTorch can be interrupted otherwise.

    Returns
    -------
    dict
        ``seconds`` (float), ``memory_bytes`` (int), ``device`` (str), ``steps`` (int),
        ``parameters`` (int), ``per_step`` (dict of phase to seconds), ``method``
        ("probe" or "formula").

    Raises
    ------
    EstimateStopped
        When ``stop`` asked the probe to end.
    """
    device = select_device(config.train.device)
    temporal = config.model == "tdpsom"
    t = config.train
    batch = max(1, min(t.batch_size, n_samples))
    per_epoch = batches_per_epoch(n_samples, batch, t.drop_last)
    phases = phase_epochs(config)
    steps_of = {name: per_epoch * epochs * (2 if temporal and name == "joint" else 1) for name, epochs in phases}
    steps = sum(steps_of.values())
    if t.max_steps is not None:
        steps = min(steps, int(t.max_steps))
    length = float(mean_length or 1.0) if temporal else 1.0
    rows_per_batch = batch * length
    net_cls = TDPSOMNet if temporal else DPSOMNet
    # Built on the CPU, not the meta device: the full-covariance head indexes with nonzero(),
    # which meta tensors cannot run; the largest preset's network takes a few MB and milliseconds.
    n_params = count_parameters(net_cls(n_features, config.grid.n_nodes, config.network, "gaussian"))
    joint_epochs = dict(phases).get("joint", 0)

    method = "formula"
    per_step: dict[str, float] = {}
    pass_per_row = 2.0 * n_params / _speed(device.type)
    if probe:
        try:
            per_step, pass_per_row = _probe_cached(config, device, n_features, batch, length, likelihood, stop)
            per_step = dict(per_step)
            method = "probe"
        except (RuntimeError, ValueError):  # e.g. out of memory: the formula still answers
            per_step = {}
    if not per_step:
        one = max(_STEP_OVERHEAD.get(device.type, 3e-3), 6.0 * n_params * rows_per_batch / _speed(device.type))
        per_step = {name: one for name, _ in phases}
    # Steps in schedule order, cut at max_steps.
    seconds, left = 0.0, steps
    for name, _ in phases:
        take = min(left, steps_of[name])
        seconds += take * per_step.get(name, 0.0)
        left -= take
    done_fraction = steps / max(1, sum(steps_of.values()))
    # Every joint epoch starts with a pass over all points (the target distribution); the
    # prototype start takes one more, and so does the refinement (it encodes every point once;
    # its batch-SOM passes only compare codes with prototypes).
    passes = joint_epochs + 1 + (1 if t.refine_sigma and done_fraction >= 1.0 else 0)
    seconds += passes * done_fraction * pass_per_row * n_points
    parts = memory_parts(config, n_params=n_params, n_features=n_features, n_samples=n_samples,
                         n_points=n_points, rows_per_batch=rows_per_batch, data_bytes=data_bytes,
                         device_type=device.type)
    return {"seconds": float(seconds), "memory_bytes": int(sum(parts.values())), "memory_parts": parts,
            "device": str(device), "steps": int(steps), "parameters": int(n_params), "per_step": per_step,
            "method": method}


def memory_parts(config: Config, *, n_params: int, n_features: int, n_samples: int, n_points: int,
                 rows_per_batch: float, data_bytes: int = 0, device_type: str = "cpu") -> dict[str, int]:
    """Bytes a training run adds to the process, by what takes them (see the module docstring).

    Parameters
    ----------
    config : Config
    n_params : int
        The network's parameters.
    n_features, n_samples, n_points : int
        Features; rows or patients; rows or real steps over all patients.
    rows_per_batch : float
        Rows one optimiser step encodes (patients x mean stay length for series).
    data_bytes : int
        Size of the data's value array (padded ``(N, T, D)`` for series); 0: from the counts.
    device_type : {"cpu", "cuda", "mps"}

    Returns
    -------
    dict
        ``fixed``, ``model``, ``steps``, ``pass``, ``data`` and ``targets``, in bytes.
    """
    temporal = config.model == "tdpsom"
    net = config.network
    k = config.grid.n_nodes
    d = net.latent_dim
    # Floats per row of the posterior head's output (means and scales; full covariance: the
    # triangle, and the d x d factor the KL and sampling build from it).
    head = 2 * d if net.posterior == "diag" else d + d * (d + 1) // 2 + d * d
    if net.encoder == "conv":
        side2 = n_features  # pixels; three maps per block (convolution, activation, norm), mirrored
        body = 2 * 3 * side2 * (32 + 64 // 4 + (128 + 256) // 16)
    else:
        body = 2 * sum(net.hidden)
    # One row's activations in a training step: input, reconstruction (means and scales), both
    # networks' layers, the head, the distances and assignments to every node and, for series,
    # the LSTM's gates and states and the predicted next latent.
    step_width = 3 * n_features + body + head + 2 * k + (8 * net.lstm_dim + 2 * d if temporal else 0)
    # One row of a whole-data pass (no gradients): input, the encoder's layers, head, node terms.
    pass_width = n_features + body // 2 + head + k
    padded = int(data_bytes) // 4 if data_bytes else n_points * n_features  # value cells
    padded_rows = padded // max(1, n_features)
    steps_per_patient = padded_rows / max(1, n_samples) if temporal else 1.0
    # Whole-data passes go in pieces of at most _PASS_ROWS rows (whole patients for series): the
    # prototype start (PCA or k-means) in one piece where it fits, the target pass in at least
    # target_chunks pieces.
    piece = max(steps_per_patient, (_PASS_ROWS // steps_per_patient) * steps_per_patient)
    whole = min(padded_rows, piece)
    pass_rows = min(whole, math.ceil(n_samples / max(1, config.train.target_chunks)) * steps_per_patient)
    if config.train.som_init != "kohonen":
        pass_rows = whole
    fixed = _FIXED_BYTES.get(device_type, _FIXED_BYTES["cpu"])
    if temporal and device_type == "cpu":
        fixed += _SERIES_KERNEL_BYTES
    return {
        "fixed": int(fixed),
        # weights, their gradients and Adam's two moments
        "model": int(16 * n_params),
        # saved activations and their gradients, and the allocator's share of steps whose rows vary
        "steps": int(_STEP_FACTOR * 4 * step_width * rows_per_batch),
        "pass": int(_PASS_FACTOR * 4 * pass_width * pass_rows),
        # the scaled values and mask the model trains on, and the scaling's temporaries
        "data": int(4 * padded * (1 + 0.25 + 2)),
        # the target distribution over all rows (padded steps included), float32
        "targets": int(4 * k * padded_rows),
    }


def formula_seconds(config: Config, *, n_features: int, n_samples: int, n_points: int,
                    mean_length: float | None = None, device: str | None = None) -> float:
    """The formula's estimate alone (no timing), for a device type ``"cpu"``, ``"cuda"`` or ``"mps"``."""
    cfg = config if device is None else config.replace(**{"train.device": "cpu"})
    est = estimate_training(cfg, n_features=n_features, n_samples=n_samples, n_points=n_points,
                            mean_length=mean_length, probe=False)
    if device is None or device == "cpu":
        return est["seconds"]
    rows = max(1, min(config.train.batch_size, n_samples)) * (float(mean_length or 1.0)
                                                               if config.model == "tdpsom" else 1.0)
    p = est["parameters"]
    one = max(_STEP_OVERHEAD[device], 6.0 * p * rows / _GPU_SPEED[device])
    joint = dict(phase_epochs(config)).get("joint", 0)
    return est["steps"] * one + (joint + 1) * 2.0 * p * n_points / _GPU_SPEED[device]


#: Probes already timed, by what the time per step depends on (not the epochs, the seed or the
#: step limit): the app asks again after every change of a setting, on its interface thread.
_PROBES: dict[tuple, tuple[dict[str, float], float]] = {}


def _probe_cached(config: Config, device: torch.device, n_features: int, batch: int, length: float,
                  likelihood: str, stop: Callable[[], bool] | None = None) -> tuple[dict[str, float], float]:
    d = config.to_dict()
    train = {k: v for k, v in d["train"].items()
             if k not in ("epochs_pretrain", "epochs_joint", "epochs_pred", "som_init_epochs", "seed", "max_steps",
                          "snapshot_every", "refine_sigma")}
    key = (str(device), n_features, batch, round(length, 1), likelihood, d["model"], str(d["grid"]),
           str(d["network"]), str(d["weights"]), str(sorted(train.items())))
    if key not in _PROBES:
        if len(_PROBES) > 32:
            _PROBES.clear()
        _PROBES[key] = _probe(config, device, n_features, batch, length, likelihood, stop)
    return _PROBES[key]


def _probe(config: Config, device: torch.device, n_features: int, batch: int, length: float,
           likelihood: str, stop: Callable[[], bool] | None = None) -> tuple[dict[str, float], float]:
    """Seconds per optimiser step of each phase, and per row of a target pass, timed on ``device``.

    Batches of more than ``_PROBE_ROWS`` rows are timed at that size and scaled by the rows: such
    steps are bound by arithmetic that grows with the rows, and six of them per phase took over
    two minutes (the paper preset on a cohort, 300 patients a batch) before any figure showed.
    """
    temporal = config.model == "tdpsom"
    t = config.train
    row_steps = max(1, int(math.ceil(length))) if temporal else 1
    scale = 1.0
    if batch * row_steps > _PROBE_ROWS:
        small = max(1, _PROBE_ROWS // row_steps)
        scale, batch = batch / small, small
    phases = dict(phase_epochs(config))
    cfg = config.replace(**{
        "train.epochs_pretrain": 1 if phases.get("pretrain") else 0,
        "train.som_init_epochs": (1,) if phases.get("som_init") else (),
        "train.som_init_lrs": (t.som_init_lrs[0],) if phases.get("som_init") else (),
        "train.epochs_joint": 1 if phases.get("joint") else 0,
        "train.epochs_pred": 1 if phases.get("prediction") else 0,
        "train.max_steps": None, "train.snapshot_every": 10**9, "train.drop_last": True,
        "train.batch_size": batch,
        # The refinement after the joint phase would land in the last joint step's time; the
        # estimate counts it as a pass over the data instead.
        "train.refine_sigma": (),
    })
    n = batch * _PROBE_BATCHES
    gen = torch.Generator().manual_seed(0)
    if temporal:
        steps = max(1, int(math.ceil(length)))
        x = torch.rand(n, steps, n_features, generator=gen)
        data = TrainData(x.to(device), torch.ones_like(x, dtype=torch.bool).to(device),
                         torch.ones(n, steps, dtype=torch.bool).to(device))
        rows = n * steps
    else:
        x = torch.rand(n, n_features, generator=gen)
        data = TrainData(x.to(device), torch.ones_like(x, dtype=torch.bool).to(device))
        rows = n
    if cfg.train.seed is not None:
        torch.manual_seed(cfg.train.seed)
    net_cls = TDPSOMNet if temporal else DPSOMNet
    lik = "bernoulli" if likelihood == "bernoulli" else "gaussian"
    net = net_cls(n_features, cfg.grid.n_nodes, cfg.network, lik).to(device)
    trainer = Trainer(net, cfg, data, device)
    times: dict[str, list[float]] = {}
    last = time.perf_counter()
    prev_phase = None
    for progress in trainer.run():
        if stop is not None and stop():
            raise EstimateStopped("the training-time probe was stopped")
        _sync(device)
        now = time.perf_counter()
        if progress.phase == prev_phase:  # the first step of a phase warms up and starts the epoch
            times.setdefault(progress.phase, []).append(now - last)
        prev_phase = progress.phase
        last = time.perf_counter()
    per_step = {name: float(np.mean(v[len(v) // 2:])) for name, v in times.items() if v}
    if temporal and "joint" in per_step:
        per_step["joint"] /= 2.0  # one report per batch covers its two optimiser steps
    for name in phases:
        per_step.setdefault(name, max(per_step.values()) if per_step else 0.0)
    per_step = {name: v * scale for name, v in per_step.items()}
    trainer.compute_target()  # the first pass warms up; the second is timed
    _sync(device)
    start = time.perf_counter()
    trainer.compute_target()
    _sync(device)
    return per_step, (time.perf_counter() - start) / rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@lru_cache(maxsize=4)
def _speed(device_type: str) -> float:
    """Sustained matrix-multiply speed in FLOP/s: measured on a CPU (a 0.05 s probe), nominal otherwise."""
    if device_type != "cpu":
        return _GPU_SPEED.get(device_type, 2.0e12)
    a = torch.randn(256, 512)
    b = torch.randn(512, 512)
    a @ b
    start = time.perf_counter()
    reps = 0
    while time.perf_counter() - start < 0.05:
        a @ b
        reps += 1
    seconds = time.perf_counter() - start
    return max(1e9, 2 * 256 * 512 * 512 * reps / seconds)
