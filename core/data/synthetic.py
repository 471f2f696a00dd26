"""Synthetic cohorts with a known ground truth, for tests, demos and benchmarks.

Two generators live here:

* :func:`make_icu_cohort` simulates hourly ICU stays driven by hidden health states on a
  small 2-D lattice (METHOD.md section 8.3). Axis 1 is cardiovascular failure, axis 2 is
  renal/metabolic failure; each has ``n_states_side`` levels. Patients move between
  neighbouring states, observations follow organ-specific loadings, values are recorded with
  clinical missingness, and the true states, severities, APACHE-style scores and mortality
  flags come along as labels.
* :func:`make_manifold_clusters` is the static analogue: Gaussian clusters on a ring or a
  sheet, bent into many dimensions by a fixed smooth random map.

:func:`cohort_to_frame` writes a cohort as the wide or long table a user would import.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import InputError
from .dataset import Dataset
from .scores import apache_points, window_worst_score

__all__ = [
    "FEATURE_CATALOGUE",
    "APACHE_HORIZONS",
    "make_icu_cohort",
    "lattice_levels",
    "cohort_to_frame",
    "make_manifold_clusters",
    "manifold_centres",
]


class _Variable(NamedTuple):
    name: str
    unit: str
    panel: str          # "vital", or the lab panel it is drawn with
    log: bool           # simulated on the log scale (skewed, positive quantities)
    healthy: float      # typical value in the best state
    cardio: float       # typical value at full cardiovascular failure (renal axis healthy)
    renal: float        # typical value at full renal failure (cardio axis healthy)
    sd_between: float   # patient offset SD (log units when ``log``)
    sd_within: float    # hour-to-hour noise SD (log units when ``log``)
    lo: float
    hi: float
    decimals: int
    rate: float         # vitals: chance of a value each hour; labs: chance it is in a drawn panel


# Effects of the two axes add (on the log scale for ``log`` variables), so the worst corner
# combines shock and renal failure. MAP is not simulated on its own: it is derived from the
# systolic and diastolic pressures, its row documents the resulting values.
FEATURE_CATALOGUE: tuple[_Variable, ...] = (
    _Variable("HR", "bpm", "vital", False, 80, 125, 88, 8, 5, 25, 220, 0, 0.95),
    _Variable("MAP", "mmHg", "vital", False, 86, 57, 89, 0, 2, 20, 200, 0, 0.92),
    _Variable("SysBP", "mmHg", "vital", False, 122, 85, 130, 10, 7, 40, 260, 0, 0.92),
    _Variable("DiasBP", "mmHg", "vital", False, 68, 43, 68, 6, 5, 15, 160, 0, 0.92),
    _Variable("RespRate", "/min", "vital", False, 16, 28, 22, 2, 2.5, 4, 60, 0, 0.93),
    _Variable("Temp", "°C", "vital", False, 37.0, 38.4, 36.9, 0.3, 0.3, 31, 42.5, 1, 0.90),
    _Variable("SpO2", "%", "vital", False, 97, 91, 96, 1, 1.5, 60, 100, 0, 0.94),
    _Variable("Creatinine", "mg/dL", "chem", True, 0.9, 1.4, 4.5, 0.15, 0.06, 0.2, 15, 2, 0.98),
    _Variable("BUN", "mg/dL", "chem", True, 15, 24, 85, 0.2, 0.06, 2, 250, 0, 0.98),
    _Variable("Sodium", "mmol/L", "chem", False, 140, 137, 133, 2.5, 1.5, 110, 175, 0, 0.98),
    _Variable("Potassium", "mmol/L", "chem", False, 4.1, 4.5, 6.0, 0.3, 0.25, 2.0, 8.5, 1, 0.98),
    _Variable("HCO3", "mmol/L", "chem", False, 24, 18, 15, 1.5, 1.2, 5, 45, 0, 0.98),
    _Variable("Lactate", "mmol/L", "gas", True, 1.1, 6.0, 1.8, 0.2, 0.15, 0.3, 25, 1, 0.90),
    _Variable("WBC", "10^3/µL", "cbc", True, 8, 17, 10, 0.2, 0.1, 0.5, 80, 1, 0.98),
    _Variable("Platelets", "10^3/µL", "cbc", True, 240, 110, 180, 0.25, 0.08, 5, 900, 0, 0.98),
    _Variable("Glucose", "mg/dL", "chem", True, 115, 170, 125, 0.15, 0.12, 30, 700, 0, 0.95),
    _Variable("Hemoglobin", "g/dL", "cbc", False, 12.5, 9.5, 10.0, 1.2, 0.4, 4, 20, 1, 0.98),
    _Variable("Chloride", "mmol/L", "chem", False, 103, 105, 108, 2.5, 1.5, 80, 130, 0, 0.98),
    _Variable("pH", "", "gas", False, 7.40, 7.27, 7.30, 0.02, 0.03, 6.8, 7.7, 2, 0.95),
    _Variable("Bilirubin", "mg/dL", "liver", True, 0.7, 2.5, 1.0, 0.3, 0.08, 0.1, 30, 1, 0.97),
    _Variable("Albumin", "g/dL", "liver", False, 3.5, 2.6, 2.9, 0.3, 0.15, 1.0, 5.5, 1, 0.97),
    _Variable("INR", "", "liver", True, 1.1, 1.8, 1.2, 0.1, 0.05, 0.8, 8, 1, 0.97),
    _Variable("Calcium", "mg/dL", "chem", False, 8.9, 8.2, 8.0, 0.4, 0.25, 5, 13, 1, 0.95),
    _Variable("Magnesium", "mg/dL", "chem", False, 2.0, 2.0, 2.5, 0.2, 0.12, 0.8, 4.5, 1, 0.95),
)

_NAMES = [v.name for v in FEATURE_CATALOGUE]
_IDX = {name: i for i, name in enumerate(_NAMES)}
# Chosen first when fewer features are asked for: the APACHE variables, then the features
# that carry the two failure axes best.
_PRIORITY = ["Temp", "MAP", "RespRate", "HCO3", "Sodium", "Potassium", "Creatinine",
             "HR", "Lactate", "BUN", "SpO2", "SysBP", "DiasBP", "WBC", "Platelets", "Glucose"]
_APACHE_INPUTS = ["Temp", "MAP", "RespRate", "HCO3", "Sodium", "Potassium", "Creatinine"]

#: Horizons (hours) of the ``apache_<h>`` labels; 0 is the current hour.
APACHE_HORIZONS = (0, 6, 12, 24)
_DEATH_HORIZONS = (6, 12, 24)
# Lab panels: candidate sampling intervals in hours and how often each is chosen.
_PANEL_INTERVALS = {
    "chem": ((6, 8, 12, 24), (0.3, 0.2, 0.35, 0.15)),
    "cbc": ((8, 12, 24), (0.3, 0.4, 0.3)),
    "gas": ((6, 12, 24), (0.35, 0.35, 0.3)),
    "liver": ((12, 24), (0.3, 0.7)),
}
_SUBGROUPS = ("stable", "deteriorating", "recovering")
_SUBGROUP_SHARES = (0.5, 0.3, 0.2)
_OUTLIER_RATE = 0.002


def _choose_features(n_features: int) -> list[int]:
    chosen = set(_PRIORITY[:n_features])
    for name in _NAMES:
        if len(chosen) >= n_features:
            break
        chosen.add(name)
    return [i for i, name in enumerate(_NAMES) if name in chosen]


def lattice_levels(state, n_states_side: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Split state ids of :func:`make_icu_cohort` into their two axis levels.

    Parameters
    ----------
    state : array_like of int (or float with NaN on padding)
        State ids ``cardio_level * n_states_side + renal_level``.
    n_states_side : int
        Levels per axis.

    Returns
    -------
    cardio, renal : ndarray of float
        Levels ``0 .. n_states_side - 1`` (NaN where ``state`` is NaN), same shape as ``state``.
    """
    s = np.asarray(state, dtype=np.float64)
    return np.floor(s / n_states_side), np.mod(s, n_states_side)


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or int(value) != value or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InputError(f"{name} must be a whole number {bound}; got {value!r}")
    return int(value)


