"""Seconds per optimiser step of T-DPSOM at the original eICU scale.

A minibatch of the reference is 300 patients x 72 hours x 98 variables (21,600 rows); the
network is the ``paper`` preset (16 x 16 torus, encoder 500-500-2000, latent 50, LSTM 200,
parity behaviour including the hard-sigmoid LSTM). Random data of that shape (600 patients,
so an epoch has two minibatches) is trained through the public ``TDPSOM.iter_fit`` with a
few epochs per phase, and the wall-clock time between progress reports is recorded:

* pretrain: one VAE step;
* SOM init: one prototype step (encoder forward only);
* joint: the step on the full loss plus the extra prediction-only step that follows it;
* prediction: one LSTM fine-tuning step (encoder forward, LSTM forward and backward).

The first step of a phase (warm-up) and, for the joint phase, the first step of each epoch
(which also refreshes the target distribution over all patients) are left out of the median;
the refresh is timed on its own. Runs on the CPU, and on CUDA when it is available.
Prints a table; it asserts nothing.

Usage::

    python benchmarks/tdpsom_paper_scale.py [--steps 2] [--devices cpu,cuda] [--threads N]
                                            [--clean] [--precision float32|bf16] [--profile]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load_average  # noqa: E402
from core.config import make_config  # noqa: E402
from core.model import TDPSOM  # noqa: E402

PATIENTS, HOURS, FEATURES, BATCH = 600, 72, 98, 300
ROWS = BATCH * HOURS
PHASES = ("pretrain", "som_init", "joint", "prediction")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(device: str, steps: int, clean: bool, precision: str, profile: bool) -> dict:
    """Per-phase step times (seconds) on ``device``; ``steps`` epochs per phase."""
    config = make_config(
        "tdpsom", "paper", parity=not clean,
        **{"train.device": device, "train.batch_size": BATCH, "train.epochs_pretrain": steps,
           "train.som_init_epochs": (steps,), "train.som_init_lrs": (0.1,), "train.epochs_joint": steps,
           "train.epochs_pred": steps, "train.precision": precision, "train.target_chunks": 4},
    )
    rng = np.random.default_rng(0)
    X = rng.random((PATIENTS, HOURS, FEATURES), dtype=np.float32)  # like the reference's [0, 1] scaling
    model = TDPSOM(config=config, random_state=0)
    gen = model.iter_fit(X, lengths=np.full(PATIENTS, HOURS))
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    first_of_epoch = True
    profiled = None
    while True:
        want_profile = (profile and profiled is None and not first_of_epoch
                        and model.trainer_ is not None and model.trainer_.phase == 2)
        _sync(device)
        started = time.perf_counter()
        if want_profile:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if device.startswith("cuda"):
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            with torch.profiler.profile(activities=activities) as prof:
                progress = next(gen, None)
                _sync(device)
            profiled = prof
        else:
            progress = next(gen, None)
        _sync(device)
        seconds = time.perf_counter() - started
        if progress is None:
            break
        phase_times = times[progress.phase]
        if progress.phase == "joint" and first_of_epoch:
            pass  # includes the target refresh, timed on its own below
        elif phase_times or progress.phase == "joint":
            phase_times.append(seconds)
        else:
            phase_times.append(float("nan"))  # warm-up step of the phase, not counted
        first_of_epoch = progress.end_of_epoch
    out = {p: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan") for p, v in times.items()}
    out["n"] = {p: int(np.isfinite(v).sum()) for p, v in times.items()}
    # The refresh on its own: one pass over every patient with fresh posterior samples.
    refresh = []
    for _ in range(2):
        _sync(device)
        started = time.perf_counter()
        model.trainer_.compute_target()
        _sync(device)
        refresh.append(time.perf_counter() - started)
    out["target refresh"] = min(refresh)
    out["n"]["target refresh"] = len(refresh)
    out["profile"] = profiled
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="epochs (of two minibatches) per phase")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--clean", action="store_true", help="clean behaviour (torch LSTM, real batch norm)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bf16"))
    parser.add_argument("--profile", action="store_true", help="print the busiest operators of one joint step")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not torch.cuda.is_available():
        skipped = [d for d in devices if d.startswith("cuda")]
        devices = [d for d in devices if not d.startswith("cuda")]
        if skipped:
            print("CUDA is not available here: measuring the CPU only")
    cfg = make_config("tdpsom", "paper", parity=not args.clean)
    print(f"T-DPSOM paper scale: {BATCH} patients x {HOURS} h x {FEATURES} variables per step ({ROWS} rows), "
          f"{cfg.grid.height}x{cfg.grid.width} grid, hidden {cfg.network.hidden}, latent {cfg.network.latent_dim}, "
          f"LSTM {cfg.network.lstm_dim} ({cfg.network.lstm_gates} gates), batch norm {cfg.network.bn_mode}, "
          f"{args.precision}")
    print(f"torch {torch.__version__}; CPU: {torch.get_num_threads()} threads of {os.cpu_count()} cores, "
          f"load average {load_average()}")

    results = {}
    for device in devices:
        name = device
        if device.startswith("cuda"):
            name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        started = time.perf_counter()
        results[name] = measure(device, args.steps, args.clean, args.precision, args.profile)
        print(f"{name}: measured in {time.perf_counter() - started:.0f} s")

    print(f"\n{'device':<28}{'step':<16}{'s/step':>10}{'rows/s':>12}{'steps':>7}")
    for name, r in results.items():
        for phase in PHASES + ("target refresh",):
            s = r[phase]
            rows = PATIENTS * HOURS if phase == "target refresh" else ROWS
            rate = f"{rows / s:>12.0f}" if np.isfinite(s) and s > 0 else f"{'-':>12}"
            count = r["n"][phase]
            label = phase + (" (both)" if phase == "joint" else "")
            print(f"{name:<28}{label:<16}{s:>10.3f}{rate}{count:>7}")
    print("\n'joint (both)' is the full-loss step plus its prediction-only step; 'target refresh' is the "
          f"per-epoch pass over all {PATIENTS} patients (rows/s counts all {PATIENTS * HOURS} rows).")
    for name, r in results.items():
        if r["profile"] is not None:
            sort = "cuda_time_total" if name.startswith("cuda") else "cpu_time_total"
            print(f"\nbusiest operators of one joint step on {name}:")
            print(r["profile"].key_averages().table(sort_by=sort, row_limit=15))


if __name__ == "__main__":
    main()
