"""Running ``musictag`` in the test's own process, and the environment of a SLURM task."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def run_musictag(argv: Sequence[str], capsys: Any) -> tuple[int, str, str]:
    """``musictag ARGV`` in this process, as the console script runs it: (exit status, stdout, stderr).

    ``capsys`` is pytest's fixture. ``sys.argv`` is ``["musictag"]`` meanwhile, as for the console script
    (LightningCLI would otherwise warn that pytest's own arguments are there too).
    """
    from musictag.cli import main

    argv_before = sys.argv
    sys.argv = ["musictag"]
    try:
        main(list(argv))
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = argv_before
    captured = capsys.readouterr()
    return code, captured.out, captured.err


#: The variables by which Lightning takes a process for a SLURM task (a job not named bash/interactive).
SLURM_TASK_ENV = {
    "SLURM_JOB_ID": "1",
    "SLURM_NTASKS": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_JOB_NAME": "musictag",
}
