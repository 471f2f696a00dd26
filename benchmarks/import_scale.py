"""How long importing a long-format CSV takes, and how much memory it needs, as it grows.

Generates long-format files (patient, hour, variable, value) of 1e5 and 1e6 rows (and 1e7
with ``--full``) in a temporary directory, reads each with ``read_data`` in a fresh Python
process, and prints rows, file size, seconds, the peak resident memory of that process above
its baseline, and what ``estimate_memory`` predicted. It prints figures; it asserts nothing.

Usage::

    python benchmarks/import_scale.py            # 1e5 and 1e6 rows
    python benchmarks/import_scale.py --full     # also 1e7 rows
    python benchmarks/import_scale.py --rows 300000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = ["HR", "MAP", "SysABP", "DiasABP", "RespRate", "Temp", "SpO2", "GCS", "Na", "K",
             "Creatinine", "BUN", "HCO3", "Glucose", "WBC", "Platelets", "Lactate", "pH",
             "PaO2", "FiO2"]
HOURS = 72
ROWS_PER_PATIENT = 200


def write_long_csv(path: Path, n_rows: int, seed: int = 0) -> None:
    """Write ``n_rows`` rows of a synthetic long-format cohort, in chunks (bounded memory)."""
    rng = np.random.default_rng(seed)
    n_patients = max(1, n_rows // ROWS_PER_PATIENT)
    chunk = 500_000
    names = np.asarray(VARIABLES)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("stay_id,hour,variable,value\n")
        done = 0
        while done < n_rows:
            m = min(chunk, n_rows - done)
            pid = rng.integers(0, n_patients, m) + 100000
            hour = np.round(rng.uniform(0, HOURS, m), 2)
            var = rng.integers(0, len(VARIABLES), m)
            value = np.round(rng.normal(80, 15, m), 1)
            lines = [f"{a},{b},{c},{d}\n" for a, b, c, d in
                     zip(pid.tolist(), hour.tolist(), names[var].tolist(), value.tolist())]
            f.writelines(lines)
            done += m


def _child(path: str) -> None:
    """Import one file and print a JSON line with the figures (run in a fresh process)."""
    sys.path.insert(0, str(ROOT))
    from core.data.readers import estimate_memory, read_data

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    estimate = estimate_memory(path)
    t0 = time.perf_counter()
    ds = read_data(path, id_col="stay_id", time_col="hour", var_col="variable",
                   value_col="value", time_step=1.0)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    print(json.dumps({
        "seconds": seconds,
        "peak_bytes": (peak - base) * scale,
        "estimate_bytes": estimate,
        "shape": list(ds.values.shape),
        "observed": int(ds.mask.sum()),
    }))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 1e7 rows")
    parser.add_argument("--rows", type=int, nargs="*", help="explicit row counts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return
    sizes = args.rows or ([10**5, 10**6] + ([10**7] if args.full else []))
    print(f"{'rows':>10} {'file MB':>8} {'write s':>8} {'read s':>8} {'rows/s':>10} "
          f"{'peak MB':>8} {'est. MB':>8}  dataset shape")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"long_{n}.csv"
            t0 = time.perf_counter()
            write_long_csv(path, n)
            written = time.perf_counter() - t0
            out = subprocess.run([sys.executable, __file__, "--child", str(path)],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"{n:>10} failed:\n{out.stderr}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            mb = 1024 ** 2
            print(f"{n:>10} {path.stat().st_size / mb:>8.1f} {written:>8.1f} {r['seconds']:>8.2f} "
                  f"{n / r['seconds']:>10.0f} {r['peak_bytes'] / mb:>8.0f} "
                  f"{r['estimate_bytes'] / mb:>8.0f}  {tuple(r['shape'])}", flush=True)
            os.remove(path)


if __name__ == "__main__":
    main()
