"""Training cost against cohort size: seconds per joint epoch and peak memory, 1 and 2 processes.

Builds synthetic cohorts of 10^3 to 10^6 patient steps (hourly ICU stays from
:func:`core.data.synthetic.make_icu_cohort`: 16 variables, stays of 24 to 72 hours,
preprocessed with z-scores, forward filling and medians) and writes each one as a cohort
file, a piece at a time. ``--kind table`` writes the same patient steps as rows for DPSOM.

Every size is then trained in a fresh run, for each process count and two data paths:

* ``cohort``: the estimator reads the cohort file batch by batch (out of core);
* ``memory``: every process reads the whole cohort into numpy arrays first and trains on
  its shard of them, as a script holding the data would.

One process runs in a plain subprocess; N processes run under
``python -m torch.distributed.run --standalone --nproc-per-node N`` and join the group
with :meth:`core.distributed.Cluster.from_env` (gloo on the CPU, NCCL with one GPU each
under ``--device cuda``). The quick preset is used with no pretraining, one short SOM
initialisation stage and no prediction phase, so that only joint epochs are timed: from
the last step before the joint phase to the step that ends each joint epoch. An epoch
includes the refresh of the target distribution at its start, also shown on its own
(the first step's time less the median step). Figures per run:

* seconds per joint epoch (median over ``--epochs``; the slowest rank), minibatches per
  second, and patient steps (rows) per second over the whole cohort; a T-DPSOM minibatch
  takes two optimiser steps (the joint objective, then the prediction loss alone);
* the epoch's CPU seconds summed over the processes: the work done, whatever else ran on
  the cores (threads waiting for a descheduled peer spin, so it grows on a busy machine too);
* peak resident memory of every process (Linux ``VmHWM``; ``ru_maxrss`` elsewhere), the
  largest over the ranks, and its rise above the process's peak before it opened the
  cohort; peak GPU memory on CUDA.

Threads are shared fairly: on a machine with C cores one process uses C threads and each of
N processes uses C / N (printed in the header). With ``--max-batches B`` a joint epoch
longer than B minibatches is stopped after B of them and its time extrapolated from the
measured ones (marked ``~`` in the table; only one epoch is then measured).
``--target-chunk S`` refreshes the target distribution S samples at a time (the trainer
already caps each piece of a whole-data pass at 65,536 rows), and ``--default-gemm`` turns
off the oneDNN linear layers (which step back by themselves for layers that meet many batch
shapes); both are there to compare. It prints figures; it asserts nothing.

Usage::

    python benchmarks/scale.py --quick                     # 1e3 and 1e4 steps, a smoke run
    python benchmarks/scale.py                             # 1e3 .. 1e6 steps, 1 and 2 processes
    python benchmarks/scale.py --sizes 1e5,1e6 --procs 2 --paths cohort --max-batches 200
    python benchmarks/scale.py --target-chunk 256 --default-gemm       # for comparison
    python benchmarks/scale.py --kind table --device cuda --procs 1 --keep /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._machine import load_average  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
N_FEATURES, MAX_HOURS, MIN_HOURS = 16, 72, 24
#: Patients simulated per piece while writing a cohort: bounds the builder's memory (~50 MB).
PIECE_PATIENTS = 2_000
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def _peak_rss_bytes() -> int:
    """Peak resident memory of this process so far.

    Linux's ``VmHWM`` belongs to the process's own address space. ``ru_maxrss`` is not used
    there: it keeps the parent's peak across fork and exec, which would credit the driver's
    memory to a one-process run.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


# ----------------------------------------------------------------------------- cohorts
def _cohort_io():
    """The cohort-file module, imported when first needed (h5py is slow to import)."""
    from core.io import cohort_h5

    return cohort_h5


