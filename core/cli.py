"""The ``dpsom`` command: train, resume, apply, export, evaluate and inspect projects.

This module parses arguments, calls the engine and prints; what a command does lives in
``core`` (training into a project, its lock, checkpoints and resuming: :mod:`core.runs`),
where the desktop app calls it too.

Exit status: 0 on success; 2 for bad usage or bad input, with one plain line on stderr naming
the file, row or column and what to do; 1 for an internal error, with the traceback written
to a log file whose path is printed. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Sequence


from . import __version__
from .errors import DPSOMError, InputError, ProjectFileError, TrainingDiverged

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
DEMOS = ("demo:icu", "demo:icu-test", "demo:table")


class UsageError(Exception):
    """Bad command-line usage; the message is printed as one line and the exit status is 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one plain line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dpsom`` (exposed for documentation and tests)."""
    p = _Parser(prog="dpsom", description="Deep probabilistic self-organising maps for clinical data.")
    p.add_argument("--version", action="version", version=f"dpsom {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train a map on a data file and save a project")
    t.add_argument("data", metavar="DATA", help="data file (.csv .tsv .txt .xlsx .parquet), a PhysioNet-2012 "
                   f"directory, or a built-in demo ({', '.join(DEMOS)})")
    t.add_argument("--out", required=True, metavar="PROJECT.h5", help="project file to write")
    _add_reader_options(t)
    t.add_argument("--model", choices=("dpsom", "tdpsom"), help="default: tdpsom for time series, dpsom for tables")
    t.add_argument("--grid", metavar="HxW", help="map size, e.g. 8x8 (default from the preset)")
    t.add_argument("--topology", choices=("rect", "hex"))
    wrap = t.add_mutually_exclusive_group()
    wrap.add_argument("--toroidal", dest="toroidal", action="store_true", default=None, help="wrap the map's edges")
    wrap.add_argument("--flat", dest="toroidal", action="store_false", help="keep hard map edges")
    t.add_argument("--preset", choices=("quick", "paper"), default="quick")
    t.add_argument("--parity", action="store_true", default=None,
                   help="reproduce the reference implementation's behaviour (default with --preset paper)")
    t.add_argument("--epochs", type=_positive_int, metavar="N", help="joint-training epochs")
    t.add_argument("--batch-size", type=_positive_int, metavar="N")
    t.add_argument("--latent-dim", type=_positive_int, metavar="N")
    t.add_argument("--scaling", choices=("auto", "zscore", "minmax", "robust", "none"), default="auto",
                   help="auto: values in [0, 1] kept, image intensities to [0, 1], other tables z-scored")
    t.add_argument("--seed", type=int, default=2020, metavar="N")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    t.add_argument("--deterministic", action="store_true", help="repeatable results on the CPU (slower)")
    t.add_argument("--max-steps", type=_positive_int, metavar="N",
                   help="stop after N optimiser steps (a quick trial; resume later)")
    t.add_argument("--autosave", type=float, default=300.0, metavar="SECONDS",
                   help="save a checkpoint to the project this often while training (0: only at the end)")
    t.add_argument("--no-embed", action="store_true",
                   help="store only a reference to DATA (with a content hash) instead of a copy")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_distributed_options(t)

    pr = sub.add_parser("prepare", help="write a data file as a cohort file that training reads in shards "
                        "(for cohorts larger than memory and for distributed training)")
    pr.add_argument("data", metavar="DATA")
    pr.add_argument("--out", required=True, metavar="COHORT.h5", help="cohort file to write")
    _add_reader_options(pr)
    pr.add_argument("--scaling", choices=("auto", "zscore", "minmax", "robust", "none"), default="auto",
                    help="how values are scaled; 'auto' (default) chooses as 'train' does")

    r = sub.add_parser("resume", help="continue training a saved project exactly where it stopped")
    r.add_argument("project", metavar="PROJECT.h5")
    r.add_argument("--epochs", type=_positive_int, metavar="N",
                   help="joint-training epochs in all; extends a finished run")
    r.add_argument("--max-steps", type=_positive_int, metavar="N", help="stop once the run reaches N steps in all")
    r.add_argument("--device", default=None, help="override the saved device choice")
    r.add_argument("--autosave", type=float, default=300.0, metavar="SECONDS")
    r.add_argument("--quiet", action="store_true")
    _add_distributed_options(r)

    a = sub.add_parser("apply", help="map new data with a trained project's model and preprocessing")
    a.add_argument("project", metavar="PROJECT.h5")
    a.add_argument("data", metavar="DATA")
    a.add_argument("--assignments", required=True, metavar="OUT.csv")
    a.add_argument("--probabilities", action="store_true", help="add one column per node (p_0 .. p_K-1)")
    _add_reader_options(a, with_defaults=False)

    e = sub.add_parser("export", help="write assignments (and node summaries) of a project to CSV")
    e.add_argument("project", metavar="PROJECT.h5")
    e.add_argument("--assignments", metavar="OUT.csv")
    e.add_argument("--nodes", metavar="NODES.csv", help="one line per node: counts, label means, profile")
    e.add_argument("--transitions", metavar="TRANS.csv", help="T-DPSOM: node-to-node transition matrix")
    e.add_argument("--probabilities", action="store_true")

    v = sub.add_parser("evaluate", help="quality of a trained map against a label")
    v.add_argument("project", metavar="PROJECT.h5")
    v.add_argument("--label", required=True, metavar="NAME")
    v.add_argument("--json", action="store_true", help="print the figures as JSON")

    i = sub.add_parser("info", help="what a project holds")
    i.add_argument("project", metavar="PROJECT.h5")
    i.add_argument("--json", action="store_true")
    return p


def _add_reader_options(p: argparse.ArgumentParser, with_defaults: bool = True) -> None:
    p.add_argument("--format", choices=("auto", "table", "long", "wide", "physionet2012"), default="auto")
    p.add_argument("--id-col", metavar="C")
    p.add_argument("--time-col", metavar="C")
    p.add_argument("--var-col", metavar="C", help="long format: the column naming the variable")
    p.add_argument("--value-col", metavar="C", help="long format: the column holding the value")
    p.add_argument("--features", metavar="A,B,..", type=_names)
    p.add_argument("--labels", metavar="A,B,..", type=_names)
    p.add_argument("--time-step", type=float, metavar="X", help="regular grid step in time units")
    p.add_argument("--aggregate", choices=("last", "mean"), default="last")
    p.add_argument("--max-time-steps", type=_positive_int, metavar="N",
                   help="keep each patient's first N steps (default: every step; a stay far longer than the rest "
                        "is kept whole in consecutive parts, so that nobody is padded to it)")


def _add_distributed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="train as one process of a group started by torchrun (see docs/distributed.md)")
    p.add_argument("--nproc", type=_positive_int, metavar="N",
                   help="start N processes on this machine (one per GPU, or CPU processes) and train together")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _grid(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise InputError(f"--grid must look like 8x8 (height x width); got {text!r}") from None
    return h, w


# --------------------------------------------------------------------------- helpers
def _say(message: str) -> None:
    # In a process group only rank 0 talks; the others would repeat every line.
    if os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr)


def _read(args, path: str):
    ds, _ = _read_with_options(args, path)
    return ds


def _read_with_options(args, path: str):
    """Read DATA; also return the reader options that re-create it (None for demos)."""
    from .data.demo import demo_icu, demo_table
    from .data.readers import read_data

    if path in DEMOS:
        ds = demo_table() if path == "demo:table" else demo_icu("test" if path.endswith("test") else "demo")
        return ds, None
    options = dict(format=args.format, id_col=args.id_col, time_col=args.time_col, var_col=args.var_col,
                   value_col=args.value_col, features=args.features, labels=args.labels,
                   time_step=args.time_step, aggregate=args.aggregate, max_steps=args.max_time_steps)
    ds = read_data(path, **options)
    for w in ds.warnings:
        _say(f"dpsom: note: {w}")
    options["path"] = str(Path(path).resolve())
    return ds, options


def _data_input(path: str | None) -> dict:
    """DATA as an input that no output may replace (the built-in demos are not files)."""
    return {} if path is None or path in DEMOS else {"DATA": path}


def _project_inputs(project_path: str, project) -> dict:
    """A loaded project's file and the data file it was read from: outputs must spare both."""
    inputs = {"PROJECT.h5": project_path}
    source = ((project.metadata or {}).get("read_options") or {}).get("path")
    if not source and project.data_ref:
        source = project.data_ref.get("path")
    if source:
        source = Path(source)
        inputs["the project's data file"] = source if source.is_absolute() else Path(project_path).parent / source
    return inputs


