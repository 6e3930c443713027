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
    rounding = _Rounding(m, x, cell_ha)
    rounding.place_demand()
    rounding.repair()
    return rounding.result(U, cell_ha)


class _Rounding:
    """The working state of :func:`_whole_cells`, in cells.

    Its columns are the model's (unit, type) pairs (every fill tranche of a unit has the same policy
    coefficients): ``Au`` holds the policy rows over them, ``y`` the cells of each column, ``used`` the cells
    of each unit, ``act`` the activity of each policy row; ``lo`` and ``hi`` are the row bounds in cells, a
    demand row's both its whole-cell demand. ``unplaced`` collects demand cells no unit could take.
    """

    def __init__(self, m: AllocationModel, x: np.ndarray, cell_ha: float) -> None:
        n_pol = len(m.rows)
        nt = len(m.types)
        ucol = m.piece_unit[m.col_piece] * nt + m.col_type
        self.agg, col_agg = np.unique(ucol, return_inverse=True)
        na = self.agg.size
        Pm = sparse.csr_matrix((np.ones(m.n_cols), (np.arange(m.n_cols), col_agg)), shape=(m.n_cols, na))
        Au = (_first_rows(m.A, n_pol) @ Pm) / float(m.n_tranches)  # every tranche of a unit has the same coefficients
        self.Au = Au = sparse.csr_matrix(Au)
        self.Ac = Au.tocsc()
        self.xc = (Pm.T @ x) / cell_ha
        self.nt = nt
        self.a_unit = self.agg // nt
        self.ucap = np.rint(m.unit_cap / cell_ha).astype(np.int64)
        self.a_cost = np.full(na, np.inf)
        np.minimum.at(self.a_cost, col_agg, m.cost)
        kinds = m.rows["kind"].to_numpy()
        lo = m.row_lo[:n_pol] / cell_ha
        hi = m.row_hi[:n_pol] / cell_ha
        is_dem = kinds == "demand"
        lo[is_dem] = np.rint(lo[is_dem])
        hi[is_dem] = lo[is_dem]
        self.lo, self.hi, self.is_dem = lo, hi, is_dem
        self.names = m.rows["name"].tolist()

        self.y = np.minimum(np.floor(self.xc + 1e-6).astype(np.int64), self.ucap[self.a_unit])
        self.used = np.bincount(self.a_unit, weights=self.y, minlength=m.unit_cap.size).astype(np.int64)
        self.act = Au @ self.y.astype(np.float64)
        self.pol_rows = ~is_dem
        self.unplaced: dict[str, int] = {}
        self.dem_rows = np.flatnonzero(is_dem)

    def col(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and coefficients of column ``j``."""
        a, b = self.Ac.indptr[j], self.Ac.indptr[j + 1]
        return self.Ac.indices[a:b], self.Ac.data[a:b]

    def delta_ok(self, rows: np.ndarray, vals: np.ndarray, sign: int) -> tuple[bool, float]:
        """May ``sign`` cells of a column be added (no policy row worse)? Returns (ok, violation gain)."""
        act, lo, hi = self.act, self.lo, self.hi
        keep = self.pol_rows[rows]
        r, v = rows[keep], vals[keep] * sign
        if r.size == 0:
            return True, 0.0
        before = _violation(act[r], lo[r], hi[r])
        after = _violation(act[r] + v, lo[r], hi[r])
        return bool(np.all(after <= before + 1e-9)), float(before.sum() - after.sum())

    def add(self, j: int, sign: int = 1) -> None:
        """Add ``sign`` cells to column ``j``."""
        r, v = self.col(j)
        self.y[j] += sign
        self.used[self.a_unit[j]] += sign
        self.act[r] += v * sign

    # ---------------------------------------------------------------- placing the demand

    def place_demand(self) -> None:
        """Each demand row takes its missing cells.

        From the columns the LP had fractions of (largest first, one cell each), then from the cheapest columns with
        room.
        """
        Au, xc, y = self.Au, self.xc, self.y
        for r in self.dem_rows:
            cols = Au.indices[Au.indptr[r]:Au.indptr[r + 1]]
            need = int(self.lo[r] - round(self.act[r]))
            if need <= 0 or cols.size == 0:
                if need > 0:
                    self.unplaced[self.names[r]] = need
                continue
            frac = xc[cols] - y[cols]
            first = cols[frac > 1e-6]
            first = first[np.argsort(-(xc[first] - y[first]), kind="stable")]
            rest = cols[np.argsort(self.a_cost[cols], kind="stable")]
            for cand, repeat in ((first, False), (rest, True)):
                if need <= 0:
                    break
                # two passes: cells that repair a broken row first, then any cell that breaks nothing
                for want_gain in (True, False):
                    if need <= 0:
                        break
                    pol_rows = self.pol_rows
                    if want_gain and not _violation(self.act[pol_rows], self.lo[pol_rows], self.hi[pol_rows]).any():
                        continue
                    need = self._take(cand, need, repeat, want_gain)
            if need > 0:
                self.unplaced[self.names[r]] = need

    def _take(self, cand: np.ndarray, need: int, repeat: bool, want_gain: bool) -> int:
        """Add cells of the columns ``cand`` in order while ``need`` lasts; returns the cells still needed.

        One cell each, or as many as fit when ``repeat``; each only where no policy row gets worse (and, when
        ``want_gain``, some row gets better).
        """
        used, ucap, a_unit = self.used, self.ucap, self.a_unit
        for j in cand:
            while need > 0 and used[a_unit[j]] < ucap[a_unit[j]]:
                ok, gain = self.delta_ok(*self.col(j), 1)
                if not ok or (want_gain and gain <= 0):
                    break
                self.add(j)
                need -= 1
                if not repeat:
                    break
            if need <= 0:
                break
        return need

    # ---------------------------------------------------------------- repairing broken rows

    def try_move(self, j_out: int, j_in: int) -> bool:
        """Move one cell from column ``j_out`` to ``j_in`` when that repairs a row and makes none worse.

        Only between columns of the same demand rows.
        """
        is_dem, a_unit, lo, hi = self.is_dem, self.a_unit, self.lo, self.hi
        r_out, r_in = self.col(j_out), self.col(j_in)
        if not np.array_equal(r_out[0][is_dem[r_out[0]]], r_in[0][is_dem[r_in[0]]]):
            return False
        if self.used[a_unit[j_in]] - (a_unit[j_in] == a_unit[j_out]) >= self.ucap[a_unit[j_in]]:
            return False
        rows = np.union1d(r_out[0], r_in[0])
        rows = rows[self.pol_rows[rows]]
        before = _violation(self.act[rows], lo[rows], hi[rows])
        self.add(j_out, -1)
        self.add(j_in)
        after = _violation(self.act[rows], lo[rows], hi[rows])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            return True
        self.add(j_in, -1)
        self.add(j_out)
        return False

    def row_cols(self, r: int) -> np.ndarray:
        """Columns of row ``r`` (none for -1)."""
        Au = self.Au
        return Au.indices[Au.indptr[r]:Au.indptr[r + 1]] if r >= 0 else np.zeros(0, np.int64)

    def try_drop(self, j: int) -> bool:
        """Leave one planned cell unplaced (demand falls short, reported) when that repairs a row."""
        act, lo, hi = self.act, self.lo, self.hi
        r, v = self.col(j)
        keep = self.pol_rows[r]
        before = _violation(act[r[keep]], lo[r[keep]], hi[r[keep]])
        after = _violation(act[r[keep]] - v[keep], lo[r[keep]], hi[r[keep]])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            self.add(j, -1)
            name = self.names[self.dem_of[j]]
            self.unplaced[name] = self.unplaced.get(name, 0) + 1
            return True
        return False

    def repair(self) -> None:
        """Repair broken policy rows one cell at a time until none is broken, no move helps, or 10 000 moves were made.

        A move is within a demand unit, else a cell left unplaced.
        """
        Au = self.Au
        self.dem_of = np.full(self.agg.size, -1, dtype=np.int64)  # the demand row of each column
        for r in self.dem_rows:
            self.dem_of[Au.indices[Au.indptr[r]:Au.indptr[r + 1]]] = r
        for _ in range(10_000):
            viol = _violation(self.act, self.lo, self.hi)
            viol[self.is_dem] = 0.0
            moved = False
            for i in np.flatnonzero(viol > 0):
                if self._repair_row(i):
                    moved = True
                    break
            if not moved:
                break

    def _repair_row(self, i: int) -> bool:
        """One move that repairs policy row ``i``.

        A cell into the row's better side from elsewhere in its demand unit, or out of its worse side to elsewhere in
        its demand unit; else a cell left unplaced.
        """
        Au, a_cost, y, dem_of = self.Au, self.a_cost, self.y, self.dem_of
        rc = Au.indices[Au.indptr[i]:Au.indptr[i + 1]]
        rv = Au.data[Au.indptr[i]:Au.indptr[i + 1]]
        up = self.act[i] < self.lo[i]  # the row needs more activity
        gain_in = rc[(rv > 0) == up]
        gain_in = gain_in[np.argsort(a_cost[gain_in], kind="stable")][:30]
        gain_out = rc[((rv < 0) == up) & (y[rc] > 0)]
        gain_out = gain_out[np.argsort(-a_cost[gain_out], kind="stable")][:30]
        for jo in gain_out:
            alt = self.row_cols(dem_of[jo])
            alt = alt[np.argsort(a_cost[alt], kind="stable")][:100]
            if any(self.try_move(int(jo), int(ji)) for ji in alt if ji != jo):
                return True
        for ji in gain_in:
            alt = self.row_cols(dem_of[ji])
            alt = alt[y[alt] > 0]
            alt = alt[np.argsort(-a_cost[alt], kind="stable")][:100]
            if any(self.try_move(int(jo), int(ji)) for jo in alt if ji != jo):
                return True
        # policies before demand: leave a cell unplaced
        return any(self.try_drop(int(jo)) for jo in gain_out)

    # ---------------------------------------------------------------- the plan

    def result(self, n_units: int, cell_ha: float) -> WholeCells:
        """The plan; when single-cell moves got stuck, the whole-cell integer programme's instead."""
        lo, is_dem, names, Au = self.lo, self.is_dem, self.names, self.Au
        y, unplaced = self.y, self.unplaced
        viol = _violation(self.act, lo, self.hi)
        if ((viol > 0) & ~is_dem).any():
            # single-cell moves got stuck (several ratio rows binding together): an integer programme over the
            # columns finds whole cells that keep every policy row and place as much demand as possible
            mip = _whole_cells_mip(Au, lo, self.hi, is_dem, self.a_unit, self.ucap, self.a_cost, self.xc)
            if mip is not None:
                y = mip
                act = Au @ y.astype(np.float64)
                viol = _violation(act, lo, self.hi)
                unplaced = {names[r]: round(lo[r] - act[r]) for r in self.dem_rows if lo[r] - act[r] > 0.5}
        broken = {names[i]: float(viol[i] * cell_ha) for i in np.flatnonzero((viol > 0) & ~is_dem)}
        cells = np.zeros((n_units, self.nt), dtype=np.int64)
        cells[self.a_unit, self.agg % self.nt] = y
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
