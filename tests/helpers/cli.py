"""Running ``musictag`` in the test's own process or as a child, and the environment of a SLURM task."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
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


def musictag_process(
    argv: Sequence[str], cwd: str | Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m musictag ARGV`` as a child process with W&B disabled: its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "musictag", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )


#: The variables by which Lightning takes a process for a SLURM task (a job not named bash/interactive).
SLURM_TASK_ENV = {
    "SLURM_JOB_ID": "1",
    "SLURM_NTASKS": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_JOB_NAME": "musictag",
}
