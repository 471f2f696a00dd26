"""Reader for the PhysioNet/CinC Challenge 2012 format (one text file per ICU stay).

Each record file starts with the line ``Time,Parameter,Value``; times are ``HH:MM`` since ICU
admission. Six static descriptors are written at ``00:00``: RecordID, Age, Gender, Height,
ICUType and Weight (Weight may also be measured again later, as a time series). A value of -1
means "missing". An outcomes file (``Outcomes-a.txt``: RecordID, SAPS-I, SOFA,
Length_of_stay, Survival, In-hospital_death) may sit in the directory or next to it.

By default the stays are put on an hourly grid from admission and cut at 48 hours, the
descriptors other than RecordID and all outcomes become labels, and RecordID becomes the id.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from . import validation
from .dataset import Dataset
from .inspection import FileInspection
from .timeseries import SeriesParts, build_series

__all__ = [
    "read_physionet2012",
    "inspect_physionet2012",
    "is_physionet2012_dir",
    "PHYSIONET_UNITS",
    "STATIC_DESCRIPTORS",
    "TIME_SERIES_VARIABLES",
]

HEADER = "Time,Parameter,Value"
STATIC_DESCRIPTORS = ("RecordID", "Age", "Gender", "Height", "ICUType", "Weight")

#: The challenge's time-series variables, in the order features are laid out.
TIME_SERIES_VARIABLES = (
    "Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine", "DiasABP",
    "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "Mg", "MAP", "MechVent", "Na",
    "NIDiasABP", "NIMAP", "NISysABP", "PaCO2", "PaO2", "pH", "Platelets", "RespRate", "SaO2",
    "SysABP", "Temp", "TroponinI", "TroponinT", "Urine", "WBC", "Weight",
)

#: Units of the challenge variables (from the challenge's variable list).
PHYSIONET_UNITS = {
    "Albumin": "g/dL", "ALP": "IU/L", "ALT": "IU/L", "AST": "IU/L", "Bilirubin": "mg/dL",
    "BUN": "mg/dL", "Cholesterol": "mg/dL", "Creatinine": "mg/dL", "DiasABP": "mmHg",
    "FiO2": "fraction", "GCS": "points", "Glucose": "mg/dL", "HCO3": "mmol/L", "HCT": "%",
    "HR": "bpm", "K": "mEq/L", "Lactate": "mmol/L", "Mg": "mmol/L", "MAP": "mmHg",
    "MechVent": "0/1", "Na": "mEq/L", "NIDiasABP": "mmHg", "NIMAP": "mmHg", "NISysABP": "mmHg",
    "PaCO2": "mmHg", "PaO2": "mmHg", "pH": "", "Platelets": "cells/nL", "RespRate": "breaths/min",
    "SaO2": "%", "SysABP": "mmHg", "Temp": "°C", "TroponinI": "μg/L", "TroponinT": "μg/L",
    "Urine": "mL", "WBC": "cells/nL", "Weight": "kg", "Age": "years", "Height": "cm",
    "Gender": "0=female, 1=male", "ICUType": "1-4",
}

_CLOCK = re.compile(r"^(\d{1,3}):([0-5]\d)$")


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


def _record_files(path: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(record files, outcome files, other files) in a directory, sorted by name."""
    records, outcomes, other = [], [], []
    for f in sorted(path.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        first = _first_line(f)
        if first.replace(" ", "") == HEADER:
            records.append(f)
        elif f.name.lower().startswith("outcome") or first.startswith("RecordID,"):
            outcomes.append(f)
        else:
            other.append(f)
    return records, outcomes, other


def is_physionet2012_dir(path) -> bool:
    """True when ``path`` is a directory holding at least one PhysioNet 2012 record file.

    Parameters
    ----------
    path : str or Path
    """
    p = Path(path)
    if not p.is_dir():
        return False
    return any(f.suffix == ".txt" and _first_line(f).replace(" ", "") == HEADER
               for f in p.iterdir() if f.is_file())


def _find_outcomes(path: Path, in_dir: list[Path]) -> Path | None:
    if in_dir:
        return in_dir[0]
    parent = path.resolve().parent
    m = re.match(r"^set-?(\w+)$", path.name, re.I)
    if m:
        candidate = parent / f"Outcomes-{m.group(1)}.txt"
        if candidate.is_file():
            return candidate
    found = sorted(parent.glob("Outcomes*.txt"))
    return found[0] if len(found) == 1 else None


def _read_records(files: list[Path], progress: Callable[[float], object] | None) -> pd.DataFrame:
    """All record lines as one frame with columns file, line, Time, Parameter, Value."""
    pieces = []
    where: list[tuple[int, int]] = []
    for i, f in enumerate(files):
        try:
            text = f.read_text(encoding="utf-8-sig", errors="strict")
        except UnicodeDecodeError:
            text = f.read_text(encoding="cp1252", errors="replace")
        lines = text.splitlines()
        for ln, line in enumerate(lines[1:], start=2):
            if line.strip():
                pieces.append(f"{i},{ln},{line.strip()}")
                where.append((i, ln))
        if progress is not None and (i % 200 == 0 or i == len(files) - 1):
            progress(0.6 * (i + 1) / len(files))
    if not pieces:
        return pd.DataFrame(columns=["file", "line", "Time", "Parameter", "Value"])
    try:
        df = pd.read_csv(io.StringIO("\n".join(pieces)), header=None,
                         names=["file", "line", "Time", "Parameter", "Value"],
                         dtype={"Time": str, "Parameter": str, "Value": str},
                         keep_default_na=False, engine="c")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        if m:
            fi, ln = where[int(m.group(1)) - 1]
            raise InputError("expected 3 fields (Time,Parameter,Value); remove the extra commas",
                             path=str(files[fi]), row=ln) from None
        raise InputError(f"cannot parse the record files ({exc})", path=str(files[0])) from None
    return df


def _bad(df: pd.DataFrame, files: list[Path], i: int, message: str, column: str) -> InputError:
    return InputError(message, path=str(files[int(df["file"].iat[i])]),
                      row=int(df["line"].iat[i]), column=column)


def read_physionet2012(path, *, outcomes=None, features: Sequence[str] | None = None,
                       labels: Sequence[str] | None = None, time_step: float = 1.0,
                       max_steps: int | None = 48, aggregate: str = "last",
                       progress: Callable[[float], object] | None = None) -> Dataset:
    """Read a directory of PhysioNet/CinC 2012 record files.

    Parameters
    ----------
    path : str or Path
        Directory with one ``<RecordID>.txt`` per stay (e.g. ``set-a``).
    outcomes : str or Path, optional
        Outcomes file. Default: an ``Outcomes*.txt`` inside the directory, or
        ``Outcomes-<x>.txt`` next to a directory named ``set-<x>``.
    features : sequence of str, optional
        Time-series variables to keep (default: all measured). Static descriptors (Age,
        Gender, Height, ICUType) listed here become features repeated over every real step.
    labels : sequence of str, optional
        Descriptors and outcome columns to keep as labels. Default: Age, Gender, Height,
        ICUType, Weight and every outcome column.
    time_step : float
        Grid step in hours.
    max_steps : int or None
        Steps kept from admission (48 one-hour steps by default).
    aggregate : {"last", "mean"}
        How observations within one step are combined.
    progress : callable, optional
        Called with a float in [0, 1].

    Returns
    -------
    Dataset
        ``values`` (n_stays, n_steps, n_variables) float32 in the units of
        :data:`PHYSIONET_UNITS`; ``ids`` are the RecordIDs.

    Raises
    ------
    InputError
        No record file, unreadable time or value (naming the file and line).
    """
    p = Path(path)
    if not p.is_dir():
        raise InputError("PhysioNet 2012 data is a directory of record files; pass the directory",
                         path=str(p))
    files, outcome_files, other = _record_files(p)
    if not files:
        raise InputError(f"no PhysioNet 2012 record file (a text file starting with {HEADER!r}) "
                         "in this directory", path=str(p))
    warnings: list[str] = []
    if other:
        warnings.append(f"Skipped {len(other)} file(s) that are not record files, e.g. "
                        f"{other[0].name!r}")
    df = _read_records(files, progress)

    # Times "HH:MM" since admission.
    clock = df["Time"].str.strip().str.extract(_CLOCK)
    bad_time = clock[0].isna().to_numpy()
    if bad_time.any():
        i = int(np.flatnonzero(bad_time)[0])
        raise _bad(df, files, i, f"time {df['Time'].iat[i]!r} is not HH:MM", "Time")
    hours = clock[0].astype(float).to_numpy() + clock[1].astype(float).to_numpy() / 60.0
    value_text = df["Value"].str.strip()
    values = pd.to_numeric(value_text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad_value = np.isnan(values) & (value_text != "").to_numpy() & (
        ~value_text.str.lower().isin(["nan", "na"])).to_numpy()
    if bad_value.any():
        i = int(np.flatnonzero(bad_value)[0])
        raise _bad(df, files, i, f"value {df['Value'].iat[i]!r} is not a number; correct it or "
                   "write -1 for missing", "Value")
    too_big = np.abs(values) > np.finfo(np.float32).max
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise _bad(df, files, i, "infinite value; write -1 for missing", "Value")
    n_minus_one = int((values == -1).sum())
    values[values == -1] = np.nan
    if n_minus_one:
        warnings.append(f"{n_minus_one} value(s) of -1 were read as missing")
    param = df["Parameter"].str.strip().to_numpy(dtype=object)
    file_idx = df["file"].to_numpy(dtype=np.int64)
    n_files = len(files)

    # Static descriptors: Weight only at 00:00 (later weights are a time series).
    is_static = np.isin(param, STATIC_DESCRIPTORS) & ((param != "Weight") | (hours == 0))
    statics: dict[str, np.ndarray] = {}
    n_repeat = 0
    for name in STATIC_DESCRIPTORS:
        sel = np.flatnonzero(is_static & (param == name))
        col = np.full(n_files, np.nan)
        # first value per stay wins
        f_sel = file_idx[sel]
        _, first = np.unique(f_sel, return_index=True)
        n_repeat += sel.size - first.size
        col[f_sel[first]] = values[sel][first]
        statics[name] = col
    if n_repeat:
        warnings.append(f"{n_repeat} repeated static descriptor line(s) ignored (the first value "
                        "of each stay is used)")
    record_ids = statics["RecordID"]
    ids = []
    for i, f in enumerate(files):
        rid = record_ids[i]
        if np.isfinite(rid) and float(rid).is_integer():
            ids.append(str(int(rid)))
        else:
            ids.append(f.stem)
    if all(re.fullmatch(r"-?\d{1,18}", s) for s in ids):
        patient_ids = np.asarray([int(s) for s in ids], dtype=np.int64)
    else:
        patient_ids = np.asarray(ids, dtype=str)
    n_dup = len(ids) - len(set(ids))
    if n_dup:
        warnings.append(f"{n_dup} stay(s) share a RecordID with another file")
    no_rows = np.setdiff1d(np.arange(n_files), np.unique(file_idx))
    if no_rows.size:
        raise InputError(f"{no_rows.size} record file(s) have no line after the header, e.g. "
                         f"{files[int(no_rows[0])].name!r}; remove them or add the descriptors",
                         path=str(p))

    series = ~is_static
    names_present = pd.unique(param[series])
    known = [v for v in TIME_SERIES_VARIABLES if v in set(names_present)]
    unknown = sorted(set(names_present) - set(TIME_SERIES_VARIABLES))
    if unknown:
        warnings.append(f"Unknown parameter(s) kept as variables: {validation._list_names(unknown)}")
    available = known + unknown
    static_feature_names: list[str] = []
    if features is not None:
        missing = [f for f in features if f not in available and f not in STATIC_DESCRIPTORS]
        if missing:
            raise InputError(f"feature(s) {validation._list_names(missing)} not found; available "
                             f"variables: {validation._list_names(available, 40)}", path=str(p))
        static_feature_names = [f for f in features if f in STATIC_DESCRIPTORS
                                and f not in available and f != "RecordID"]
        chosen = [f for f in features if f in available]
    else:
        chosen = available
    code_of = {name: i for i, name in enumerate(chosen)}
    codes = np.fromiter((code_of.get(x, -1) for x in param), dtype=np.int64, count=param.size)
    codes[is_static] = -1
    left_out = series & (codes < 0)
    if left_out.any():
        warnings.append(f"{int(left_out.sum())} measurement(s) of variables not among the "
                        "features were left out")

    outcome_frame = _outcomes(p, outcomes, outcome_files, patient_ids, warnings)
    default_labels = [d for d in STATIC_DESCRIPTORS if d != "RecordID"
                      and d not in static_feature_names]
    default_labels += [c for c in outcome_frame.columns]
    if labels is None:
        label_names = default_labels
    else:
        unknown_labels = [lb for lb in labels if lb not in default_labels]
        if unknown_labels:
            raise InputError(f"label(s) {validation._list_names(unknown_labels)} not found; "
                             f"available: {validation._list_names(default_labels, 20)}",
                             path=str(p))
        label_names = list(labels)
    static_labels = {}
    for lb in label_names:
        static_labels[lb] = statics[lb] if lb in statics else outcome_frame[lb].to_numpy(np.float64)

    parts = SeriesParts(
        patient=file_idx, patient_ids=patient_ids, times=hours,
        records=None, time_kind="clock",
        long_codes=codes, long_values=values.astype(np.float32), long_names=chosen,
        static_labels=static_labels,
        static_features={f: statics[f].astype(np.float32) for f in static_feature_names},
        units={**PHYSIONET_UNITS},
    )

    def locate(record: int) -> int:
        return int(df["line"].iat[record])

    ds = build_series(parts, time_step=time_step, aggregate=aggregate, max_steps=max_steps,
                      origin="zero", id_col="RecordID", time_col="Time", time_unit="h",
                      source=str(p), path=str(p), locate=locate, warnings=warnings)
    if progress is not None:
        progress(1.0)
    return ds


def _outcomes(path: Path, outcomes, in_dir: list[Path], ids: np.ndarray,
              warnings: list[str]) -> pd.DataFrame:
    """Outcome columns aligned to the stays (NaN where unknown); empty frame when none."""
    target = Path(outcomes) if outcomes is not None else _find_outcomes(path, in_dir)
    empty = pd.DataFrame(index=range(len(ids)))
    if target is None:
        return empty
    if not target.is_file():
        raise InputError("outcomes file not found", path=str(target))
    try:
        table = pd.read_csv(target, sep=None, engine="python", encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the outcomes file ({type(exc).__name__}); it should be "
                         "a CSV with a RecordID column", path=str(target)) from None
    table.columns = [str(c).strip() for c in table.columns]
    if "RecordID" not in table.columns:
        raise InputError("the outcomes file has no RecordID column", path=str(target))
    rid = pd.to_numeric(table["RecordID"], errors="coerce")
    if rid.isna().any():
        i = int(np.flatnonzero(rid.isna().to_numpy())[0])
        raise InputError(f"RecordID {table['RecordID'].iat[i]!r} is not a number",
                         path=str(target), row=i + 2, column="RecordID")
    table = table.assign(RecordID=rid.astype(np.int64))
    out = pd.DataFrame(index=range(len(ids)))
    key = pd.Series(ids).astype(str)
    by_id = table.drop_duplicates("RecordID", keep="first").set_index(
        table.drop_duplicates("RecordID", keep="first")["RecordID"].astype(str))
    for c in table.columns:
        if c == "RecordID":
            continue
        col = pd.to_numeric(by_id[c], errors="coerce")
        bad = col.isna() & by_id[c].notna()
        if bad.any():
            raise InputError(f"outcome value {by_id[c][bad].iloc[0]!r} is not a number",
                             path=str(target), column=c)
        col = col.where(col != -1)
        out[c] = key.map(col).to_numpy(dtype=np.float64)
    matched = int(key.isin(by_id.index).sum())
    extra = int((~by_id.index.isin(key)).sum())
    msg = f"Joined outcomes from {target.name} ({matched} of {len(ids)} stays matched"
    msg += f"; {extra} outcome row(s) have no record file)" if extra else ")"
    warnings.append(msg + "; -1 read as missing")
    return out


def inspect_physionet2012(path, nrows: int = 200):
    """Describe a PhysioNet 2012 directory for the import dialog.

    Parameters
    ----------
    path : str or Path
        The directory.
    nrows : int
        Preview rows of the first record file.

    Returns
    -------
    FileInspection
        ``suggested_format`` is ``"physionet2012"``; ``n_rows_estimate`` counts the stays.
    """
    p = Path(path)
    files, outcome_files, other = _record_files(p)
    if not files:
        raise InputError(f"no PhysioNet 2012 record file (a text file starting with {HEADER!r}) "
                         "in this directory", path=str(p))
    preview = pd.read_csv(files[0], nrows=nrows, dtype={"Time": str, "Parameter": str})
    notes = [f"{len(files)} record file(s)"]
    target = _find_outcomes(p, outcome_files)
    if target is not None:
        notes.append(f"outcomes in {target.name}")
    if other:
        notes.append(f"{len(other)} other file(s) ignored")
    return FileInspection(
        path=str(p), file_type="physionet2012", suggested_format="physionet2012",
        encoding="utf-8", delimiter=",", decimal=".", has_header=True,
        columns=["Time", "Parameter", "Value"], preview=preview,
        kinds={"Time": "time", "Parameter": "categorical", "Value": "numeric"},
        roles={"Time": "time", "Parameter": "variable", "Value": "value"},
        id_col="RecordID", time_col="Time", var_col="Parameter", value_col="Value",
        n_rows_estimate=len(files), warnings=["; ".join(notes)])
