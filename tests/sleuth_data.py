"""Where the SLEUTH tests find the demo200 data set: a copy committed beside the tests.

``tests/data/sleuth_demo200`` holds SLEUTH 3.0beta_p01's demonstration inputs (200 x 200 GIFs), its scenario
files and the reference outputs of the C program (see its README.md); ``LANDUSE_SLEUTH_DEMO`` may point to another
copy. When neither is there, importing this module fails with that message, so the SLEUTH test files fail to
collect instead of skipping: a clone or a CI run never passes without them.
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO = Path(os.environ.get("LANDUSE_SLEUTH_DEMO") or Path(__file__).resolve().parent / "data" / "sleuth_demo200")

if not (DEMO / "input").is_dir() or not (DEMO / "reference").is_dir() or not (DEMO / "scenarios").is_dir():
    raise FileNotFoundError(
        f"SLEUTH demo data not found at {DEMO} (input/, scenarios/, reference/): restore tests/data/sleuth_demo200 "
        "from git, or set LANDUSE_SLEUTH_DEMO to a copy of it"
    )