def icu_pieces(total_steps: int, seed: int = 0):
    """Preprocessed ICU stays with exactly ``total_steps`` real patient steps, piece by piece.

    Parameters
    ----------
    total_steps : int
        Patient steps (hours) in all; the last patient's stay is shortened to hit it.
    seed : int
        Piece ``i`` is simulated with seed ``seed * 100_003 + i``.

    Yields
    ------
    preprocessor : Preprocessor
        Fitted on the first piece and used for all (the same for every yield).
    x : ndarray of float32, shape (b, 72, 16)
        Model-space values (0 on padding).
    mask : ndarray of bool, shape (b, 72, 16)
        True where observed.
    lengths : ndarray of int64, shape (b,)
        Real steps per patient.
    """
    from core.data.preprocessing import Preprocessor
    from core.data.synthetic import make_icu_cohort

    pre = None
    left, piece = int(total_steps), 0
    while left > 0:
        ds = make_icu_cohort(PIECE_PATIENTS, n_features=N_FEATURES, max_steps=MAX_HOURS, min_steps=MIN_HOURS,
                             seed=seed * 100_003 + piece)
        piece += 1
        if pre is None:
            pre = Preprocessor(scaling="zscore", ffill_limit=None, impute="median").fit(ds)
        x, mask = pre.transform(ds)
        lengths = ds.lengths.astype(np.int64)
        ends = np.cumsum(lengths)
        if ends[-1] > left:
            # Keep the patients needed to reach `left` steps and end the last stay early.
            keep = int(np.searchsorted(ends, left)) + 1
            x, mask, lengths = x[:keep], mask[:keep].copy(), lengths[:keep].copy()
            lengths[-1] -= int(ends[keep - 1] - left)
            mask[-1, lengths[-1]:] = False
        left -= int(lengths.sum())
        yield pre, x, mask, lengths


def build_cohort(path: Path, total_steps: int, kind: str, seed: int = 0) -> dict:
    """Write a synthetic cohort file of ``total_steps`` patient steps (series or rows).

    Parameters
    ----------
    path : Path
    total_steps : int
    kind : {"series", "table"}
        ``series``: patients ``(N, 72, 16)`` for T-DPSOM. ``table``: the same patient steps
        as ``(total_steps, 16)`` rows for DPSOM.
    seed : int

    Returns
    -------
    dict
        ``samples`` (patients or rows), ``steps``, ``bytes`` (file size), ``seconds``.
    """
    CohortWriter = _cohort_io().CohortWriter
    started = time.perf_counter()
    writer = None
    try:
        for pre, x, mask, lengths in icu_pieces(total_steps, seed):
            if writer is None:
                # The preprocessing is known only once the first piece is simulated.
                writer = CohortWriter(path, n_features=N_FEATURES, feature_names=pre.feature_names_,
                                      temporal=kind == "series", n_steps=MAX_HOURS if kind == "series" else None,
                                      preprocessing=pre, time_unit="h")
            if kind == "series":
                writer.append(x, mask, lengths)
            else:
                real = np.arange(MAX_HOURS)[None, :] < lengths[:, None]
                writer.append(x[real], mask[real])
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    samples = writer.n_samples
    writer.close()
    return {"samples": samples, "steps": int(total_steps), "bytes": path.stat().st_size,
            "seconds": time.perf_counter() - started}


def cohort_steps(path: Path) -> int | None:
    """Patient steps (rows) in an existing cohort file, or None when it cannot be read."""
    from core.errors import InputError

    try:
        with _cohort_io().Cohort(path) as c:
            return int(c.lengths.sum()) if c.temporal else c.n_samples
    except InputError:
        return None


# ----------------------------------------------------------------------------- worker
def bench_config(kind: str, device: str, epochs: int, target_chunks: int | None):
    """The quick preset cut down to the joint phase (plus one short SOM initialisation stage)."""
    from core.config import make_config

    changes = {"train.device": device, "train.seed": 0, "train.epochs_pretrain": 0,
               "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,), "train.epochs_joint": epochs}
    if kind == "series":
        changes["train.epochs_pred"] = 0
    if target_chunks:
        changes["train.target_chunks"] = int(target_chunks)
    return make_config("tdpsom" if kind == "series" else "dpsom", "quick", **changes)


def _load_arrays(cohort):
    """The whole cohort as numpy arrays ``(x, mask, lengths)`` (the in-memory path)."""
    shape = (cohort.n_samples, cohort.n_steps, cohort.n_features) if cohort.temporal \
        else (cohort.n_samples, cohort.n_features)
    x, m = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=bool)
    for a, xs, ms, _ in cohort.iter_chunks():
        x[a:a + len(xs)], m[a:a + len(xs)] = xs, ms
    return x, m, cohort.lengths


