"""Numba kernels of the SLEUTH urban growth rules (urban growth only, no deltatron).

Plain arrays and scalars in, plain arrays out; orchestration, file formats and
statistics files live in :mod:`landuse.growth.sleuth`.

One simulated year applies, in this order, on the urban grid ``z`` (non-zero = urban)
and a growth grid ``delta`` for the year (``z`` does not change during the year):

1. **spontaneous growth** (``sng``): ``1 + int(diffusion * 0.005 * diagonal)`` random
   cells are tried; an interior cell that urbanises becomes, with probability
   ``int(breed) / 101``, a **new spreading centre** (``sdc``): up to 8 tries on random
   neighbours, stopping at 2 successes;
2. **edge growth** (``og``): each interior urban cell passes a ``spread`` test
   (``int(u * 101) < spread``); with 2 to 7 urban neighbours one random neighbour is tried;
3. **road-influenced growth** (``rt``): ``1 + int(breed)`` times, a random cell grown this
   year is picked, the nearest road is searched on a square spiral of
   ``max(4 rg (rg + 1), rows, cols)`` cells with ``rg = int(road_gravity / 100 * (rows +
   cols) / 16)``, a walk along the road of more than ``int(road / 100 * diffusion)``
   steps is taken, a neighbour of the walk's end is tried and, if it urbanises, three
   neighbours of that cell.

A cell is *tried* ("urbanise") when it is neither urban nor grown this year: it passes
the slope test ``u > w(slope)`` with ``w(s) = 1 - ((c - s) / c) ** (resistance / 50)`` below
the critical slope ``c`` and ``w = 1`` at and above it, then the exclusion test
``excluded < int(u * 100)``. After the year the coefficients self-modify (boom when the
growth rate exceeds ``critical_high``, bust below ``critical_low``).

Random numbers follow the project's counter-based scheme: every (run, year) has its own
stream key and draws are numbered inside the year, so a run's outcome does not depend on
which thread simulates it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from landuse.growth.random import _stream_key, _uniform

# Growth-type codes written into the growth grid (SLEUTH's phase codes).
SEED = 3
SPONTANEOUS = 4
SPREAD_CENTRE = 6
EDGE = 7
ROAD = 8

# Columns of one statistics record, in SLEUTH's avg.log order.
STAT_NAMES = (
    "sng", "sdg", "sdc", "og", "rt", "pop", "area", "edges", "clusters", "xmean", "ymean", "rad",
    "slope", "cl_size", "diffus", "spread", "breed", "slp_res", "rd_grav", "%urban", "%road",
    "grw_rate", "leesalee", "grw_pix",
)  # fmt: skip
N_STATS = len(STAT_NAMES)
(
    S_SNG, S_SDG, S_SDC, S_OG, S_RT, S_POP, S_AREA, S_EDGES, S_CLUSTERS, S_XMEAN, S_YMEAN, S_RAD,
    S_SLOPE, S_CLSIZE, S_DIFFUS, S_SPREAD, S_BREED, S_SLPRES, S_RDGRAV, S_PURBAN, S_PROAD,
    S_GRWRATE, S_LEESALEE, S_GRWPIX,
) = range(N_STATS)  # fmt: skip

# Coefficient order in coefficient arrays.
C_DIFFUSION, C_BREED, C_SPREAD, C_SLOPE, C_ROAD = range(5)
# Self-modification constants order.
K_CRIT_LOW, K_CRIT_HIGH, K_CRIT_SLOPE, K_BOOM, K_BUST, K_SLOPE_SENS, K_ROAD_SENS = range(7)

# Neighbour orders (row, col offsets).
_NB_ROW = np.array([-1, 0, 1, 1, 1, 0, -1, -1], dtype=np.int64)  # ring used by neighbour picks
_NB_COL = np.array([-1, -1, -1, 0, 1, 1, 1, 0], dtype=np.int64)
_WALK_ROW = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)  # edge-growth neighbour table
_WALK_COL = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)

PURPOSE = 0x5C  # stream purpose tag of SLEUTH growth draws


@njit(cache=True, nogil=True, inline="always")
def _draw(key: np.uint64, ctr: np.ndarray) -> float:
    """Next uniform of a (run, year) stream; ``ctr[0]`` numbers the draws."""
    u = _uniform(key, ctr[0])
    ctr[0] += 1
    return u


@njit(cache=True, nogil=True)
def _slope_weights(slope_resistance: float, critical_slope: float) -> np.ndarray:
    """Rejection probability per slope value 0..255 (SLEUTH's slope lookup table, float32)."""
    lut = np.ones(256, dtype=np.float64)
    expo = np.float32(slope_resistance / 50.0)
    crit = np.float32(critical_slope)
    for i in range(256):
        if i < crit:
            val = np.float32((crit - np.float32(i)) / crit)
            lut[i] = np.float64(np.float32(1.0 - math.pow(np.float64(val), np.float64(expo))))
    return lut


@njit(cache=True, nogil=True)
def _spiral_offsets(n: int, max_band: int) -> np.ndarray:
    """The first ``n`` cells of the square spiral road search, as (row, col) offsets."""
    out = np.zeros((n, 2), dtype=np.int64)
    for index in range(n):
        bn = 1
        while bn < max_band and 4 * (1 + bn) * bn <= index:
            bn += 1
        bo = index - 4 * (bn - 1) * bn
        side = 2 * bn + 1
        top = 2 * bn - 1
        if bo < side:
            i = -bn + bo
            j = -bn
        elif bo < side + top:
            i = bn
            j = -bn + 1 + (bo - side)
        elif bo < 2 * side + top:
            i = bn - (bo - side - top)
            j = bn
        else:
            i = -bn
            j = bn - 1 - (bo - 2 * side - top)
        out[index, 0] = i
        out[index, 1] = j
    return out


@njit(cache=True, nogil=True)
def _urbanize(r, c, z, delta, slope, excluded, swght, code, key, ctr) -> bool:
    """Try one cell: free, slope test, exclusion test. Sets ``delta`` and returns success.

    Grown cells are also listed (flat index) in ``ctr[2:]``, their number in ``ctr[1]``.
    """
    if z[r, c] != 0 or delta[r, c] != 0:
        return False
    if not (_draw(key, ctr) > swght[slope[r, c]]):
        return False
    if excluded[r, c] < int(_draw(key, ctr) * 100):
        delta[r, c] = code
        ctr[2 + ctr[1]] = r * z.shape[1] + c
        ctr[1] += 1
        return True
    return False


@njit(cache=True, nogil=True)
def _random_neighbour(i, j, nrows, ncols, key, ctr):
    """A random in-image 8-neighbour of (i, j): random start on the ring, then clockwise."""
    k0 = int(_draw(key, ctr) * 8)
    for k in range(8):
        idx = (k0 + k) % 8
        ni = i + _NB_ROW[idx]
        nj = j + _NB_COL[idx]
        if 0 <= ni < nrows and 0 <= nj < ncols:
            return ni, nj
    return i + _NB_ROW[k0], j + _NB_COL[k0]


@njit(cache=True, nogil=True)
def _urbanize_neighbour(i, j, z, delta, slope, excluded, swght, code, key, ctr):
    """Try a random neighbour of (i, j); returns (success, neighbour row, neighbour col)."""
    nrows, ncols = z.shape
    if not (0 <= i < nrows and 0 <= j < ncols):
        return False, i, j
    ni, nj = _random_neighbour(i, j, nrows, ncols, key, ctr)
    ok = _urbanize(ni, nj, z, delta, slope, excluded, swght, code, key, ctr)
    return ok, ni, nj


@njit(cache=True, nogil=True)
def _road_walk(i, j, roads, diffusion, key, ctr):
    """Walk along the road from (i, j); returns (spread, end row, end col)."""
    nrows, ncols = roads.shape
    run = 0
    while True:
        moved = False
        k0 = int(_draw(key, ctr) * 8)
        for k in range(8):
            idx = (k0 + k) % 8
            ni = i + _NB_ROW[idx]
            nj = j + _NB_COL[idx]
            if 0 <= ni < nrows and 0 <= nj < ncols and roads[ni, nj] != 0:
                i = ni
                j = nj
                run += 1
                moved = True
                break
        run_value = int((roads[i, j] // 100) * diffusion)
        if run > run_value:
            return True, i, j
        if not moved:
            return False, i, j


@njit(cache=True, nogil=True, inline="always")
def _add_neighbour(nb, i, j):
    """Count a new urban cell (i, j) in its 8 neighbours' urban-neighbour counts."""
    nrows, ncols = nb.shape
    for di in range(-1, 2):
        for dj in range(-1, 2):
            if di != 0 or dj != 0:
                ii = i + di
                jj = j + dj
                if 0 <= ii < nrows and 0 <= jj < ncols:
                    nb[ii, jj] += 1


@njit(cache=True, nogil=True)
def _grow_year(z, nb, delta, slope, excluded, roads, spiral, swght, coeff, key, ctr, growth, counts, rules):
    """One year of SLEUTH growth into ``delta`` (``z`` is read only).

    ``nb`` holds each cell's number of urban 8-neighbours in ``z``. ``delta`` must be all
    zero on entry; the grown cells are listed in ``ctr[2 : 2 + ctr[1]]``
    (``ctr[0]`` numbers the draws). ``counts`` receives (sng, sdc, og, rt). ``growth`` is a
    scratch int64 array of at least ``2 * rows * cols`` entries. ``rules`` switches phases on (bit 0 spontaneous + spreading
    centres, bit 1 edge growth, bit 2 road-influenced growth).
    """
    nrows, ncols = z.shape
    diffusion = coeff[C_DIFFUSION]
    breed = coeff[C_BREED]
    spread = coeff[C_SPREAD]
    road_gravity = coeff[C_ROAD]
    counts[:] = 0
    ctr[1] = 0

    # Phase 1 and 3: spontaneous growth and new spreading centres.
    if rules & 1:
        diffusion_value = diffusion * 0.005 * math.sqrt(float(nrows * nrows) + float(ncols * ncols))
        for _k in range(1 + int(diffusion_value)):
            i = int(_draw(key, ctr) * nrows)
            j = int(_draw(key, ctr) * ncols)
            if 0 < i < nrows - 1 and 0 < j < ncols - 1:
                if _urbanize(i, j, z, delta, slope, excluded, swght, SPONTANEOUS, key, ctr):
                    counts[0] += 1
                    if int(_draw(key, ctr) * 101) < int(breed):
                        ok_count = 0
                        for _t in range(8):
                            ok, _a, _b = _urbanize_neighbour(
                                i, j, z, delta, slope, excluded, swght, SPREAD_CENTRE, key, ctr
                            )
                            if ok:
                                counts[1] += 1
                                ok_count += 1
                                if ok_count == 2:
                                    break

    # Phase 4: edge (organic) growth from urban cells with 2..7 urban neighbours. SLEUTH
    # draws the spread test for every urban cell; only cells with 2..7 urban neighbours can
    # act on it, so the test is drawn for those alone (same distribution, fewer draws).
    if rules & 2:
        for row in range(1, nrows - 1):
            for col in range(1, ncols - 1):
                if z[row, col] != 0 and 2 <= nb[row, col] < 8:
                    if int(_draw(key, ctr) * 101) < spread:
                        p = int(_draw(key, ctr) * 8)
                        if _urbanize(
                            row + _WALK_ROW[p], col + _WALK_COL[p], z, delta, slope, excluded, swght, EDGE, key, ctr
                        ):
                            counts[2] += 1

    # Phase 5: road-influenced growth.
    if rules & 4:
        # Growth list in raster order, laid out as SLEUTH 3.0beta_p01 lays it out: the
        # column list starts ``rows`` entries after the row list in one buffer, so once more
        # than ``rows`` cells have grown, column k reads the row of growth cell k + rows.
        n_growth = ctr[1]
        order = np.sort(ctr[2 : 2 + n_growth])
        for k in range(n_growth):
            r = order[k] // ncols
            growth[k] = r
            growth[nrows + k] = order[k] - r * ncols
        if n_growth > 0:
            for _k in range(1 + int(breed)):
                rg = int((road_gravity / 100.0) * ((nrows + ncols) / 16.0))
                max_search = max(4 * (rg * (1 + rg)), nrows, ncols)
                g = int(n_growth * _draw(key, ctr))
                gi = growth[g]
                gj = growth[nrows + g]
                found = False
                ri = 0
                rj = 0
                for s in range(min(max_search, spiral.shape[0])):
                    ii = gi + spiral[s, 0]
                    jj = gj + spiral[s, 1]
                    if 0 <= ii < nrows and 0 <= jj < ncols and roads[ii, jj] != 0:
                        found = True
                        ri = ii
                        rj = jj
                        break
                if found:
                    spread_ok, ei, ej = _road_walk(ri, rj, roads, diffusion, key, ctr)
                    if spread_ok:
                        ok, ni, nj = _urbanize_neighbour(ei, ej, z, delta, slope, excluded, swght, ROAD, key, ctr)
                        if ok:
                            counts[3] += 1
                            for _t in range(3):
                                ok2, _a, _b = _urbanize_neighbour(
                                    ni, nj, z, delta, slope, excluded, swght, ROAD, key, ctr
                                )
                                if ok2:
                                    counts[3] += 1


@njit(cache=True, nogil=True)
def _self_modify(coeff, growth_rate, percent_urban, consts):
    """SLEUTH's self-modification of the five coefficients after a year (in place)."""
    if growth_rate > consts[K_CRIT_HIGH]:
        coeff[C_SLOPE] -= percent_urban * consts[K_SLOPE_SENS]
        if coeff[C_SLOPE] <= 0.01:
            coeff[C_SLOPE] = 1.0
        coeff[C_ROAD] += percent_urban * consts[K_ROAD_SENS]
        if coeff[C_ROAD] > 100.0:
            coeff[C_ROAD] = 100.0
        if coeff[C_DIFFUSION] < 100.0:
            coeff[C_DIFFUSION] = min(coeff[C_DIFFUSION] * consts[K_BOOM], 100.0)
            coeff[C_BREED] = min(coeff[C_BREED] * consts[K_BOOM], 100.0)
            coeff[C_SPREAD] = min(coeff[C_SPREAD] * consts[K_BOOM], 100.0)
    if growth_rate < consts[K_CRIT_LOW]:
        coeff[C_SLOPE] += percent_urban * consts[K_SLOPE_SENS]
        if coeff[C_SLOPE] > 100.0:
            coeff[C_SLOPE] = 100.0
        coeff[C_ROAD] -= percent_urban * consts[K_ROAD_SENS]
        if coeff[C_ROAD] <= 0.01:
            coeff[C_ROAD] = 1.0
        if coeff[C_DIFFUSION] > 0:
            coeff[C_DIFFUSION] *= consts[K_BUST]
            if coeff[C_DIFFUSION] <= 0.01:
                coeff[C_DIFFUSION] = 1.0
            coeff[C_SPREAD] *= consts[K_BUST]
            if coeff[C_SPREAD] <= 0.01:
                coeff[C_SPREAD] = 1.0
            coeff[C_BREED] *= consts[K_BUST]
            if coeff[C_BREED] <= 0.01:
                coeff[C_BREED] = 1.0


@njit(cache=True, nogil=True)
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
    out[S_AREA] = area
    out[S_POP] = area
    out[S_EDGES] = edges
    out[S_CLUSTERS] = n_clusters
    out[S_CLSIZE] = (total // n_clusters) if n_clusters > 0 else 0
    if area > 0:
        out[S_XMEAN] = xsum / area
        out[S_YMEAN] = ysum / area
        out[S_SLOPE] = ssum / area
    else:
        out[S_XMEAN] = 0.0
        out[S_YMEAN] = 0.0
        out[S_SLOPE] = 0.0
    out[S_RAD] = math.sqrt(area / math.pi)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _simulate_run(
    seed_urban, slope, excluded, roads, road_of_year, road_count, spiral, coeff0, consts, seed, mc, first_year,
    record_slot, control_grids, control_of_year, prob_slot, prob_counts, excl_count, rules, stats,
):  # fmt: skip
    """Simulate one Monte Carlo run over all years; fill ``stats[slot]`` and ``prob_counts``."""
    nrows, ncols = seed_urban.shape
    n_years = road_of_year.shape[0]
    z = np.zeros((nrows, ncols), dtype=np.uint8)
    for i in range(nrows):
        for j in range(ncols):
            if seed_urban[i, j] != 0:
                z[i, j] = SEED
    delta = np.zeros((nrows, ncols), dtype=np.uint8)
    nb = np.zeros((nrows, ncols), dtype=np.uint8)
    for i in range(nrows):
        for j in range(ncols):
            if z[i, j] != 0:
                _add_neighbour(nb, i, j)
    growth = np.zeros(2 * nrows * ncols + 2, dtype=np.int64)
    queue = np.zeros(nrows * ncols, dtype=np.int64)
    visited = np.zeros((nrows, ncols), dtype=np.uint8)
    counts = np.zeros(4, dtype=np.int64)
    ctr = np.zeros(2 + nrows * ncols, dtype=np.int64)
    coeff = coeff0.copy()
    pop = 0
    for i in range(nrows):
        for j in range(ncols):
            if z[i, j] != 0:
                pop += 1
    total_pixels = nrows * ncols
    for y in range(n_years):
        year = first_year + y
        key = _stream_key(np.int64(seed), np.int64(mc), np.int64(year), np.int64(0), np.int64(PURPOSE))
        ctr[0] = 0
        swght = _slope_weights(coeff[C_SLOPE], consts[K_CRIT_SLOPE])
        roads_y = roads[road_of_year[y]]
        _grow_year(z, nb, delta, slope, excluded, roads_y, spiral, swght, coeff, key, ctr, growth, counts, rules)
        grw_pix = 0
        for k in range(ctr[1]):
            i = ctr[2 + k] // ncols
            j = ctr[2 + k] - i * ncols
            if excluded[i, j] < 100 and z[i, j] == 0:
                z[i, j] = delta[i, j]
                _add_neighbour(nb, i, j)
                grw_pix += 1
            delta[i, j] = 0
        pop += grw_pix
        growth_rate = 100.0 * grw_pix / pop if pop > 0 else 0.0
        rc = road_count[y]
        percent_urban = 100.0 * (pop + rc) / (total_pixels - rc - excl_count)
        slot = record_slot[y]
        if slot >= 0:
            out = stats[slot]
            out[S_SNG] = counts[0]
            out[S_SDG] = counts[1]
            out[S_SDC] = 0.0
            out[S_OG] = counts[2]
            out[S_RT] = counts[3]
            _pattern_stats(z, slope, out, queue, visited)
            out[S_DIFFUS] = coeff[C_DIFFUSION]
            out[S_SPREAD] = coeff[C_SPREAD]
            out[S_BREED] = coeff[C_BREED]
            out[S_SLPRES] = coeff[C_SLOPE]
            out[S_RDGRAV] = coeff[C_ROAD]
            out[S_PURBAN] = percent_urban
            out[S_PROAD] = 0.0
            out[S_GRWRATE] = growth_rate
            ci = control_of_year[y]
            out[S_LEESALEE] = _leesalee(z, control_grids[ci]) if ci >= 0 else 0.0
            out[S_GRWPIX] = grw_pix
        ps = prob_slot[y]
        if ps >= 0:
            for i in range(nrows):
                for j in range(ncols):
                    if z[i, j] != 0:
                        prob_counts[ps, i, j] += 1
        _self_modify(coeff, growth_rate, percent_urban, consts)


@njit(cache=True, nogil=True, parallel=True)
def _simulate_batch(
    seed_urban, slope, excluded, roads, road_of_year, road_count, spiral, coeffs, consts, seed, n_runs, first_year,
    record_slot, n_record, control_grids, control_of_year, prob_slot, n_prob, n_chunks, excl_count, rules,
):  # fmt: skip
    """Simulate ``n_runs`` Monte Carlo runs for every coefficient set, in parallel.

    Work items (coefficient set, run) are split into ``n_chunks`` fixed chunks (not one per
    thread), so results do not depend on the thread count. Returns the statistics
    ``(sets, runs, n_record, N_STATS)`` and urban counts per chunk
    ``(n_chunks, n_prob, rows, cols)`` (sum over axis 0 for the totals).
    """
    n_sets = coeffs.shape[0]
    nrows, ncols = seed_urban.shape
    n_tasks = n_sets * n_runs
    stats = np.zeros((n_sets, n_runs, n_record, N_STATS), dtype=np.float64)
    prob = np.zeros((n_chunks if n_prob > 0 else 0, n_prob, nrows, ncols), dtype=np.uint16)
    for ch in prange(n_chunks):
        start = (ch * n_tasks) // n_chunks
        stop = ((ch + 1) * n_tasks) // n_chunks
        dummy = np.zeros((0, nrows, ncols), dtype=np.uint16)
        for t in range(start, stop):
            s = t // n_runs
            mc = t - s * n_runs
            pc = prob[ch] if n_prob > 0 else dummy
            _simulate_run(
                seed_urban, slope, excluded, roads, road_of_year, road_count, spiral, coeffs[s], consts, seed, mc,
                first_year, record_slot, control_grids, control_of_year, prob_slot, pc, excl_count, rules,
                stats[s, mc],
            )  # fmt: skip
    return stats, prob
