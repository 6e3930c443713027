"""Numba kernels of the SLEUTH urban growth rules (urban growth only, no deltatron).

Plain arrays and scalars in, plain arrays out; orchestration, file formats and
statistics files live in :mod:`landuse.sleuth.model`.

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

from landuse.growth.random import stream_key_kernel, uniform_kernel
from landuse.sleuth.defs import (  # noqa: F401 (re-exported: record layout)
    C_BREED,
    C_DIFFUSION,
    C_ROAD,
    C_SLOPE,
    C_SPREAD,
    FULL_STATS_YEARS,
    K_BOOM,
    K_BUST,
    K_CRIT_HIGH,
    K_CRIT_LOW,
    K_CRIT_SLOPE,
    K_ROAD_SENS,
    K_SLOPE_SENS,
    N_STATS,
    ROAD_MEMO_BYTES,
    S_AREA,
    S_BREED,
    S_CLSIZE,
    S_CLUSTERS,
    S_DIFFUS,
    S_EDGES,
    S_GRWPIX,
    S_GRWRATE,
    S_LEESALEE,
    S_OG,
    S_POP,
    S_PROAD,
    S_PURBAN,
    S_RAD,
    S_RDGRAV,
    S_RT,
    S_SDC,
    S_SDG,
    S_SLOPE,
    S_SLPRES,
    S_SNG,
    S_SPREAD,
    S_XMEAN,
    S_YMEAN,
    STAT_NAMES,
)
from landuse.sleuth.pattern import (  # noqa: F401 (_pattern_stats: the model's entry)
    _NB_COL,
    _NB_ROW,
    A_AREA,
    N_ACC,
    _add_cell,
    _frontier_flags,
    _leesalee,
    _pattern_stats,
    _record_pattern,
)

# Growth-type codes written into the growth grid (SLEUTH's phase codes).
SEED = 3
SPONTANEOUS = 4
SPREAD_CENTRE = 6
EDGE = 7
ROAD = 8

# Neighbour orders (row, col offsets).
_WALK_ROW = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)  # edge-growth neighbour table
_WALK_COL = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)

PURPOSE = 0x5C  # stream purpose tag of SLEUTH growth draws


@njit(cache=True, nogil=True, inline="always")
def _draw(key: np.uint64, ctr: np.ndarray) -> float:
    """Next uniform of a (run, year) stream; ``ctr[0]`` numbers the draws."""
    u = uniform_kernel(key, ctr[0])
    ctr[0] += 1
    return u


@njit(cache=True, nogil=True, _nrt=False)
def _slope_weights_into(lut, slope_resistance, critical_slope):
    """Fill ``lut`` (256 float64) with the rejection probability per slope value 0..255."""
    expo = np.float32(slope_resistance / 50.0)
    crit = np.float32(critical_slope)
    for i in range(256):
        if i < crit:
            val = np.float32((crit - np.float32(i)) / crit)
            lut[i] = np.float64(np.float32(1.0 - math.pow(np.float64(val), np.float64(expo))))
        else:
            lut[i] = 1.0


@njit(cache=True, nogil=True)
def _slope_weights(slope_resistance: float, critical_slope: float) -> np.ndarray:
    """Rejection probability per slope value 0..255 (SLEUTH's slope lookup table, float32)."""
    lut = np.ones(256, dtype=np.float64)
    _slope_weights_into(lut, slope_resistance, critical_slope)
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


@njit(cache=True, nogil=True, _nrt=False)
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


@njit(cache=True, nogil=True, _nrt=False)
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


@njit(cache=True, nogil=True, _nrt=False)
def _urbanize_neighbour(i, j, z, delta, slope, excluded, swght, code, key, ctr):
    """Try a random neighbour of (i, j); returns (success, neighbour row, neighbour col)."""
    nrows, ncols = z.shape
    if not (0 <= i < nrows and 0 <= j < ncols):
        return False, i, j
    ni, nj = _random_neighbour(i, j, nrows, ncols, key, ctr)
    ok = _urbanize(ni, nj, z, delta, slope, excluded, swght, code, key, ctr)
    return ok, ni, nj


@njit(cache=True, nogil=True)
def _road_neighbours(roads: np.ndarray) -> np.ndarray:
    """Per cell, bit ``k`` set when ring neighbour ``k`` (``_NB_ROW/_NB_COL``) is in the image and a road.

    ``roads`` is ``(grids, rows, cols)``; so is the ``uint8`` result.
    """
    n_grids, nrows, ncols = roads.shape
    out = np.zeros((n_grids, nrows, ncols), dtype=np.uint8)
    for g in range(n_grids):
        for i in range(nrows):
            for j in range(ncols):
                m = 0
                for k in range(8):
                    ni = i + _NB_ROW[k]
                    nj = j + _NB_COL[k]
                    if 0 <= ni < nrows and 0 <= nj < ncols and roads[g, ni, nj] != 0:
                        m |= 1 << k
                out[g, i, j] = m
    return out


# Trailing zero bits of a byte (index 0 unused): the first road neighbour of a rotated mask.
_CTZ8 = np.array([0] + [(v & -v).bit_length() - 1 for v in range(1, 256)], dtype=np.int64)


@njit(cache=True, nogil=True, _nrt=False)
def _road_walk(i, j, roads, road_nb, diffusion, key, ctr):
    """Walk along the road from (i, j); returns (spread, end row, end col).

    Each step draws a start ``k0`` on the neighbour ring and moves to the first road
    neighbour at or after it clockwise (``road_nb`` from :func:`_road_neighbours` holds the
    road neighbours of each cell as bits).
    """
    run = 0
    while True:
        k0 = int(_draw(key, ctr) * 8)
        m = np.int64(road_nb[i, j])
        moved = m != 0
        if moved:
            rot = ((m >> k0) | (m << (8 - k0))) & 0xFF
            idx = (k0 + _CTZ8[rot]) & 7
            i += _NB_ROW[idx]
            j += _NB_COL[idx]
            run += 1
        run_value = int((roads[i, j] // 100) * diffusion)
        if run > run_value:
            return True, i, j
        if not moved:
            return False, i, j


@njit(cache=True, nogil=True, _nrt=False)
def _first_road(gi, gj, n_search, roads, spiral, hit):
    """First index ``s < n_search`` of the spiral around (gi, gj) that lands on a road, else -1.

    ``hit`` (int32 per cell of this road grid, or empty) remembers the search of each cell
    across years and runs: ``v >= 0`` the first road at spiral index ``v``; ``v < 0`` no road
    in the first ``-1 - v`` indices (``-1``: not searched yet). The spiral is fixed, so the
    answer for a search of any length follows from it, with the remainder searched on demand.
    """
    nrows, ncols = roads.shape
    start = 0
    memo = hit.shape[0] > 0 and 0 <= gi < nrows and 0 <= gj < ncols
    cell = gi * ncols + gj
    if memo:
        v = hit[cell]
        if v >= 0:
            return v if v < n_search else -1
        start = -1 - v
    for s in range(start, n_search):
        ii = gi + spiral[s, 0]
        jj = gj + spiral[s, 1]
        if 0 <= ii < nrows and 0 <= jj < ncols and roads[ii, jj] != 0:
            if memo:
                hit[cell] = s
            return s
    if memo and n_search > start:
        hit[cell] = -1 - n_search
    return -1


@njit(cache=True, nogil=True, _nrt=False)
def _grow_year(
    z, fr, delta, dflat, slope, excluded, roads, road_nb, hit, spiral, swght, coeff, key, ctr, growth, counts, rules
):
    """One year of SLEUTH growth into ``delta`` (``z`` is read only).

    ``fr`` flags, in raster order (flat, length a multiple of 8), the interior urban cells
    of ``z`` with 2 to 7 urban 8-neighbours, the only cells edge growth can start from (see
    :func:`_frontier_flags`). ``delta`` must be all zero on entry; it is the ``(rows,
    cols)`` view of the flat buffer ``dflat`` (length a multiple of 8, padding zero).
    ``road_nb`` holds the road neighbours of ``roads`` (:func:`_road_neighbours`), ``hit``
    what is known of each cell's road search (:func:`_first_road`; may be empty). The
    grown cells are listed in ``ctr[2 : 2 + ctr[1]]`` (``ctr[0]`` numbers the draws). ``counts`` receives
    (sng, sdc, og, rt). ``growth`` is a scratch int64 array of at least ``2 * rows * cols``
    entries. ``rules`` switches phases on (bit 0 spontaneous + spreading centres, bit 1
    edge growth, bit 2 road-influenced growth).
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
    # The flags are scanned eight at a time, skipping blocks without any, in raster order.
    if rules & 2:
        words = fr.view(np.uint64)
        row = 0
        row_start = 0
        for w in range(words.shape[0]):
            if words[w] == 0:
                continue
            for idx in range(8 * w, 8 * w + 8):
                if fr[idx] != 0:
                    while idx >= row_start + ncols:  # rows advance with idx: no division
                        row += 1
                        row_start += ncols
                    col = idx - row_start
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
        # The grown cells are read off ``delta`` in raster order, eight at a time.
        n_growth = 0
        dwords = dflat.view(np.uint64)
        for w in range(dwords.shape[0]):
            if dwords[w] == 0:
                continue
            for idx in range(8 * w, 8 * w + 8):
                if dflat[idx] != 0:
                    r = idx // ncols
                    growth[n_growth] = r
                    growth[nrows + n_growth] = idx - r * ncols
                    n_growth += 1
        if n_growth > 0:
            for _k in range(1 + int(breed)):
                rg = int((road_gravity / 100.0) * ((nrows + ncols) / 16.0))
                max_search = max(4 * (rg * (1 + rg)), nrows, ncols)
                g = int(n_growth * _draw(key, ctr))
                gi = growth[g]
                gj = growth[nrows + g]
                n_search = min(max_search, spiral.shape[0])
                s_hit = _first_road(gi, gj, n_search, roads, spiral, hit)
                if s_hit >= 0:
                    ri = gi + spiral[s_hit, 0]
                    rj = gj + spiral[s_hit, 1]
                    spread_ok, ei, ej = _road_walk(ri, rj, roads, road_nb, diffusion, key, ctr)
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


@njit(cache=True, nogil=True, _nrt=False)
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


@njit(cache=True, nogil=True, _nrt=False)
def _simulate_run(
    seed_urban, slope, excluded, roads, road_nb, road_of_year, road_count, spiral, coeff0, consts, seed, mc,
    first_year, record_slot, control_grids, control_of_year, track, obs_count, hist, excl_count, rules, stats,
    z, delta, dflat, nb, nb4, fr, parent, growth, ctr, counts, acc, inter, lut, coeff, queue, visited, full, hit,
):  # fmt: skip
    """Simulate one Monte Carlo run over all years; fill ``stats`` (records) and ``hist``.

    ``hist[0]`` counts the seed's urban cells, ``hist[1 + y]`` the cells grown in year ``y``
    (``hist`` of zero rows: not counted). The arguments from ``z`` on are work buffers
    (reset here), so a chunk of runs allocates them once.
    """
    nrows, ncols = seed_urban.shape
    n_years = road_of_year.shape[0]
    z[:, :] = 0
    dflat[:] = 0
    nb[:, :] = 0
    nb4[:, :] = 0
    fr[:] = 0
    acc[:] = 0
    inter[:, :] = 0
    for k in range(5):
        coeff[k] = coeff0[k]
    count_cells = hist.shape[0] > 0
    for i in range(nrows):
        for j in range(ncols):
            if seed_urban[i, j] != 0:
                _add_cell(i, j, SEED, z, nb, nb4, fr, parent, acc, slope, control_grids, track, inter, full)
                if count_cells:
                    hist[0, i * ncols + j] += 1
    total_pixels = nrows * ncols
    lut_slope = -1.0
    for y in range(n_years):
        year = first_year + y
        key = stream_key_kernel(np.int64(seed), np.int64(mc), np.int64(year), np.int64(0), np.int64(PURPOSE))
        ctr[0] = 0
        if y == 0 or coeff[C_SLOPE] != lut_slope:
            _slope_weights_into(lut, coeff[C_SLOPE], consts[K_CRIT_SLOPE])
            lut_slope = coeff[C_SLOPE]
        ry = road_of_year[y]
        _grow_year(
            z, fr, delta, dflat, slope, excluded, roads[ry], road_nb[ry], hit[ry], spiral, lut, coeff, key, ctr, growth,
            counts, rules,
        )  # fmt: skip
        grw_pix = 0
        for k in range(ctr[1]):
            cell = ctr[2 + k]
            i = cell // ncols
            j = cell - i * ncols
            if excluded[i, j] < 100 and z[i, j] == 0:
                _add_cell(i, j, delta[i, j], z, nb, nb4, fr, parent, acc, slope, control_grids, track, inter, full)
                grw_pix += 1
                if count_cells:
                    hist[1 + y, cell] += 1
            delta[i, j] = 0
        pop = acc[A_AREA]
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
            if full:
                _record_pattern(out, acc)
            else:
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
            if ci >= 0 and full:
                union = obs_count[ci] + inter[ci, 1]
                out[S_LEESALEE] = inter[ci, 0] / union if union > 0 else 0.0
            elif ci >= 0:
                out[S_LEESALEE] = _leesalee(z, control_grids[ci])
            else:
                out[S_LEESALEE] = 0.0
            out[S_GRWPIX] = grw_pix
        _self_modify(coeff, growth_rate, percent_urban, consts)


@njit(cache=True, nogil=True)
def _batch_setup(roads, road_of_year, record_slot, control_grids, control_of_year, n_chunks, n_cells):
    """What every chunk of a batch shares: road neighbours, tracked control grids and their sizes.

    Returns ``(road_nb, track, obs_count, full, memo_roads)``: ``full`` when the pattern
    statistics are kept cell by cell (more than :data:`FULL_STATS_YEARS` recorded years),
    ``memo_roads`` when road searches are remembered (memory allowing).
    """
    road_nb = _road_neighbours(roads)
    n_grids, nrows, ncols = control_grids.shape
    n_years = road_of_year.shape[0]
    track = np.zeros(n_grids, dtype=np.bool_)
    for y in range(n_years):
        if control_of_year[y] >= 0:
            track[control_of_year[y]] = True
    obs_count = np.zeros(n_grids, dtype=np.int64)
    for g in range(n_grids):
        if track[g]:
            for i in range(nrows):
                for j in range(ncols):
                    if control_grids[g, i, j] != 0:
                        obs_count[g] += 1
    n_rec_years = 0
    for y in range(n_years):
        if record_slot[y] >= 0:
            n_rec_years += 1
    full = n_rec_years > FULL_STATS_YEARS
    memo_roads = n_chunks * roads.shape[0] * n_cells * 4 <= ROAD_MEMO_BYTES
    return road_nb, track, obs_count, full, memo_roads


@njit(cache=True, nogil=True)
def _run_chunk(
    ch, seed_urban, slope, excluded, roads, road_nb, road_of_year, road_count, spiral, coeffs, consts, seed, n_runs,
    first_year, record_slot, control_grids, control_of_year, track, obs_count, n_chunks, excl_count, rules, full,
    memo_roads, stats, hist,
):  # fmt: skip
    """Simulate the work items of chunk ``ch`` (items ``ch, ch + n_chunks, ...``) in order.

    Fills ``stats[set, run]`` of its items and ``hist`` (this chunk's cell counts, zero
    rows when no probability years are asked). Work buffers are allocated once per chunk.
    """
    n_sets = coeffs.shape[0]
    nrows, ncols = seed_urban.shape
    n = nrows * ncols
    n_tasks = n_sets * n_runs
    n_pad = ((n + 7) // 8) * 8
    n_grids = control_grids.shape[0]
    z = np.zeros((nrows, ncols), dtype=np.uint8)
    dflat = np.zeros(n_pad, dtype=np.uint8)
    delta = dflat[:n].reshape((nrows, ncols))
    nb = np.zeros((nrows, ncols), dtype=np.uint8)
    nb4 = np.zeros((nrows, ncols), dtype=np.uint8)
    fr = np.zeros(n_pad, dtype=np.uint8)
    parent = np.empty(n, dtype=np.int64)
    growth = np.empty(2 * n + 2, dtype=np.int64)
    ctr = np.zeros(2 + n, dtype=np.int64)
    counts = np.zeros(4, dtype=np.int64)
    acc = np.zeros(N_ACC, dtype=np.int64)
    inter = np.zeros((n_grids, 2), dtype=np.int64)
    lut = np.ones(256, dtype=np.float64)
    coeff = np.zeros(5, dtype=np.float64)
    # road searches remembered over the chunk's runs (-1: not searched), if memory allows
    hit = np.full((roads.shape[0], n if memo_roads else 0), -1, dtype=np.int32)
    queue = np.empty(n if not full else 0, dtype=np.int64)
    visited = np.zeros((nrows, ncols) if not full else (0, 0), dtype=np.uint8)
    for k in range((n_tasks - ch + n_chunks - 1) // n_chunks):
        t = ch + k * n_chunks
        s = t // n_runs
        mc = t - s * n_runs
        _simulate_run(
            seed_urban, slope, excluded, roads, road_nb, road_of_year, road_count, spiral, coeffs[s], consts, seed,
            mc, first_year, record_slot, control_grids, control_of_year, track, obs_count, hist, excl_count,
            rules, stats[s, mc], z, delta, dflat, nb, nb4, fr, parent, growth, ctr, counts, acc, inter, lut, coeff,
            queue, visited, full, hit,
        )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True)
def _simulate_batch(
    seed_urban, slope, excluded, roads, road_of_year, road_count, spiral, coeffs, consts, seed, n_runs, first_year,
    record_slot, n_record, control_grids, control_of_year, prob_slot, n_prob, n_chunks, excl_count, rules,
):  # fmt: skip
    """Simulate ``n_runs`` Monte Carlo runs for every coefficient set, in parallel.

    Work items (coefficient set, run) are dealt round-robin to ``n_chunks`` fixed chunks
    (not one per thread; chunk ``c`` takes items ``c, c + n_chunks, ...`` so that cheap and
    dear coefficient sets mix), so results do not depend on the thread count. Returns the
    statistics ``(sets, runs, n_record, N_STATS)`` and the number of runs (over all sets) in
    which each cell is urban in each probability year, ``(n_prob, rows, cols)`` int64.
    """
    n_sets = coeffs.shape[0]
    nrows, ncols = seed_urban.shape
    n = nrows * ncols
    n_years = road_of_year.shape[0]
    stats = np.zeros((n_sets, n_runs, n_record, N_STATS), dtype=np.float64)
    hist_rows = n_years + 1 if n_prob > 0 else 0
    hist = np.zeros((n_chunks, hist_rows, n if n_prob > 0 else 0), dtype=np.uint16)
    road_nb, track, obs_count, full, memo_roads = _batch_setup(
        roads, road_of_year, record_slot, control_grids, control_of_year, n_chunks, n
    )
    for ch in prange(n_chunks):
        _run_chunk(
            ch, seed_urban, slope, excluded, roads, road_nb, road_of_year, road_count, spiral, coeffs, consts, seed,
            n_runs, first_year, record_slot, control_grids, control_of_year, track, obs_count, n_chunks, excl_count,
            rules, full, memo_roads, stats, hist[ch],
        )  # fmt: skip
    prob = np.zeros((n_prob, n), dtype=np.int64)
    if n_prob > 0:
        for c in prange(n):
            running = 0
            for k in range(hist_rows):
                for ch in range(n_chunks):
                    running += hist[ch, k, c]
                if k >= 1 and prob_slot[k - 1] >= 0:
                    prob[prob_slot[k - 1], c] = running
    return stats, prob.reshape((n_prob, nrows, ncols))
