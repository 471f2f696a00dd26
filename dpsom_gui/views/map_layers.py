"""What the map can colour its cells by: layer kinds, their plain titles, and one layer's data.

This module holds data only (no Qt), so that :mod:`dpsom_gui.map_explorer` can build layers and
tests can check them without a window. :class:`~dpsom_gui.views.som_map_view.SomMapView`
draws a :class:`MapLayer`; :class:`LayerChoice` tells it which kinds to offer in its menu.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MapLayer", "LayerChoice", "LAYER_KINDS", "CATEGORY_COLOURS", "layer_name", "split_layer_name",
           "label_title", "label_short", "category_colour"]

#: Title and plain explanation of every kind of layer, in menu order.
LAYER_KINDS: dict[str, tuple[str, str]] = {
    "umatrix": ("Distances between neighbours (U-matrix)",
                "How different each cell is from the cells next to it. Bright borders separate "
                "groups of similar health states."),
    "hits": ("Patients per cell (hit map)",
             "How many rows or patient time points fall into each cell."),
    "variable": ("A measured variable",
                 "The typical value of one variable in each cell, as the model pictures the cell's "
                 "patients, in the variable's own unit."),
    "outcome": ("An outcome",
                "How often an outcome happens (or its mean) among the time points in each cell. "
                "The outcome was never shown to the model."),
    "uncertainty": ("How sure the model is",
                    "How evenly the model hesitates between cells for the time points of each cell "
                    "(mean entropy). Low: clear-cut states; high: patients between states."),
    "superclusters": ("Groups of similar cells",
                      "Neighbouring cells with similar typical patients, joined into a few larger "
                      "health states. Click a name in the legend to rename the group."),
}

#: Colours of categories (superclusters), chosen to stay apart for colour-blind readers.
CATEGORY_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
                    "#7f7f7f", "#882255", "#44aa99", "#999933", "#332288")


def category_colour(index: int) -> str:
    """Colour of category ``index`` (cycles after :data:`CATEGORY_COLOURS`)."""
    return CATEGORY_COLOURS[int(index) % len(CATEGORY_COLOURS)]


def layer_name(kind: str, option: str | None = None) -> str:
    """The unique name of a layer: ``kind`` or ``"kind:option"``."""
    return f"{kind}:{option}" if option else kind


def split_layer_name(name: str) -> tuple[str, str]:
    """``"outcome:death_6h"`` -> ``("outcome", "death_6h")``; ``"umatrix"`` -> ``("umatrix", "")``."""
    kind, _, option = name.partition(":")
    return kind, option


_HORIZON = re.compile(r"^(?P<stem>.*?)_(?P<n>\d+)(?P<unit>h?)$")
_STEMS = {
    "death": "Death within {n} h",
    "died": "Death in the ICU",
    "apache": "APACHE score in {n} h",
    "mortality": "Death within {n} h",
    "state": "True health state",
    "severity": "Severity",
    "subgroup": "Patient subgroup",
    "in_hospital_death": "Death in hospital",
    "phenotype": "True health state",
}


def label_short(name: str) -> str:
    """Plain words for a label column, e.g. ``death_6h`` -> "Death within 6 h".

    Names with a horizon suffix (``_6h``, ``_24``) are read as "within/in that many hours";
    unknown names are returned as they are.
    """
    match = _HORIZON.match(name)
    if match and match["stem"].lower() in _STEMS:
        n = int(match["n"])
        stem = match["stem"].lower()
        if stem == "apache" and n == 0:
            return "APACHE score now"
        return _STEMS[stem].format(n=n)
    if name.lower() in _STEMS and "{n}" not in _STEMS[name.lower()]:
        return _STEMS[name.lower()]
    return name


def label_title(name: str) -> str:
    """:func:`label_short` followed by the column name, e.g. "Death within 6 h (death_6h)"."""
    short = label_short(name)
    return short if short == name else f"{short} ({name})"


@dataclass(frozen=True)
class LayerChoice:
    """One entry of the map's "Colour shows" menu.

    Attributes
    ----------
    kind : str
        A key of :data:`LAYER_KINDS` (or any other name).
    options : tuple of (str, str)
        ``(option, text)`` pairs for a second menu (which variable, which outcome); empty
        when the kind needs none. The option ``""`` names the kind's default layer.
    """

    kind: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def title(self) -> str:
        return LAYER_KINDS.get(self.kind, (self.kind, ""))[0]

    @property
    def explanation(self) -> str:
        return LAYER_KINDS.get(self.kind, ("", ""))[1]


@dataclass(frozen=True)
class MapLayer:
    """One value per map cell, with what is needed to draw and explain it.

    Attributes
    ----------
    name : str
        Unique name, ``kind`` or ``kind:option`` (see :func:`layer_name`).
    values : ndarray of float64, shape ``(K,)``
        The value of every cell (row-major node order); NaN where a cell has no data. For
        a categorical layer, the category index of every cell.
    title : str
        What the colours show, in plain words.
    explanation : str
        One or two sentences for the caption under the map.
    unit : str
        Unit of the values, written on the colour bar ("" when none).
    counts : ndarray of int64, shape ``(K,)``, optional
        The number of points behind each cell's value, shown on hover.
    categories : tuple of str, optional
        Names of the categories of a categorical layer (a legend replaces the colour bar).
    colormap : str
        A pyqtgraph colour map name for continuous layers.
    extra : dict
        Anything else the builder wants to keep with the layer (e.g. confidence bounds).
    """

    name: str
    values: np.ndarray
    title: str = ""
    explanation: str = ""
    unit: str = ""
    counts: np.ndarray | None = None
    categories: tuple[str, ...] | None = None
    colormap: str = "viridis"
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> str:
        return split_layer_name(self.name)[0]

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None

    def format_value(self, value: float) -> str:
        """A value of this layer as text, with its unit or category name."""
        if value is None or not np.isfinite(value):
            return "no data"
        if self.categories is not None:
            i = int(value)
            return self.categories[i] if 0 <= i < len(self.categories) else str(i)
        text = f"{value:.3g}"
        return f"{text} {self.unit}" if self.unit else text

    def colour_bar_label(self) -> str:
        """Text beside the colour bar: the unit, if any."""
        return self.unit
