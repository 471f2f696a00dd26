"""What the command line and the app report about one trained run, computed once.

:func:`evaluate_run` gives every quality figure of a run against a label (``dpsom evaluate``
and the app's quality panel). :class:`RunExplorer` answers the questions asked of a trained
map: points per node, label means, the node-summary table (``dpsom export --nodes`` and the
app's export), the profile and outcomes of a selection of nodes, and the most frequent moves
between nodes. Every number comes from :mod:`core.analysis` or :mod:`core.io.export`; this
module picks the inputs, caches the results and names them. The app's map explorer adds
drawing (layers, tracks, forecasts) on top of the same object.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .analysis import (assignment_entropy, cluster_metrics, collapse_check, hit_map, label_enrichment,
                       local_move_share, mean_jump,
                       morans_i, node_path, quantisation_error, topographic_error, transition_matrix)
from .errors import InputError
from .io.export import assignments_frame, node_summary_frame

__all__ = ["RunExplorer", "evaluate_run", "numeric_labels", "ProfileRow", "OutcomeRow", "SelectionSummary", "Flow"]


# ------------------------------------------------------------------------ records
#: Labels with at most this many whole values are shown as categories, not on a scale.
CATEGORICAL_MAX = 12

@dataclass(frozen=True)
class ProfileRow:
    """One variable of the selected nodes against the whole cohort.

    ``z_measured`` and ``z_model`` are differences from the cohort mean in cohort standard
    deviations: of the values measured in the selected nodes, and of the nodes' decoded
    (model) profile. NaN when unknown.
    """

    name: str
    unit: str
    measured: float
    model: float
    cohort_mean: float
    cohort_median: float
    cohort_sd: float
    n_measured: int

    @property
    def z_measured(self) -> float:
        return _z(self.measured, self.cohort_mean, self.cohort_sd)

    @property
    def z_model(self) -> float:
        return _z(self.model, self.cohort_mean, self.cohort_sd)


def _z(value: float, mean: float, sd: float) -> float:
    if not (np.isfinite(value) and np.isfinite(mean) and np.isfinite(sd)) or sd <= 0:
        return float("nan")
    return float((value - mean) / sd)


@dataclass(frozen=True)
class OutcomeRow:
    """An outcome in the selected nodes: mean (event rate), count, 95 % interval, cohort mean.

    ``title`` is :meth:`RunExplorer.label_title` of ``name``.
    """

    name: str
    title: str
    kind: str
    mean: float
    count: int
    lower: float
    upper: float
    cohort_mean: float
    n_missing: int
    #: Distinct patients behind the points (intervals count patients, not time points).
    n_patients: int = 0
    #: Categorical outcomes: ``(value, share of time points)`` of each category, commonest first.
    categories: tuple = ()


@dataclass(frozen=True)
class SelectionSummary:
    """Everything known about the points of a set of selected nodes.

    Attributes
    ----------
    nodes : tuple of int
    frame : pandas.DataFrame
        One line per point in the nodes (``core.io.export.assignments_frame`` columns plus
        the numeric labels), in input order.
    patient, step : ndarray of int64, shape ``(M,)``
        Dataset position of each line: row and step within the row (``step`` is -1 for
        tables).
    n_patients : int
        Distinct patients (series; the parts of a stay kept in several rows count once) or
        rows (tables).
    profile : list of ProfileRow
    outcomes : list of OutcomeRow
    """

    nodes: tuple
    frame: object
    patient: np.ndarray
    step: np.ndarray
    n_patients: int
    profile: list
    outcomes: list

    @property
    def n_points(self) -> int:
        return int(self.patient.size)


@dataclass(frozen=True)
class Flow:
    """A frequent move between two different nodes, with its wrap-aware drawing pieces."""

    source: int
    target: int
    count: int
    pieces: tuple  # of ndarray (m, 2), map drawing coordinates


# ------------------------------------------------------------------------ labels
def numeric_labels(dataset) -> list[str]:
    """Names of the labels that hold numbers (others cannot be averaged or drawn)."""
    out = []
    for name, values in (dataset.labels or {}).items():
        a = np.asarray(values)
        if a.dtype.kind in "biuf":
            out.append(name)
            continue
        try:
            np.asarray([v if v not in ("", None) else np.nan for v in a.ravel()[:200]], dtype=float)
        except (TypeError, ValueError):
            continue
        out.append(name)
    return out


def _label_at(dataset, name: str, valid: np.ndarray) -> np.ndarray:
    """A label's raw value at every point where ``valid`` ((n,) or (N, T) bool) is True.

    A per-patient label of a series ``(N,)`` holds at every step of that patient.
    """
    a = np.asarray(dataset.labels[name])
    if valid.ndim == 2 and a.shape == valid.shape[:1]:
        a = np.repeat(a[:, None], valid.shape[1], axis=1)
    return a[valid]


# ------------------------------------------------------------------------ evaluation
def evaluate_run(run, label: str) -> dict:
    """Every quality figure of a trained run against one label.

    Parameters
    ----------
    run : core.workflow.ModelRun
        A trained run.
    label : str
        One of ``run.dataset.labels`` (text labels count as classes).

    Returns
    -------
    dict
        ``label``, ``points``, the figures of :func:`core.analysis.cluster_metrics`,
        ``quantisation_error``, ``topographic_error``, ``mean_entropy``, ``nodes_used``,
        ``collapsed`` and ``collapse_message``, ``morans_i`` (None for a text label) and, for
        time series, ``mean_jump``, ``local_moves`` (share of steps on the node or to a
        neighbour) and ``path_local_moves`` (the same along the smoothed node paths, when the
        run has soft assignments).

    Raises
    ------
    InputError
        No label of that name.
    """
    ds = run.dataset
    if label not in ds.labels:
        have = ", ".join(sorted(ds.labels)) or "none"
        raise InputError(f"no label named {label!r} in this project (labels: {have})")
    a = run.assignments()
    bmu = a["bmu"]
    valid = bmu >= 0
    y = _label_at(ds, label, valid)
    b = bmu[valid]
    out = {"label": label, "points": int(valid.sum())}
    out.update(cluster_metrics(y, b))
    z = run.latent()
    protos = run.prototypes()
    out["quantisation_error"] = quantisation_error(z, protos)
    out["topographic_error"] = topographic_error(z, protos, run.grid)
    out["mean_entropy"] = float(assignment_entropy(a["proba"][valid]).mean())
    out["nodes_used"] = int(len(np.unique(b)))
    collapsed, message = collapse_check(b, run.grid.n_nodes, y)
    out["collapsed"], out["collapse_message"] = bool(collapsed), message
    try:
        enr = label_enrichment(b, y, run.grid.n_nodes)
        out["morans_i"] = float(morans_i(enr.mean, run.grid, counts=enr.count))
    except InputError:
        out["morans_i"] = None
    if run.temporal:
        out["mean_jump"] = float(mean_jump(bmu, ds.lengths, run.grid, continues=ds.continues))
        out["local_moves"] = local_move_share(bmu, ds.lengths, run.grid, continues=ds.continues)
        if a.get("proba") is not None and callable(getattr(run, "node_paths", None)):
            out["path_local_moves"] = local_move_share(run.node_paths(), ds.lengths, run.grid,
                                                       continues=ds.continues)
    return out


# ------------------------------------------------------------------------ explorer
class RunExplorer:
    """Computes and caches what is reported about the nodes of one trained run.

    Parameters
    ----------
    run : core.workflow.ModelRun
        A trained run (decoded prototypes, latent points, assignments).
    results : dict, optional
        At least ``"bmu"``: ``(n,)`` or ``(N, T)`` int; usually also ``"proba"`` and, for
        T-DPSOM, ``"next_node_pred"`` and ``"path_node"`` (:meth:`node_paths`). Default:
        ``run.assignments()``.
    dataset : core.data.Dataset, optional
        Default: ``run.dataset``.

    Notes
    -----
    Points are the rows of a table or the real steps of a series, in input order; ``M`` below
    is their number and ``K`` the number of nodes.
    """

    def __init__(self, run, results: dict | None = None, dataset=None) -> None:
        self.run = run
        self.dataset = dataset if dataset is not None else run.dataset
        self.grid = run.grid
        self.results = results if results is not None else run.assignments()
        self.bmu = np.asarray(self.results["bmu"])
        proba = self.results.get("proba")
        self.proba = None if proba is None else np.asarray(proba)
        self.series = self.bmu.ndim == 2
        self.valid = self.dataset.step_mask if self.series else np.ones(self.bmu.shape[0], dtype=bool)
        where = np.nonzero(self.valid)
        self.point_patient = where[0].astype(np.int64)  # dataset row of each point
        # the parts of a stay kept in several rows are one patient: counts and intervals use this
        self.point_stay = (self.dataset.row_patient[where[0]] if self.series else where[0]).astype(np.int64)
        self.point_step = where[1].astype(np.int64) if self.series else np.full(where[0].size, -1, np.int64)
        self.point_node = self.bmu[self.valid].astype(np.int64)
        self._cache: dict = {}

    # ------------------------------------------------------------------ basics
    @property
    def n_nodes(self) -> int:
        return self.grid.n_nodes

    @property
    def n_points(self) -> int:
        return int(self.point_node.size)

    def can(self, method: str) -> bool:
        """Whether the run offers ``method`` (e.g. "forecast"; a table model cannot forecast)."""
        if method == "forecast" and not getattr(self.run, "temporal", self.series):
            return False
        return callable(getattr(self.run, method, None))

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def hits(self) -> np.ndarray:
        """Points per node ``(K,)`` int64."""
        return self._cached("hits", lambda: hit_map(self.point_node, self.n_nodes))

    def point_proba(self) -> np.ndarray | None:
        """Soft assignment of every real point ``(M, K)``, or None."""
        if self.proba is None:
            return None
        return self._cached("proba_points", lambda: np.asarray(self.proba[self.valid], dtype=np.float64))

    def decoded(self) -> np.ndarray:
        """Every node's typical profile in clinical units ``(K, D)``."""
        return self._cached("decoded", lambda: np.asarray(self.run.decoded_prototypes(), dtype=np.float64))

    def labels(self) -> list[str]:
        """Numeric labels (outcomes) of the data."""
        return self._cached("labels", lambda: numeric_labels(self.dataset))

    def label_points(self, name: str) -> np.ndarray:
        """One label's value at every real point ``(M,)`` float64 (NaN when unknown).

        A per-patient label of a series ``(N,)`` holds at every step of that patient.
        """

        def make():
            a = _label_at(self.dataset, name, self.valid)
            if a.dtype.kind not in "biuf":
                a = np.asarray([np.nan if v in ("", None) else v for v in a], dtype=float)
            return a.astype(np.float64)

        return self._cached(("label", name), make)

    def enrichment(self, label: str):
        """``core.analysis.label_enrichment`` of one label over the nodes (cached)."""
        return self._cached(("enrichment", label), lambda: label_enrichment(
            self.point_node, self.label_points(label), self.n_nodes))

    def patients_per_node(self) -> np.ndarray:
        """Distinct patients (series) or rows (tables) in every node ``(K,)``."""

        def make():
            if not self.series:
                return self.hits()
            n = self.bmu.shape[0]
            pairs = np.unique(self.point_node * n + self.point_stay)
            return np.bincount(pairs // n, minlength=self.n_nodes)

        return self._cached("patients_per_node", make)

    def label_title(self, name: str) -> str:
        """The title of a label in :class:`OutcomeRow` (its name; a caller may say it plainer)."""
        return name

    def evaluate(self, label: str) -> dict:
        """Every quality figure of the run against one label (:func:`evaluate_run`)."""
        return evaluate_run(self.run, label)

    def node_paths(self) -> np.ndarray | None:
        """T-DPSOM: every patient's smoothed node path ``(N, T)`` (``-1`` on padding), or None.

        ``results["path_node"]`` when given, else the run's own
        :meth:`core.workflow.ModelRun.node_paths` for the run's data; None for tables and for
        results without soft assignments (projects that saved only the nodes).
        """

        def make():
            if "path_node" in self.results:
                return np.asarray(self.results["path_node"])
            if not self.series or self.proba is None or self.dataset is not getattr(self.run, "dataset", None) \
                    or not callable(getattr(self.run, "node_paths", None)):
                return None
            return np.asarray(self.run.node_paths())

        return self._cached("node_paths", make)

    # ------------------------------------------------------------------ tables
    def assignments_frame(self, probabilities: bool = False):
        """``core.io.export.assignments_frame`` of every point of the run (cached); T-DPSOM
        runs add the smoothed path's node (:meth:`node_paths`)."""
        return self._cached(("assignments_frame", probabilities), lambda: assignments_frame(
            bmu=self.bmu, grid=self.grid, proba=self.proba, dataset=self.dataset,
            next_node_pred=self.results.get("next_node_pred"), path_node=self.node_paths(),
            probabilities=probabilities))

    def node_summary(self, annotations: dict | None = None):
        """One line per node: counts, the mean of every numeric label, the decoded profile and
        the project's annotations (``core.io.export.node_summary_frame``), plus a
        ``supercluster_name`` column when the groups have names."""
        means = {}
        for name in self.labels():
            try:
                means[name] = self.enrichment(name).mean
            except InputError:  # e.g. a label whose values are all unknown
                continue
        decoded = self.decoded() if self.can("decoded_prototypes") else None
        annotations = annotations or {}
        frame = node_summary_frame(self.grid, counts=self.hits(), label_means=means, prototypes=decoded,
                                   feature_names=self.dataset.feature_names, annotations=annotations)
        names = annotations.get("supercluster_names")
        if names and "supercluster" in frame.columns:
            where = frame.columns.get_loc("supercluster") + 1
            frame.insert(where, "supercluster_name", [names[int(g)] if 0 <= int(g) < len(names) else ""
                                                      for g in frame["supercluster"]])
        return frame

    # ------------------------------------------------------------------ selection
    def point_mask(self, nodes) -> np.ndarray:
        """Which real points (``(M,)`` bool, input order) fall in ``nodes``."""
        return np.isin(self.point_node, np.asarray(list(nodes), dtype=np.int64))

    def selection_assignments(self, nodes, probabilities: bool = False):
        """The lines of :meth:`assignments_frame` whose point lies in ``nodes``."""
        frame = self.assignments_frame(probabilities)
        return frame.loc[self.point_mask(nodes)].reset_index(drop=True)

    def _cohort_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def make():
            values = self._point_values()
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns give NaN
                return np.nanmean(values, axis=0), np.nanmedian(values, axis=0), np.nanstd(values, axis=0)

        return self._cached("cohort", make)

    def _point_values(self) -> np.ndarray:
        """Measured values of every real point ``(M, D)`` float64, NaN where not measured."""
        ds = self.dataset
        return np.where(ds.mask, ds.values, np.nan)[self.valid].astype(np.float64)

    def selection(self, nodes) -> SelectionSummary:
        """Rows, profile and outcome statistics of the points in ``nodes``."""
        nodes = tuple(sorted({int(k) for k in nodes}))
        mask = self.point_mask(nodes)
        frame = self.assignments_frame().loc[mask].reset_index(drop=True)
        for name in self.labels():
            if name not in frame.columns:
                frame[name] = self.label_points(name)[mask]
        patient = self.point_patient[mask]
        n_patients = int(np.unique(self.point_stay[mask]).size)
        return SelectionSummary(nodes, frame, patient, self.point_step[mask], n_patients,
                                self.profile(nodes, mask), self.outcomes(mask))

    def profile(self, nodes, mask: np.ndarray | None = None) -> list[ProfileRow]:
        """Every variable in the selected nodes (measured mean and model profile) vs the cohort.

        The model profile is the decoded prototypes of ``nodes`` weighted by their points.
        """
        mask = self.point_mask(nodes) if mask is None else mask
        ds = self.dataset
        mean, median, sd = self._cohort_stats()
        values = self._point_values()[mask]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            measured = np.nanmean(values, axis=0) if values.shape[0] else np.full(ds.n_features, np.nan)
        n_measured = np.isfinite(values).sum(axis=0)
        model = np.full(ds.n_features, np.nan)
        nodes = list(nodes)
        if nodes and self.can("decoded_prototypes"):
            weights = self.hits()[nodes].astype(float)
            if weights.sum() <= 0:
                weights = np.ones(len(nodes))
            model = (self.decoded()[nodes] * weights[:, None]).sum(axis=0) / weights.sum()
        return [ProfileRow(name, ds.units[j] if j < len(ds.units) else "", float(measured[j]), float(model[j]),
                           float(mean[j]), float(median[j]), float(sd[j]), int(n_measured[j]))
                for j, name in enumerate(ds.feature_names)]

    def is_binary_label(self, name: str) -> bool:
        """Whether every known value of a label is 0 or 1."""
        x = self.label_points(name)
        x = x[np.isfinite(x)]
        return bool(x.size) and bool(np.all((x == 0) | (x == 1)))

    def is_categorical_label(self, name: str) -> bool:
        """Whether a label takes a few whole values (at most ``CATEGORICAL_MAX``): categories, not a scale."""
        x = self.label_points(name)
        x = x[np.isfinite(x)]
        return bool(x.size) and bool(np.all(x == np.round(x))) and np.unique(x).size <= CATEGORICAL_MAX

    def outcomes(self, mask: np.ndarray) -> list[OutcomeRow]:
        """Mean (or commonest category), counts and 95 % interval of every numeric label among
        the masked points; intervals count patients, not time points
        (:mod:`core.analysis.cohort_stats`)."""
        from .analysis.cohort_stats import category_shares, clustered_summary

        group = np.where(mask, 0, 1)
        rows = []
        for name in self.labels():
            y = self.label_points(name)
            if self.is_categorical_label(name) and not self.is_binary_label(name):
                c = category_shares(group, y, self.point_stay, 2)
                order = np.argsort(-np.nan_to_num(c.shares[0]), kind="stable")
                cats = tuple((float(c.categories[k]), float(c.shares[0, k])) for k in order if c.shares[0, k] > 0)
                top = cats[0][0] if cats else float("nan")
                cohort = float(c.categories[np.nanargmax(np.nansum(c.shares * c.n_points[:, None], axis=0))]) \
                    if c.categories.size else float("nan")
                rows.append(OutcomeRow(name, self.label_title(name), "categorical", top, int(c.n_points[0]),
                                       float("nan"), float("nan"), cohort, int(np.isnan(y[mask]).sum()),
                                       int(c.n_patients[0]), cats))
                continue
            try:
                e = clustered_summary(group, y, self.point_stay, 2)
            except (InputError, ValueError):  # e.g. a label whose values are all unknown
                continue
            rows.append(OutcomeRow(name, self.label_title(name), e.kind, float(e.mean[0]), int(e.n_points[0]),
                                   float(e.lower[0]), float(e.upper[0]), e.global_mean, e.n_missing,
                                   int(e.n_patients[0])))
        return rows

    # ------------------------------------------------------------------ transitions
    def transition_counts(self) -> np.ndarray:
        """Moves from node to node between consecutive real steps ``(K, K)`` int64 (zeros for tables)."""
        if not self.series:
            return np.zeros((self.n_nodes, self.n_nodes), dtype=np.int64)
        return self._cached("transitions", lambda: transition_matrix(
            self.bmu, self.dataset.lengths, self.n_nodes, normalize=False,
            continues=self.dataset.continues))

    def top_flows(self, n: int = 20) -> list[Flow]:
        """The ``n`` most frequent moves between different nodes, largest first (ties: lower
        source, then lower target node first)."""
        counts = self.transition_counts().copy()
        np.fill_diagonal(counts, 0)
        flat = np.argsort(-counts, axis=None, kind="stable")[: max(0, int(n))]
        flows = []
        for index in flat:
            src, dst = divmod(int(index), self.n_nodes)
            c = int(counts[src, dst])
            if c <= 0:
                break
            pieces = tuple(s.xy for s in node_path(np.array([src, dst]), self.grid))
            flows.append(Flow(src, dst, c, pieces))
        return flows
