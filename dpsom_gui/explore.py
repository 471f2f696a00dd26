"""Answers to the questions the exploring views ask about one trained run.

:class:`MapExplorer` turns a trained ``core.workflow.ModelRun`` and its assignments into
what the views draw: map layers, hover summaries, the rows and profile of selected cells,
transitions, patient tracks, forecasts and quality figures. Every number comes from
:mod:`core.analysis` or :mod:`core.io.export`; this module only picks the inputs, caches
the results and names them in plain words. It imports no Qt, so it is tested without a
window.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .views.map_layers import LAYER_KINDS, LayerChoice, MapLayer, label_short, label_title, layer_name

__all__ = ["MapExplorer", "SelectionSummary", "ProfileRow", "OutcomeRow", "Flow", "Track", "ForecastData",
           "numeric_labels"]

#: Largest number of superclusters offered in the menu.
MAX_SUPERCLUSTERS = 12
#: Labels with at most this many distinct values are summarised by their most common value.
_CATEGORICAL_MAX = 12


# ------------------------------------------------------------------------ records
@dataclass(frozen=True)
class ProfileRow:
    """One variable of the selected cells against the whole cohort.

    ``z_measured`` and ``z_model`` are differences from the cohort mean in cohort standard
    deviations: of the values measured in the selected cells, and of the cells' decoded
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
    """An outcome in the selected cells: mean (event rate), count, 95 % interval, cohort mean."""

    name: str
    title: str
    kind: str
    mean: float
    count: int
    lower: float
    upper: float
    cohort_mean: float
    n_missing: int
    n_patients: int = 0
    #: Categorical outcomes: ``(value, share of time points)`` of each category, commonest first.
    categories: tuple = ()


