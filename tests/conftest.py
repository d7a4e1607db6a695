from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test touches the network or a W&B server.
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated tiny synthetic corpus, shared by the tests of a session."""
    from datamodules.synthetic import SyntheticDataModule
    from musictag.testing import tiny_synthetic_args

    root = tmp_path_factory.mktemp("synthetic")
    SyntheticDataModule(**tiny_synthetic_args(str(root))).prepare_data()
    return root