def time_joint_epochs(progress_iter, n_batches: int, max_batches: int | None) -> list[dict]:
    """Time every joint epoch of a training run from its progress reports.

    Parameters
    ----------
    progress_iter : iterator of TrainProgress
        ``iter_fit``'s generator; it is closed when an epoch is cut short.
    n_batches : int
        Minibatches per epoch.
    max_batches : int or None
        Stop an epoch after this many minibatches (at least 2) and extrapolate.

    Returns
    -------
    list of dict
        Per epoch: ``seconds`` (wall clock, measured or extrapolated), ``cpu_s`` (this
        process's CPU time, likewise), ``first_s`` (target refresh plus the first step),
        ``step_s`` (median of the other steps, or None), ``measured`` (minibatches timed)
        and ``extrapolated``.
    """
    epochs: list[dict] = []
    last, last_cpu = time.perf_counter(), time.process_time()
    walls: list[float] = []  # this epoch's minibatches; the first includes the target refresh
    cpus: list[float] = []
    for progress in progress_iter:
        now, now_cpu = time.perf_counter(), time.process_time()
        took, took_cpu = now - last, now_cpu - last_cpu
        last, last_cpu = now, now_cpu
        if progress.phase != "joint":
            continue
        walls.append(took)
        cpus.append(took_cpu)
        cut = max_batches is not None and len(walls) >= max_batches and not progress.end_of_epoch
        if not (progress.end_of_epoch or cut):
            continue
        if cut:
            wall = walls[0] + (n_batches - 1) * statistics.fmean(walls[1:])
            cpu = cpus[0] + (n_batches - 1) * statistics.fmean(cpus[1:])
        else:
            wall, cpu = sum(walls), sum(cpus)
        epochs.append({"seconds": wall, "cpu_s": cpu, "first_s": walls[0],
                       "step_s": statistics.median(walls[1:]) if len(walls) > 1 else None,
                       "measured": len(walls), "extrapolated": cut})
        walls, cpus = [], []
        if cut:
            # Every rank cuts at the same minibatch, so the process group stays in step.
            progress_iter.close()
            break
    return epochs


def worker(args) -> None:
    """One training process: train on a cohort, write the figures as JSON (``--worker``)."""
    import torch

    torch.set_num_threads(args.threads)
    from core import nets
    from core.distributed import Cluster, launched_by_torchrun
    from core.model import DPSOM, TDPSOM

    if args.default_gemm:
        # For the rest of this process; the training loop keeps an enclosing choice.
        nets.fast_cpu_linear(False).__enter__()

    cluster = Cluster.from_env(args.device) if launched_by_torchrun() else Cluster.single()
    base = _peak_rss_bytes()  # interpreter, torch and the process group, before any data
    cohort = _cohort_io().Cohort(args.cohort)
    kind = "series" if cohort.temporal else "table"
    steps = int(cohort.lengths.sum()) if cohort.temporal else cohort.n_samples
    # Pieces per process such that none holds more than --target-chunk samples.
    chunks = -(-cohort.n_samples // args.target_chunk) if args.target_chunk else None
    config = bench_config(kind, args.device, args.epochs, chunks)
    model = (TDPSOM if cohort.temporal else DPSOM)(config=config)
    if args.path == "cohort":
        progress = model.iter_fit(cohort, cluster=cluster)
    else:
        x, m, lengths = _load_arrays(cohort)
        progress = model.iter_fit(x, mask=m, lengths=lengths, cluster=cluster) if cohort.temporal \
            else model.iter_fit(x, mask=m, cluster=cluster)
    trainer = model.trainer_
    n_batches = trainer.batches_per_epoch
    try:
        epochs = time_joint_epochs(progress, n_batches, args.max_batches)
        error = None
    except Exception as exc:  # reported in the table instead of losing the whole sweep
        epochs, error = [], f"{type(exc).__name__}: {exc}"
    gpu_peak = None
    if model.device_.type == "cuda":
        gpu_peak = int(torch.cuda.max_memory_allocated(model.device_))
    result = {"rank": cluster.rank, "world_size": cluster.world_size, "threads": torch.get_num_threads(),
              "kind": kind, "path": args.path, "samples": cohort.n_samples, "steps": steps,
              "local_samples": trainer.data.n_samples, "batch_size": trainer.batch_size,
              "n_batches": n_batches, "epochs": epochs, "error": error, "device": str(model.device_),
              "rss_base": base, "rss_peak": _peak_rss_bytes(), "gpu_peak": gpu_peak,
              "target_chunks": config.train.target_chunks}
    Path(args.out, f"rank-{cluster.rank}.json").write_text(json.dumps(result))
    cohort.close()
    cluster.close()


# ----------------------------------------------------------------------------- driver
def run_one(cohort: Path, path: str, procs: int, threads: int, args, out: Path) -> dict:
    """Train ``cohort`` in a fresh run of ``procs`` processes; the ranks' figures combined.

    Returns
    -------
    dict
        ``ranks`` (each rank's JSON), ``wall`` (seconds for the whole run, start-up
        included) and ``error`` (None, or the tail of the output of a failed run).
    """
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rank-*.json"):
        old.unlink()
    tail = ["--worker", "--cohort", str(cohort), "--path", path, "--out", str(out), "--epochs", str(args.epochs),
            "--device", args.device, "--threads", str(threads)]
    if args.max_batches:
        tail += ["--max-batches", str(args.max_batches)]
    if args.target_chunk:
        tail += ["--target-chunk", str(args.target_chunk)]
    if args.default_gemm:
        tail.append("--default-gemm")
    script = str(Path(__file__).resolve())
    if procs == 1:
        cmd = [sys.executable, script, *tail]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
               script, *tail]
    env = {k: v for k, v in os.environ.items() if k not in _TORCHRUN_ENV}
    # Every process gets its fair share of the cores (torchrun would otherwise pick 1 thread).
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
        failed = proc.returncode != 0
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        failed, log = True, f"timed out after {args.timeout} s\n{exc.stderr or ''}"
    wall = time.perf_counter() - started
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank-*.json"))]
    error = None
    if failed or len(ranks) != procs:
        error = log[-2000:] if isinstance(log, str) else str(log)[-2000:]
    elif any(r["error"] for r in ranks):
        error = next(r["error"] for r in ranks if r["error"])
    return {"ranks": ranks, "wall": wall, "error": error}


