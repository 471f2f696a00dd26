"""How long the map and trajectory analytics take on large cohorts.

Times every public function of ``core.analysis`` on synthetic assignments of 1e5 and 1e6
samples (a 16x16 toroidal map, K = 256, latent dimension 16; series are 72-step patients with
random lengths). Soft assignments are streamed in chunks, as a large cohort would be.
Prints a table of wall-clock seconds; it asserts nothing.

A second table times the superclusters on a larger map (64x64 by default, K = 4096), for
every linkage, with the peak memory that Python's allocator saw (NumPy arrays included).

Usage::

    python benchmarks/analytics_scale.py [--sizes 1e5,1e6] [--repeat 1] [--map-side 64]
    python benchmarks/analytics_scale.py --superclusters-only
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import analysis as A  # noqa: E402
from benchmarks._machine import load_average  # noqa: E402
from core.grid import SOMGrid  # noqa: E402

K_SIDE, D, T, CHUNK = 16, 16, 72, 16384


def smooth_prototypes(side: int, rng: np.random.Generator) -> tuple[SOMGrid, np.ndarray]:
    """A ``side x side`` toroidal map whose prototypes lie on a smooth 2-D sheet in ``D`` dims."""
    grid = SOMGrid(side, side, "rect", True)
    r, c = np.divmod(np.arange(grid.n_nodes), side)
    basis = rng.normal(size=(4, D))
    feats = np.stack([np.cos(2 * np.pi * r / side), np.sin(2 * np.pi * r / side),
                      np.cos(2 * np.pi * c / side), np.sin(2 * np.pi * c / side)], axis=1)
    return grid, feats @ basis + 0.05 * rng.normal(size=(grid.n_nodes, D))


def make_data(n: int, rng: np.random.Generator) -> dict:
    grid, proto = smooth_prototypes(K_SIDE, rng)
    k = grid.n_nodes
    # Samples scattered around the prototypes.
    r, c = np.divmod(np.arange(k), K_SIDE)
    true_node = rng.integers(0, k, n)
    latent = (proto[true_node] + 0.3 * rng.normal(size=(n, D))).astype(np.float32)
    bmu = A.best_matching_units(latent, proto)
    cls = (r[bmu] // 4) * 4 + c[bmu] // 4 % 4  # 16 regions of the map as "classes"
    cls = np.where(rng.random(n) < 0.2, rng.integers(0, 16, n), cls) % 10
    score = (r[bmu] + rng.normal(size=n)).astype(float)
    score[rng.random(n) < 0.05] = np.nan
    died = (rng.random(n) < 0.02 + 0.01 * (c[bmu] % 4)).astype(float)
    n_pat = n // T
    seq = bmu[: n_pat * T].reshape(n_pat, T)
    lengths = rng.integers(T // 2, T + 1, n_pat)
    pmask = np.arange(T)[None, :] < lengths[:, None]
    z = rng.normal(size=(CHUNK, k))
    proba_chunk = np.exp(z - z.max(axis=1, keepdims=True))
    proba_chunk /= proba_chunk.sum(axis=1, keepdims=True)
    other_runs = [A.best_matching_units(latent + 0.1 * rng.normal(size=latent.shape).astype(np.float32), proto)
                  for _ in range(2)]
    return dict(grid=grid, proto=proto, latent=latent, bmu=bmu, cls=cls, score=score, died=died, seq=seq,
                lengths=lengths, pmask=pmask, proba_chunk=proba_chunk, other_runs=other_runs,
                decoded=rng.normal(size=(k, 98)))


def cases(d: dict) -> list[tuple[str, callable]]:
    g, k, n = d["grid"], d["grid"].n_nodes, d["bmu"].size
    n_chunks = max(n // CHUNK, 1)
    stream = lambda: itertools.repeat(d["proba_chunk"], n_chunks)  # noqa: E731
    ent = np.zeros(n)
    seq, lengths, pmask = d["seq"], d["lengths"], d["pmask"]
    n_pat = seq.shape[0]
    sub = min(n, 10_000)
    return [
        ("best_matching_units", lambda: A.best_matching_units(d["latent"], d["proto"])),
        ("quantisation_error (bmu given)", lambda: A.quantisation_error(d["latent"], d["proto"], bmu=d["bmu"])),
        ("quantisation_error (search)", lambda: A.quantisation_error(d["latent"], d["proto"])),
        ("topographic_error", lambda: A.topographic_error(d["latent"], d["proto"], g)),
        ("nmi geometric", lambda: A.nmi(d["cls"], d["bmu"])),
        ("ami", lambda: A.ami(d["cls"], d["bmu"])),
        ("adjusted_rand_index", lambda: A.adjusted_rand_index(d["cls"], d["bmu"])),
        ("purity", lambda: A.purity(d["cls"], d["bmu"])),
        ("cluster_metrics (float label, NaN)", lambda: A.cluster_metrics(np.round(d["score"]), d["bmu"])),
        ("collapse_check (with AMI)", lambda: A.collapse_check(d["bmu"], k, d["cls"])),
        ("assignment_entropy (streamed chunks)", lambda: A.assignment_entropy(stream())),
        ("soft_hit_map (streamed chunks)", lambda: A.soft_hit_map(stream())),
        ("hit_map", lambda: A.hit_map(d["bmu"], k)),
        ("umatrix", lambda: A.umatrix(d["proto"], g)),
        ("component_planes (98 features)", lambda: A.component_planes(d["decoded"])),
        ("label_enrichment binary", lambda: A.label_enrichment(d["bmu"], d["died"], k)),
        ("label_enrichment continuous", lambda: A.label_enrichment(d["bmu"], d["score"], k)),
        ("node_entropy (from entropies)", lambda: A.node_entropy(d["bmu"], ent, k)),
        ("morans_i", lambda: A.morans_i(A.label_enrichment(d["bmu"], d["score"], k).mean, g)),
        ("majority_labels", lambda: A.majority_labels(d["bmu"], d["cls"], k)),
        ("neighbour_majority_agreement", lambda: A.neighbour_majority_agreement(d["bmu"], d["cls"], g)),
        ("agglomerative_superclusters ward", lambda: A.agglomerative_superclusters(d["proto"], g, 8)),
        ("kmeans_superclusters", lambda: A.kmeans_superclusters(d["proto"], 8)),
        ("suggest_n_superclusters 2..10", lambda: A.suggest_n_superclusters(d["proto"], g)),
        (f"silhouette_score ({sub} samples)",
         lambda: A.silhouette_score(d["latent"][:sub], d["cls"][:sub])),
        ("jump_lengths", lambda: A.jump_lengths(seq, lengths, g)),
        ("mean_jump", lambda: A.mean_jump(seq, lengths, g)),
        ("transition_matrix", lambda: A.transition_matrix(seq, lengths, k)),
        ("dwell_times", lambda: A.dwell_times(seq, lengths, k)),
        ("enrichment_at_horizons (3 labels)", lambda: A.enrichment_at_horizons(
            seq, lengths, {"score": d["score"][: seq.size].reshape(seq.shape),
                           "died": d["died"][: seq.size].reshape(seq.shape),
                           "per_patient": d["died"][:n_pat]}, k)),
        ("forecast_state_accuracy", lambda: A.forecast_state_accuracy(seq, d["other_runs"][0][: seq.size].reshape(
            seq.shape), sample_mask=pmask)),
        ("node_path (1000 patients)", lambda: [A.node_path(seq[i], g, lengths[i]) for i in range(min(1000, n_pat))]),
        ("assignment_agreement (3 runs)", lambda: A.assignment_agreement([d["bmu"], *d["other_runs"]])),
        ("node_position_agreement (3 runs)", lambda: A.node_position_agreement([d["bmu"], *d["other_runs"]], g)),
    ]


def time_superclusters(side: int, repeat: int) -> None:
    """Print seconds and peak traced memory of the superclusters on a ``side x side`` map."""
    grid, proto = smooth_prototypes(side, np.random.default_rng(0))
    runs = [(f"agglomerative_superclusters {linkage}",
             lambda linkage=linkage: A.agglomerative_superclusters(proto, grid, 8, linkage))
            for linkage in ("ward", "average", "complete", "single")]
    runs.append(("suggest_n_superclusters 2..10 (ward)", lambda: A.suggest_n_superclusters(proto, grid)))
    A.agglomerative_superclusters(proto[:9], SOMGrid(3, 3, "rect", True), 2)  # imports scikit-learn
    print(f"\nsuperclusters on a {side}x{side} torus (K = {grid.n_nodes}, d = {D}), 8 groups; "
          f"load {load_average()}")
    print(f"{'function':<40}{'seconds':>10}{'peak MB':>10}")
    for name, fn in runs:
        best = np.inf
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        # A separate traced run: tracing slows the code down, so it would spoil the seconds.
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:<40}{best:>10.3f}{peak / 2**20:>10.1f}", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6", help="comma-separated sample counts")
    ap.add_argument("--repeat", type=int, default=1, help="runs per function; the best is shown")
    ap.add_argument("--map-side", type=int, default=64, help="side of the map for the supercluster table")
    ap.add_argument("--superclusters-only", action="store_true", help="print only the supercluster table")
    args = ap.parse_args(argv)
    if args.superclusters_only:
        time_superclusters(args.map_side, args.repeat)
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    results: dict[str, dict[int, float]] = {}
    order: list[str] = []
    for n in sizes:
        t0 = time.perf_counter()
        data = make_data(n, np.random.default_rng(0))
        print(f"n = {n:.0e}: synthetic data ready in {time.perf_counter() - t0:.1f} s", flush=True)
        for name, fn in cases(data):
            best = np.inf
            for _ in range(args.repeat):
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
            key = name
            if key not in results:
                results[key] = {}
                order.append(key)
            results[key][n] = best
        del data
    width = max(len(k) for k in order) + 2
    header = "function".ljust(width) + "".join(f"n={n:.0e}".rjust(12) for n in sizes)
    print()
    print(f"K = {K_SIDE * K_SIDE} nodes, d = {D}, series of {T} steps; wall-clock seconds")
    print(header)
    print("-" * len(header))
    for key in order:
        row = "".join((f"{results[key][n]:.3f}" if n in results[key] else "-").rjust(12) for n in sizes)
        print(key.ljust(width) + row)
    time_superclusters(args.map_side, args.repeat)


if __name__ == "__main__":
    main()
