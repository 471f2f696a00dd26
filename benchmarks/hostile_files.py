"""Hostile and broken project files: what `dpsom info`, `export` and `apply` do with each.

Builds, in a temporary folder, a small trained project and a set of altered copies a
careless user or a crafted file could present (values stored in an outside file, virtual
datasets, links to other files, sizes declared far beyond the file's bytes, a 100 MB
attribute, NaN weights, wrong shapes, data references to a named pipe or a device). Each
altered file carries a valid content checksum, as a crafted file would. Every command runs
in a fresh process; the script prints its exit status, the first line it wrote to stderr
and the peak resident memory of that process (``VmHWM`` of the child). It prints figures;
it asserts nothing.

Usage::

    python benchmarks/hostile_files.py
    python benchmarks/hostile_files.py --only external_ids,huge_declared

The builders are also used by the tests (tests/core/test_hostile_projects.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.io import project_h5  # noqa: E402

FEATURES = ["hr", "sbp", "lactate"]


# ------------------------------------------------------------------------- a real project
def write_table_csv(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """A small table with an id column, three features and a label."""
    rng = np.random.default_rng(seed)
    lines = ["subject," + ",".join(FEATURES) + ",died"]
    for i in range(rows):
        hr, sbp, lac = rng.normal([80, 120, 2], [10, 15, 0.5])
        lines.append(f"s{i:04d},{hr:.1f},{sbp:.1f},{lac:.2f},{int(rng.random() < 0.2)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def trained_project(folder: Path, *, embed: bool = True, name: str = "good.h5") -> Path:
    """Train a 3x3 DPSOM for a few steps on a small CSV and save it as a user would."""
    from core.config import make_config
    from core.data.readers import read_data
    from core.io.project_h5 import save_project
    from core.workflow import ModelRun

    csv = write_table_csv(folder / "cohort.csv")
    options = {"format": "table", "id_col": "subject", "labels": ["died"]}
    ds = read_data(csv, **options)
    cfg = make_config("dpsom", "quick", **{"grid.height": 3, "grid.width": 3, "train.max_steps": 3,
                                          "train.batch_size": 16, "train.device": "cpu"})
    run = ModelRun(ds, cfg)
    run.read_options = {**options, "path": str(csv.resolve())}
    run.embed_data = embed
    for _ in run.iter_train():
        pass
    out = folder / name
    save_project(out, run.to_project(), embed_data=embed)
    return out


# -------------------------------------------------------------------- altering a project
def _raw_mirror(group: h5py.Group) -> "project_h5._Group":
    """Everything in a file, read without any check (as the loader once did)."""
    out = project_h5._Group(attrs={k: group.attrs[k] for k in group.attrs})
    for name in group:
        obj = group[name]
        if isinstance(obj, h5py.Group):
            out.children[name] = _raw_mirror(obj)
        else:
            info = h5py.check_string_dtype(obj.dtype)
            if info is not None and info.length is None:
                text = obj.asstr()[()]
                data = np.array(text, dtype=object) if isinstance(text, str) else text
            else:
                data = np.asarray(obj[()])
            out.children[name] = project_h5._Array(data, {k: obj.attrs[k] for k in obj.attrs})
    return out


def reseal(path: Path) -> None:
    """Store the content checksum of the file as it now is, as a crafted file would."""
    with h5py.File(path, "r+", locking=False) as f:
        f.attrs["content_sha256"] = project_h5._content_digest(_raw_mirror(f))


def alter(source: Path, target: Path, change: Callable[[h5py.File], None], *, seal: bool = True) -> Path:
    """Copy ``source`` to ``target``, apply ``change`` to the open copy and reseal it."""
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "r+", locking=False) as f:
        change(f)
    if seal:
        reseal(target)
    return target


def _replace(f: h5py.File, name: str, **create) -> h5py.Dataset:
    attrs = dict(f[name].attrs)
    del f[name]
    ds = f.create_dataset(name, **create)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _prototype_key(f: h5py.File) -> str:
    return next(k for k in f["model_state/weights"] if k.endswith("prototypes"))


# ------------------------------------------------------------------------ hostile files
def external_ids(good: Path, target: Path, secret: str = "/etc/passwd") -> Path:
    """Patient ids stored as external raw data: the bytes of ``secret``."""
    def change(f):
        n = f["dataset/ids"].shape[0]
        _replace(f, "dataset/ids", shape=(n,), dtype="S32", external=[(secret, 0, 32 * n)])
    return alter(good, target, change)


def virtual_values(good: Path, target: Path) -> Path:
    """The data values as a virtual dataset reading another file."""
    other = target.with_name(target.stem + "-source.h5")
    with h5py.File(good, "r") as g:
        shape, dtype = g["dataset/values"].shape, g["dataset/values"].dtype
    with h5py.File(other, "w") as o:
        o.create_dataset("x", data=np.full(shape, 7.0, dtype=dtype))

    def change(f):
        attrs = dict(f["dataset/values"].attrs)
        del f["dataset/values"]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(other), "x", shape=shape)
        ds = f.create_virtual_dataset("dataset/values", layout)
        for k, v in attrs.items():
            ds.attrs[k] = v
    return alter(good, target, change)


def external_link(good: Path, target: Path) -> Path:
    """The settings as a link into another file."""
    other = target.with_name(target.stem + "-other.h5")
    with h5py.File(other, "w") as o:
        o.create_dataset("config", data=json.dumps({"model": "from another file"}),
                         dtype=h5py.string_dtype("utf-8"))

    def change(f):
        del f["json/config"]
        f["json/config"] = h5py.ExternalLink(str(other), "/config")
    return alter(good, target, change)


def soft_link(good: Path, target: Path) -> Path:
    """The warnings as a link to the settings."""
    def change(f):
        del f["json/warnings"]
        f["json/warnings"] = h5py.SoftLink("/json/config")
    return alter(good, target, change)


def huge_declared(good: Path, target: Path, rows: int = 50_000_000) -> Path:
    """Values and mask declared (rows, D) with no chunk written: GBs from a small file."""
    def change(f):
        d = f["dataset/values"].shape[-1]
        _replace(f, "dataset/values", shape=(rows, d), dtype=np.float32, chunks=(65536, d),
                 compression="gzip", fillvalue=np.float32(1.0))
        _replace(f, "dataset/mask", shape=(rows, d), dtype=bool, chunks=(65536, d), compression="gzip",
                 fillvalue=True)
    return alter(good, target, change, seal=False)


def dev_zero_values(good: Path, target: Path, rows: int = 50_000_000) -> Path:
    """Values stored externally in /dev/zero: gigabytes of zeros from a tiny file."""
    def change(f):
        d = f["dataset/values"].shape[-1]
        _replace(f, "dataset/values", shape=(rows, d), dtype=np.float32,
                 external=[("/dev/zero", 0, 4 * rows * d)])
    return alter(good, target, change, seal=False)


def history_rows(good: Path, target: Path, rows: int = 10**9) -> Path:
    """A loss history that declares a billion rows."""
    def change(f):
        f["history"].attrs["n_rows"] = rows
    return alter(good, target, change)


def big_attribute(good: Path, target: Path, megabytes: int = 100) -> Path:
    """A 100 MB text attribute where the app's version belongs."""
    def change(f):
        f.attrs["app_version"] = "9" * (megabytes << 20)
    return alter(good, target, change)