@dataclass(frozen=True)
class SelectionSummary:
    """Everything the inspector shows about a set of selected cells.

    Attributes
    ----------
    nodes : tuple of int
    frame : pandas.DataFrame
        One line per point in the cells (``core.io.export.assignments_frame`` columns plus
        the labels), in input order.
    patient, step : ndarray of int64, shape ``(M,)``
        Dataset position of each line (``step`` is -1 for tables).
    n_patients : int
        Distinct patients (series) or rows (tables).
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
    """A frequent move between two different cells, with its wrap-aware drawing pieces."""

    source: int
    target: int
    count: int
    pieces: tuple  # of ndarray (m, 2), map drawing coordinates


@dataclass(frozen=True)
class Track:
    """One patient's path on the map, as straight pieces (split at a torus seam).

    ``lines[i] = (x0, y0, x1, y1)`` runs from time ``t0[i]`` to ``t1[i]`` (in steps; a piece
    that ends at a seam ends at a fractional time). ``nodes`` is the cell of every real step.
    """

    patient: int
    nodes: np.ndarray
    lines: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    centre: np.ndarray  # (n_steps, 2) cell centres

    @property
    def length(self) -> int:
        return int(self.nodes.size)

    def position(self, t: float) -> np.ndarray:
        """Where the patient is drawn at (fractional) step ``t`` (clamped to the stay)."""
        t = float(min(max(t, 0.0), self.length - 1))
        if not self.lines.size:
            return self.centre[0].copy()
        i = int(np.searchsorted(self.t1, t, side="left"))
        i = min(i, self.t1.size - 1)
        a, b = self.t0[i], self.t1[i]
        f = 0.0 if b <= a else (t - a) / (b - a)
        f = min(max(f, 0.0), 1.0)
        x0, y0, x1, y1 = self.lines[i]
        return np.array([x0 + f * (x1 - x0), y0 + f * (y1 - y0)])


@dataclass(frozen=True)
class ForecastData:
    """A forecast from one step on, for several patients (clinical units).

    ``nodes`` ``(P, H)``, ``sample_nodes`` ``(P, S, H)``, ``features`` ``(P, H, D)``,
    ``sample_features`` ``(P, S, H, D)`` (sample arrays may be None), ``start`` ``(P,)``: the
    index of the first forecast step of each patient.
    """

    patients: tuple
    nodes: np.ndarray
    features: np.ndarray
    start: np.ndarray
    sample_nodes: np.ndarray | None
    sample_features: np.ndarray | None


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


# ------------------------------------------------------------------------ explorer
class MapExplorer:
    """Computes and caches what the map, inspector, transition and trajectory views show.

    Parameters
    ----------
    run : core.workflow.ModelRun
        A trained run (used for decoded prototypes, latent points and forecasts).
    results : dict
        At least ``"bmu"``: ``(n,)`` or ``(N, T)`` int; usually also ``"proba"``,
        ``"umatrix"``, ``"hits"`` and ``"next_node_pred"`` (see ``Session.results``).
    dataset : core.data.Dataset, optional
        Default: ``run.dataset``.
    """

    def __init__(self, run, results: dict, dataset=None) -> None:
        self.run = run
        self.dataset = dataset if dataset is not None else run.dataset
        self.grid = run.grid
        self.results = results
        self.bmu = np.asarray(results["bmu"])
        proba = results.get("proba")
        self.proba = None if proba is None else np.asarray(proba)
        self.series = self.bmu.ndim == 2
        self.valid = self.dataset.step_mask if self.series else np.ones(self.bmu.shape[0], dtype=bool)
        where = np.nonzero(self.valid)
        self.point_patient = where[0].astype(np.int64)
        self.point_step = where[1].astype(np.int64) if self.series else np.full(where[0].size, -1, np.int64)
        self.point_node = self.bmu[self.valid].astype(np.int64)
        self._cache: dict = {}
        self._forecasts: OrderedDict = OrderedDict()

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
        """Points per cell ``(K,)`` int64."""
        from core.analysis import hit_map

        return self._cached("hits", lambda: hit_map(self.point_node, self.n_nodes))

    def point_proba(self) -> np.ndarray | None:
        """Soft assignment of every real point ``(M, K)``, or None."""
        if self.proba is None:
            return None
        return self._cached("proba_points", lambda: np.asarray(self.proba[self.valid], dtype=np.float64))

    def decoded(self) -> np.ndarray:
        """Every cell's typical profile in clinical units ``(K, D)``."""
        return self._cached("decoded", lambda: np.asarray(self.run.decoded_prototypes(), dtype=np.float64))

    def labels(self) -> list[str]:
        """Numeric labels (outcomes) of the data."""
        return self._cached("labels", lambda: numeric_labels(self.dataset))

    def label_points(self, name: str) -> np.ndarray:
        """One label's value at every real point ``(M,)`` float64 (NaN when unknown)."""

        def make():
            a = np.asarray(self.dataset.labels[name])
            if self.series and a.shape == (self.bmu.shape[0],):
                a = np.repeat(a[:, None], self.bmu.shape[1], axis=1)
            a = a[self.valid]
            if a.dtype.kind not in "biuf":
                a = np.asarray([np.nan if v in ("", None) else v for v in a], dtype=float)
            return a.astype(np.float64)

        return self._cached(("label", name), make)

    def _is_binary(self, name: str) -> bool:
        x = self.label_points(name)
        x = x[np.isfinite(x)]
        return bool(x.size) and bool(np.all((x == 0) | (x == 1)))

    def _is_categorical(self, name: str) -> bool:
        x = self.label_points(name)
        x = x[np.isfinite(x)]
        return bool(x.size) and np.all(x == np.round(x)) and np.unique(x).size <= _CATEGORICAL_MAX

    # ------------------------------------------------------------------ layers
    def layer_choices(self) -> list[LayerChoice]:
        """The kinds of layer this run can show, with their options, in menu order."""
        choices = []
        if "umatrix" in self.results:
            choices.append(LayerChoice("umatrix"))
        hits = [("", "counted")]
        if self.proba is not None:
            hits.append(("soft", "expected from the soft assignment"))
        choices.append(LayerChoice("hits", tuple(hits)))
        if self.can("decoded_prototypes"):
            ds = self.dataset
            choices.append(LayerChoice("variable", tuple(
                (name, f"{name} ({ds.units[j]})" if j < len(ds.units) and ds.units[j] else name)
                for j, name in enumerate(ds.feature_names))))
        labels = self.labels()
        if labels:
            choices.append(LayerChoice("outcome", tuple((name, label_title(name)) for name in labels)))
        if self.proba is not None:
            choices.append(LayerChoice("uncertainty"))
        if self.can("prototypes") and self.n_nodes >= 3:
            top = min(MAX_SUPERCLUSTERS, self.n_nodes - 1)
            choices.append(LayerChoice("superclusters", (("", "suggested number"),)
                                       + tuple((str(n), f"{n} groups") for n in range(2, top + 1))))
        return choices

    def layer(self, kind: str, option: str = "", annotations: dict | None = None) -> MapLayer:
        """The layer ``kind`` (with ``option``) as a :class:`MapLayer`.

        ``annotations`` (the project's) supplies saved supercluster names and grouping.
        Raises ``KeyError`` for an unknown kind or option.
        """
        name = layer_name(kind, option)
        title, explanation = LAYER_KINDS.get(kind, (kind, ""))
        counts = self.hits()
        if kind == "umatrix":
            return MapLayer(name, np.asarray(self.results["umatrix"], float), title, explanation, counts=counts)
        if kind == "hits":
            if option == "soft":
                from core.analysis import soft_hit_map

                values = self._cached("soft_hits", lambda: soft_hit_map(self.point_proba()))
                return MapLayer(name, values, "Expected points per cell (soft)",
                                "How many points each cell would hold if every point were shared between "
                                "cells by the model's probabilities.", "points", counts=counts)
            return MapLayer(name, counts.astype(float), title, explanation, "points", counts=counts)
        if kind == "variable":
            names = list(self.dataset.feature_names)
            if option not in names:
                raise KeyError(f"no variable {option!r}")
            j = names.index(option)
            unit = self.dataset.units[j] if j < len(self.dataset.units) else ""
            return MapLayer(name, self.decoded()[:, j].copy(), f"{option}: typical value in each cell",
                            explanation, unit, counts=counts, colormap="viridis")
        if kind == "outcome":
            return self._outcome_layer(option)
        if kind == "uncertainty":
            from core.analysis import node_entropy

            values = self._cached("entropy", lambda: node_entropy(self.point_node, self.point_proba(), self.n_nodes))
            return MapLayer(name, values, title, explanation, "nats", counts=counts, colormap="plasma")
        if kind == "superclusters":
            return self.supercluster_layer(option, annotations)
        raise KeyError(f"no layer kind {kind!r}")

    def enrichment(self, label: str):
        """``core.analysis.label_enrichment`` of one label over the cells (cached)."""
        from core.analysis import label_enrichment

        return self._cached(("enrichment", label), lambda: label_enrichment(
            self.point_node, self.label_points(label), self.n_nodes))

    def _outcome_layer(self, label: str) -> MapLayer:
        if label not in self.labels():
            raise KeyError(f"no outcome {label!r}")
        title = label_title(label)
        if self._is_categorical(label) and not self._is_binary(label):
            return self._category_layer(label, title)
        enr = self.clustered(label)
        if enr.kind == "binary":
            return MapLayer(layer_name("outcome", label), 100.0 * enr.mean, f"{title}: share in each cell",
                            "How often this outcome happened among the time points of each cell (the "
                            "model never saw it). Hover over a cell for the count behind the share.",
                            "%", counts=enr.n_points, colormap="inferno",
                            extra={"lower": 100.0 * enr.lower, "upper": 100.0 * enr.upper})
        return MapLayer(layer_name("outcome", label), enr.mean, f"{title}: mean in each cell",
                        "The mean of this outcome among the time points of each cell (the model never "
                        "saw it). Hover over a cell for the count behind the mean.", "",
                        counts=enr.n_points, colormap="inferno", extra={"lower": enr.lower, "upper": enr.upper})

    def clustered(self, label: str):
        """``core.analysis.cohort_stats.clustered_summary`` of one label over the cells, with
        patients as the independent units (cached)."""
        from core.analysis.cohort_stats import clustered_summary

        return self._cached(("clustered", label), lambda: clustered_summary(
            self.point_node, self.label_points(label), self.point_patient, self.n_nodes))

    def _category_layer(self, label: str, title: str) -> MapLayer:
        from core.analysis.cohort_stats import category_shares

        c = self._cached(("categories", label), lambda: category_shares(
            self.point_node, self.label_points(label), self.point_patient, self.n_nodes))
        names = tuple(_category_text(v) for v in c.categories)
        return MapLayer(layer_name("outcome", label), np.where(c.top >= 0, c.top, np.nan).astype(float),
                        f"{title}: most frequent in each cell",
                        "The category met most often among the time points of each cell (the model never "
                        "saw it); paler cells are more mixed. Hover over a cell for the shares.",
                        counts=c.n_points, categories=names,
                        extra={"share": c.top_share(), "shares": c.shares, "n_patients": c.n_patients})

    def supercluster_groups(self, n: int | None = None) -> tuple[np.ndarray, dict[int, float]]:
        """Group of every cell ``(K,)`` and the silhouette of each number tried.

        ``n=None`` picks the number with the best silhouette (2 to 10 groups).
        """
        from core.analysis import agglomerative_superclusters, suggest_n_superclusters

        protos = self._cached("prototypes", lambda: np.asarray(self.run.prototypes(), dtype=np.float64))
        scores: dict[int, float] = {}
        if n is None:
            top = min(10, self.n_nodes - 1)
            n, scores = self._cached("suggested", lambda: suggest_n_superclusters(protos, self.grid, range(2, top + 1)))
        groups = self._cached(("groups", n), lambda: agglomerative_superclusters(protos, self.grid, int(n)))
        return groups, scores

    def supercluster_layer(self, option: str = "", annotations: dict | None = None) -> MapLayer:
        """Superclusters as a categorical layer; saved names (and grouping) come from
        ``annotations["supercluster_names"]`` / ``["superclusters"]``."""
        annotations = annotations or {}
        saved = annotations.get("superclusters")
        scores: dict = {}
        if not option and saved is not None and len(saved) == self.n_nodes:
            groups = np.asarray(saved, dtype=np.int64)
        else:
            groups, scores = self.supercluster_groups(int(option) if option else None)
        n = int(groups.max()) + 1 if groups.size else 0
        names = list(annotations.get("supercluster_names") or [])
        if saved is None or len(saved) != self.n_nodes or not np.array_equal(np.asarray(saved), groups):
            names = []
        names = (names + [f"Group {i + 1}" for i in range(len(names), n)])[:n]
        title, explanation = LAYER_KINDS["superclusters"]
        if scores:
            best = max(scores, key=lambda k: scores[k])
            explanation += f" {n} groups fit best (silhouette {scores[best]:.2f})."
        return MapLayer(layer_name("superclusters", option), groups.astype(float), title, explanation,
                        counts=self.hits(), categories=tuple(names), extra={"groups": groups, "scores": scores})

    # ------------------------------------------------------------------ hover
    def patients_per_node(self) -> np.ndarray:
        """Distinct patients (series) or rows (tables) in every cell ``(K,)``."""

        def make():
            if not self.series:
                return self.hits()
            n = self.bmu.shape[0]
            pairs = np.unique(self.point_node * n + self.point_patient)
            return np.bincount(pairs // n, minlength=self.n_nodes)

        return self._cached("patients_per_node", make)

    def _label_summaries(self) -> list[tuple[str, str, object]]:
        def make():
            from core.analysis import majority_labels

            out = []
            for name in self.labels():
                if self._is_binary(name):
                    out.append((name, "binary", self.enrichment(name).mean))
                elif self._is_categorical(name):
                    y = self.label_points(name)
                    codes, cats, share = majority_labels(self.point_node, y, self.n_nodes)
                    out.append((name, "categorical", (codes, cats, share)))
            return out

        return self._cached("label_summaries", make)

    def describe_node(self, node: int, layer: MapLayer | None = None) -> str:
        """A few lines about one cell for its tooltip: size, the shown value, top labels."""
        row, col = self.grid.coords(node)
        lines = [f"Cell {node} (row {int(row) + 1}, column {int(col) + 1})"]
        hits = int(self.hits()[node])
        if self.series:
            lines.append(f"{hits} time points from {int(self.patients_per_node()[node])} patients")
        else:
            lines.append(f"{hits} rows")
        if layer is not None:
            text = layer.format_value(float(layer.values[node]))
            if layer.kind == "outcome":
                text += _evidence(layer, node)
            lines.append(f"{layer.title}: {text}")
        common, rates = [], []
        for name, kind, data in self._label_summaries():
            if kind == "binary" and np.isfinite(data[node]):
                rates.append(f"{label_short(name)} {100 * data[node]:.0f}%")
            elif kind == "categorical":
                codes, cats, share = data
                if codes[node] >= 0:
                    value = cats[codes[node]]
                    value = int(value) if float(value).is_integer() else value
                    common.append(f"{label_short(name)} {value} ({100 * share[node]:.0f}%)")
        if common:
            lines.append("Most common: " + ", ".join(common[:3]))
        if rates:
            lines.append("Outcomes: " + ", ".join(rates[:3]))
        return "\n".join(lines)

    # ------------------------------------------------------------------ selection
    def assignments_frame(self, probabilities: bool = False):
        """``core.io.export.assignments_frame`` of every point of the run (cached)."""
        from core.io.export import assignments_frame

        return self._cached(("assignments_frame", probabilities), lambda: assignments_frame(
            bmu=self.bmu, grid=self.grid, proba=self.proba, dataset=self.dataset,
            next_node_pred=self.results.get("next_node_pred"), probabilities=probabilities))

    def point_mask(self, nodes) -> np.ndarray:
        """Which real points (``(M,)`` bool, input order) fall in ``nodes``."""
        return np.isin(self.point_node, np.asarray(list(nodes), dtype=np.int64))

    def selection_assignments(self, nodes, probabilities: bool = False):
        """The lines of :meth:`assignments_frame` whose point lies in ``nodes``."""
        frame = self.assignments_frame(probabilities)
        return frame.loc[self.point_mask(nodes)].reset_index(drop=True)

    def node_summary(self, annotations: dict | None = None):
        """``core.io.export.node_summary_frame`` of the run: counts, label means, decoded
        prototypes and the project's annotations (as ``dpsom export --nodes`` writes it), plus
        a ``supercluster_name`` column when the groups have names."""
        from core.io.export import node_summary_frame

        means = {}
        for name in self.labels():
            try:
                means[name] = self.enrichment(name).mean
            except Exception:  # noqa: BLE001 - a label that cannot be averaged is left out, as the CLI does
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

    def _cohort_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def make():
            ds = self.dataset
            values = np.where(ds.mask, ds.values, np.nan)[self.valid].astype(np.float64)  # (M, D)
            with np.errstate(invalid="ignore"), _quiet():
                return np.nanmean(values, axis=0), np.nanmedian(values, axis=0), np.nanstd(values, axis=0)

        return self._cached("cohort", make)

    def selection(self, nodes) -> SelectionSummary:
        """Rows, profile and outcome statistics of the points in ``nodes``."""
        nodes = tuple(sorted({int(k) for k in nodes}))
        mask = self.point_mask(nodes)
        frame = self.assignments_frame().loc[mask].reset_index(drop=True)
        for name in self.labels():
            if name not in frame.columns:
                frame[name] = self.label_points(name)[mask]
        patient = self.point_patient[mask]
        return SelectionSummary(nodes, frame, patient, self.point_step[mask], int(np.unique(patient).size),
                                self.profile(nodes, mask), self.outcomes(mask))

    def profile(self, nodes, mask: np.ndarray | None = None) -> list[ProfileRow]:
        """Every variable in the selected cells (measured mean and model profile) vs the cohort."""
        mask = self.point_mask(nodes) if mask is None else mask
        ds = self.dataset
        mean, median, sd = self._cohort_stats()
        values = np.where(ds.mask, ds.values, np.nan)[self.valid][mask].astype(np.float64)
        with np.errstate(invalid="ignore"), _quiet():
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

    def outcomes(self, mask: np.ndarray) -> list[OutcomeRow]:
        """Mean (or commonest category), counts and 95 % interval of every outcome among the
        masked points; intervals count patients, not time points."""
        from core.analysis.cohort_stats import category_shares, clustered_summary

        group = np.where(mask, 0, 1)
        rows = []
        for name in self.labels():
            y = self.label_points(name)
            if self._is_categorical(name) and not self._is_binary(name):
                c = category_shares(group, y, self.point_patient, 2)
                order = np.argsort(-np.nan_to_num(c.shares[0]), kind="stable")
                cats = tuple((float(c.categories[k]), float(c.shares[0, k])) for k in order if c.shares[0, k] > 0)
                top = cats[0][0] if cats else float("nan")
                cohort = float(c.categories[np.nanargmax(np.nansum(c.shares * c.n_points[:, None], axis=0))]) \
                    if c.categories.size else float("nan")
                rows.append(OutcomeRow(name, label_title(name), "categorical", top, int(c.n_points[0]),
                                       float("nan"), float("nan"), cohort, int(np.isnan(y[mask]).sum()),
                                       int(c.n_patients[0]), cats))
                continue
            try:
                e = clustered_summary(group, y, self.point_patient, 2)
            except Exception:  # noqa: BLE001 - a label without numbers has no mean
                continue
            rows.append(OutcomeRow(name, label_title(name), e.kind, float(e.mean[0]), int(e.n_points[0]),
                                   float(e.lower[0]), float(e.upper[0]), e.global_mean, e.n_missing,
                                   int(e.n_patients[0])))
        return rows

    # ------------------------------------------------------------------ transitions
    def transition_counts(self) -> np.ndarray:
        """Moves from cell to cell between consecutive real steps ``(K, K)`` int64."""
        from core.analysis import transition_matrix

        if not self.series:
            return np.zeros((self.n_nodes, self.n_nodes), dtype=np.int64)
        return self._cached("transitions", lambda: transition_matrix(
            self.bmu, self.dataset.lengths, self.n_nodes, normalize=False))

    def top_flows(self, n: int = 20) -> list[Flow]:
        """The ``n`` most frequent moves between different cells, largest first."""
        from core.analysis import node_path

        counts = self.transition_counts().copy()
        np.fill_diagonal(counts, 0)
        flat = np.argsort(counts, axis=None, kind="stable")[::-1][: max(0, int(n))]
        flows = []
        for index in flat:
            src, dst = divmod(int(index), self.n_nodes)
            c = int(counts[src, dst])
            if c <= 0:
                break
            pieces = tuple(s.xy for s in node_path(np.array([src, dst]), self.grid))
            flows.append(Flow(src, dst, c, pieces))
        return flows

    # ------------------------------------------------------------------ trajectories
    def patient_ids(self) -> list[str]:
        ds = self.dataset
        ids = ds.ids if ds.ids is not None else np.arange(1, ds.n_samples + 1)
        return [str(i) for i in ids]

    def track(self, patient: int) -> Track:
        """The path of one patient (series only), cached."""
        from core.analysis import node_path

        def make():
            length = int(self.dataset.lengths[patient])
            seq = self.bmu[patient, :length].astype(np.int64)
            lines, t0, t1 = [], [], []
            for seg in node_path(seq, self.grid):
                for i in range(len(seg.t) - 1):
                    lines.append((*seg.xy[i], *seg.xy[i + 1]))
                    t0.append(seg.t[i])
                    t1.append(seg.t[i + 1])
            return Track(int(patient), seq, np.asarray(lines, float).reshape(-1, 4), np.asarray(t0, float),
                         np.asarray(t1, float), self.grid.positions()[seq])

        return self._cached(("track", int(patient)), make)

    def soft_at(self, patients, step: int) -> np.ndarray:
        """Mean soft assignment ``(K,)`` of ``patients`` at ``step`` (each at most at its last step)."""
        if self.proba is None or not len(patients):
            return np.zeros(self.n_nodes)
        p = np.asarray(list(patients), dtype=np.int64)
        s = np.minimum(int(step), self.dataset.lengths[p] - 1)
        return np.asarray(self.proba[p, s], dtype=np.float64).mean(axis=0)

    def patients_matching(self, text: str = "", outcome: str = "", nodes=None) -> np.ndarray:
        """Patients whose id contains ``text``, who had ``outcome`` (a value > 0 at some step),
        and who passed through any of ``nodes``; sorted indices."""
        ids = self.patient_ids()
        keep = np.ones(len(ids), dtype=bool)
        if text:
            needle = text.lower()
            keep &= np.array([needle in i.lower() for i in ids])
        if outcome:
            y = self.label_points(outcome)
            had = np.zeros(len(ids), dtype=bool)
            np.logical_or.at(had, self.point_patient, np.nan_to_num(y, nan=0.0) > 0)
            keep &= had
        if nodes is not None:
            inside = np.zeros(len(ids), dtype=bool)
            np.logical_or.at(inside, self.point_patient, self.point_mask(nodes))
            keep &= inside
        return np.flatnonzero(keep)

    def has_forecast(self, patients, step: int, n_steps: int = 6, n_samples: int = 16) -> bool:
        """Whether :meth:`forecast` with these arguments is already computed."""
        return (tuple(int(p) for p in patients), int(step), int(n_steps), int(n_samples)) in self._forecasts

    def forecast(self, patients, step: int, n_steps: int = 6, n_samples: int = 16) -> ForecastData | None:
        """The model's forecast after ``step`` (history ``step + 1``) for ``patients``, cached.

        Returns None when the run cannot forecast (a table model).
        """
        if not self.can("forecast"):
            return None
        patients = tuple(int(p) for p in patients)
        key = (patients, int(step), int(n_steps), int(n_samples))
        if key in self._forecasts:
            self._forecasts.move_to_end(key)
            return self._forecasts[key]
        f = self.run.forecast(n_steps, patients=np.asarray(patients), history=int(step) + 1, n_samples=n_samples,
                              random_state=0)
        data = ForecastData(patients, np.asarray(f.nodes), np.asarray(f.features), np.asarray(f.start),
                            None if f.sample_nodes is None else np.asarray(f.sample_nodes),
                            None if f.sample_features is None else np.asarray(f.sample_features))
        self._forecasts[key] = data
        while len(self._forecasts) > 256:
            self._forecasts.popitem(last=False)
        return data

    def forecast_pieces(self, start_node: int, nodes) -> list[np.ndarray]:
        """Wrap-aware drawing pieces of the path from ``start_node`` through forecast ``nodes``."""
        from core.analysis import node_path

        seq = np.concatenate([[int(start_node)], np.asarray(nodes, dtype=np.int64)])
        return [s.xy for s in node_path(seq, self.grid)]

    # ------------------------------------------------------------------ quality
    def metrics(self, label: str) -> dict:
        """Every quality figure of the run against one label (``core.cli.evaluate_run``)."""
        from core.cli import evaluate_run

        return evaluate_run(self.run, label)


def _evidence(layer: MapLayer, node: int) -> str:
    """What an outcome layer's value at ``node`` rests on: its share or its interval."""
    extra = layer.extra
    if layer.is_categorical and "share" in extra and np.isfinite(extra["share"][node]):
        return f" ({100 * extra['share'][node]:.0f}% of its time points)"
    if "lower" in extra and np.isfinite(extra["lower"][node]):
        lo, hi = layer.format_value(extra["lower"][node]), layer.format_value(extra["upper"][node])
        return f" (95% interval {lo} to {hi}, counting patients)"
    return ""


def _category_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _quiet:
    """Silence numpy's "mean of empty slice" warnings for all-missing columns."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