def _load(path: str, *, lazy_cohort: bool = False):
    """A project and its run (see :func:`core.runs.load_run`)."""
    from .runs import load_run

    return load_run(path, lazy_cohort=lazy_cohort)


class _ProgressBar:
    """A one-line terminal progress bar (plain periodic lines when not on a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, p) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 10.0) and p.fraction < 1.0:
            return
        self.last = now
        width = 28
        filled = int(width * p.fraction)
        eta = p.eta
        left = f"{eta:5.0f}s left" if eta is not None else "  ..."
        loss = p.losses.get("total", float("nan"))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {100 * p.fraction:5.1f}% {p.phase:<10} "
                f"epoch {p.epoch + 1}/{p.n_epochs} loss {loss:10.4f} {left}")
        if self.tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
        else:
            _say(line)

    def close(self) -> None:
        if self.tty and not self.quiet and self.last:
            sys.stderr.write("\n")
        self.last = 0.0  # one line end, however often it is closed


# --------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from .io.cohort_h5 import is_cohort_file
    from .io.outputs import check_outputs
    from .runs import ProjectTraining

    out = Path(args.out)
    check_outputs({"--out": out}, _data_input(args.data))
    with ProjectTraining(out) as target:
        if target.keeps_existing:
            earlier = "; it replaces the earlier unfinished run there" if target.checkpoint.exists() else ""
            _say(f"dpsom: note: {out} exists; it is kept unchanged until this run is complete "
                 f"(checkpoints go to {target.checkpoint}, which 'dpsom resume' continues if the run is "
                 f"stopped{earlier})")
        if args.data not in DEMOS and is_cohort_file(args.data):
            return _train_cohort(args, target)
        return _train_dataset(args, target)


def _train_dataset(args, target) -> int:
    from .runs import describe_device, new_run, open_cluster

    ds, read_options = _read_with_options(args, args.data)
    if args.no_embed and read_options is None:
        raise InputError("--no-embed needs a data file to refer to; the built-in demo is always embedded")
    model = args.model or ("tdpsom" if ds.is_series else "dpsom")
    if model == "tdpsom" and not ds.is_series:
        raise InputError("--model tdpsom needs time series: give --id-col and --time-col", path=args.data)
    if model == "dpsom" and ds.is_series:
        raise InputError("this data was read as time series; use --model tdpsom, or read it as a table "
                         "with --format table", path=args.data)
    run, proposal = new_run(ds, _train_options(args, model), read_options=read_options, embed=not args.no_embed)
    cluster = open_cluster(args.distributed, args.device)
    est = run.estimate()
    if not args.quiet and cluster.is_main:
        cfg = run.config
        kind = "time series" if ds.is_series else "table"
        _say(f"dpsom: training {model.upper()} {cfg.grid.height}x{cfg.grid.width} ({cfg.grid.topology}, "
             f"{'toroidal' if cfg.grid.toroidal else 'flat'}) on {ds.n_patients} "
             f"{'patients' if ds.is_series else 'rows'} x {ds.n_features} features ({kind}), preset "
             f"{cfg.preset}, {describe_device(cluster, cfg)}; about {est['steps']} steps, "
             f"~{_duration(est['seconds'])}, ~{est['memory_bytes'] / 2**20:.0f} MiB of memory for training "
             "on top of the program")
        _say("dpsom: settings chosen from the data (options given on the command line take precedence):\n"
             + proposal.describe() + ("" if args.scaling == "auto" else f"\n  - scaling {args.scaling}: as given"))
    return _train(run, target, args, cluster)


def _train_cohort(args, target) -> int:
    """``dpsom train COHORT.h5``: train from the file batch by batch, without loading it."""
    from .io.cohort_h5 import Cohort
    from .runs import describe_device, new_cohort_run, open_cluster

    cohort = Cohort(args.data)  # always referred to from the project, never embedded
    try:
        model = args.model or ("tdpsom" if cohort.temporal else "dpsom")
        if (model == "tdpsom") != cohort.temporal:
            kind = "patient time series" if cohort.temporal else "a table"
            raise InputError(f"--model {model} does not suit this cohort, which holds {kind}", path=args.data)
        run = new_cohort_run(cohort, _train_options(args, model))
        cluster = open_cluster(args.distributed, args.device)
        if not args.quiet and cluster.is_main:
            cfg = run.config
            unit = "patients" if cohort.temporal else "rows"
            _say(f"dpsom: training {model.upper()} {cfg.grid.height}x{cfg.grid.width} from the cohort file "
                 f"({cohort.n_samples} {unit} x {cohort.n_features} features, read in shards); preset "
                 f"{cfg.preset}, {describe_device(cluster, cfg)}")
        return _train(run, target, args, cluster)
    finally:
        cohort.close()


def _train_options(args, model: str):
    """The command line's choices for a new run (``None``: the proposal decides)."""
    from .runs import TrainOptions

    return TrainOptions(model=model, preset=args.preset, grid=_grid(args.grid) if args.grid else None,
                        topology=args.topology, toroidal=args.toroidal, parity=args.parity, epochs=args.epochs,
                        batch_size=args.batch_size, latent_dim=args.latent_dim, max_steps=args.max_steps,
                        scaling=args.scaling, seed=args.seed, device=args.device,
                        deterministic=bool(args.deterministic), distributed=bool(args.distributed))