def nan_prototypes(good: Path, target: Path) -> Path:
    """The map's prototypes are NaN (a broken save): exported, every row would go to node 0."""
    def change(f):
        key = "model_state/weights/" + _prototype_key(f)
        data = f[key][()]
        _replace(f, key, data=np.full_like(data, np.nan))
    return alter(good, target, change)


def inf_weight(good: Path, target: Path) -> Path:
    """One encoder weight is infinite."""
    def change(f):
        key = "model_state/weights/" + next(k for k in f["model_state/weights"] if k.endswith("weight"))
        data = f[key][()]
        data.flat[0] = np.inf
        _replace(f, key, data=data)
    return alter(good, target, change)


def wrong_weight_shape(good: Path, target: Path) -> Path:
    """The prototypes have a column too many."""
    def change(f):
        key = "model_state/weights/" + _prototype_key(f)
        data = f[key][()]
        _replace(f, key, data=np.concatenate([data, data[:, :1]], axis=1))
    return alter(good, target, change)


def short_assignments(good: Path, target: Path) -> Path:
    """Saved assignments with one row fewer than the data."""
    def change(f):
        for name in ("bmu", "proba"):
            data = f[f"assignments/{name}"][()]
            _replace(f, f"assignments/{name}", data=data[:-1])
    return alter(good, target, change)


