"""Rounding an LP solution to whole cells per unit and type so that every policy row holds (:func:`_whole_cells`).

Demand rows ask for whole cells; the LP's fractions are rounded down, the missing cells placed one at a time
where no policy row gets worse, rows the rounding broke repaired by single-cell moves and, when those get
stuck, by a small integer programme (:func:`_whole_cells_mip`). What cannot be met is reported in
:class:`WholeCells`, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from landuse.allocation.model import AllocationModel, _first_rows


@dataclass
class WholeCells:
    """The plan in whole cells per unit (zone, source group, band) and urban type.

    ``cells[u, k]`` are the cells unit ``u`` of the model converts to type ``k``; every
    policy row of the LP holds on them (see :func:`_whole_cells`) unless ``broken`` names
    it; ``unplaced`` holds demand cells that no unit could take without breaking a policy.
    """

    cells: np.ndarray  # (units, types) int64
    broken: dict[str, float]
    unplaced: dict[str, int]


def _violation(act: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, np.maximum(act - hi, lo - act) - 1e-9)


def _whole_cells(m: AllocationModel, x: np.ndarray, cell_ha: float) -> WholeCells:
    """Round the LP solution to whole cells per (unit, type) so that every policy row holds.

    Works in cells: the policy rows of the LP are homogeneous in the hectares, so a row
    ``lo <= a.x <= hi`` reads ``lo / cell <= a.y <= hi / cell`` on cells ``y``; a demand row
    asks for exactly ``round(demand / cell)`` cells. Starting from the cells the LP chose,
    rounded down, each demand unit takes its missing cells one at a time: first from the
    units the LP had fractions of (largest fraction first), then from the cheapest units
    with room, in both passes preferring cells that repair a row the rounding broke and
    taking a cell only where no policy row gets worse. Rows still broken (a share that no
    whole number of cells meets, say) are then repaired by moving single cells between two
    units of one demand unit. What cannot be repaired is reported, never hidden.
    """
    n_pol = len(m.rows)
    U = m.unit_cap.size
    nt = len(m.types)
    empty = WholeCells(cells=np.zeros((U, nt), dtype=np.int64), broken={}, unplaced={})
    if m.n_cols == 0 or n_pol == 0:
        return empty
    ucol = m.piece_unit[m.col_piece] * nt + m.col_type
    agg, col_agg = np.unique(ucol, return_inverse=True)
    na = agg.size
    Pm = sparse.csr_matrix((np.ones(m.n_cols), (np.arange(m.n_cols), col_agg)), shape=(m.n_cols, na))
    Au = (_first_rows(m.A, n_pol) @ Pm) / float(m.n_tranches)  # every tranche of a unit has the same coefficients
    Au = sparse.csr_matrix(Au)
    Ac = Au.tocsc()
    xc = (Pm.T @ x) / cell_ha
    a_unit = agg // nt
    ucap = np.rint(m.unit_cap / cell_ha).astype(np.int64)
    a_cost = np.full(na, np.inf)
    np.minimum.at(a_cost, col_agg, m.cost)
    kinds = m.rows["kind"].to_numpy()
    lo = m.row_lo[:n_pol] / cell_ha
    hi = m.row_hi[:n_pol] / cell_ha
    is_dem = kinds == "demand"
    lo[is_dem] = np.rint(lo[is_dem])
    hi[is_dem] = lo[is_dem]
    names = m.rows["name"].tolist()

    y = np.minimum(np.floor(xc + 1e-6).astype(np.int64), ucap[a_unit])
    used = np.bincount(a_unit, weights=y, minlength=U).astype(np.int64)
    act = Au @ y.astype(np.float64)
    pol_rows = ~is_dem

    def col(j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = Ac.indptr[j], Ac.indptr[j + 1]
        return Ac.indices[a:b], Ac.data[a:b]

    def delta_ok(rows: np.ndarray, vals: np.ndarray, sign: int) -> tuple[bool, float]:
        """May ``sign`` cells of a column be added (no policy row worse)? Returns (ok, violation gain)."""
        keep = pol_rows[rows]
        r, v = rows[keep], vals[keep] * sign
        if r.size == 0:
            return True, 0.0
        before = _violation(act[r], lo[r], hi[r])
        after = _violation(act[r] + v, lo[r], hi[r])
        return bool(np.all(after <= before + 1e-9)), float(before.sum() - after.sum())

    def add(j: int, sign: int = 1) -> None:
        r, v = col(j)
        y[j] += sign
        used[a_unit[j]] += sign
        act[r] += v * sign

    unplaced: dict[str, int] = {}
    dem_rows = np.flatnonzero(is_dem)
    for r in dem_rows:
        cols = Au.indices[Au.indptr[r]:Au.indptr[r + 1]]
        need = int(lo[r] - round(act[r]))
        if need <= 0 or cols.size == 0:
            if need > 0:
                unplaced[names[r]] = need
            continue
        frac = xc[cols] - y[cols]
        first = cols[frac > 1e-6]
        first = first[np.argsort(-(xc[first] - y[first]), kind="stable")]
        rest = cols[np.argsort(a_cost[cols], kind="stable")]
        for cand, repeat in ((first, False), (rest, True)):
            if need <= 0:
                break
            # two passes: cells that repair a broken row first, then any cell that breaks nothing
            for want_gain in (True, False):
                if need <= 0:
                    break
                if want_gain and not _violation(act[pol_rows], lo[pol_rows], hi[pol_rows]).any():
                    continue
                for j in cand:
                    while need > 0 and used[a_unit[j]] < ucap[a_unit[j]]:
                        ok, gain = delta_ok(*col(j), 1)
                        if not ok or (want_gain and gain <= 0):
                            break
                        add(j)
                        need -= 1
                        if not repeat:
                            break
                    if need <= 0:
                        break
        if need > 0:
            unplaced[names[r]] = need

    # repair: move one cell at a time between two columns of one demand row
    def try_move(j_out: int, j_in: int) -> bool:
        r_out, r_in = col(j_out), col(j_in)
        if not np.array_equal(r_out[0][is_dem[r_out[0]]], r_in[0][is_dem[r_in[0]]]):
            return False
        if used[a_unit[j_in]] - (a_unit[j_in] == a_unit[j_out]) >= ucap[a_unit[j_in]]:
            return False
        rows = np.union1d(r_out[0], r_in[0])
        rows = rows[pol_rows[rows]]
        before = _violation(act[rows], lo[rows], hi[rows])
        add(j_out, -1)
        add(j_in)
        after = _violation(act[rows], lo[rows], hi[rows])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            return True
        add(j_in, -1)
        add(j_out)
        return False

    dem_of = np.full(na, -1, dtype=np.int64)  # the demand row of each column
    for r in dem_rows:
        dem_of[Au.indices[Au.indptr[r]:Au.indptr[r + 1]]] = r

    def row_cols(r: int) -> np.ndarray:
        return Au.indices[Au.indptr[r]:Au.indptr[r + 1]] if r >= 0 else np.zeros(0, np.int64)

    def try_drop(j: int) -> bool:
        """Leave one planned cell unplaced (demand falls short, reported) when that repairs a row."""
        r, v = col(j)
        keep = pol_rows[r]
        before = _violation(act[r[keep]], lo[r[keep]], hi[r[keep]])
        after = _violation(act[r[keep]] - v[keep], lo[r[keep]], hi[r[keep]])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            add(j, -1)
            unplaced[names[dem_of[j]]] = unplaced.get(names[dem_of[j]], 0) + 1
            return True
        return False

    for _ in range(10_000):
        viol = _violation(act, lo, hi)
        viol[is_dem] = 0.0
        moved = False
        for i in np.flatnonzero(viol > 0):
            rc = Au.indices[Au.indptr[i]:Au.indptr[i + 1]]
            rv = Au.data[Au.indptr[i]:Au.indptr[i + 1]]
            up = act[i] < lo[i]  # the row needs more activity
            gain_in = rc[(rv > 0) == up]
            gain_in = gain_in[np.argsort(a_cost[gain_in], kind="stable")][:30]
            gain_out = rc[((rv < 0) == up) & (y[rc] > 0)]
            gain_out = gain_out[np.argsort(-a_cost[gain_out], kind="stable")][:30]
            # a cell moves into the row's better side from elsewhere in its demand unit, or out of its
            # worse side to elsewhere in its demand unit
            for jo in gain_out:
                alt = row_cols(dem_of[jo])
                alt = alt[np.argsort(a_cost[alt], kind="stable")][:100]
                if any(try_move(int(jo), int(ji)) for ji in alt if ji != jo):
                    moved = True
                    break
            if not moved:
                for ji in gain_in:
                    alt = row_cols(dem_of[ji])
                    alt = alt[y[alt] > 0]
                    alt = alt[np.argsort(-a_cost[alt], kind="stable")][:100]
                    if any(try_move(int(jo), int(ji)) for jo in alt if ji != jo):
                        moved = True
                        break
            if not moved:  # policies before demand: leave a cell unplaced
                moved = any(try_drop(int(jo)) for jo in gain_out)
            if moved:
                break
        if not moved:
            break
    viol = _violation(act, lo, hi)
    if ((viol > 0) & ~is_dem).any():
        # single-cell moves got stuck (several ratio rows binding together): an integer programme over the
        # columns finds whole cells that keep every policy row and place as much demand as possible
        mip = _whole_cells_mip(Au, lo, hi, is_dem, a_unit, ucap, a_cost, xc)
        if mip is not None:
            y = mip
            act = Au @ y.astype(np.float64)
            viol = _violation(act, lo, hi)
            unplaced = {names[r]: round(lo[r] - act[r]) for r in dem_rows if lo[r] - act[r] > 0.5}
    broken = {names[i]: float(viol[i] * cell_ha) for i in np.flatnonzero((viol > 0) & ~is_dem)}
    cells = np.zeros((U, nt), dtype=np.int64)
    cells[a_unit, agg % nt] = y
    return WholeCells(cells=cells, broken=broken, unplaced=unplaced)


def _whole_cells_mip(Au: sparse.csr_matrix, lo: np.ndarray, hi: np.ndarray, is_dem: np.ndarray, a_unit: np.ndarray,
                     ucap: np.ndarray, a_cost: np.ndarray, xc: np.ndarray, *,
                     max_columns: int = 20_000, time_limit: float = 60.0) -> np.ndarray | None:
    """Whole cells per column keeping every policy row, most demand placed, then cheapest (HiGHS MIP).

    Demand rows become ``<= demand``, and each unplaced cell costs more than any placement, so the
    programme places all it can. Every policy row has ``y = 0`` as a solution, so the programme is
    always feasible. On large models only the columns the LP used and, per demand row, its 200
    cheapest columns enter. Returns None when HiGHS finds no solution within ``time_limit``.
    """
    import highspy

    na = xc.size
    keep = np.zeros(na, dtype=bool)
    if na <= max_columns:
        keep[:] = True
    else:
        keep |= xc > 1e-9
        for r in np.flatnonzero(is_dem):
            cols = Au.indices[Au.indptr[r]:Au.indptr[r + 1]]
            keep[cols[np.argsort(a_cost[cols], kind="stable")][:200]] = True
    cols = np.flatnonzero(keep)
    # unit capacity rows: the columns of one unit share its cells
    units, inv = np.unique(a_unit[cols], return_inverse=True)
    cap = sparse.csr_matrix((np.ones(cols.size), (inv, np.arange(cols.size))), shape=(units.size, cols.size))
    A = sparse.vstack([Au[:, cols], cap], format="csc")
    row_lo = np.concatenate([np.where(is_dem, -np.inf, lo), np.full(units.size, -np.inf)])
    row_hi = np.concatenate([hi, ucap[units].astype(np.float64)])
    cost = a_cost[cols]
    span = float(np.abs(cost).max(initial=0.0)) if cost.size else 0.0
    penalty = 10.0 * (span + 1.0) * max(1.0, float(np.abs(xc).sum()))  # one unplaced cell outweighs every cost
    dem_weight = np.asarray(Au[np.flatnonzero(is_dem)][:, cols].sum(axis=0)).ravel()
    obj = cost - penalty * dem_weight
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 1e-6)
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = cols.size, A.shape[0]
    lp.col_cost_ = obj
    lp.col_lower_ = np.zeros(cols.size)
    lp.col_upper_ = ucap[a_unit[cols]].astype(np.float64)
    lp.row_lower_ = np.where(np.isinf(row_lo), -inf, row_lo)
    lp.row_upper_ = np.where(np.isinf(row_hi), inf, row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = cols.size, A.shape[0]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * cols.size
    h.passModel(lp)
    h.run()
    if h.getInfo().primal_solution_status != 2:  # no feasible solution found
        return None
    y = np.zeros(na, dtype=np.int64)
    y[cols] = np.rint(np.asarray(h.getSolution().col_value)).astype(np.int64)
    return y