def _initial_states(rng, subgroup: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Start states: stable patients anywhere (mostly mild), deteriorating patients mild,
    recovering patients severe; nobody starts in the terminal corner."""
    c, r = np.divmod(np.arange(side * side), side)
    sev = c + r
    top = 2 * (side - 1)
    ok = sev < top
    weights = np.stack([
        np.where(ok, np.exp(-1.2 * sev), 0.0),
        np.where(ok & (sev <= side - 1), np.exp(-0.5 * sev), 0.0),
        np.where(ok & (sev >= side - 1), np.exp(0.5 * sev), 0.0),
    ])
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)[subgroup]
    pick = (rng.random(len(subgroup))[:, None] < cdf).argmax(axis=1)
    return c[pick], r[pick]


def _simulate_states(rng, subgroup, p_stay, drift, side: int, n_steps: int):
    """Sticky nearest-neighbour Markov chain on the lattice; the worst corner absorbs."""
    n = len(subgroup)
    cardio = np.empty((n, n_steps), dtype=np.int64)
    renal = np.empty((n, n_steps), dtype=np.int64)
    cardio[:, 0], renal[:, 0] = _initial_states(rng, subgroup, side)
    home_c, home_r = cardio[:, 0].copy(), renal[:, 0].copy()
    # Moves: +cardio, +renal (worse), -cardio, -renal (better).
    step_c = np.array([1, 0, -1, 0])
    step_r = np.array([0, 1, 0, -1])
    worse = step_c + step_r > 0
    w = np.ones((n, 4))
    det, rec, stable = subgroup == 1, subgroup == 2, subgroup == 0
    w[det] = np.where(worse, drift[det, None], 1.0)
    w[rec] = np.where(worse, 1.0, drift[rec, None])
    u_move = rng.random((n, n_steps))
    u_dir = rng.random((n, n_steps))
    rows = np.arange(n)
    for t in range(1, n_steps):
        c, r = cardio[:, t - 1], renal[:, t - 1]
        nc, nr = c[:, None] + step_c, r[:, None] + step_r
        valid = (nc >= 0) & (nc < side) & (nr >= 0) & (nr < side)
        wt = w.copy()
        # Stable patients fluctuate around where they started instead of diffusing away.
        toward = (np.abs(nc - home_c[:, None]) + np.abs(nr - home_r[:, None])
                  < (np.abs(c - home_c) + np.abs(r - home_r))[:, None])
        wt[stable] = np.where(toward[stable], 8.0, 1.0)
        wt = np.where(valid, wt, 0.0)
        cw = np.cumsum(wt, axis=1)
        pick = (u_dir[:, t, None] * cw[:, -1:] < cw).argmax(axis=1)
        terminal = (c == side - 1) & (r == side - 1)
        move = (u_move[:, t] > p_stay) & ~terminal
        cardio[:, t] = np.where(move, nc[rows, pick], c)
        renal[:, t] = np.where(move, nr[rows, pick], r)
    return cardio, renal


def _simulate_values(rng, cardio, renal, side: int) -> np.ndarray:
    """Complete raw values ``(n, T, len(FEATURE_CATALOGUE))`` for every patient hour."""
    n, n_steps = cardio.shape
    cat = FEATURE_CATALOGUE
    log = np.array([v.log for v in cat])
    tr = lambda x: np.where(log, np.log(np.asarray(x, dtype=np.float64)), x)  # noqa: E731
    healthy = tr([v.healthy for v in cat])
    d_cardio = tr([v.cardio for v in cat]) - healthy
    d_renal = tr([v.renal for v in cat]) - healthy
    sd_b = np.array([v.sd_between for v in cat])
    sd_w = np.array([v.sd_within for v in cat])
    phi = np.where(np.array([v.panel == "vital" for v in cat]), 0.7, 0.9)

    u1 = (cardio / (side - 1))[..., None]
    u2 = (renal / (side - 1))[..., None]
    work = healthy + u1 * d_cardio + u2 * d_renal
    work += (rng.standard_normal((n, len(cat))) * sd_b)[:, None, :]
    eta = rng.standard_normal((n, n_steps, len(cat)))
    noise = np.empty_like(eta)
    noise[:, 0] = eta[:, 0]
    innov = np.sqrt(1.0 - phi ** 2)
    for t in range(1, n_steps):
        noise[:, t] = phi * noise[:, t - 1] + innov * eta[:, t]
    work += noise * sd_w
    m, s, d = _IDX["MAP"], _IDX["SysBP"], _IDX["DiasBP"]
    work[..., m] = (work[..., s] + 2.0 * work[..., d]) / 3.0 + noise[..., m] * sd_w[m]
    # Artefacts: a few readings far off the patient's course.
    hit = rng.random(work.shape) < _OUTLIER_RATE
    jump = rng.choice([-1.0, 1.0], size=work.shape) * rng.uniform(4.0, 8.0, size=work.shape)
    work += np.where(hit, jump * sd_w, 0.0)

    values = np.where(log, np.exp(work), work)
    values = np.clip(values, [v.lo for v in cat], [v.hi for v in cat])
    for j, v in enumerate(cat):
        values[..., j] = np.round(values[..., j], v.decimals)
    return values


def _observation_mask(rng, n: int, n_steps: int) -> np.ndarray:
    """Which values a chart would hold: vitals most hours, lab panels every 6-24 h."""
    cat = FEATURE_CATALOGUE
    obs = rng.random((n, n_steps, len(cat))) < np.array([v.rate for v in cat])
    hours = np.arange(n_steps)
    for panel, (intervals, probs) in _PANEL_INTERVALS.items():
        every = rng.choice(np.asarray(intervals), size=n, p=probs)
        # First draw within the first hours of the record, then on a regular schedule.
        first = rng.integers(0, np.minimum(every, 6))
        drawn = (hours[None, :] >= first[:, None]) & ((hours[None, :] - first[:, None]) % every[:, None] == 0)
        cols = [j for j, v in enumerate(cat) if v.panel == panel]
        obs[:, :, cols] &= drawn[:, :, None]
    return obs


def make_icu_cohort(n_patients: int = 300, *, n_features: int = 16, max_steps: int = 72,
                    min_steps: int = 24, n_states_side: int = 3, seed: int = 0,
                    complete: bool = False) -> Dataset:
    """Simulate hourly ICU stays driven by hidden health states with known ground truth.

    Hidden states sit on an ``n_states_side x n_states_side`` lattice: the cardiovascular
    level (0 = normal … ``n_states_side - 1`` = shock) and the renal/metabolic level. The
    state id is ``cardio_level * n_states_side + renal_level`` (see :func:`lattice_levels`)
    and its severity is ``cardio_level + renal_level``.

    Each patient follows a sticky Markov chain (stays put with a per-patient probability of
    0.90-0.97 per hour) that moves only to the four lattice neighbours. Patients belong to a
    subgroup: *stable* (fluctuating around the start state), *deteriorating* (moves toward
    worse states are favoured) or *recovering* (moves toward better states are favoured).
    The worst corner is absorbing: a patient who reaches it dies, usually within 12 hours
    (never before ``min_steps``), and the record ends at death.

    Observations follow organ-specific loadings (cardiovascular axis: MAP and blood pressures
    down, HR, lactate and respiratory rate up; renal axis: creatinine, BUN and potassium up,
    HCO3 down), plus per-patient offsets, AR(1) noise within a patient, rare artefacts, and
    clinical missingness (vitals ~90-95 % of hours, lab panels every 6-24 h).

    Parameters
    ----------
    n_patients : int, default 300
        Number of stays.
    n_features : int, default 16
        Number of recorded variables, 7 to ``len(FEATURE_CATALOGUE)``. The seven APACHE
        variables are always included; with 16 the set is HR, MAP, SysBP, DiasBP, RespRate,
        Temp, SpO2, Creatinine, BUN, Sodium, Potassium, HCO3, Lactate, WBC, Platelets,
        Glucose. Columns keep the catalogue order. The simulated values of a variable do not
        depend on ``n_features``.
    max_steps : int, default 72
        Hours in the longest stay; the padded width of the arrays.
    min_steps : int, default 24
        Hours in the shortest stay.
    n_states_side : int, default 3
        Levels per lattice axis; there are ``n_states_side ** 2`` states.
    seed : int, default 0
        Everything is reproducible from it.
    complete : bool, default False
        Record every value (no missingness), e.g. to build tables.

    Returns
    -------
    Dataset
        A series: ``values`` float32 ``(n_patients, max_steps, n_features)`` in clinical
        units with NaN where not measured and on padding; ``mask``; ``ids`` "P0001", …;
        ``times`` in hours ``0, 1, 2, …`` (NaN on padding); ``lengths`` between
        ``min_steps`` and ``max_steps``. ``labels`` (each float32 ``(n_patients,
        max_steps)``, NaN on padding):

        - ``state``: true state id; ``severity``: its lattice severity;
        - ``apache_0``, ``apache_6``, ``apache_12``, ``apache_24``: APACHE-style score
          (METHOD.md Appendix B) of the complete raw values, worst over the next 0 (current
          hour), 6, 12, 24 hours;
        - ``death_6h``, ``death_12h``, ``death_24h``: 1 on the last 6/12/24 steps of a
          patient who dies, else 0;
        - ``died``: 1 for every step of a patient who dies;
        - ``subgroup``: 0 stable, 1 deteriorating, 2 recovering.

    Examples
    --------
    >>> ds = make_icu_cohort(50, seed=1)
    >>> ds.values.shape
    (50, 72, 16)
    """
    n = _check_int("n_patients", n_patients, 1)
    n_cat = len(FEATURE_CATALOGUE)
    n_features = _check_int("n_features", n_features, len(_APACHE_INPUTS), n_cat)
    max_steps = _check_int("max_steps", max_steps, 1)
    min_steps = _check_int("min_steps", min_steps, 1, max_steps)
    side = _check_int("n_states_side", n_states_side, 2, 10)

    rng = np.random.default_rng(seed)
    subgroup = rng.choice(len(_SUBGROUPS), size=n, p=_SUBGROUP_SHARES)
    planned = np.where(rng.random(n) < 0.4, max_steps, rng.integers(min_steps, max_steps + 1, size=n))
    p_stay = rng.uniform(0.90, 0.97, size=n)
    drift = rng.uniform(2.0, 5.0, size=n)
    dwell = rng.integers(1, 13, size=n)
    cardio, renal = _simulate_states(rng, subgroup, p_stay, drift, side, max_steps)

    terminal = (cardio == side - 1) & (renal == side - 1)
    reached = terminal.any(axis=1)
    first = np.where(reached, terminal.argmax(axis=1), max_steps)
    died = first < planned
    lengths = np.where(died, np.clip(first + dwell, min_steps, planned), planned).astype(np.int64)

    raw = _simulate_values(rng, cardio, renal, side)
    observed = _observation_mask(rng, n, max_steps)

    hours = np.arange(max_steps)
    real = hours[None, :] < lengths[:, None]
    cols = _choose_features(n_features)
    mask = real[..., None] & (observed[..., cols] | bool(complete))
    values = np.where(mask, raw[..., cols], np.nan).astype(np.float32)

    def per_step(a):
        return np.where(real, a, np.nan).astype(np.float32)

    points = apache_points(*(raw[..., _IDX[name]] for name in _APACHE_INPUTS))
    labels = {
        "state": per_step(cardio * side + renal),
        "severity": per_step(cardio + renal),
    }
    for h in APACHE_HORIZONS:
        labels[f"apache_{h}"] = window_worst_score(points, lengths, h)
    for h in _DEATH_HORIZONS:
        labels[f"death_{h}h"] = per_step(died[:, None] & (hours[None, :] >= lengths[:, None] - h))
    labels["died"] = per_step(np.broadcast_to(died[:, None], real.shape))
    labels["subgroup"] = per_step(np.broadcast_to(subgroup[:, None], real.shape))

    width = max(4, len(str(n)))
    return Dataset(
        values=values,
        mask=mask,
        feature_names=[_NAMES[j] for j in cols],
        units=[FEATURE_CATALOGUE[j].unit for j in cols],
        ids=np.array([f"P{i:0{width}d}" for i in range(1, n + 1)]),
        times=np.where(real, hours[None, :].astype(np.float64), np.nan),
        lengths=lengths,
        labels=labels,
        id_col="patient_id",
        time_col="hour",
        time_unit="h",
        source="synthetic:icu",
    )


def cohort_to_frame(dataset: Dataset, layout: str = "wide", *, id_col: str | None = None,
                    time_col: str | None = None) -> pd.DataFrame:
    """Write a dataset as the table a user would import.

    Parameters
    ----------
    dataset : Dataset
        A series (or a table; then there is no time column).
    layout : {"wide", "long"}
        ``"wide"``: one row per real patient step (or table row) with the id, the time, one
        column per variable (NaN where not observed) and one column per label.
        ``"long"``: one row per observed value with columns id, time, ``variable``,
        ``value``; labels are left out.
    id_col, time_col : str, optional
        Column names; default to the dataset's ``id_col``/``time_col``, else "id"/"time".

    Returns
    -------
    pandas.DataFrame
        Rows in patient order, then time order (long: then feature order). Values keep the
        dataset's float32. The number of non-missing variable cells (wide) or rows (long)
        equals ``dataset.mask.sum()``.
    """
    if layout not in ("wide", "long"):
        raise InputError(f"layout must be 'wide' or 'long'; got {layout!r}")
    id_col = id_col or dataset.id_col or "id"
    time_col = time_col or dataset.time_col or "time"
    n = dataset.n_samples
    ids = np.asarray(dataset.ids) if dataset.ids is not None else np.arange(1, n + 1)
    real = dataset.step_mask
    if dataset.is_series:
        n_steps = dataset.values.shape[1]
        times = dataset.times if dataset.times is not None else np.broadcast_to(
            np.arange(n_steps, dtype=np.float64), real.shape)
        row_ids = np.broadcast_to(ids[:, None], real.shape)[real]
        row_times = np.asarray(times)[real]
        rows = dataset.values[real]
        row_mask = dataset.mask[real]
    else:
        row_ids, row_times, rows, row_mask = ids, None, dataset.values, dataset.mask

    if layout == "wide":
        frame = {id_col: row_ids}
        if row_times is not None:
            frame[time_col] = row_times
        for j, name in enumerate(dataset.feature_names):
            frame[name] = np.where(row_mask[:, j], rows[:, j], np.nan).astype(np.float32)
        for name, lab in dataset.labels.items():
            frame[name] = np.asarray(lab)[real] if dataset.is_series else np.asarray(lab)
        return pd.DataFrame(frame)

    r, j = np.nonzero(row_mask)
    frame = {id_col: row_ids[r]}
    if row_times is not None:
        frame[time_col] = row_times[r]
    frame["variable"] = np.asarray(dataset.feature_names, dtype=object)[j]
    frame["value"] = rows[r, j].astype(np.float32)
    return pd.DataFrame(frame)


# The embedding map is the same for every seed, so samples drawn with different seeds come
# from one distribution (a model fitted on one seed can be applied to another).
_EMBEDDING_SEED = 20_190_601


def make_manifold_clusters(n_samples: int = 2000, *, n_clusters: int = 16, n_features: int = 30,
                           layout: str = "ring", noise: float = 0.3, seed: int = 0):
    """Gaussian clusters on a 2-D manifold, embedded nonlinearly in many dimensions.

    Cluster centres lie one unit apart on a ring (a circle) or a sheet (a near-square grid).
    Points scatter around their centre with SD ``noise``; then a fixed smooth random map
    (a tanh layer plus a linear part) lifts the 2-D positions into ``n_features`` dimensions,
    with a little isotropic noise. Neighbouring clusters on the manifold stay neighbours in
    the embedding, which is the structure a SOM should recover.

    Parameters
    ----------
    n_samples : int, default 2000
        Number of points.
    n_clusters : int, default 16
        Number of Gaussian clusters (ground-truth classes).
    n_features : int, default 30
        Dimension of the embedding.
    layout : {"ring", "sheet"}
        Shape of the 2-D manifold the centres lie on.
    noise : float, default 0.3
        Within-cluster SD in the 2-D layout, in units of the distance between neighbours.
    seed : int, default 0
        Draws the samples; the embedding map itself is the same for every seed.

    Returns
    -------
    X : ndarray of float32, shape ``(n_samples, n_features)``
    y : ndarray of int64, shape ``(n_samples,)``
        Cluster labels ``0 .. n_clusters - 1``, balanced (counts differ by at most one).
        Labels adjacent on the ring (``k`` and ``k + 1`` mod ``n_clusters``) or on the sheet
        (row-major cells of a ``ceil(sqrt(n_clusters))``-wide grid) are neighbours.
    pos : ndarray of float64, shape ``(n_samples, 2)``
        Positions in the 2-D layout.
    """
    n = _check_int("n_samples", n_samples, 1)
    k = _check_int("n_clusters", n_clusters, 2)
    d = _check_int("n_features", n_features, 2)
    if layout not in ("ring", "sheet"):
        raise InputError(f"layout must be 'ring' or 'sheet'; got {layout!r}")
    if not noise >= 0:
        raise InputError(f"noise must be >= 0; got {noise!r}")
    centres = manifold_centres(k, layout)

    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    pos = centres[y] + noise * rng.standard_normal((n, 2))

    emb = np.random.default_rng([_EMBEDDING_SEED, d])
    hidden = 64
    w1 = emb.normal(size=(2, hidden)) * 1.5
    b1 = emb.uniform(-1.0, 1.0, size=hidden)
    w2 = emb.normal(size=(hidden, d)) / np.sqrt(hidden)
    w3 = emb.normal(size=(2, d)) * 0.5
    # Normalise the layout so the tanh layer bends but does not saturate.
    p = (pos - centres.mean(axis=0)) / max(float(np.abs(centres - centres.mean(axis=0)).max()), 1.0)
    x = np.tanh(p @ w1 + b1) @ w2 + p @ w3
    x += 0.05 * rng.standard_normal(x.shape)
    return x.astype(np.float32), y, pos


def manifold_centres(n_clusters: int, layout: str = "ring") -> np.ndarray:
    """Cluster centres of :func:`make_manifold_clusters`, ``(n_clusters, 2)`` float64.

    Ring: on a circle with neighbouring centres exactly one unit apart. Sheet: row-major on a
    ``ceil(sqrt(n_clusters))``-wide unit grid.
    """
    k = int(n_clusters)
    if layout == "ring":
        angle = 2.0 * np.pi * np.arange(k) / k
        radius = 0.5 / np.sin(np.pi / k)
        return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    cols = int(np.ceil(np.sqrt(k)))
    idx = np.arange(k)
    return np.stack([idx % cols, idx // cols], axis=1).astype(np.float64)
