"""``python -m landuse ...``: the ``landuse`` command."""

from landuse.cli.entry import main

main()
