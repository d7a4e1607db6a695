"""A fit resumed after a kill ends with the metrics of an uninterrupted one, with every random layer on."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from musictag.cli import main
from musictag.testing import cli_args

REPO = Path(__file__).resolve().parents[1]

DROPOUT = {"model.init_args.head": {"name": "mlp", "hidden": [8], "dropout": 0.5}}
AUGMENTED = {
    **DROPOUT,
    "model.init_args.representation": {
        "name": "mel",
        "n_mels": 128,
        "freq_masks": 2,
        "freq_mask_width": 8,
        "time_masks": 2,
        "time_mask_width": 10,
    },
    "data.init_args.augment": {"gain_db": 6, "noise_snr_db": [20, 40], "p": 0.5},
}


def _run(args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["musictag"])
    main(args)


def _logged(metrics_csv: Path) -> list[dict[str, float]]:
    """Every row of a run's metrics.csv that holds an epoch-level value, without the step counter."""
    rows = []
    for row in csv.DictReader(open(metrics_csv)):
        values = {k: float(v) for k, v in row.items() if v not in ("", None) and k != "step"}
        if any(k.startswith("val/") or k.endswith("_epoch") for k in values):
            rows.append(values)
    return rows


def assert_resume_equals_whole(make_args, runs: Path, monkeypatch) -> None:
    """Fit 2 epochs in one go; fit 1 epoch ("killed" after it) and resume with ``--ckpt_path last``."""
    _run(make_args("whole", 2), monkeypatch)
    _run(make_args("split", 1), monkeypatch)
    _run([*make_args("split", 2), "--ckpt_path=last"], monkeypatch)
    assert [p.name for p in (runs / "split").iterdir()] == ["version_0"]  # the same run folder
    whole = _logged(runs / "whole" / "version_0" / "metrics.csv")
    split = _logged(runs / "split" / "version_0" / "metrics.csv")
    assert len(whole) == len(split) >= 4  # train and val rows of both epochs
    for row_whole, row_split in zip(whole, split, strict=True):
        assert set(row_whole) == set(row_split)
        for key, value in row_whole.items():
            assert row_split[key] == pytest.approx(value, abs=1e-6), key


def _tiny(corpus: Path, runs: Path, extra: dict):
    def make(name: str, epochs: int) -> list[str]:
        return cli_args(
            "fit",
            str(corpus),
            str(runs),
            **{"run.name": name, "trainer.max_epochs": epochs, "trainer.deterministic": True, **extra},
        )

    return make


def test_resume_equals_uninterrupted_with_dropout(tiny_corpus, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    assert_resume_equals_whole(_tiny(tiny_corpus, runs, DROPOUT), runs, monkeypatch)


@pytest.mark.slow
def test_resume_equals_uninterrupted_with_spec_augment_and_wave_augment(tiny_corpus, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    assert_resume_equals_whole(_tiny(tiny_corpus, runs, AUGMENTED), runs, monkeypatch)


@pytest.mark.slow
def test_resume_equals_uninterrupted_with_the_demo_config(tmp_path, monkeypatch):
    runs = tmp_path / "runs"

    def make(name: str, epochs: int) -> list[str]:
        return [
            "fit",
            f"--config={REPO / 'experiments' / 'demo.yaml'}",
            f"--run.save_dir={runs}",
            f"--run.name={name}",
            f"--trainer.max_epochs={epochs}",
            "--trainer.enable_progress_bar=false",
            f"--data.init_args.root={tmp_path / 'demo-corpus'}",
        ]

    assert_resume_equals_whole(make, runs, monkeypatch)
