"""Known-value tests for the SOM grid (METHOD.md section 7, item 1)."""

import numpy as np
import pytest

from core.grid import SOMGrid


def test_reference_neighbours_8x8():
    g = SOMGrid(8, 8)
    assert sorted(g.neighbours_of(0)) == sorted([8, 56, 1, 7])
    assert sorted(g.neighbours_of(63)) == sorted([7, 55, 56, 62])


def test_reference_neighbours_16x16():
    assert sorted(SOMGrid(16, 16).neighbours_of(0)) == sorted([16, 240, 1, 15])


@pytest.mark.parametrize("h,w", [(4, 6), (6, 4), (3, 7), (5, 3)])
def test_non_square_torus_has_four_distinct_symmetric_neighbours(h, w):
    g = SOMGrid(h, w)
    adj = g.adjacency()
    assert (adj.sum(axis=1) == 4).all()
    assert (adj == adj.T).all()
    assert not adj.diagonal().any()
    # Row-major indexing: node k = r * W + c, and its east neighbour is the next column.
    for k in range(g.n_nodes):
        r, c = g.coords(k)
        assert g.index(r, (c + 1) % w) in g.neighbours_of(k)
        assert g.index((r + 1) % h, c) in g.neighbours_of(k)


def test_flat_rect_edges():
    g = SOMGrid(3, 4, toroidal=False)
    assert sorted(g.neighbours_of(0)) == [1, 4]
    assert sorted(g.neighbours_of(5)) == [1, 4, 6, 9]
    assert g.neighbour_mask.sum(axis=1).tolist() == [2, 3, 3, 2, 3, 4, 4, 3, 2, 3, 3, 2]
    assert (g.neighbours[~g.neighbour_mask] == -1).all()


def test_rect_distances_manhattan_with_wrap():
    flat, torus = SOMGrid(4, 6, toroidal=False), SOMGrid(4, 6)
    a, b = flat.index(0, 0), flat.index(3, 5)
    assert flat.distances()[a, b] == 3 + 5
    assert torus.distances()[a, b] == 1 + 1
    d = torus.distances()
    assert (d == d.T).all() and (np.diag(d) == 0).all()
    assert (d[torus.adjacency()] == 1).all()


def test_hex_neighbours_odd_r_layout():
    g = SOMGrid(4, 4, "hex", toroidal=False)
    # Even row 2, col 1: left/right, and up/down-left diagonals.
    k = g.index(2, 1)
    assert sorted(g.neighbours_of(k)) == sorted([g.index(2, 0), g.index(2, 2), g.index(1, 0), g.index(1, 1),
                                                 g.index(3, 0), g.index(3, 1)])
    # Odd row 1, col 1: diagonals shift right.
    k = g.index(1, 1)
    assert sorted(g.neighbours_of(k)) == sorted([g.index(1, 0), g.index(1, 2), g.index(0, 1), g.index(0, 2),
                                                 g.index(2, 1), g.index(2, 2)])


@pytest.mark.parametrize("h,w", [(4, 4), (6, 8), (8, 5)])
def test_hex_torus_six_symmetric_neighbours_and_distances(h, w):
    g = SOMGrid(h, w, "hex", toroidal=True)
    adj = g.adjacency()
    assert (adj.sum(axis=1) == 6).all() and (adj == adj.T).all()
    d = g.distances()
    assert (d[adj] == 1).all()
    assert (d[~adj & ~np.eye(g.n_nodes, dtype=bool)] >= 2).all()
    assert (d == d.T).all()


def test_hex_distance_matches_breadth_first_search():
    g = SOMGrid(5, 6, "hex", toroidal=False)
    d = g.distances()
    for start in range(g.n_nodes):
        seen = {start: 0}
        frontier = [start]
        while frontier:
            nxt = []
            for k in frontier:
                for n in g.neighbours_of(k):
                    if n not in seen:
                        seen[n] = seen[k] + 1
                        nxt.append(n)
            frontier = nxt
        assert [seen[k] for k in range(g.n_nodes)] == d[start].tolist()


def test_validate_rejects_bad_grids():
    with pytest.raises(ValueError, match="even number of rows"):
        SOMGrid(5, 4, "hex", True).validate()
    with pytest.raises(ValueError, match="at least 2 nodes"):
        SOMGrid(1, 1).validate()
    with pytest.raises(ValueError, match="topology"):
        SOMGrid(4, 4, "tri").validate()
    SOMGrid(5, 4, "hex", False).validate()


def test_positions_and_polygons():
    rect, hexg = SOMGrid(2, 3, toroidal=False), SOMGrid(2, 3, "hex", toroidal=False)
    assert rect.positions()[4].tolist() == [1.5, 1.5]
    p = hexg.positions()
    assert p[3, 0] - p[0, 0] == pytest.approx(0.5)  # odd rows shifted half a cell
    assert p[3, 1] - p[0, 1] == pytest.approx(np.sqrt(3) / 2)
    assert hexg.cell_polygon().shape == (6, 2) and rect.cell_polygon().shape == (4, 2)
    # Neighbouring hex centres are exactly one cell width apart.
    for k in range(hexg.n_nodes):
        for n in hexg.neighbours_of(k):
            assert np.linalg.norm(p[k] - p[n]) == pytest.approx(1.0)


def test_dict_round_trip():
    g = SOMGrid(4, 6, "hex", False)
    assert SOMGrid.from_dict(g.to_dict()) == g
