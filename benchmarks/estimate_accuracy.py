"""How close the time and memory printed before training come to what the run then takes.

For each set, a fresh Python process does what ``dpsom train DATA`` does on the default path:
read the data (CSV sets through the same reader as the command line), let the rule of
``core/defaults.py`` choose the settings, print the estimate (``ModelRun.estimate``), then train
(``ModelRun.iter_train``: preprocessing, network, the whole schedule). Saving the project is not
part of it. A fresh process per set, so that one run's freed memory cannot hide the next's.

What is measured, in that child process:

- time: wall clock of the training loop alone (the estimate's own probe is not counted);
- memory: the peak resident set size during training minus the resident set size right before
  it. The kernel's high-water mark (``VmHWM`` in ``/proc/self/status``) is reset just before
  training by writing ``5`` to ``/proc/self/clear_refs`` and read once training ends, so the
  peak is exact (not sampled). Where that reset is refused, a thread samples ``VmRSS`` every
  2 ms instead (the table says which). Memory freed before training (reading the file, the
  estimate's probe) would be reused by training without showing as growth, so ``malloc_trim(0)``
  hands it back to the system before the baseline is taken: the growth is what training needs,
  not what happened to be free. ``RSS before`` (the program, torch and the data) is printed too.

Usage::

    nice -n 10 python benchmarks/estimate_accuracy.py --threads 1
    nice -n 10 python benchmarks/estimate_accuracy.py --threads 1 --sets digits icu300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: A schedule of one or two epochs per phase, for the sets whose default schedule would take many
#: minutes on one thread. Every phase still runs (the memory peak can sit in any of them: the
#: prototype start and the target pass go over the whole data), and the estimate sees the same
#: schedule, as it sees ``--epochs``.
SHORT = {"train.epochs_pretrain": 2, "train.som_init_epochs": 1, "train.epochs_joint": 2, "train.epochs_pred": 1}

#: name: (what the child builds, preset, short schedule or not, options as given on the command
#: line, role). The memory model's constants were fitted on the "fit" sets; the "held out" sets
#: (other sizes, grids, batches and presets) check it on runs it was not fitted to.
SETS = {
    "breast_cancer": ("breast_cancer", "quick", False, {}, "fit"),
    "digits": ("digits", "quick", False, {}, "fit"),
    "table20k": ("table20k", "quick", True, {}, "fit"),
    "icu300": ("icu300", "quick", False, {}, "fit"),
    "icu2000": ("icu2000", "quick", True, {}, "fit"),
    "paper784": ("random784", "paper", True, {}, "fit"),
    "digits_12x12_b256": ("digits", "quick", True, {"grid.height": 12, "grid.width": 12,
                                                     "train.batch_size": 256}, "held out"),
    "table50k_20": ("table50k", "quick", True, {}, "held out"),
    "icu800": ("icu800", "quick", True, {}, "held out"),
    "icu4000": ("icu4000", "quick", True, {}, "held out"),
    "icu300_paper": ("icu300", "paper", True, {}, "held out"),
    "breast_cancer_paper": ("breast_cancer", "paper", True, {}, "held out"),
}


def _short(cfg):
    """``cfg`` on the short schedule; phases the preset leaves out (0 epochs) stay out."""
    t = cfg.train
    changes = {k: (0 if getattr(t, k.split(".")[1]) == 0 else v) for k, v in SHORT.items()
               if k != "train.som_init_epochs"}
    changes["train.som_init_epochs"] = tuple(1 for _ in t.som_init_epochs)
    return cfg.replace(**changes)


def _write_csv(path: Path, X, y=None) -> None:
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    if y is not None:
        frame["label"] = y
    frame.to_csv(path, index=False)


def _dataset(kind: str, workdir: Path):
    """The data set ``kind``: CSV sets are written to ``workdir`` and read back as ``dpsom train`` would."""
    import numpy as np

    from core.data.readers import read_data

    if kind.startswith("icu"):
        from core.data.synthetic import make_icu_cohort

        return make_icu_cohort(int(kind[3:]), seed=0)
    path = workdir / f"{kind}.csv"
    if not path.exists():
        if kind == "digits":
            from sklearn.datasets import load_digits

            d = load_digits()
            _write_csv(path, d.data / 16.0, d.target)
        elif kind == "breast_cancer":
            from sklearn.datasets import load_breast_cancer

            d = load_breast_cancer()
            _write_csv(path, d.data, d.target)
        elif kind in ("table20k", "table50k"):
            from core.data.synthetic import make_manifold_clusters

            if kind == "table20k":
                X, y = make_manifold_clusters(20000, n_features=50, seed=0)[:2]
            else:
                X, y = make_manifold_clusters(50000, n_features=20, layout="sheet", seed=1)[:2]
            _write_csv(path, X, y)
        elif kind == "random784":
            rng = np.random.default_rng(0)
            _write_csv(path, rng.random((3000, 784), dtype=np.float32).round(3))
        else:
            raise SystemExit(f"unknown set {kind}")
    labels = None if kind == "random784" else ["label"]
    return read_data(str(path), labels=labels)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _release_free_memory() -> None:
    """Hand memory freed earlier (reading the file, the estimate's probe) back to the system.

    Otherwise training reuses it without growing the resident set, and the growth measured
    depends on what ran before rather than on what training needs.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: measure without
        pass


class _PeakRSS:
    """Peak resident set size over a block: the kernel's exact high-water mark, else sampling."""

    def __enter__(self):
        import gc

        gc.collect()
        _release_free_memory()
        self.base = _status_kib("VmRSS") * 1024
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.how = "VmHWM"
        except OSError:
            self.how = "sampled"
            self._stop = threading.Event()
            self._peak = self.base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, _status_kib("VmRSS") * 1024)
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.how == "VmHWM":
            self.peak = _status_kib("VmHWM") * 1024
        else:
            self._stop.set()
            self._thread.join()
            self.peak = self._peak
        self.growth = self.peak - self.base
        return False


