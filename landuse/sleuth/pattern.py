"""Numba kernels of SLEUTH's map statistics.

The pattern of an urban grid, and the run state kept up to date as cells urbanise.

:func:`_pattern_stats` measures a whole grid (area, edges, clusters, mean centre, radius, slope);
:func:`_add_cell` updates the same measures incrementally as one cell becomes urban (neighbour counts, frontier
flags, a union-find of clusters), which is how a run records its statistics without rescanning the grid.
Called by the growth kernels of :mod:`landuse.sleuth.kernels`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from landuse.sleuth.defs import (
    S_AREA,
    S_CLSIZE,
    S_CLUSTERS,
    S_EDGES,
    S_POP,
    S_RAD,
    S_SLOPE,
    S_XMEAN,
    S_YMEAN,
)


@njit(cache=True, nogil=True, inline="always")
def _write_pattern(out, area, edges, n_clusters, interior, xsum, ysum, ssum):
    """Write area, pop, edges, clusters, cl_size, centroid, rad and slope from their totals (float sums)."""
    out[S_AREA] = area
    out[S_POP] = area
    out[S_EDGES] = edges
    out[S_CLUSTERS] = n_clusters
    out[S_CLSIZE] = (interior // n_clusters) if n_clusters > 0 else 0
    if area > 0:
        out[S_XMEAN] = xsum / area
        out[S_YMEAN] = ysum / area
        out[S_SLOPE] = ssum / area
    else:
        out[S_XMEAN] = 0.0
        out[S_YMEAN] = 0.0
        out[S_SLOPE] = 0.0
    out[S_RAD] = math.sqrt(area / math.pi)


@njit(cache=True, nogil=True, _nrt=False)
def _pattern_stats(z, slope, out, queue, visited):
    """Area, edges, clusters, centroid, radius, mean slope and mean cluster size of ``z``.

    Writes S_AREA, S_EDGES, S_CLUSTERS, S_POP, S_XMEAN, S_YMEAN, S_RAD, S_SLOPE, S_CLSIZE
    of ``out``. Edges: urban cells with a non-urban 4-neighbour inside the image.
    Clusters: 4-connected groups of urban cells, the outer rows and columns ignored; the
    mean cluster size is the integer quotient of their cells by their number.
    """
    nrows, ncols = z.shape
    area = 0
    edges = 0
    xsum = 0.0
    ysum = 0.0
    ssum = 0.0
    for i in range(nrows):
        for j in range(ncols):
            if z[i, j] != 0:
                area += 1
                xsum += j
                ysum += i
                ssum += slope[i, j]
                edge = False
                if i > 0 and z[i - 1, j] == 0:
                    edge = True
                elif i < nrows - 1 and z[i + 1, j] == 0:
                    edge = True
                elif j > 0 and z[i, j - 1] == 0:
                    edge = True
                elif j < ncols - 1 and z[i, j + 1] == 0:
                    edge = True
                if edge:
                    edges += 1
    visited[:, :] = 0
    n_clusters = 0
    total = 0
    for i in range(1, nrows - 1):
        for j in range(1, ncols - 1):
            if z[i, j] != 0 and visited[i, j] == 0:
                n_clusters += 1
                visited[i, j] = 1
                head = 0
                tail = 0
                queue[tail] = i * ncols + j
                tail += 1
                while head < tail:
                    cell = queue[head]
                    head += 1
                    total += 1
                    r = cell // ncols
                    c = cell - r * ncols
                    for k in range(4):
                        rr = r + (1 if k == 0 else -1 if k == 2 else 0)
                        cc = c + (1 if k == 1 else -1 if k == 3 else 0)
                        if 0 < rr < nrows - 1 and 0 < cc < ncols - 1 and z[rr, cc] != 0 and visited[rr, cc] == 0:
                            visited[rr, cc] = 1
                            queue[tail] = rr * ncols + cc
                            tail += 1
    _write_pattern(out, area, edges, n_clusters, total, xsum, ysum, ssum)


@njit(cache=True, nogil=True, _nrt=False)
def _leesalee(z, observed) -> float:
    """Lee-Sallee shape index |sim ∩ obs| / |sim ∪ obs| of two urban grids."""
    union = 0
    inter = 0
    nrows, ncols = z.shape
    for i in range(nrows):
        for j in range(ncols):
            a = z[i, j] != 0
            b = observed[i, j] != 0
            if a or b:
                union += 1
            if a and b:
                inter += 1
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- incremental run state
#
# Urban cells never revert during a run, so everything the statistics need is kept up to
# date as cells urbanise instead of being recomputed from the grid: the 8- and 4-neighbour
# counts, the edge-growth frontier flags, the edge count, a union-find of interior cells
# (clusters merge, never split), the area and the x / y / slope sums, and the Lee-Sallee
# intersection per control grid. The cost per year is then proportional to the cells grown
# that year, not to the grid.

# Integer accumulators of a run (``acc``).
A_AREA, A_EDGES, A_CLUSTERS, A_INTERIOR, A_XSUM, A_YSUM, A_SSUM = range(7)
N_ACC = 7

_NB_ROW = np.array([-1, 0, 1, 1, 1, 0, -1, -1], dtype=np.int64)  # ring used by neighbour picks
_NB_COL = np.array([-1, -1, -1, 0, 1, 1, 1, 0], dtype=np.int64)

_R4 = np.array([-1, 0, 1, 0], dtype=np.int64)
_C4 = np.array([0, -1, 0, 1], dtype=np.int64)


@njit(cache=True, nogil=True)
def _frontier_flags(z: np.ndarray) -> np.ndarray:
    """Flat flags (length a multiple of 8) of the interior urban cells with 2..7 urban 8-neighbours."""
    nrows, ncols = z.shape
    fr = np.zeros(((nrows * ncols + 7) // 8) * 8, dtype=np.uint8)
    for i in range(1, nrows - 1):
        for j in range(1, ncols - 1):
            if z[i, j] != 0:
                c = 0
                for k in range(8):
                    if z[i + _NB_ROW[k], j + _NB_COL[k]] != 0:
                        c += 1
                if 2 <= c < 8:
                    fr[i * ncols + j] = 1
    return fr


@njit(cache=True, nogil=True, inline="always")
def _deg4(i, j, nrows, ncols):
    d = 0
    if i > 0:
        d += 1
    if i < nrows - 1:
        d += 1
    if j > 0:
        d += 1
    if j < ncols - 1:
        d += 1
    return d


@njit(cache=True, nogil=True, _nrt=False)
def _find(parent, x):
    """Root of ``x`` in the union-find ``parent`` (path halving)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True, inline="always")
