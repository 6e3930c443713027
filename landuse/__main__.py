"""``python -m landuse ...``: the ``landuse`` command."""

from landuse.cli.app import main

main()