def _train(run, target, args, cluster) -> int:
    """Train into ``target`` with a progress bar, then say where the run stands (train and resume)."""
    from .runs import TrainingInterrupted

    bar = _ProgressBar(args.quiet or not cluster.is_main)
    try:
        result = target.train(run, autosave=args.autosave, cluster=cluster, on_progress=bar.update)
    except TrainingInterrupted as stop:
        bar.close()
        if stop.distributed:
            if cluster.is_main:
                _say(f"dpsom: interrupted; the last checkpoint in {stop.checkpoint} stands")
        elif stop.saved:
            _say(f"dpsom: interrupted; progress saved to {stop.checkpoint} "
                 f"(continue with 'dpsom resume {stop.checkpoint}')")
        raise SystemExit(130) from None
    finally:
        bar.close()
    if cluster.is_main:
        where = "complete" if result.complete else (f"stopped at step {result.step} of {result.total_steps}; "
                                                    "continue with 'dpsom resume'")
        print(f"saved {result.path} ({where})")
    return EXIT_OK


def cmd_prepare(args) -> int:
    from .cohort_run import prepare_cohort
    from .io.outputs import check_outputs

    out = Path(args.out)
    check_outputs({"--out": out}, _data_input(args.data))
    ds = _read(args, args.data)
    scaling, why = prepare_cohort(ds, out, args.scaling)
    unit = "patients" if ds.is_series else "rows"
    print(f"wrote {out} ({ds.n_samples} {unit} x {ds.n_features} features, {scaling} scaling: {why})")
    return EXIT_OK


