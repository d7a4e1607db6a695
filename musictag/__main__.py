"""``python -m musictag`` = the ``musictag`` command."""

import sys

from musictag.cli import main

sys.argv[0] = "musictag"  # usage lines say `musictag`, not `__main__.py`
main()