def summarise(run: dict) -> dict | None:
    """One table row from a run's ranks: the slowest rank's epochs, memory over ranks."""
    ranks = run["ranks"]
    if not ranks or not ranks[0]["epochs"]:
        return None
    n_ep = min(len(r["epochs"]) for r in ranks)
    # The ranks wait for each other at every step, so an epoch lasts as long as its slowest rank.
    per_epoch = [max(r["epochs"][i]["seconds"] for r in ranks) for i in range(n_ep)]
    seconds = statistics.median(per_epoch)
    # CPU time summed over the ranks: the work an epoch costs, whatever else the cores ran.
    cpu = statistics.median(sum(r["epochs"][i]["cpu_s"] for r in ranks) for i in range(n_ep))
    r0 = ranks[0]
    firsts = [max(r["epochs"][i]["first_s"] for r in ranks) for i in range(n_ep)]
    step_s = [r["epochs"][i]["step_s"] for r in ranks for i in range(n_ep) if r["epochs"][i]["step_s"]]
    # A median step needs a few steps besides the first; with fewer the difference is noise.
    enough = r0["epochs"][0]["measured"] >= 4
    target = statistics.median(firsts) - statistics.median(step_s) if step_s and enough else None
    mib = 1 << 20
    return {
        "seconds": seconds, "cpu_s": cpu, "batches": r0["n_batches"], "batch_per_s": r0["n_batches"] / seconds,
        "steps_per_s": r0["steps"] / seconds, "target_s": target,
        "extrapolated": any(r["epochs"][0]["extrapolated"] for r in ranks),
        "measured": r0["epochs"][0]["measured"],
        "rss": [r["rss_peak"] / mib for r in ranks], "rss_max": max(r["rss_peak"] for r in ranks) / mib,
        "rise_max": max(r["rss_peak"] - r["rss_base"] for r in ranks) / mib,
        "gpu_max": max((r["gpu_peak"] or 0) for r in ranks) / mib if ranks[0]["gpu_peak"] is not None else None,
        "threads": r0["threads"], "samples": r0["samples"], "batch_size": r0["batch_size"],
    }


HEADER = (f"{'steps':>9} {'samples':>8} {'procs':>5} {'thr':>3} {'path':>6} {'batches':>7} {'s/epoch':>9} "
          f"{'cpu s':>8} {'batch/s':>8} {'steps/s':>9} {'target s':>8} {'peak RSS MiB per rank':>21} "
          f"{'max':>6} {'rise':>6}")


