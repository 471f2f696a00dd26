"""Peak memory of reading a cohort in which one stay is far longer than all the others.

Writes a wide-format CSV (stay_id, hour, one column per variable) of ``--patients`` stays of
``--short`` hourly rows plus one stay of ``--long`` hourly rows, then in a fresh Python
process per variant reads it with ``read_data`` and preprocesses it as training does
(``Preprocessor().fit_transform``), and prints the grid's shape, the steps kept against the
observed ones, the grid's cells per observed step, and the peak resident memory above the
process's baseline after each stage. It prints figures; it asserts nothing.

Variants:

``padded``
    ``max_steps`` set to the longest stay: every patient padded to the longest one, which is
    what the reader did by default before it set far longer stays apart.
``default``
    No ``max_steps``: the reader's default path as a user gets it (today: the long stay kept
    whole in consecutive rows as long as the longest other stay).
``cut``
    ``--cut N``: an explicit ``max_steps`` (``--max-time-steps N``), which drops the steps
    beyond N.

Usage::

    python benchmarks/long_patient_memory.py                    # 1000 x 12 h + 1 x 10,000 h
    python benchmarks/long_patient_memory.py --variables 4 --long 2000
    python benchmarks/long_patient_memory.py --cut 48              # also an explicit cut
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._machine import load_average  # noqa: E402


def write_cohort(path: Path, n_patients: int, short: int, long: int, n_variables: int,
                 seed: int = 0) -> int:
    """Write the cohort as CSV; return the number of rows (observed steps)."""
    rng = np.random.default_rng(seed)
    pid = np.concatenate([np.repeat(np.arange(n_patients), short), np.full(long, n_patients)])
    hour = np.concatenate([np.tile(np.arange(short), n_patients), np.arange(long)])
    values = rng.normal(80, 12, (pid.size, n_variables)).round(1)
    header = "stay_id,hour," + ",".join(f"v{j}" for j in range(n_variables))
    body = np.column_stack([pid, hour, values])
    fmt = ["%d", "%d"] + ["%.1f"] * n_variables
    np.savetxt(path, body, fmt=fmt, delimiter=",", header=header, comments="")
    return int(pid.size)


def _peak_bytes(base: int) -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * scale


def _child(path: str, max_steps: int | None) -> None:
    """Read and preprocess one file; print a JSON line with the figures."""
    from core.data.preprocessing import Preprocessor
    from core.data.readers import read_data

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    ds = read_data(path, id_col="stay_id", time_col="hour", max_steps=max_steps)
    read_s = time.perf_counter() - t0
    read_peak = _peak_bytes(base)
    X, _ = Preprocessor().fit_transform(ds)
    total_s = time.perf_counter() - t0
    print(json.dumps({
        "shape": list(ds.values.shape),
        "real_steps": int(ds.lengths.sum()),
        "patients": int(ds.n_patients),
        "read_s": read_s, "total_s": total_s,
        "read_peak": read_peak, "total_peak": _peak_bytes(base),
        "model_input_bytes": int(X.nbytes),
        "notes": [w for w in ds.warnings if "far more than the rest" in w or "far longer" in w],
    }))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000, help="stays of --short hours")
    parser.add_argument("--short", type=int, default=12)
    parser.add_argument("--long", type=int, default=10_000, help="hours of the one long stay")
    parser.add_argument("--variables", type=int, default=16)
    parser.add_argument("--cut", type=int, help="also run an explicit max_steps of this many steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.max_steps)
        return
    mb = 1024 ** 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.csv"
        rows = write_cohort(path, args.patients, args.short, args.long, args.variables)
        print(f"{args.patients} stays of {args.short} h + 1 stay of {args.long} h, "
              f"{args.variables} variables: {rows:,} rows, {path.stat().st_size / mb:.1f} MB of "
              f"CSV; load average {load_average()}")
        print(f"{'variant':<12} {'grid (rows, T, D)':>20} {'steps kept':>11} {'cells/step':>10} "
              f"{'read s':>7} {'read MB':>8} {'+prep s':>8} {'+prep MB':>9} {'X MB':>7}")
        variants = [("padded", args.long), ("default", None)]
        if args.cut:
            variants.append((f"cut {args.cut}", args.cut))
        for name, max_steps in variants:
            cmd = [sys.executable, __file__, "--child", str(path)]
            if max_steps is not None:
                cmd += ["--max-steps", str(max_steps)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
                print(f"{name:<12} failed: {last}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            cells = r["shape"][0] * r["shape"][1]
            print(f"{name:<12} {str(tuple(r['shape'])):>20} {r['real_steps']:>11,} "
                  f"{cells / rows:>10.2f} {r['read_s']:>7.2f} {r['read_peak'] / mb:>8.0f} {r['total_s']:>8.2f} "
                  f"{r['total_peak'] / mb:>9.0f} {r['model_input_bytes'] / mb:>7.0f}", flush=True)
            for note in r["notes"]:
                print(f"{'':<12} note: {note}")


if __name__ == "__main__":
    main()
