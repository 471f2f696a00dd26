"""Peak memory of ``dpsom apply`` on large inputs, read in parts or whole.

Three inputs, each mapped by ``dpsom apply`` in a fresh Python process, twice: as shipped
(in parts) and with reading in parts switched off (the whole file read at once, as before):

* ``table``: CSV tables of 1e5 and 1e6 rows (10 features and an id), mapped by a small DPSOM
  project (2,000 rows, 3x3 map, a few steps), chunk by chunk;
* ``series``: a wide-format series CSV of 1e6 rows (patients of 24 hourly steps, 10
  features), mapped by a small T-DPSOM project, in groups of whole patients;
* ``xlsx``: an .xlsx workbook of 2e5 rows of the table, read row by row.

It prints the rows, the file size, the seconds, the peak resident memory of the process, and
that peak above a 1,000-row apply of the same project (the interpreter, torch and the
project). It prints figures; it asserts nothing.

Usage::

    python benchmarks/apply_memory.py                              # everything
    python benchmarks/apply_memory.py --inputs table --rows 100000  # one table size
    python benchmarks/apply_memory.py --inputs series --series-rows 100000
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
STEPS = 24

#: Runs one apply in this process and prints its peak resident memory (bytes) as JSON.
CHILD = """
import json, resource, sys, time
import core.apply as apply
import core.cli as cli
if sys.argv[1] == "whole":
    apply.table_assignment_chunks = lambda *a, **k: None
    apply.series_assignment_chunks = lambda *a, **k: None
start = time.perf_counter()
code = cli.main(["apply", sys.argv[2], sys.argv[3], "--assignments", sys.argv[4]])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak *= 1 if sys.platform == "darwin" else 1024
print(json.dumps({"code": code, "seconds": seconds, "peak": peak}))
"""


def _table_rows(rng, start: int, n: int) -> list[str]:
    x = rng.normal(size=(n, N_FEATURES)) + rng.integers(0, 4, size=(n, 1))
    return [f"S{start + i}," + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(x)]


def write_table(path: Path, n_rows: int, seed: int = 0) -> None:
    """``n_rows`` rows of ``pid`` and ``x0..x9``, written in blocks (bounded memory)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("pid," + ",".join(f"x{j}" for j in range(N_FEATURES)) + "\n")
        for start in range(0, n_rows, 100_000):
            fh.write("\n".join(_table_rows(rng, start, min(100_000, n_rows - start))) + "\n")


def write_series(path: Path, n_rows: int, seed: int = 0) -> None:
    """Wide-format series: ``stay``, ``hour`` and ``x0..x9``, patients of 24 hourly steps in
    a row (about 30 % of the cells empty), written in blocks."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("stay,hour," + ",".join(f"x{j}" for j in range(N_FEATURES)) + "\n")
        for start in range(0, n_rows, 96_000):
            n = min(96_000, n_rows - start)
            rows = np.arange(start, start + n)
            level = rng.integers(0, 4, size=(n, 1))
            x = rng.normal(size=(n, N_FEATURES)) + level
            lines = []
            for r, row in zip(rows, x):
                cells = ["" if (r * 7 + j) % 10 < 3 else f"{v:.3f}" for j, v in enumerate(row)]
                lines.append(f"P{r // STEPS},{r % STEPS}," + ",".join(cells))
            fh.write("\n".join(lines) + "\n")


def write_xlsx(path: Path, n_rows: int, seed: int = 0) -> None:
    """The table of :func:`write_table` as a workbook (openpyxl's write-only mode)."""
    from openpyxl import Workbook

    rng = np.random.default_rng(seed)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["pid"] + [f"x{j}" for j in range(N_FEATURES)])
    for start in range(0, n_rows, 50_000):
        n = min(50_000, n_rows - start)
        x = np.round(rng.normal(size=(n, N_FEATURES)) + rng.integers(0, 4, size=(n, 1)), 4)
        for i, row in enumerate(x.tolist()):
            sheet.append([f"S{start + i}"] + row)
    book.save(path)


def run_apply(mode: str, project: Path, data: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(project), str(data), str(out)],
                         capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode != 0:
        raise SystemExit(f"apply failed ({mode}): {res.stderr.strip()}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(label: str, project: Path, small: Path, inputs: list[Path], tmp: Path) -> None:
    for mode in ("chunked", "whole"):
        base = run_apply(mode, project, small, tmp / "out.csv")["peak"]
        for data in inputs:
            r = run_apply(mode, project, data, tmp / "out.csv")
            rows = int(data.stem.split("_")[-1])
            print(f"{label:<7} {mode:<8} {rows:>9} {data.stat().st_size / 1e6:>8.1f} {r['seconds']:>8.1f} "
                  f"{r['peak'] / 1e6:>8.0f} {(r['peak'] - base) / 1e6:>14.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="*", choices=("table", "series", "xlsx"), default=["table", "series", "xlsx"])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000], help="table rows")
    parser.add_argument("--series-rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--xlsx-rows", type=int, nargs="*", default=[200_000])
    args = parser.parse_args()
    from core.cli import main as dpsom

    quiet = ["--max-steps", "20", "--quiet", "--autosave", "0", "--grid", "3x3"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"dpsom apply peak memory; load average {load_average()}; {N_FEATURES} features, 3x3 map")
        print(f"{'input':<7} {'mode':<8} {'rows':>9} {'file MB':>8} {'seconds':>8} {'peak MB':>8} "
              f"{'above base MB':>14}", flush=True)
        if "table" in args.inputs or "xlsx" in args.inputs:
            write_table(tmp / "train.csv", 2000, seed=1)
            project = tmp / "p.h5"
            if dpsom(["train", str(tmp / "train.csv"), "--out", str(project), *quiet]) != 0:
                raise SystemExit("training the benchmark project failed")
            if "table" in args.inputs:
                write_table(tmp / "small_1000.csv", 1000, seed=2)
                for n in args.rows:
                    write_table(tmp / f"t_{n}.csv", n, seed=3)
                measure("table", project, tmp / "small_1000.csv", [tmp / f"t_{n}.csv" for n in args.rows], tmp)
            if "xlsx" in args.inputs:
                write_xlsx(tmp / "small_1000.xlsx", 1000, seed=2)
                for n in args.xlsx_rows:
                    write_xlsx(tmp / f"x_{n}.xlsx", n, seed=3)
                measure("xlsx", project, tmp / "small_1000.xlsx", [tmp / f"x_{n}.xlsx" for n in args.xlsx_rows],
                        tmp)
        if "series" in args.inputs:
            write_series(tmp / "train_s.csv", 2400, seed=1)
            project = tmp / "s.h5"
            if dpsom(["train", str(tmp / "train_s.csv"), "--out", str(project), "--id-col", "stay", "--time-col",
                      "hour", *quiet]) != 0:
                raise SystemExit("training the benchmark series project failed")
            write_series(tmp / "small_s_1008.csv", 1008, seed=2)
            for n in args.series_rows:
                write_series(tmp / f"s_{n}.csv", n, seed=3)
            measure("series", project, tmp / "small_s_1008.csv", [tmp / f"s_{n}.csv" for n in args.series_rows], tmp)


if __name__ == "__main__":
    main()
