"""Numba kernels of :mod:`landuse.evaluation.metrics`, and the one-pass kernels of the allocation zones and zone table.

The metrics kernels take plain arrays in and give plain arrays out. The allocation kernels: zone numbering
(:func:`number_zone_keys`), developable cells (:func:`cell_source_band`), per-zone counts
(:func:`code_presence`, :func:`add_class_counts`, :func:`piece_counts`), per-zone sums
(:func:`masked_zone_sums`, :func:`dev_zone_sums`) and the growth units of cells (:func:`unit_of_cells`). Each replaces whole-raster int64 and bool
temporaries by one compiled pass and gives exactly what the numpy expression in its docstring gives.

Nothing here knows xarray, rasterio or the config; :mod:`landuse.evaluation.metrics` and
:mod:`landuse.allocation.pieces`, :mod:`~landuse.allocation.zone_stats` and :mod:`~landuse.allocation.handoff`
prepare the arrays and wrap the results.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _lei_buffer_counts(
    labels: np.ndarray,
    old: np.ndarray,
    study: np.ndarray,
    cell_rows: np.ndarray,
    cell_cols: np.ndarray,
    starts: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Buffer cells and old-urban buffer cells of every new-urban patch.

    Parameters
    ----------
    labels : int32 array (rows, cols)
        Patch labels ``1..P`` of new urban land, 0 elsewhere.
    old : bool array (rows, cols)
        Urban land at the start of the period.
    study : bool array (rows, cols)
        Study area; buffer cells outside it are not counted.
    cell_rows, cell_cols : int64 arrays
        Row and column of every labelled cell, grouped by label (label 1 first).
    starts : int64 array (P + 1)
        Cells of patch ``k + 1`` are ``cell_rows[starts[k]:starts[k + 1]]``.
    dy, dx : int64 arrays
        Offsets of the buffer footprint (a disk without its centre).

    Returns
    -------
    buffer_cells, old_cells : int64 arrays (P)
        For each patch, the number of distinct study-area cells within the buffer
        distance that are not in the patch itself, and how many of them are old urban.
    """
    rows, cols = labels.shape
    n_patch = starts.size - 1
    # which patch last counted a cell: uint16 (two bytes a cell), cleared each time the
    # stamps wrap, so a stamp always names a patch of the current round of 65 535
    stamp = np.zeros((rows, cols), dtype=np.uint16)
    buffer_cells = np.zeros(n_patch, dtype=np.int64)
    old_cells = np.zeros(n_patch, dtype=np.int64)
    for k in range(n_patch):
        pid = k + 1
        mark = k % 65535 + 1
        if mark == 1 and k > 0:
            stamp[:, :] = 0
        for s in range(starts[k], starts[k + 1]):
            r = cell_rows[s]
            c = cell_cols[s]
            for o in range(dy.size):
                rr = r + dy[o]
                cc = c + dx[o]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if labels[rr, cc] == pid or stamp[rr, cc] == mark or not study[rr, cc]:
                    continue
                stamp[rr, cc] = mark
                buffer_cells[k] += 1
                if old[rr, cc]:
                    old_cells[k] += 1
    return buffer_cells, old_cells


