"""Train DPSOM-FC 8x8 on Fashion-MNIST and score it on the official test set.

The benchmark of METHOD.md 2.1, 2.9 and 7 item 11: each image is flattened and divided by
its own largest pixel value; the official 60,000 training images are shuffled with seed 42
and split 85/15 (51,000 train, 9,000 validation; the same split as scikit-learn's
``train_test_split(test_size=0.15, random_state=42)``); DPSOM-FC with an 8 x 8 toroidal map
and SOM weight 0.4 is trained on the training part and evaluated on the 10,000 official test
images. Nothing is downloaded: the IDX files must already be on disk (the Debian package
``dataset-fashion-mnist`` installs them in its standard location, which is searched when
``--data-dir`` is not given).

Prints the test-set NMI (geometric mean, as in the paper) and purity, seconds per step of
each phase, the total time, and the peak memory (resident set of this process; CUDA peak
allocation on a GPU). Expected with ``--preset paper`` on a GPU: NMI about 0.57, purity
about 0.78.

Usage::

    python benchmarks/fashion_mnist.py --preset paper --device cuda            # the reference run
    python benchmarks/fashion_mnist.py --preset quick --device cpu --max-train 10000
    python benchmarks/fashion_mnist.py --preset paper --max-train 6000 --epochs 5,1,10 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import nets  # noqa: E402
from core.analysis import metrics  # noqa: E402
from core.config import make_config  # noqa: E402
from core.data.idx import read_idx  # noqa: E402
from core.errors import InputError  # noqa: E402
from core.model import DPSOM  # noqa: E402
from core.training import select_device  # noqa: E402

#: Where the Debian package dataset-fashion-mnist puts the files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
SPLIT_SEED, VALIDATION_SHARE = 42, 0.15


# ---------------------------------------------------------------------------- data
def find_data_dir(given: str | None) -> Path:
    """The first directory holding all four IDX files (plain or ``.gz``)."""
    candidates = ([Path(given)] if given else []) + [DEBIAN_DIR]
    for d in candidates:
        if all(_idx_path(d, name) is not None for name in FILES.values()):
            return d
    tried = ", ".join(str(c) for c in candidates)
    raise InputError(f"no Fashion-MNIST IDX files ({', '.join(FILES.values())}, plain or .gz) in {tried}; "
                     "pass --data-dir, or install the Debian package dataset-fashion-mnist")


def _idx_path(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def per_image_max(images: np.ndarray) -> np.ndarray:
    """Flatten ``(n, 28, 28)`` uint8 images and divide each by its own largest pixel (METHOD.md 2.1)."""
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    return x / np.maximum(x.max(axis=1, keepdims=True), 1.0)


def load(directory: Path) -> dict[str, np.ndarray]:
    """Train, validation and test arrays: ``x (n, 784)`` float32 in [0, 1], ``y (n,)`` int64."""
    raw = {k: read_idx(_idx_path(directory, name)) for k, name in FILES.items()}
    x, y = per_image_max(raw["train_x"]), raw["train_y"].astype(np.int64)
    n = x.shape[0]
    n_val = int(np.ceil(VALIDATION_SHARE * n))
    perm = np.random.RandomState(SPLIT_SEED).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    return {"train_x": x[train], "train_y": y[train], "val_x": x[val], "val_y": y[val],
            "test_x": per_image_max(raw["test_x"]), "test_y": raw["test_y"].astype(np.int64)}


# ---------------------------------------------------------------------------- run
def build_config(args):
    changes = {"weights.som": 0.4, "train.device": args.device, "train.precision": args.precision,
               "train.seed": args.seed}
    if args.epochs:
        parts = [int(v) for v in args.epochs.split(",")]
        if len(parts) == 1:
            changes["train.epochs_joint"] = parts[0]
        elif len(parts) == 3:
            changes["train.epochs_pretrain"], som, changes["train.epochs_joint"] = parts
            stages = len(make_config("dpsom", args.preset, input_kind="image").train.som_init_lrs)
            changes["train.som_init_epochs"] = (som,) * stages
        else:
            raise SystemExit("--epochs takes JOINT or PRETRAIN,SOM_STAGE,JOINT")
    return make_config("dpsom", args.preset, input_kind="image", **changes)


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, peak allocated GPU memory (MiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss / 1024 if sys.platform != "darwin" else rss / 2**20  # kB on Linux, bytes on macOS
    out = {"cpu_rss_peak_mib": rss_mib}
    if device.type == "cuda":
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help=f"directory with the four IDX files (default: {DEBIAN_DIR})")
    ap.add_argument("--preset", choices=("quick", "paper"), default="quick",
                    help="paper: 15 pretrain epochs, 4 x 5 SOM-init epochs, 300 joint epochs, batch 300")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    ap.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    ap.add_argument("--max-train", type=int, help="use only the first N training images (quick CPU runs)")
    ap.add_argument("--epochs", help="joint epochs, or PRETRAIN,SOM_STAGE,JOINT epochs")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    ap.add_argument("--reference-linear", action="store_true",
                    help="float32 CPU layers through torch's default GEMM instead of oneDNN (a rounding-only "
                         "perturbation of the same run, to judge how far rounding alone moves the metrics)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.reference_linear:
        # For the rest of this process; the training loop keeps an enclosing choice.
        nets.fast_cpu_linear(False).__enter__()
    device = select_device(args.device)
    args.device = str(device)
    t_start = time.perf_counter()
    data_dir = find_data_dir(args.data_dir)
    d = load(data_dir)
    if args.max_train:
        d["train_x"], d["train_y"] = d["train_x"][: args.max_train], d["train_y"][: args.max_train]
    cfg = build_config(args)
    t = cfg.train
    print(f"Fashion-MNIST from {data_dir}: train {len(d['train_x'])}, validation {len(d['val_x'])} (unused), "
          f"test {len(d['test_x'])}", flush=True)
    print(f"preset {cfg.preset} (parity {cfg.parity}), device {device}, {args.precision}, "
          f"{torch.get_num_threads()} CPU threads; hidden {cfg.network.hidden}, latent {cfg.network.latent_dim} "
          f"({cfg.network.posterior}), batch {t.batch_size}; epochs pretrain {t.epochs_pretrain}, "
          f"SOM init {t.som_init_epochs}, joint {t.epochs_joint}", flush=True)

    est = DPSOM(config=cfg, random_state=args.seed)
    steps: dict[str, list[float]] = {}
    epoch_time: dict[str, float] = {}
    t_train = time.perf_counter()
    t0 = time.perf_counter()
    last_report = t0
    for p in est.iter_fit(d["train_x"]):
        dt = time.perf_counter() - t0
        steps.setdefault(p.phase, []).append(dt)
        epoch_time[p.phase] = epoch_time.get(p.phase, 0.0) + dt
        now = time.perf_counter()
        if p.end_of_epoch and (now - last_report > 30 or p.epoch + 1 == p.n_epochs):
            losses = ", ".join(f"{k} {v:.3g}" for k, v in p.losses.items())
            print(f"  {p.phase:8} epoch {p.epoch + 1}/{p.n_epochs}  step {p.step}/{p.total_steps}  "
                  f"{now - t_train:7.0f} s  {losses}", flush=True)
            last_report = now
        t0 = time.perf_counter()
    train_seconds = time.perf_counter() - t_train

    bmu = est.predict(d["test_x"])  # one posterior sample in parity mode, the mean otherwise
    bmu_mean = est.predict(d["test_x"], sample=False)
    y = d["test_y"]
    collapsed, message = metrics.collapse_check(bmu, cfg.grid.n_nodes, y)
    result = {
        "preset": cfg.preset, "device": str(device), "precision": args.precision, "seed": args.seed,
        "float32_cpu_linear": "oneDNN" if nets.onednn_linear_available() and not args.reference_linear else "default GEMM",
        "n_train": int(len(d["train_x"])), "n_test": int(len(y)),
        "nmi": metrics.nmi(y, bmu), "purity": metrics.purity(y, bmu), "ami": metrics.ami(y, bmu),
        "nmi_mean_assignment": metrics.nmi(y, bmu_mean), "purity_mean_assignment": metrics.purity(y, bmu_mean),
        "assign_with": cfg.train.assign_with, "collapsed": collapsed,
        # The first joint step of every epoch also recomputes the target distribution.
        "seconds_per_step": {k: statistics.median(v) for k, v in steps.items()},
        "seconds_per_phase": epoch_time, "steps": {k: len(v) for k, v in steps.items()},
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - t_start,
        **peak_memory(device),
    }
    print(f"\ntest set ({len(y)} images, BMU of the posterior {cfg.train.assign_with}):")
    print(f"  NMI (geometric) {result['nmi']:.4f}   purity {result['purity']:.4f}   AMI {result['ami']:.4f}")
    print(f"  with the posterior mean: NMI {result['nmi_mean_assignment']:.4f}   "
          f"purity {result['purity_mean_assignment']:.4f}")
    print(f"  {message}")
    print("seconds per step (median): " + ", ".join(
        f"{k} {v:.4f} ({result['steps'][k]} steps, {epoch_time[k]:.0f} s)" for k, v in result["seconds_per_step"].items()))
    print(f"training {train_seconds:.0f} s, total {result['total_seconds']:.0f} s; peak CPU RSS "
          f"{result['cpu_rss_peak_mib']:.0f} MiB"
          + (f", CUDA max allocated {result['cuda_max_allocated_mib']:.0f} MiB" if device.type == "cuda" else ""))
    try:
        print(f"load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    except OSError:
        pass
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
