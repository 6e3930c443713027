"""The merged model: the LP with its pieces merged per city, source role, station band and allowed types.

:func:`_aggregate` forms it (once per model): it has the same feasibility and the same least elastic violation
as the whole model in a few thousand columns, so it settles and explains infeasible periods quickly
(:mod:`landuse.allocation.working_set`, :mod:`landuse.allocation.infeasible`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import sparse

from landuse.allocation.model import AllocationModel, _csr_from_rows
from landuse.allocation.pieces import _INF, ALL_SOURCE_ROLES


def _aggregate(m: AllocationModel) -> AllocationModel | None:
    """The model with its pieces merged into one per city, source role, station band and allowed types.

    Every policy row sees a column only through its city, type, role and station band (the hectares of a
    demand, farmland, open-space, TOD, jobs-housing, export or growth-limit row), so pieces that agree on
    those and on the types they may take are interchangeable but for their cost: the merged model (one
    capacity, the sum of theirs) reaches exactly the policy-row activities the whole model reaches (split a
    merged amount among its pieces in proportion to their capacity). It has the same feasibility and the
    same least elastic violation, in a few thousand columns instead of millions; its cost is 0, so it
    serves feasibility and the elastic explanation only. ``None`` when a policy row gives two merged
    columns different coefficients (a row kind that looks at the zone): the caller then uses ``m``. Kept
    on ``m`` once formed (an infeasible period asks twice: to settle and to explain).
    """
    if "_merged" not in m.__dict__:
        m.__dict__["_merged"] = _merge_pieces(m)
    return m.__dict__["_merged"]


def _merge_pieces(m: AllocationModel) -> AllocationModel | None:
    n_pol = len(m.rows)
    nt = len(m.types)
    n_p = m.piece_cap.size
    if m.n_cols == 0 or n_p == 0:
        return None
    pattern = np.zeros(n_p, dtype=np.int64)
    np.bitwise_or.at(pattern, m.col_piece, np.left_shift(np.int64(1), m.col_type))
    _, city_rank = np.unique(m.piece_city, return_inverse=True)
    key = ((city_rank.ravel().astype(np.int64) * len(ALL_SOURCE_ROLES) + m.piece_role) * 2
           + m.piece_near.astype(np.int64)) << nt | pattern
    gk, g_of_piece = np.unique(key, return_inverse=True)
    g_of_piece = g_of_piece.ravel()
    n_g = gk.size
    g_cap = np.bincount(g_of_piece, weights=m.piece_cap, minlength=n_g)
    # merged columns (group, type), numbered in that order without a sort
    ckey = g_of_piece[m.col_piece] * nt + m.col_type
    present = np.zeros(n_g * nt, dtype=bool)
    present[ckey] = True
    new_keys = np.flatnonzero(present)
    new_of_col = (np.cumsum(present) - 1)[ckey]
    n_new = new_keys.size
    col_piece = (new_keys // nt).astype(np.int64)
    col_type = (new_keys % nt).astype(np.int64)
    # policy coefficients of the merged columns: sums, counts and sums of squares through one 0/1 matrix;
    # every entry summed must be the same (count * sum of squares = sum squared)
    P = sparse.csr_matrix((np.ones(m.n_cols), (np.arange(m.n_cols), new_of_col)), shape=(m.n_cols, n_new))
    pol = m.A[:n_pol]
    ones = pol.copy()
    ones.data = np.ones_like(ones.data)
    # (the counts give the pattern: a product drops the entries that sum to 0, an explicit 0 is kept)
    C, S, Q = (ones @ P).tocoo(), (pol @ P).tocsr(), (pol.multiply(pol) @ P).tocsr()
    tot = np.asarray(S[C.row, C.col]).ravel()
    sq = np.asarray(Q[C.row, C.col]).ravel()
    if C.nnz and not np.allclose(C.data * sq, tot ** 2, rtol=1e-9, atol=1e-12):
        return None
    p_rows, p_cols, p_vals = C.row.astype(np.int64), C.col.astype(np.int64), tot / C.data
    multi = np.flatnonzero(np.bincount(col_piece, minlength=n_g) > 1)
    cap_row = np.full(n_g, -1, dtype=np.int64)
    cap_row[multi] = n_pol + np.arange(multi.size)
    cc = np.flatnonzero(cap_row[col_piece] >= 0)
    A = _csr_from_rows(np.concatenate([p_rows, cap_row[col_piece[cc]]]), np.concatenate([p_cols, cc]),
                       np.concatenate([p_vals, np.ones(cc.size)]), (n_pol + multi.size, n_new))
    first_piece = np.zeros(n_g, dtype=np.int64)
    first_piece[g_of_piece[::-1]] = np.arange(n_p)[::-1]
    return dataclasses.replace(
        m, cost=np.zeros(n_new), col_ub=g_cap[col_piece], col_piece=col_piece, col_type=col_type,
        piece_zone=m.piece_zone[first_piece], piece_role=m.piece_role[first_piece],
        piece_near=m.piece_near[first_piece],
        piece_cap=g_cap, A=A, row_lo=np.concatenate([m.row_lo[:n_pol], np.full(multi.size, -_INF)]),
        row_hi=np.concatenate([m.row_hi[:n_pol], g_cap[multi]]), cost_terms={}, warnings=list(m.warnings),
        cap_piece=multi.astype(np.int64), piece_city=m.piece_city[first_piece], piece_unit=m.piece_unit[first_piece],
        piece_band=m.piece_band[first_piece],
    )
