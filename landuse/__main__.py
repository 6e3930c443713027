"""``python -m landuse ...``: the ``landuse`` command."""

from landuse._entry import main

main()
