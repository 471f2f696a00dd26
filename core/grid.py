"""SOM grid topology: node indexing, neighbourhoods, grid distances and drawing coordinates.

Nodes are indexed row-major, ``k = r * width + c``. Rectangular grids use the von Neumann
(4-)neighbourhood of METHOD.md section 2.3; hexagonal grids use the 6 cells around a node in
"odd-r" offset layout (odd rows are shifted half a cell to the right). Either kind can be
flat (edges are edges) or toroidal (edges wrap), and any ``height x width`` is supported:
the reference mixed height and width in its index arithmetic, so non-square grids are tested
explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["SOMGrid"]

_RECT_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))
# Odd-r offset neighbours: the column offsets of the diagonal neighbours depend on row parity.
_HEX_OFFSETS_EVEN = ((0, -1), (0, 1), (-1, -1), (-1, 0), (1, -1), (1, 0))
_HEX_OFFSETS_ODD = ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, 0), (1, 1))


@dataclass(frozen=True)
class SOMGrid:
    """A 2-D map of ``height x width`` nodes.

    Parameters
    ----------
    height, width : int
        Number of rows and columns; ``n_nodes = height * width``.
    topology : {"rect", "hex"}
        Square cells with 4 neighbours, or hexagonal cells with 6.
    toroidal : bool
        Wrap rows and columns around (a torus, as in the reference) or keep hard edges.

    Notes
    -----
    A toroidal hexagonal grid needs an even number of rows, otherwise the half-cell shift of
    odd rows does not line up across the seam; :meth:`validate` says so.

    Examples
    --------
    >>> g = SOMGrid(8, 8)
    >>> sorted(g.neighbours[0].tolist())
    [1, 7, 8, 56]
    """

    height: int = 8
    width: int = 8
    topology: str = "rect"
    toroidal: bool = True

    def validate(self) -> "SOMGrid":
        """Raise ``ValueError`` with a plain explanation if the grid is unusable; return self."""
        if int(self.height) != self.height or int(self.width) != self.width:
            raise ValueError(f"grid size must be whole numbers, got {self.height}x{self.width}")
        if self.height < 1 or self.width < 1 or self.n_nodes < 2:
            raise ValueError(f"a grid needs at least 2 nodes, got {self.height}x{self.width}")
        if self.topology not in ("rect", "hex"):
            raise ValueError(f"topology must be 'rect' or 'hex', got {self.topology!r}")
        if self.topology == "hex" and self.toroidal and self.height % 2:
            raise ValueError(
                f"a toroidal hexagonal grid needs an even number of rows, got {self.height}; "
                "use an even height or a flat grid"
            )
        if self.toroidal and (self.height < 3 or self.width < 3):
            raise ValueError(
                f"a toroidal grid needs at least 3 rows and 3 columns (got {self.height}x{self.width}); "
                "use --flat for thin grids"
            )
        return self

    # ------------------------------------------------------------------ indexing
    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def n_nodes(self) -> int:
        return self.height * self.width

    def index(self, row, col):
        """Node index of (row, col); accepts arrays."""
        return np.asarray(row) * self.width + np.asarray(col)

    def coords(self, k):
        """(row, col) of node index ``k``; accepts arrays."""
        k = np.asarray(k)
        return k // self.width, k % self.width

    # ------------------------------------------------------------ neighbourhood
    @cached_property
    def _neighbour_table(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        rows, cols = np.divmod(np.arange(self.n_nodes), w)
        if self.topology == "rect":
            offsets = np.broadcast_to(np.array(_RECT_OFFSETS), (self.n_nodes, 4, 2))
        else:
            odd = (rows % 2 == 1)[:, None, None]
            offsets = np.where(odd, np.array(_HEX_OFFSETS_ODD), np.array(_HEX_OFFSETS_EVEN))
        nr = rows[:, None] + offsets[..., 0]
        nc = cols[:, None] + offsets[..., 1]
        if self.toroidal:
            valid = np.ones(nr.shape, dtype=bool)
            nr, nc = nr % h, nc % w
        else:
            valid = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
        table = np.where(valid, nr * w + nc, -1).astype(np.int64)
        # On tiny toroidal grids two offsets can land on the same node; count each neighbour once.
        for k in range(self.n_nodes):
            seen: set[int] = set()
            for j in range(table.shape[1]):
                n = int(table[k, j])
                if n < 0:
                    continue
                if n in seen or n == k:
                    table[k, j], valid[k, j] = -1, False
                seen.add(n)
        return table, valid

    @property
    def neighbours(self) -> np.ndarray:
        """Neighbour table, shape ``(n_nodes, 4)`` (rect) or ``(n_nodes, 6)`` (hex).

        Missing neighbours (edges of a flat grid) are ``-1``; see :attr:`neighbour_mask`.
        """
        return self._neighbour_table[0]

    @property
    def neighbour_mask(self) -> np.ndarray:
        """Boolean ``(n_nodes, n_max)``: True where :attr:`neighbours` holds a real node."""
        return self._neighbour_table[1]

    def neighbours_of(self, k: int) -> list[int]:
        """The neighbours of node ``k`` as a list of node indices."""
        return [int(n) for n in self.neighbours[k] if n >= 0]

    # ---------------------------------------------------------------- distances
    @cached_property
    def _cube(self) -> np.ndarray:
        rows, cols = np.divmod(np.arange(self.n_nodes), self.width)
        x = cols - (rows - (rows & 1)) // 2
        z = rows
        return np.stack([x, -x - z, z], axis=1)

    def distances(self) -> np.ndarray:
        """Grid (path) distance between every pair of nodes, shape ``(K, K)``, int.

        Rect: Manhattan distance (toroidal: with wrap-around). Hex: number of cell steps.
        """
        return self._distances

    @cached_property
    def _distances(self) -> np.ndarray:
        rows, cols = np.divmod(np.arange(self.n_nodes), self.width)
        h, w = self.height, self.width
        if self.topology == "rect":
            dr = np.abs(rows[:, None] - rows[None, :])
            dc = np.abs(cols[:, None] - cols[None, :])
            if self.toroidal:
                dr = np.minimum(dr, h - dr)
                dc = np.minimum(dc, w - dc)
            return (dr + dc).astype(np.int64)
        best = None
        shifts = [(0, 0)]
        if self.toroidal:
            shifts = [(sr, sc) for sr in (-h, 0, h) for sc in (-w, 0, w)]
        for sr, sc in shifts:
            r2, c2 = rows + sr, cols + sc
            x2 = c2 - (r2 - (r2 & 1)) // 2
            cube2 = np.stack([x2, -x2 - r2, r2], axis=1)
            d = np.abs(self._cube[:, None, :] - cube2[None, :, :]).max(axis=2)
            best = d if best is None else np.minimum(best, d)
        return best.astype(np.int64)

    def adjacency(self) -> np.ndarray:
        """Boolean ``(K, K)`` matrix, True for grid neighbours."""
        adj = np.zeros((self.n_nodes, self.n_nodes), dtype=bool)
        k, j = np.nonzero(self.neighbour_mask)
        adj[k, self.neighbours[k, j]] = True
        return adj

    # ------------------------------------------------------------------ drawing
    def positions(self) -> np.ndarray:
        """Centre of every node for drawing, shape ``(K, 2)`` as (x, y), y growing downwards.

        Rect cells are unit squares; hex cells have unit width and rows ``sqrt(3)/2`` apart.
        """
        rows, cols = np.divmod(np.arange(self.n_nodes), self.width)
        if self.topology == "rect":
            return np.stack([cols + 0.5, rows + 0.5], axis=1).astype(float)
        x = cols + 0.5 + 0.5 * (rows % 2)
        y = rows * (np.sqrt(3) / 2) + 1 / np.sqrt(3)
        return np.stack([x, y], axis=1)

    def cell_polygon(self) -> np.ndarray:
        """Vertices of one cell relative to its centre, shape ``(4, 2)`` or ``(6, 2)``."""
        if self.topology == "rect":
            return np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        r = 1 / np.sqrt(3)  # circumradius of a hexagon of unit width (pointy-top)
        ang = np.deg2rad(np.arange(6) * 60 + 30)
        return np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)

    def extent(self) -> tuple[float, float]:
        """Width and height of the drawn map in the units of :meth:`positions`."""
        if self.topology == "rect":
            return float(self.width), float(self.height)
        return self.width + 0.5, (self.height - 1) * np.sqrt(3) / 2 + 2 / np.sqrt(3)

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "topology": self.topology, "toroidal": self.toroidal}

    @classmethod
    def from_dict(cls, d: dict) -> "SOMGrid":
        return cls(int(d["height"]), int(d["width"]), str(d.get("topology", "rect")), bool(d.get("toroidal", True)))
