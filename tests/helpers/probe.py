"""Training a probe live and from an embedding cache with the same seed, and comparing their metrics
(tests/test_probe.py: Hugging Face encoders; tests/test_probe_checkpoint.py: musictag checkpoints)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

COMMON = [
    "--trainer.accelerator=cpu",
    "--trainer.max_epochs=1",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--seed_everything=0",
    "--model=musictag.TaggingModule",
    "--model.init_args.arch=null",
    "--model.init_args.backend=global_mean",
    '--model.init_args.head={"name": "mlp", "hidden": [16], "dropout": 0.2}',
    '--model.init_args.optimizer={"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}}',
]


def metrics(version_dir: Path) -> dict[str, list[float]]:
    """Every logged value of every column of a run's metrics.csv, in order."""
    values: dict[str, list[float]] = {}
    with open(version_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value not in ("", None) and key not in ("epoch", "step"):
                    values.setdefault(key, []).append(float(value))
    return values


def fit_and_test(data: list[str], model: list[str], save_dir: Path, name: str) -> dict[str, list[float]]:
    """``fit`` (one epoch, seed 0) then ``test --ckpt_path=last``: both runs' logged values."""
    from musictag.cli import main

    for command in ("fit", "test"):
        ckpt = ["--ckpt_path=last"] if command == "test" else []
        main([command, *COMMON, *data, *model, f"--run.save_dir={save_dir}", f"--run.name={name}", *ckpt])
    runs = sorted((save_dir / name).glob("version_*"))
    assert len(runs) == 2
    return {**metrics(runs[0]), **metrics(runs[1])}


def assert_same_metrics(live: dict, cached: dict) -> None:
    """Every train/val/test value of the live run equals the cached run's to 1e-5."""
    # train/elapsed_s is wall-clock time: it differs between any two runs
    compared = [k for k in live if k.startswith(("val/", "test/", "train/")) and k != "train/elapsed_s"]
    assert {"val/roc_auc", "val/pr_auc", "test/roc_auc", "test/pr_auc", "train/loss_epoch"} <= set(compared)
    assert set(compared) <= set(cached)
    for key in compared:
        assert cached[key] == pytest.approx(live[key], abs=1e-5), key