@njit(cache=True, nogil=True)
def _within_disk(feature: np.ndarray, half_width: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cells within a disk of some feature cell (exact, on a square grid, in O(rows * cols)).

    Parameters
    ----------
    feature : bool array (rows, cols)
        Feature cells.
    half_width : int64 array (reach + 1)
        ``half_width[g]`` is the largest column offset ``dx`` with ``dx**2 + g**2`` within
        the squared radius, for a row offset ``g``; ``reach`` is the largest row offset.
    g : integer array (rows, cols)
        Work array (overwritten), of a type holding ``reach + 1`` (uint16 for any radius
        under 65 534 cells: two bytes a cell).

    Returns
    -------
    bool array (rows, cols)
        True where a feature cell lies within the disk: ``(y - y')**2 + (x - x')**2 <= r2``.

    Notes
    -----
    Two passes down and up each column give the row distance ``g`` to the nearest feature
    cell of the column (capped at ``reach + 1``); that cell covers the columns
    ``x' - half_width[g] .. x' + half_width[g]`` of the row, and a sweep along the row takes
    the union of these intervals.
    """
    rows, cols = feature.shape
    reach = half_width.size - 1
    cap = reach + 1
    for x in range(cols):
        g[0, x] = 0 if feature[0, x] else cap
    for y in range(1, rows):
        for x in range(cols):
            if feature[y, x]:
                g[y, x] = 0
            else:
                v = g[y - 1, x] + 1
                g[y, x] = v if v < cap else cap
    for y in range(rows - 2, -1, -1):
        for x in range(cols):
            v = g[y + 1, x] + 1
            if v < g[y, x]:
                g[y, x] = v
    out = np.zeros((rows, cols), dtype=np.bool_)
    end_from = np.empty(cols, dtype=np.int64)  # farthest right end of the intervals starting at a column
    for y in range(rows):
        end_from[:] = -1
        for x in range(cols):
            gy = g[y, x]
            if gy <= reach:
                h = half_width[gy]
                s = x - h
                if s < 0:
                    s = 0
                if x + h > end_from[s]:
                    end_from[s] = x + h
        cur = -1
        for x in range(cols):
            if end_from[x] > cur:
                cur = end_from[x]
            out[y, x] = x <= cur
    return out


@njit(cache=True, nogil=True)
def _class_counts(
    mask: np.ndarray, study: np.ndarray, labels: np.ndarray, n_labels: int, row0: int = 0, row1: int = -1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Side and adjacency counts of a class, and the area and perimeter of each of its patches, in one pass.

    Parameters
    ----------
    mask : bool array (rows, cols)
        Class cells (inside the study area).
    study : bool array (rows, cols)
        Study area.
    labels : int32 array (rows, cols)
        Patch labels ``1..n_labels`` of the class cells, 0 elsewhere.
    n_labels : int
    row0, row1 : int
        Count the cells of rows ``row0 .. row1 - 1`` only (``row1 = -1``: to the last row);
        the rows around them are read as neighbours, so a strip of rows with one row of
        halo above and below counts exactly its share of the whole raster.

    Returns
    -------
    totals : int64 array (5)
        Class cells ``a``, horizontal like adjacencies, vertical like adjacencies, class
        cell sides facing no study cell (grid edge or outside the study area), and those
        of them that are left or right sides.
    areas, perimeters : int64 arrays (n_labels + 1)
        Cells and sides not shared with another class cell, per label (index 0 unused).
    """
    rows, cols = mask.shape
    totals = np.zeros(5, dtype=np.int64)
    areas = np.zeros(n_labels + 1, dtype=np.int64)
    perims = np.zeros(n_labels + 1, dtype=np.int64)
    stop = rows if row1 < 0 else row1
    for y in range(row0, stop):
        for x in range(cols):
            if not mask[y, x]:
                continue
            like = 0
            st_lr = 0
            st_tb = 0
            if x + 1 < cols:
                if mask[y, x + 1]:
                    like += 1
                    totals[1] += 1
                if study[y, x + 1]:
                    st_lr += 1
            if x > 0:
                if mask[y, x - 1]:
                    like += 1
                if study[y, x - 1]:
                    st_lr += 1
            if y + 1 < rows:
                if mask[y + 1, x]:
                    like += 1
                    totals[2] += 1
                if study[y + 1, x]:
                    st_tb += 1
            if y > 0:
                if mask[y - 1, x]:
                    like += 1
                if study[y - 1, x]:
                    st_tb += 1
            totals[0] += 1
            totals[3] += 4 - st_lr - st_tb
            totals[4] += 2 - st_lr
            lab = labels[y, x]
            areas[lab] += 1
            perims[lab] += 4 - like
    return totals, areas, perims


@njit(cache=True, nogil=True)
def _joint_codes(maps, study: np.ndarray, has_study: bool, nodata: int, lut: np.ndarray, k: int) -> np.ndarray:
    """Codes present and joint class counts of several uint8 maps on their valid cells, without temporaries.

    Parameters
    ----------
    maps : tuple of uint8 arrays (rows, cols), all C-contiguous
    study : bool array (rows, cols)
        Valid cells when ``has_study`` (else ignored; any shape).
    nodata : int
        A cell with this code in any map is not valid.
    lut : int32 array (256)
        Index of each present code (``k`` of them); with ``k = 0`` only the codes present
        are counted.

    Returns
    -------
    int64 array
        With ``k = 0``: cells of each code, summed over the maps (256 entries). Otherwise
        the flat joint histogram ``k ** len(maps)``, the first map varying slowest.
    """
    n = len(maps)
    rows, cols = maps[0].shape
    size = 256 if k == 0 else k**n
    out = np.zeros(size, dtype=np.int64)
    for y in range(rows):
        for x in range(cols):
            if has_study and not study[y, x]:
                continue
            ok = True
            for j in range(n):
                if maps[j][y, x] == nodata:
                    ok = False
                    break
            if not ok:
                continue
            if k == 0:
                for j in range(n):
                    out[maps[j][y, x]] += 1
            else:
                idx = 0
                for j in range(n):
                    idx = idx * k + lut[maps[j][y, x]]
                out[idx] += 1
    return out


@njit(cache=True, nogil=True)
def masked_zone_sums(v: np.ndarray, sel: np.ndarray, zone: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per zone, the float64 sum and the count of the finite ``v`` at the selected cells, in cell order.

    ``zone[j]`` is the zone of the j-th selected cell. One pass, no gathered copy; the sums add in
    cell order in float64, exactly as ``np.bincount(zone, weights=v[sel])`` does.
    """
    s = np.zeros(n + 1, dtype=np.float64)
    c = np.zeros(n + 1, dtype=np.int64)
    j = 0
    for i in range(v.size):
        if sel[i]:
            x = np.float64(v[i])
            if np.isfinite(x):
                s[zone[j]] += x
                c[zone[j]] += 1
            j += 1
    return s, c


@njit(cache=True, nogil=True)
def number_zone_keys(inside: np.ndarray, city: np.ndarray, block_of_col: np.ndarray, block_rows: int, nbx: int,
                     n_city: int, n_keys: int, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the ``(block, city)`` keys present among the ``inside`` cells 1.. in ascending order.

    A cell's key is ``block * n_city + city`` with ``block = (row // block_rows) * nbx +
    block_of_col[col]``, below ``n_keys``. Writes each inside cell's number into ``out`` (0 outside)
    and returns the keys present, ascending, and the cells of each: what
    ``np.unique(key[inside], return_inverse=True, return_counts=True)`` gives (numbers one
    higher), by counting over the key range in two passes instead of int64 rasters and a sort.
    """
    rows, cols = inside.shape
    counts = np.zeros(n_keys, dtype=np.int64)
    for r in range(rows):
        base = (r // block_rows) * nbx
        for c in range(cols):
            if inside[r, c]:
                counts[(base + block_of_col[c]) * n_city + city[r, c]] += 1
    m = 0
    for k in range(n_keys):
        if counts[k] > 0:
            m += 1
    keys = np.empty(m, dtype=np.int64)
    cells = np.empty(m, dtype=np.int64)
    j = 0
    for k in range(n_keys):
        if counts[k] > 0:
            keys[j] = k
            cells[j] = counts[k]
            j += 1
            counts[k] = j  # from here on: the number of key k
    for r in range(rows):
        base = (r // block_rows) * nbx
        for c in range(cols):
            if inside[r, c]:
                out[r, c] = counts[(base + block_of_col[c]) * n_city + city[r, c]]
            else:
                out[r, c] = 0
    return keys, cells


@njit(cache=True, nogil=True)
def cell_source_band(lu: np.ndarray, zones: np.ndarray, factor: np.ndarray, suit: np.ndarray, allowed: np.ndarray,
                     src_index: np.ndarray, near: np.ndarray, greenbelt: np.ndarray, boundary: np.ndarray,
                     source: np.ndarray, band: np.ndarray) -> None:
    """Developable source index and band bits of every cell, in one pass (all rasters flat, one entry a cell).

    ``source[i]`` is ``src_index[lu[i]]`` where that is >= 0, ``zones[i] > 0``, ``factor[i] > 0`` and some
    type ``k`` has ``allowed[k, lu[i]]`` and ``suit[k, i] > 0``; -1 elsewhere. ``band[i]`` is
    ``1 * near[i] | 2 * greenbelt[i] | 4 * (not boundary[i])``, each term only when that array is not
    empty (an absent layer is passed as an empty array).
    """
    n_types = allowed.shape[0]
    has_near = near.size > 0
    has_gb = greenbelt.size > 0
    has_ugb = boundary.size > 0
    for i in range(lu.size):
        code = lu[i]
        s = src_index[code]
        if s >= 0 and zones[i] > 0 and factor[i] > 0:
            positive = False
            for k in range(n_types):
                if allowed[k, code] and suit[k, i] > 0:
                    positive = True
                    break
            if not positive:
                s = -1
        else:
            s = -1
        source[i] = s
        b = 0
        if has_near and near[i]:
            b |= 1
        if has_gb and greenbelt[i]:
            b |= 2
        if has_ugb and not boundary[i]:
            b |= 4
        band[i] = b


@njit(cache=True, nogil=True)
def code_presence(lu: np.ndarray) -> np.ndarray:
    """Cells of each uint8 code (int64, 256 entries): ``np.bincount(lu, minlength=256)`` without an intp copy."""
    out = np.zeros(256, dtype=np.int64)
    for i in range(lu.size):
        out[lu[i]] += 1
    return out


@njit(cache=True, nogil=True)
def add_class_counts(tab: np.ndarray, zones: np.ndarray, lu: np.ndarray, study: np.ndarray,
                     compact: np.ndarray, n_codes: int) -> None:
    """Add to ``tab`` (flat int64) one count per cell at ``zone * 2 n_codes + compact[code] * 2 + study``."""
    stride = 2 * n_codes
    for i in range(zones.size):
        tab[zones[i] * stride + compact[lu[i]] * 2 + (1 if study[i] else 0)] += 1


@njit(cache=True, nogil=True)
def piece_counts(zones: np.ndarray, source: np.ndarray, band: np.ndarray, n: int, n_sources: int,
                 n_bands: int) -> np.ndarray:
    """Developable cells (``source >= 0``) per zone 0..n, source and band: int64 ``(n + 1, n_sources, n_bands)``.

    ``np.bincount(((zones * n_sources + source) * n_bands + band)[source >= 0], minlength=...)`` reshaped.
    """
    counts = np.zeros((n + 1) * n_sources * n_bands, dtype=np.int64)
    for i in range(zones.size):
        s = source[i]
        if s >= 0:
            counts[(zones[i] * n_sources + s) * n_bands + band[i]] += 1
    return counts.reshape(n + 1, n_sources, n_bands)


@njit(cache=True, nogil=True)
def unit_of_cells(zones: np.ndarray, source: np.ndarray, band: np.ndarray, group_of_source: np.ndarray,
                  n_groups: int, n_bands: int, lut: np.ndarray, out: np.ndarray) -> None:
    """Write each cell's unit ``lut[(zone * n_groups + group) * n_bands + band]`` into ``out`` (0 where no group).

    ``group = group_of_source[source]`` (``source`` -1 reads the last entry, which is -1, as numpy
    indexing does); all arrays flat, one entry a cell.
    """
    for i in range(zones.size):
        g = group_of_source[source[i]]
        if g >= 0:
            out[i] = lut[(zones[i] * n_groups + g) * n_bands + band[i]]
        else:
            out[i] = 0


@njit(cache=True, nogil=True)
def dev_zone_sums(v: np.ndarray, zones: np.ndarray, source: np.ndarray, whole_zone: np.ndarray,
                  n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per layer and zone 0..n, the float64 sum and the count of the finite ``v`` at the cells that count.

    ``v`` is ``(layers, cells)``; the results are ``(layers, n + 1)``. A cell counts when it is
    developable (``source >= 0``) or its zone is read whole (``whole_zone[zone]``). The sums add
    in cell order in float64, per layer, as ``np.bincount(zones[m], weights=v[l][m])`` does with
    ``m`` the cells that count where ``v[l]`` is finite.
    """
    n_layers = v.shape[0]
    s = np.zeros((n_layers, n + 1), dtype=np.float64)
    c = np.zeros((n_layers, n + 1), dtype=np.int64)
    for i in range(v.shape[1]):
        z = zones[i]
        if source[i] >= 0 or whole_zone[z]:
            for k in range(n_layers):
                x = np.float64(v[k, i])
                if np.isfinite(x):
                    s[k, z] += x
                    c[k, z] += 1
    return s, c


QUOTA_WATER, QUOTA_URBAN, QUOTA_FARMLAND, QUOTA_OPEN, QUOTA_NOT_PROTECTABLE = 1, 2, 4, 8, 16
"""Bits of a class code's entry in the lookup table of :func:`quota_counts`."""


@njit(cache=True, nogil=True)
def quota_counts(before: np.ndarray, after: np.ndarray, study: np.ndarray, protected: np.ndarray,
                 has_protected: bool, cities: np.ndarray, has_cities: bool, lut: np.ndarray, include_water: bool,
                 present: np.ndarray, counts: np.ndarray) -> None:
    """Add one strip's cells of the quota table per city: ``present[city] += cells`` and ``counts[city, k] += cells``.

    ``k`` runs over the bits of (land, open space, open space before, farmland before, farmland after, farmland lost,
    new urban).

    A cell's city is its ``cities`` id inside the study area when positive, else 0. ``lut[code]`` holds the
    class's bits (:data:`QUOTA_WATER` ...; :data:`QUOTA_OPEN`: the roles counted as open space, water among them
    when ``include_water``; :data:`QUOTA_NOT_PROTECTABLE`: the roles a ``protected`` cell does not count as open
    space with). The masks of :func:`landuse.surfaces.constraints.land_area_mask` and
    :func:`landuse.surfaces.constraints.open_space_mask` cell by cell, in one pass; ``present`` and ``counts`` have a row
    for every id of the strip.
    """
    h, w = before.shape
    for r in range(h):
        for c in range(w):
            inside = study[r, c]
            city = 0
            if has_cities and inside:
                v = cities[r, c]
                if v > 0:
                    city = v
            present[city] += 1
            if not inside:
                continue
            lb = lut[before[r, c]]
            la = lut[after[r, c]]
            land_a = include_water or (la & QUOTA_WATER) == 0
            land_b = include_water or (lb & QUOTA_WATER) == 0
            p = has_protected and protected[r, c]
            open_a = (la & QUOTA_OPEN) != 0 or (p and (la & QUOTA_NOT_PROTECTABLE) == 0)
            open_b = (lb & QUOTA_OPEN) != 0 or (p and (lb & QUOTA_NOT_PROTECTABLE) == 0)
            farm_b = (lb & QUOTA_FARMLAND) != 0
            farm_a = (la & QUOTA_FARMLAND) != 0
            if land_a:
                counts[city, 0] += 1
                if open_a:
                    counts[city, 1] += 1
            if land_b and open_b:
                counts[city, 2] += 1
            if farm_b:
                counts[city, 3] += 1
                if not farm_a:
                    counts[city, 5] += 1
            if farm_a:
                counts[city, 4] += 1
            if (la & QUOTA_URBAN) != 0 and (lb & QUOTA_URBAN) == 0:
                counts[city, 6] += 1


@njit(cache=True, nogil=True)
def max_positive_inside(cities: np.ndarray, study: np.ndarray) -> int:
    """The largest positive id of ``cities`` inside the study area (0 when none)."""
    best = 0
    h, w = cities.shape
    for r in range(h):
        for c in range(w):
            if study[r, c]:
                v = cities[r, c]
                if v > best:
                    best = v
    return int(best)