def cmd_resume(args) -> int:
    from .runs import ProjectTraining, open_cluster, prepare_resume

    # Locked before reading: a second resume of the same project is refused at once.
    with ProjectTraining(args.project, resume=True) as target:
        _, run = _load(args.project, lazy_cohort=True)
        if run.estimator is None:
            raise InputError("this project holds no trained model yet; train it with 'dpsom train'",
                             path=args.project)
        prepare_resume(run, device=args.device, epochs=args.epochs, max_steps=args.max_steps)
        if run.is_complete and not args.epochs:
            print(f"{args.project}: training is already complete (use --epochs N to train longer)")
            return EXIT_OK
        return _train(run, target, args, open_cluster(args.distributed, args.device))


def _require_model(run, path: str) -> None:
    if run.estimator is None:
        raise InputError("this project holds no trained model; train it first with 'dpsom train'", path=path)


def cmd_apply(args) -> int:
    from .apply import write_assignments
    from .io.outputs import check_outputs, writing

    check_outputs({"--assignments": args.assignments}, {"PROJECT.h5": args.project, **_data_input(args.data)})
    project, run = _load(args.project)
    _require_model(run, args.project)
    check_outputs({"--assignments": args.assignments}, _project_inputs(args.project, project))
    data = _read(args, args.data) if args.data in DEMOS else args.data
    options = dict(format=args.format, id_col=args.id_col, time_col=args.time_col, var_col=args.var_col,
                   value_col=args.value_col, features=args.features, labels=args.labels, time_step=args.time_step,
                   aggregate=args.aggregate, max_steps=args.max_time_steps)
    with writing("--assignments", args.assignments):
        written = write_assignments(run, data, args.assignments, probabilities=args.probabilities,
                                    warn=lambda w: _say(f"dpsom: note: {w}"), **options)
    print(f"wrote {written} assignments to {args.assignments}")
    return EXIT_OK