def child(name: str, threads: int, workdir: Path) -> dict:
    import torch

    from core.workflow import ModelRun, propose_settings

    if threads > 0:
        torch.set_num_threads(threads)
    kind, preset, short, options, role = SETS[name]
    ds = _dataset(kind, workdir)
    proposal = propose_settings(ds, preset, device="cpu")
    cfg = proposal.config.replace(**{"train.seed": 1, **options})
    if short:
        cfg = _short(cfg)
    run = ModelRun(ds, cfg)
    run.validate()
    started = time.perf_counter()
    est = run.estimate()
    probe_seconds = time.perf_counter() - started
    with _PeakRSS() as mem:
        started = time.perf_counter()
        steps = 0
        for _ in run.iter_train():
            steps += 1
        seconds = time.perf_counter() - started
    shape = (f"{ds.n_samples} patients, {ds.n_points} steps" if ds.is_series else f"{ds.n_samples} rows")
    return {"set": name, "role": role, "model": cfg.model, "preset": cfg.preset, "data": f"{shape} x {ds.n_features}",
            "grid": f"{cfg.grid.height}x{cfg.grid.width}", "batch": cfg.train.batch_size, "steps": steps,
            "est_steps": est["steps"], "est_seconds": est["seconds"], "est_bytes": est["memory_bytes"],
            "seconds": seconds, "probe_seconds": probe_seconds, "base_bytes": mem.base, "peak_bytes": mem.peak,
            "growth_bytes": mem.growth, "how": mem.how, "est_parts": est.get("memory_parts", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads in each run (0: torch's default)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.threads, Path(args.workdir))), flush=True)
        return

    from benchmarks._machine import load_average

    print(f"{os.cpu_count()} cores, {args.threads} thread(s) per run, load {load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            proc = subprocess.run([sys.executable, __file__, "--child", name, "--threads", str(args.threads),
                                   "--workdir", tmp], capture_output=True, text=True, env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{name}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(lines[-1][len("RESULT "):])
            rows.append(r)
            print(f"{r['set']:<20} {r['role']:<8} {r['model']:<6} {r['preset']:<5} {r['data']:<34} grid "
                  f"{r['grid']:<5} batch {r['batch']:<4} steps {r['steps']:<5} | time est {r['est_seconds']:6.1f} s "
                  f"run {r['seconds']:6.1f} s ratio {r['est_seconds'] / r['seconds']:4.2f} | memory est "
                  f"{r['est_bytes'] / 2**20:6.1f} MiB growth {r['growth_bytes'] / 2**20:6.1f} MiB ratio "
                  f"{r['est_bytes'] / max(1, r['growth_bytes']):4.2f} | RSS before {r['base_bytes'] / 2**20:.0f} "
                  f"MiB ({r['how']})", flush=True)
    for role in ("fit", "held out"):
        sel = [r for r in rows if r["role"] == role]
        if sel:
            t = [r["est_seconds"] / r["seconds"] for r in sel]
            m = [r["est_bytes"] / max(1, r["growth_bytes"]) for r in sel]
            print(f"{role}: estimate / measured, time {min(t):.2f}-{max(t):.2f}, memory {min(m):.2f}-{max(m):.2f} "
                  f"({len(sel)} runs)")
    print(f"load after: {load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
