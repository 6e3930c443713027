"""Layouts shared by the SLEUTH kernels and their drivers, importable without numba.

Columns of a statistics record (SLEUTH's ``avg.log`` order) and the orders of the
coefficient and self-modification arrays. :mod:`landuse.sleuth.kernels` compiles
against these names; :mod:`landuse.sleuth.model` reads records with them.
"""

from __future__ import annotations

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

# Keep the pattern statistics up to date cell by cell (instead of recomputing them from
# the grid in recorded years) when more years than this are recorded per run.
FULL_STATS_YEARS = 8
# Memory allowed for remembering road searches (int32 per cell, road grid and chunk).
ROAD_MEMO_BYTES = 256 * 1024 * 1024
