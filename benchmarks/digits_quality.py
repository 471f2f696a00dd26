"""DPSOM on scikit-learn's digits against k-means: NMI, purity and map topology, as a user gets them.

Trains what ``dpsom train digits.csv --labels label`` trains (pixels / 16 in a CSV): the
settings and the scaling come from the rule of :mod:`core.defaults`, nothing is tuned for
digits. Prints, for a few seeds, the NMI (geometric), purity, the share of neighbouring node
pairs whose majority digit agrees and the effective number of nodes, for:

* DPSOM on the default path,
* the "no topology" ablation of METHOD.md 2.12 / 7.12 (the same settings with SOM weight 0,
  prototypes started by k-means, no SOM initialisation stages, no closing batch-SOM passes:
  VarIDEC-like),
* k-means with as many clusters as map nodes (64) on the same values.

Usage: ``python benchmarks/digits_quality.py [--seeds 0 1 2] [--threads 1]`` (needs scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis import cluster_metrics, neighbour_majority_agreement  # noqa: E402
from core.data.dataset import Dataset  # noqa: E402
from core.workflow import ModelRun, propose_config  # noqa: E402

# No topology anywhere: no SOM term, no ordered start, and none of the batch-SOM passes that
# end training on small tables.
ABLATION_CHANGES = {"weights.som": 0.0, "train.som_init": "kmeans", "train.som_init_epochs": (),
                    "train.som_init_lrs": (), "train.refine_sigma": ()}


def load_digits_unit():
    """Digits scaled to [0, 1] (pixel / 16), as float32, with their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def default_run(X, seed: int, ablation: bool = False) -> ModelRun:
    """The default path on ``X`` (what ``dpsom train`` does), optionally with the ablation's changes."""
    ds = Dataset(X, ~np.isnan(X), [f"p{i}" for i in range(X.shape[1])], source="sklearn:digits")
    cfg = propose_config(ds).replace(**{"train.seed": seed, **(ABLATION_CHANGES if ablation else {})})
    return ModelRun(ds, cfg)


def fit_dpsom(X, seed: int, ablation: bool = False) -> tuple[np.ndarray, float, ModelRun]:
    run = default_run(X, seed, ablation)
    start = time.perf_counter()
    for _ in run.iter_train():
        pass
    return run.assignments()["bmu"], time.perf_counter() - start, run


def kmeans_labels(X, seed: int, k: int = 64) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit(X).labels_


def effective_nodes(nodes: np.ndarray, k: int) -> float:
    """exp(entropy of node use): how many nodes are used, counting a node by its share."""
    p = np.bincount(nodes, minlength=k) / len(nodes)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def summarise(name, y, bmu, grid, k, seconds=None) -> dict:
    m = cluster_metrics(y, bmu)
    return {"method": name, "nmi": m["nmi_geometric"], "purity": m["purity"],
            "topology": neighbour_majority_agreement(bmu, y, grid) if grid is not None else float("nan"),
            "eff": effective_nodes(bmu, k), "seconds": seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    X, y = load_digits_unit()
    rows = []
    for seed in args.seeds:
        bmu, sec, run = fit_dpsom(X, seed)
        grid, k = run.grid, run.grid.n_nodes
        rows.append(summarise(f"DPSOM default, seed {seed}", y, bmu, grid, k, sec))
        bmu, sec, _ = fit_dpsom(X, seed, ablation=True)
        rows.append(summarise(f"no-topology ablation, seed {seed}", y, bmu, grid, k, sec))
        start = time.perf_counter()
        km = kmeans_labels(X, seed, k)
        rows.append(summarise(f"k-means ({k}), seed {seed}", y, km, None, k, time.perf_counter() - start))
    print(f"{'method':<34} {'NMI':>7} {'purity':>7} {'topology':>9} {'eff nodes':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['method']:<34} {r['nmi']:7.3f} {r['purity']:7.3f} {r['topology']:9.3f} {r['eff']:9.1f} "
              f"{r['seconds']:8.1f}")


if __name__ == "__main__":
    main()
