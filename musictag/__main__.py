"""``python -m musictag`` = the ``musictag`` command."""

from musictag.cli import main

main()