def cmd_export(args) -> int:
    from .analysis import transition_matrix
    from .explore import RunExplorer
    from .io.export import transition_frame
    from .io.outputs import check_outputs

    if not (args.assignments or args.nodes or args.transitions):
        raise UsageError("say what to export: --assignments OUT.csv, --nodes NODES.csv and/or --transitions T.csv")
    outputs = {"--assignments": args.assignments, "--nodes": args.nodes, "--transitions": args.transitions}
    check_outputs(outputs, {"PROJECT.h5": args.project})
    project, run = _load(args.project)
    _require_model(run, args.project)
    check_outputs(outputs, _project_inputs(args.project, project))
    explorer = RunExplorer(run)  # the tables the app exports, from the same calls
    if args.assignments:
        n = _write_table("--assignments", args.assignments, explorer.assignments_frame(args.probabilities))
        print(f"wrote {n} assignments to {args.assignments}")
    if args.nodes:
        n = _write_table("--nodes", args.nodes, explorer.node_summary(project.annotations))
        print(f"wrote {n} nodes to {args.nodes}")
    if args.transitions:
        if not run.temporal:
            raise InputError("transitions need a T-DPSOM model trained on time series", path=args.project)
        k = run.grid.n_nodes
        _write_table("--transitions", args.transitions,
                     transition_frame(transition_matrix(explorer.bmu, run.dataset.lengths, k,
                                                         continues=run.dataset.continues)))
        print(f"wrote the {k}x{k} transition matrix to {args.transitions}")
    return EXIT_OK


def _write_table(label: str, path: str, frame) -> int:
    """Write ``frame`` as CSV to the output named by ``label``; the number of lines."""
    from .io.export import write_csv
    from .io.outputs import writing

    with writing(label, path):
        write_csv(frame, path)
    return len(frame)


def cmd_evaluate(args) -> int:
    from .explore import evaluate_run

    project, run = _load(args.project)
    _require_model(run, args.project)
    res = evaluate_run(run, args.label)
    if args.json:
        print(json.dumps(res, indent=2, default=float))
        return EXIT_OK
    rows = [
        ("label", res["label"]),
        ("points evaluated", res["n_samples"]),
        ("points without this label", res["n_missing_labels"]),
        ("NMI (geometric)", res["nmi_geometric"]),
        ("NMI (arithmetic)", res["nmi_arithmetic"]),
        ("AMI", res["ami"]),
        ("purity", res["purity"]),
        ("quantisation error", res["quantisation_error"]),
        ("topographic error", res["topographic_error"]),
        ("mean assignment entropy", res["mean_entropy"]),
        ("nodes used", f"{res['nodes_used']} of {run.grid.n_nodes}"),
        ("Moran's I of the label", res["morans_i"] if res["morans_i"] is not None else "n/a (text label)"),
    ]
    if "mean_jump" in res:
        rows.append(("mean node jump per step", res["mean_jump"]))
        rows.append(("steps on node or neighbour", res["local_moves"]))
    if "path_local_moves" in res:
        rows.append(("same, along smoothed paths", res["path_local_moves"]))
    for name, value in rows:
        print(f"{name:<28} {value:.4f}" if isinstance(value, float) else f"{name:<28} {value}")
    if res["collapsed"]:
        _say(f"dpsom: warning: {res['collapse_message']}")
    return EXIT_OK


