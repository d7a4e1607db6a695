"""One quiet CPU Trainer for the tests that drive Lightning directly."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

#: What a test's Trainer does unless it asks otherwise: the CPU, nothing printed, nothing written.
QUIET = {
    "accelerator": "cpu",
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


def quiet_trainer(**settings: Any) -> pl.Trainer:
    """``pl.Trainer(**QUIET, **settings)``, ``settings`` winning (a logger, checkpoints, callbacks...)."""
    return pl.Trainer(**{**QUIET, **settings})