def _referencing(folder: Path, target: Path, data_path: str, *, read_path: str | None = None) -> Path:
    """A project that refers to ``data_path`` (checked) and, optionally, reads ``read_path``."""
    ref = trained_project(folder, embed=False, name="ref-base.h5")

    def change(f):
        doc = json.loads(f["json/data_ref"].asstr()[()])
        doc["path"] = data_path
        _replace(f, "json/data_ref", data=json.dumps(doc), dtype=h5py.string_dtype("utf-8"))
        meta = json.loads(f["json/metadata"].asstr()[()])
        meta["read_options"]["path"] = read_path or data_path
        _replace(f, "json/metadata", data=json.dumps(meta), dtype=h5py.string_dtype("utf-8"))
    return alter(ref, target, change)


def fifo_reference(good: Path, target: Path) -> Path:
    """The data reference names a named pipe (reading it would wait for ever)."""
    fifo = target.with_name("data.fifo")
    if not fifo.exists():
        os.mkfifo(fifo)
    return _referencing(target.parent, target, str(fifo))


def dev_zero_reference(good: Path, target: Path) -> Path:
    """The data reference names /dev/zero (reading it never ends)."""
    return _referencing(target.parent, target, "/dev/zero")


def swapped_reference(good: Path, target: Path) -> Path:
    """The checked reference names the real data, but the reader is told to read another file."""
    other = write_table_csv(target.with_name("other.csv"), rows=60, seed=9)
    csv = target.parent / "cohort.csv"
    return _referencing(target.parent, target, str(csv.resolve()), read_path=str(other.resolve()))


HOSTILE: dict[str, Callable[[Path, Path], Path]] = {
    "external_ids": external_ids,
    "virtual_values": virtual_values,
    "external_link": external_link,
    "soft_link": soft_link,
    "huge_declared": huge_declared,
    "dev_zero_values": dev_zero_values,
    "history_rows": history_rows,
    "big_attribute": big_attribute,
    "nan_prototypes": nan_prototypes,
    "inf_weight": inf_weight,
    "wrong_weight_shape": wrong_weight_shape,
    "short_assignments": short_assignments,
    "fifo_reference": fifo_reference,
    "dev_zero_reference": dev_zero_reference,
    "swapped_reference": swapped_reference,
}


# -------------------------------------------------------------------------- measuring
def run_child(args: list[str], cwd: Path, timeout: float = 120.0) -> tuple[int | str, str, float, float]:
    """Run ``dpsom ARGS`` in a fresh process; (exit status, first stderr line, seconds, peak MB)."""
    # VmHWM is this process's own peak; ru_maxrss would also count the parent's memory at
    # the fork, which Linux carries over the exec.
    code = ("import resource, sys\n"
            "from core.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "try:\n"
            "    peak = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "except OSError:\n"
            "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "sys.stderr.write(f'\\nPEAK_KB {peak}\\n')\n"
            "sys.exit(status)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DPSOM_LOG_DIR": str(cwd / "logs")}
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", "", time.perf_counter() - started, float("nan")
    seconds = time.perf_counter() - started
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    peak = next((int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("PEAK_KB")), None)
    if peak is None:  # killed before reporting
        peak = float("nan")
    said = [ln for ln in lines if not ln.startswith("PEAK_KB")]
    return proc.returncode, (said[0] if said else ""), seconds, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names of hostile files")
    parser.add_argument("--width", type=int, default=110, help="cut printed messages to this width")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(HOSTILE)
    with tempfile.TemporaryDirectory(prefix="dpsom-hostile-") as tmp:
        folder = Path(tmp)
        good = trained_project(folder)
        data = folder / "cohort.csv"
        print(f"{'file':<20} {'size':>9} {'command':<7} {'exit':>7} {'s':>6} {'peak MB':>8}  first line")
        for name in ["good"] + names:
            path = good if name == "good" else HOSTILE[name](good, folder / f"{name}.h5")
            size = path.stat().st_size
            for command in ("info", "export", "apply"):
                cmd = {"info": ["info", str(path)],
                       "export": ["export", str(path), "--assignments", str(folder / f"{name}-out.csv")],
                       "apply": ["apply", str(path), str(data), "--assignments", str(folder / f"{name}-apply.csv"),
                                 "--format", "table", "--id-col", "subject", "--labels", "died"]}[command]
                status, line, seconds, peak = run_child(cmd, folder)
                print(f"{name:<20} {size / 1e6:8.2f}M {command:<7} {status!s:>7} {seconds:6.2f} {peak:8.0f}  "
                      f"{line[:args.width]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
