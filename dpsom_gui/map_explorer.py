"""The exploring views' questions about one trained run: a drawing layer over core's answers.

:class:`MapExplorer` is a :class:`core.explore.RunExplorer` (hit counts, label means, node
summaries, selection profiles and outcomes, transitions and flows, quality figures: computed
and tested in core, shared with the command line) that also turns them into what the views
draw: map layers, hover summaries, patient tracks and cached forecasts. It imports no Qt,
so it is tested without a window.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.explore import Flow, OutcomeRow, ProfileRow, RunExplorer, SelectionSummary, numeric_labels

from .views.map_layers import LAYER_KINDS, LayerChoice, MapLayer, label_short, label_title, layer_name

__all__ = ["MapExplorer", "SelectionSummary", "ProfileRow", "OutcomeRow", "Flow", "Track", "ForecastData",
           "numeric_labels"]

#: Largest number of superclusters offered in the menu.
MAX_SUPERCLUSTERS = 12
#: Labels with at most this many distinct values are summarised by their most common value.


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


# ------------------------------------------------------------------------ explorer
class MapExplorer(RunExplorer):
    """What the map, inspector, transition and trajectory views show, cached per run.

    The numbers are :class:`core.explore.RunExplorer`'s; this class adds the map layers, the
    hover text, patient tracks and forecasts.

    Parameters
    ----------
    run : core.workflow.ModelRun
        A trained run (used for decoded prototypes, latent points and forecasts).
    results : dict
        At least ``"bmu"``: ``(n,)`` or ``(N, T)`` int; usually also ``"proba"``,
        ``"umatrix"``, ``"hits"``, ``"next_node_pred"`` and ``"path_node"`` (see ``Session.results``).
    dataset : core.data.Dataset, optional
        Default: ``run.dataset``.
    """

    def __init__(self, run, results: dict, dataset=None) -> None:
        super().__init__(run, results, dataset)
        self._forecasts: OrderedDict = OrderedDict()

    def label_title(self, name: str) -> str:
        return label_title(name)

    def metrics(self, label: str) -> dict:
        """Every quality figure of the run against one label (``core.explore.evaluate_run``)."""
        return self.evaluate(label)

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

    def _outcome_layer(self, label: str) -> MapLayer:
        if label not in self.labels():
            raise KeyError(f"no outcome {label!r}")
        title = label_title(label)
        if self.is_categorical_label(label) and not self.is_binary_label(label):
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
            self.point_node, self.label_points(label), self.point_stay, self.n_nodes))

    def _category_layer(self, label: str, title: str) -> MapLayer:
        from core.analysis.cohort_stats import category_shares

        c = self._cached(("categories", label), lambda: category_shares(
            self.point_node, self.label_points(label), self.point_stay, self.n_nodes))
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
    def _label_summaries(self) -> list[tuple[str, str, object]]:
        def make():
            from core.analysis import majority_labels

            out = []
            for name in self.labels():
                if self.is_binary_label(name):
                    out.append((name, "binary", self.enrichment(name).mean))
                elif self.is_categorical_label(name):
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

    # ------------------------------------------------------------------ trajectories
    def patient_ids(self) -> list[str]:
        return self.dataset.row_names()  # a stay kept in parts: "id (part k of n)"

    def track(self, patient: int, smoothed: bool = True) -> Track:
        """The path of one patient (series only), cached.

        ``smoothed``: along the smoothed node path (:meth:`node_paths`) where the run has one,
        else through the best-matching node of every step.
        """
        from core.analysis import node_path

        paths = self.node_paths() if smoothed else None
        nodes = self.bmu if paths is None else paths

        def make():
            length = int(self.dataset.lengths[patient])
            seq = nodes[patient, :length].astype(np.int64)
            lines, t0, t1 = [], [], []
            for seg in node_path(seq, self.grid):
                for i in range(len(seg.t) - 1):
                    lines.append((*seg.xy[i], *seg.xy[i + 1]))
                    t0.append(seg.t[i])
                    t1.append(seg.t[i + 1])
            return Track(int(patient), seq, np.asarray(lines, float).reshape(-1, 4), np.asarray(t0, float),
                         np.asarray(t1, float), self.grid.positions()[seq])

        return self._cached(("track", int(patient), paths is not None), make)

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


