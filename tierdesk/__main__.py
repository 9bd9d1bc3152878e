"""``python -m tierdesk``: the same command line as the ``tierdesk`` script."""

from tierdesk.cli import main

main()