def cmd_info(args) -> int:
    from .io.project_h5 import cut_text, project_summary

    summary = project_summary(args.project)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return EXIT_OK
    cfg = summary.get("config") or {}
    grid = cfg.get("grid", {})
    lines = [
        ("file", args.project),
        ("format", f"{summary.get('format')} v{summary.get('schema_version')}"),
        ("saved by", f"DPSOM Studio {summary.get('app_version')} on {summary.get('modified')}"),
        ("model", f"{str(cfg.get('model', '?')).upper()} ({cfg.get('preset')} preset"
                  f"{', parity' if cfg.get('parity') else ''})"),
        ("map", f"{grid.get('height')}x{grid.get('width')} {grid.get('topology')}, "
                f"{'toroidal' if grid.get('toroidal') else 'flat'}"),
    ]
    data, ref = summary.get("data"), summary.get("data_ref") or {}
    if data:
        lines += [("data", f"{data.get('kind')} {' x '.join(map(str, data.get('shape', ())))} from "
                           f"{data.get('source') or '?'}"),
                  ("labels", ", ".join(map(str, data.get("labels") or [])) or "none")]
    elif ref:
        lines.append(("data", f"referenced: {ref.get('path')}"))
    lines += [("trained", "yes" if summary.get("trained") else "no"),
              ("history rows", summary.get("history_rows"))]
    for name, value in lines:
        # Every value is cut (the summary already cuts each text): nothing long is printed.
        print(f"{name:<18} {cut_text(str(value))}")
    return EXIT_OK


COMMANDS = {"train": cmd_train, "prepare": cmd_prepare, "resume": cmd_resume, "apply": cmd_apply,
            "export": cmd_export, "evaluate": cmd_evaluate, "info": cmd_info}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def log_dir() -> Path:
    """Where internal-error logs go: ``$DPSOM_LOG_DIR``, else the user's state folder."""
    env = os.environ.get("DPSOM_LOG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "dpsom-studio" / "logs"


def _write_crash_log(exc: BaseException) -> Path:
    """Write the traceback (never any data values) to a new log file and return its path."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"dpsom {__version__} internal error at {stamp}\n" + "".join(traceback.format_exception(exc))
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"dpsom-error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    raise exc


def _launch(args, argv: Sequence[str] | None) -> int | None:
    """Handle --nproc (start the processes through torchrun) and torchrun without --distributed."""
    from .distributed import launched_by_torchrun

    if not hasattr(args, "distributed"):
        return None
    inside = launched_by_torchrun()
    if inside and not args.distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError(f"started by torchrun with {os.environ['WORLD_SIZE']} processes: add --distributed, "
                         "or every process would train the whole model and write the same project")
    if args.nproc and not inside:
        import subprocess

        from .runs import local_group_command

        return subprocess.call(local_group_command(args.nproc, sys.argv[1:] if argv is None else argv))
    if args.nproc and inside:
        args.distributed = True
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dpsom``; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        launched = _launch(args, argv)
        if launched is not None:
            return launched
        return COMMANDS[args.command](args)
    except UsageError as exc:
        _say(f"dpsom: error: {exc}")
        return EXIT_USAGE
    except (InputError, ProjectFileError) as exc:
        _say(f"dpsom: error: {exc}")
        return EXIT_USAGE
    except TrainingDiverged as exc:
        _say(f"dpsom: training failed: {exc}")
        return EXIT_INTERNAL
    except SystemExit as exc:  # --help, --version, interrupted training
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except DPSOMError as exc:
        _say(f"dpsom: error: {exc}")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        path = _write_crash_log(exc)
        _say(f"dpsom: internal error: {type(exc).__name__}; the details are in {path}")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
