"""T-DPSOM (quick preset) on the synthetic ICU cohort: what it finds and how long it takes.

Simulates a cohort with :func:`core.data.synthetic.make_icu_cohort` (hidden health states on
a 3 x 3 lattice), preprocesses it the default way (z-scores, forward filling, medians),
trains the quick preset on the CPU with the batch size the app and ``dpsom train`` propose for
the cohort (:func:`core.workflow.propose_config`) and prints the figures of METHOD.md 7.13:

* NMI, AMI and purity of the best-matching nodes against the true state, next to k-means
  with as many clusters on the same preprocessed features;
* NMI against the APACHE-style score now and 6, 12, 24 h ahead;
* mean grid jump per step with the smoothness loss on, and off (a second training);
* 6-step forecast error against the same-state baseline, and unrolled-state accuracy;
* Moran's I of the severity map and how strongly transitions stay near the diagonal;
* the training time, with the machine's load average (the cores may be shared).

It asserts nothing. Usage::

    python benchmarks/tdpsom_synthetic.py [--patients 800] [--max-steps 72] [--seed 0]
                                          [--threads N] [--no-ablation]
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
from core import analysis as A  # noqa: E402
from core.data.preprocessing import Preprocessor  # noqa: E402
from core.data.synthetic import APACHE_HORIZONS, make_icu_cohort  # noqa: E402
from core.model import TDPSOM  # noqa: E402
from core.training import schedule_steps  # noqa: E402
from core.workflow import propose_config  # noqa: E402

HORIZON = 6


def train(cfg, X, mask, lengths, smooth: float, seed: int) -> tuple[TDPSOM, float]:
    config = cfg.replace(**{"weights.smooth": smooth})
    started = time.perf_counter()
    model = TDPSOM(config=config, random_state=seed).fit(X, mask=mask, lengths=lengths)
    return model, time.perf_counter() - started


def kmeans_labels(rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans  # development dependency, benchmarks only

    return KMeans(k, n_init=3, random_state=seed).fit(rows).labels_


def forecast_figures(model: TDPSOM, X, mask, lengths, bmu, history: int) -> dict:
    sel = lengths >= history + HORIZON
    Xs, ls = X[sel], lengths[sel]
    truth = Xs[:, history:history + HORIZON]
    observed = mask[sel, history:history + HORIZON]
    fc = model.forecast(Xs, HORIZON, lengths=ls, history=history)
    last = model.decode(model.transform(Xs, lengths=ls)[:, history - 1])
    same = np.repeat(last[:, None], HORIZON, axis=1)
    true_nodes = bmu[sel, history:history + HORIZON]
    return {
        "patients": int(sel.sum()),
        "mse": float(((fc.features - truth) ** 2)[observed].mean()),
        "mse_same": float(((same - truth) ** 2)[observed].mean()),
        "acc": A.forecast_state_accuracy(fc.nodes, true_nodes),
        "acc_same": A.forecast_state_accuracy(np.repeat(bmu[sel, history - 1:history], HORIZON, 1), true_nodes),
    }


def transition_figures(bmu, lengths, steps, grid) -> tuple[float, float, float, float]:
    k = grid.n_nodes
    counts = A.transition_matrix(bmu, lengths, k, normalize=False).astype(np.float64)
    dist = grid.distances()
    freq = np.bincount(bmu[steps], minlength=k) / steps.sum()
    near = dist <= 1
    moves = counts.copy()
    np.fill_diagonal(moves, 0.0)
    pairs = np.outer(freq, freq)
    np.fill_diagonal(pairs, 0.0)
    nb = dist == 1
    return (counts[near].sum() / counts.sum(), float(freq @ near @ freq),
            moves[nb].sum() / max(moves.sum(), 1.0), pairs[nb].sum() / pairs.sum())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=800)
    parser.add_argument("--max-steps", type=int, default=72, help="hours in the longest stay")
    parser.add_argument("--seed", type=int, default=0, help="model seed (the cohort uses seed 7)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-ablation", action="store_true", help="skip the training without smoothness")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    ds = make_icu_cohort(args.patients, max_steps=args.max_steps, min_steps=min(24, args.max_steps), seed=7)
    X, mask = Preprocessor(scaling="zscore", ffill_limit=None, impute="median").fit_transform(ds)
    lengths, steps, labels = ds.lengths, ds.step_mask, ds.labels
    cfg = propose_config(ds, "quick", device="cpu")
    print(f"cohort: {ds.n_samples} patients x up to {args.max_steps} h x {ds.n_features} variables, "
          f"{int(steps.sum())} patient hours; quick preset {cfg.grid.height}x{cfg.grid.width}, "
          f"hidden {cfg.network.hidden}, latent {cfg.network.latent_dim}, LSTM {cfg.network.lstm_dim}, "
          f"batch {cfg.train.batch_size}, {schedule_steps(cfg, ds.n_samples)} optimiser steps")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average before: {load_average()}")

    model, seconds = train(cfg, X, mask, lengths, 1.0, args.seed)
    print(f"training: {seconds:.1f} s ({model.n_iter_} steps, {1e3 * seconds / max(1, model.n_iter_):.1f} ms/step), "
          f"load average after: {load_average()}")

    grid = model.grid_
    k = grid.n_nodes
    bmu = model.predict(X, lengths=lengths)
    state = labels["state"]
    km = np.full(steps.shape, -1)
    km[steps] = kmeans_labels(X[steps], k, args.seed)
    rows = [("NMI (state)", A.nmi(state, bmu, sample_mask=steps), A.nmi(state, km, sample_mask=steps)),
            ("AMI (state)", A.ami(state, bmu, sample_mask=steps), A.ami(state, km, sample_mask=steps)),
            ("purity (state)", A.purity(state, bmu, sample_mask=steps), A.purity(state, km, sample_mask=steps))]
    for h in APACHE_HORIZONS:
        name = f"apache_{h}"
        if name in labels:
            use = steps & ~np.isnan(labels[name])
            rows.append((f"NMI ({name})", A.nmi(labels[name], bmu, sample_mask=use),
                         A.nmi(labels[name], km, sample_mask=use)))
    print(f"\n{'':<18}{'T-DPSOM':>10}{'k-means':>10}   (K = {k})")
    for name, a, b in rows:
        print(f"{name:<18}{a:>10.4f}{b:>10.4f}")

    enr = A.label_enrichment(bmu, labels["severity"], k, sample_mask=steps)
    moran = A.morans_i(enr.mean, grid, counts=enr.count, global_mean=enr.global_mean)
    print(f"\nMoran's I of severity: {moran:.4f} ({int((enr.count > 0).sum())} of {k} nodes used)")
    near, near_chance, nb_moves, nb_chance = transition_figures(bmu, lengths, steps, grid)
    print(f"transitions to self or a neighbour: {near:.4f} (chance {near_chance:.4f}); "
          f"moves to a neighbour: {nb_moves:.4f} (chance {nb_chance:.4f})")

    history = max(1, args.max_steps // 2)
    fc = forecast_figures(model, X, mask, lengths, bmu, history)
    print(f"\n{HORIZON}-step forecast from the first {history} h ({fc['patients']} patients with at least "
          f"{history + HORIZON} h), MSE over observed standardised values:")
    print(f"  T-DPSOM {fc['mse']:.4f}   same state {fc['mse_same']:.4f}   ratio {fc['mse'] / fc['mse_same']:.3f}")
    print(f"  unrolled-state accuracy {fc['acc']:.4f} (same node held {fc['acc_same']:.4f}, chance {1 / k:.4f})")

    jump = A.mean_jump(bmu, lengths, grid)
    if args.no_ablation:
        print(f"\nmean jump per step: {jump:.4f} (smoothness weight 1)")
        return
    rough, rough_seconds = train(cfg, X, mask, lengths, 0.0, args.seed)
    rough_bmu = rough.predict(X, lengths=lengths)
    print(f"\nmean jump per step: smoothness weight 1: {jump:.4f}   weight 0: "
          f"{A.mean_jump(rough_bmu, lengths, grid):.4f}   (second training {rough_seconds:.1f} s; "
          f"NMI without smoothness {A.nmi(state, rough_bmu, sample_mask=steps):.4f}; "
          f"nodes agree on {float((rough_bmu == bmu)[steps].mean()):.3f} of steps)")


if __name__ == "__main__":
    main()
