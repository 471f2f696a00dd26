"""Peak memory of ``dpsom apply`` on a large table, read chunk by chunk or whole.

Trains a small DPSOM project (2,000 rows, 3x3 map, a few steps), writes tables of 1e5 and
1e6 rows (10 features and an id) in a temporary folder, and maps each with ``dpsom apply``
in a fresh Python process, twice: as shipped (chunk by chunk) and with the chunked path
switched off (the whole file read at once, as before). It prints the rows, the file size,
the seconds, the peak resident memory of the process, and that peak above a 1,000-row apply
(the interpreter, torch and the project). It prints figures; it asserts nothing.

Usage::

    python benchmarks/apply_memory.py                 # 1e5 and 1e6 rows
    python benchmarks/apply_memory.py --rows 100000   # one size
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._machine import load_average  # noqa: E402

N_FEATURES = 10

#: Runs one apply in this process and prints its peak resident memory (bytes) as JSON.
CHILD = """
import json, resource, sys, time
import core.cli as cli
if sys.argv[1] == "whole":
    cli._apply_in_chunks = lambda args, run: None
start = time.perf_counter()
code = cli.main(["apply", sys.argv[2], sys.argv[3], "--assignments", sys.argv[4]])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak *= 1 if sys.platform == "darwin" else 1024
print(json.dumps({"code": code, "seconds": seconds, "peak": peak}))
"""


def write_table(path: Path, n_rows: int, seed: int = 0) -> None:
    """``n_rows`` rows of ``pid`` and ``x0..x9``, written in blocks (bounded memory)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("pid," + ",".join(f"x{j}" for j in range(N_FEATURES)) + "\n")
        for start in range(0, n_rows, 100_000):
            n = min(100_000, n_rows - start)
            x = rng.normal(size=(n, N_FEATURES)) + rng.integers(0, 4, size=(n, 1))
            lines = [f"S{start + i}," + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(x)]
            fh.write("\n".join(lines) + "\n")


def run_apply(mode: str, project: Path, data: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(project), str(data), str(out)],
                         capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode != 0:
        raise SystemExit(f"apply failed ({mode}): {res.stderr.strip()}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    from core.cli import main as dpsom

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = tmp / "train.csv"
        write_table(train, 2000, seed=1)
        project = tmp / "p.h5"
        if dpsom(["train", str(train), "--out", str(project), "--grid", "3x3", "--max-steps", "20",
                  "--quiet", "--autosave", "0"]) != 0:
            raise SystemExit("training the benchmark project failed")
        small = tmp / "small.csv"
        write_table(small, 1000, seed=2)
        print(f"dpsom apply peak memory; load average {load_average()}; {N_FEATURES} features, 3x3 map")
        print(f"{'mode':<8} {'rows':>9} {'file MB':>8} {'seconds':>8} {'peak MB':>8} {'above base MB':>14}")
        for mode in ("chunked", "whole"):
            base = run_apply(mode, project, small, tmp / "out.csv")["peak"]
            for n in args.rows:
                data = tmp / f"t{n}.csv"
                if not data.exists():
                    write_table(data, n, seed=3)
                r = run_apply(mode, project, data, tmp / "out.csv")
                print(f"{mode:<8} {n:>9} {data.stat().st_size / 1e6:>8.1f} {r['seconds']:>8.1f} "
                      f"{r['peak'] / 1e6:>8.0f} {(r['peak'] - base) / 1e6:>14.0f}")


if __name__ == "__main__":
    main()