def format_row(size: int, procs: int, path: str, s: dict | None, run: dict, cuda: bool) -> str:
    """One line of the table (or of the failure that replaced it)."""
    if s is None:
        why = (run["error"] or "no epoch finished").strip().splitlines()
        return f"{size:>9} {'':>8} {procs:>5} {'':>3} {path:>6}   failed: {why[-1] if why else '?'}"
    mark = "~" if s["extrapolated"] else " "
    target = f"{s['target_s']:8.2f}" if s["target_s"] is not None else f"{'-':>8}"
    line = (f"{size:>9} {s['samples']:>8} {procs:>5} {s['threads']:>3} {path:>6} {s['batches']:>7} "
            f"{mark}{s['seconds']:8.2f} {mark}{s['cpu_s']:7.2f} {s['batch_per_s']:8.1f} {s['steps_per_s']:9.0f} "
            f"{target} "
            f"{' '.join(f'{v:.0f}' for v in s['rss']):>21} {s['rss_max']:6.0f} {s['rise_max']:6.0f}")
    if cuda:
        line += f" {s['gpu_max']:8.0f}"
    return line


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes numbers like 1e3,1e4; got {text!r}") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("every size must be at least 100 patient steps")
    return sizes


def _parse_procs(text: str) -> list[int]:
    try:
        procs = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--procs takes whole numbers like 1,2; got {text!r}") from None
    if not procs or min(procs) < 1:
        raise argparse.ArgumentTypeError("process counts must be at least 1")
    return procs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=_parse_sizes, default=list(SIZES), metavar="N,N,..",
                   help="patient steps per cohort (default 1e3,1e4,1e5,1e6)")
    p.add_argument("--procs", type=_parse_procs, default=[1, 2], metavar="P,P,..", help="process counts (default 1,2)")
    p.add_argument("--kind", choices=("series", "table"), default="series",
                   help="series: T-DPSOM on patients (default); table: DPSOM on the steps as rows")
    p.add_argument("--paths", default="cohort,memory", metavar="cohort,memory",
                   help="data paths to run (default both)")
    p.add_argument("--memory-up-to", type=lambda v: int(float(v)), default=None, metavar="STEPS",
                   help="run the in-memory path only up to this many steps (default: every size)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu: gloo; cuda: NCCL, one GPU per process")
    p.add_argument("--epochs", type=int, default=2, help="joint epochs per run (median reported; default 2)")
    p.add_argument("--max-batches", type=int, default=None, metavar="B",
                   help="cut a joint epoch after B minibatches and extrapolate its time (marked ~)")
    p.add_argument("--target-chunk", type=int, default=None, metavar="SAMPLES",
                   help="refresh the target distribution in pieces of at most SAMPLES patients (series) or rows "
                        "(table) per process (default: the preset's number of pieces)")
    p.add_argument("--default-gemm", action="store_true",
                   help="CPU linear layers through torch's default GEMM instead of oneDNN (core.nets.fast_cpu_linear)")
    p.add_argument("--threads", type=int, default=0, metavar="C",
                   help="cores to share among the processes of a run (default: all of this machine's)")
    p.add_argument("--quick", action="store_true", help="only 1e3 and 1e4 steps (a smoke run)")
    p.add_argument("--keep", metavar="DIR", help="keep the cohort files (reused when present) and results here")
    p.add_argument("--timeout", type=float, default=7200.0, metavar="S", help="give up on one run after S seconds")
    p.add_argument("--seed", type=int, default=0, help="cohort seed")
    # Internal: one training process of a run.
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cohort", help=argparse.SUPPRESS)
    p.add_argument("--path", choices=("cohort", "memory"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker:
        worker(args)
        return
    import torch

    sizes = list(QUICK_SIZES) if args.quick else args.sizes
    paths = [v.strip() for v in args.paths.split(",") if v.strip()]
    if not set(paths) <= {"cohort", "memory"} or not paths:
        raise SystemExit(f"--paths takes cohort and/or memory; got {args.paths!r}")
    if args.epochs < 1:
        raise SystemExit("--epochs must be at least 1")
    if args.target_chunk is not None and args.target_chunk < 1:
        raise SystemExit("--target-chunk must be at least 1")
    if args.max_batches is not None and args.max_batches < 2:
        raise SystemExit("--max-batches must be at least 2 (the first step also refreshes the target)")
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible")
    cores = args.threads or os.cpu_count() or 1
    gpus = torch.cuda.device_count() if cuda else 0

    config = bench_config(args.kind, args.device, args.epochs, None)
    net = config.network
    print(f"{'T-DPSOM' if args.kind == 'series' else 'DPSOM'} quick preset: {config.grid.height}x{config.grid.width} "
          f"map, hidden {net.hidden}, latent {net.latent_dim}"
          f"{f', LSTM {net.lstm_dim}' if args.kind == 'series' else ''}; global batch {config.train.batch_size} "
          f"{'patients' if args.kind == 'series' else 'rows'} (split between processes); {args.epochs} joint "
          f"epoch(s) timed after one SOM-initialisation epoch; target pass in "
          + (f"pieces of at most {args.target_chunk} samples" if args.target_chunk
             else f"{config.train.target_chunks} piece(s) per process"))
    print(f"torch {torch.__version__}, device {args.device}"
          f"{f' ({gpus} GPU(s): {torch.cuda.get_device_name(0)})' if cuda else ''}; {cores} cores shared fairly: "
          + ", ".join(f"{p} process(es) x {max(1, cores // p)} thread(s)" for p in args.procs))
    from core import nets

    linear = "torch's default GEMM" if args.default_gemm or not nets.onednn_linear_available() else "oneDNN"
    print(f"cohorts: synthetic ICU stays, {N_FEATURES} variables, {MIN_HOURS}-{MAX_HOURS} h; CPU linear layers: "
          f"{linear}; load average at start: {load_average()}")

    tmp = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="dpsom-scale-")
        work = Path(tmp.name)
    rows, results = [], []
    try:
        for size in sizes:
            path = work / f"{args.kind}-{size}-seed{args.seed}.h5"
            if path.exists() and cohort_steps(path) == size:
                print(f"\n{size} steps: reusing {path.name}", flush=True)
            else:
                info = build_cohort(path, size, args.kind, args.seed)
                print(f"\n{size} steps: wrote {info['samples']} {'patients' if args.kind == 'series' else 'rows'}, "
                      f"{info['bytes'] / 2**20:.1f} MiB in {info['seconds']:.1f} s", flush=True)
            for procs in args.procs:
                if cuda and procs > gpus:
                    print(f"  {procs} processes skipped: one GPU each is needed, {gpus} visible", flush=True)
                    continue
                threads = max(1, cores // procs)
                for data_path in paths:
                    if data_path == "memory" and args.memory_up_to is not None and size > args.memory_up_to:
                        continue
                    load_before = load_average()
                    run = run_one(path, data_path, procs, threads, args, work / "runs" / f"{size}-{procs}-{data_path}")
                    s = summarise(run)
                    row = format_row(size, procs, data_path, s, run, cuda)
                    print(f"  {row.strip()}   (run {run['wall']:.0f} s, load {load_before} -> {load_average()})",
                          flush=True)
                    rows.append(row)
                    results.append({"size": size, "procs": procs, "path": data_path, "summary": s,
                                    "wall": run["wall"], "error": run["error"], "ranks": run["ranks"]})
    finally:
        if args.keep:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            (work / f"results-{args.kind}-{args.device}-{stamp}.json").write_text(json.dumps(results, indent=1))
        if tmp is not None:
            tmp.cleanup()

    print(f"\n{HEADER}{' GPU MiB' if cuda else ''}")
    for row in rows:
        print(row)
    print("\nsteps: patient steps (rows) in the cohort; samples: patients (series) or rows (table); thr: torch "
          "threads per process; s/epoch: one joint epoch including its target refresh, wall clock of the slowest "
          "rank, median over epochs (~: extrapolated from the first minibatches); cpu s: the same epoch's CPU "
          "time summed over the processes; batch/s: minibatches per second "
          f"({'two optimiser steps each' if args.kind == 'series' else 'one optimiser step each'}); steps/s: patient "
          "steps per second over the whole cohort; target s: target refresh at the start of an epoch; peak RSS: "
          "peak resident memory (VmHWM) of each process; rise: the largest peak above a process's peak before "
          "it opened the cohort (model, optimiser, kernels' caches and data)."
          f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