def _set_frontier(fr, z, nb, i, j):
    nrows, ncols = z.shape
    if 0 < i < nrows - 1 and 0 < j < ncols - 1:
        fr[i * ncols + j] = 1 if (z[i, j] != 0 and 2 <= nb[i, j] < 8) else 0


@njit(cache=True, nogil=True, _nrt=False)
def _add_cell(i, j, code, z, nb, nb4, fr, parent, acc, slope, control_grids, track, inter, full):
    """Make the non-urban cell (i, j) urban (``z = code``) and update the run state.

    ``nb`` / ``nb4``: urban 8- / 4-neighbour counts of every cell; ``fr``: frontier flags
    (:func:`_frontier_flags`); ``parent``: union-find of interior urban cells (4-connected);
    ``acc``: the ``A_*`` accumulators; ``inter[g, 0]`` / ``inter[g, 1]``: urban cells inside /
    outside control grid ``g`` (only grids with ``track[g]``).
    """
    nrows, ncols = z.shape
    z[i, j] = code
    for k in range(8):
        ii = i + _NB_ROW[k]
        jj = j + _NB_COL[k]
        if 0 <= ii < nrows and 0 <= jj < ncols:
            nb[ii, jj] += 1
            _set_frontier(fr, z, nb, ii, jj)
    _set_frontier(fr, z, nb, i, j)
    acc[A_AREA] += 1
    if not full:
        return
    acc[A_XSUM] += j
    acc[A_YSUM] += i
    acc[A_SSUM] += slope[i, j]
    # edges: urban cells with a non-urban 4-neighbour inside the image
    if nb4[i, j] < _deg4(i, j, nrows, ncols):
        acc[A_EDGES] += 1
    for k in range(4):
        ii = i + _R4[k]
        jj = j + _C4[k]
        if 0 <= ii < nrows and 0 <= jj < ncols:
            nb4[ii, jj] += 1
            if z[ii, jj] != 0 and nb4[ii, jj] == _deg4(ii, jj, nrows, ncols):
                acc[A_EDGES] -= 1
    # clusters: 4-connected groups of urban cells, outer rows and columns ignored
    if 0 < i < nrows - 1 and 0 < j < ncols - 1:
        idx = i * ncols + j
        parent[idx] = idx
        acc[A_INTERIOR] += 1
        acc[A_CLUSTERS] += 1
        for k in range(4):
            ii = i + _R4[k]
            jj = j + _C4[k]
            if 0 < ii < nrows - 1 and 0 < jj < ncols - 1 and z[ii, jj] != 0:
                ra = _find(parent, idx)
                rb = _find(parent, ii * ncols + jj)
                if ra != rb:
                    parent[ra] = rb
                    acc[A_CLUSTERS] -= 1
    for g in range(control_grids.shape[0]):
        if track[g]:
            if control_grids[g, i, j] != 0:
                inter[g, 0] += 1
            else:
                inter[g, 1] += 1


@njit(cache=True, nogil=True, _nrt=False)
def _record_pattern(out, acc):
    """Write area, pop, edges, clusters, cl_size, centroid, rad and slope from ``acc`` (as :func:`_pattern_stats`)."""
    _write_pattern(out, acc[A_AREA], acc[A_EDGES], acc[A_CLUSTERS], acc[A_INTERIOR], float(acc[A_XSUM]),
                   float(acc[A_YSUM]), float(acc[A_SSUM]))


