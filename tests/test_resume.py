"""A fit resumed after a kill ends with the metrics of an uninterrupted one, with every random layer on."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from helpers.cli import SLURM_TASK_ENV
from musictag.cli import main
from musictag.testing import MASKED_MEL, cli_args

REPO = Path(__file__).resolve().parents[1]

DROPOUT = {"model.init_args.head": {"name": "mlp", "hidden": [8], "dropout": 0.5}}
AUGMENTED = {
    **DROPOUT,
    "model.init_args.representation": MASKED_MEL,
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


def _killed(args: list[str], monkeypatch, epoch: int, batch: int, signals: list[str]) -> None:
    """Run ``args`` and send the process ``signals`` after training batch (epoch, batch): it must exit
    with SIGTERM's status, not 0."""
    callback = {
        "class_path": "musictag.testing.SignalAt",
        "init_args": {"epoch": epoch, "batch": batch, "signals": signals},
    }
    with pytest.raises(SystemExit) as stop:
        _run([*args, f"--trainer.callbacks={json.dumps([callback])}"], monkeypatch)
    assert stop.value.code == 143


def _assert_same_log(whole: Path, other: Path) -> None:
    rows_whole, rows_other = _logged(whole / "metrics.csv"), _logged(other / "metrics.csv")
    assert len(rows_whole) == len(rows_other) >= 4  # train and val rows of both epochs
    for row_whole, row_other in zip(rows_whole, rows_other, strict=True):
        assert set(row_whole) == set(row_other)
        for key, value in row_whole.items():
            assert row_other[key] == pytest.approx(value, abs=1e-6), key


def assert_resume_equals_whole(make_args, runs: Path, monkeypatch) -> None:
    """Fit 2 epochs in one go; fit again, killed (SIGTERM) after the first batch of epoch 2, and
    resume with ``--ckpt_path last`` (from the end of epoch 1): the same log, to 1e-6."""
    _run(make_args("whole", 2), monkeypatch)
    _killed(make_args("killed", 2), monkeypatch, epoch=1, batch=0, signals=["SIGTERM"])
    _run([*make_args("killed", 2), "--ckpt_path=last"], monkeypatch)
    assert [p.name for p in (runs / "killed").iterdir()] == ["version_0"]  # the same run folder
    _assert_same_log(runs / "whole" / "version_0", runs / "killed" / "version_0")


def _tiny(corpus: Path, runs: Path, extra: dict):
    def make(name: str, epochs: int) -> list[str]:
        return cli_args(
            "fit",
            str(corpus),
            str(runs),
            **{"run.name": name, "trainer.max_epochs": epochs, "trainer.deterministic": True, **extra},
        )

    return make


SLURM = {
    "class_path": "lightning.pytorch.plugins.environments.SLURMEnvironment",
    "init_args": {"auto_requeue": True, "requeue_signal": "SIGUSR1"},
}


def test_a_killed_run_resumes_to_the_uninterrupted_metrics(tiny_corpus, tmp_path, monkeypatch):
    """Dropout on. A run killed with SIGTERM exits 143 and, resumed from last.ckpt, ends as the
    uninterrupted run."""
    runs = tmp_path / "runs"
    assert_resume_equals_whole(_tiny(tiny_corpus, runs, DROPOUT), runs, monkeypatch)


def test_last_is_the_newer_of_last_ckpt_and_a_requeue_checkpoint(tmp_path):
    import os

    from musictag.training.runs import RunSettings, newest_checkpoint

    run = RunSettings(name="r", save_dir=str(tmp_path))
    folder = tmp_path / "r" / "version_1"
    (folder / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "version_0" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "version_0" / "checkpoints" / "last.ckpt").touch()
    last, hpc = folder / "checkpoints" / "last.ckpt", folder / "hpc_ckpt_1.ckpt"
    last.touch()
    hpc.touch()
    os.utime(last, ns=(1_000_000_000, 1_000_000_000))
    os.utime(hpc, ns=(2_000_000_000, 2_000_000_000))
    assert newest_checkpoint(run, "last") == hpc  # written on SIGUSR1 after the epoch's last.ckpt
    os.utime(last, ns=(3_000_000_000, 3_000_000_000))
    assert newest_checkpoint(run, "last") == last  # resumed, and a later epoch ended since
    (folder / "checkpoints" / "best.ckpt").touch()
    assert newest_checkpoint(run, "best") == folder / "checkpoints" / "best.ckpt"  # never an hpc one


@pytest.mark.slow
def test_a_requeued_slurm_job_resumes_mid_epoch_to_the_uninterrupted_metrics(
    tiny_corpus, tmp_path, monkeypatch, capsys
):
    """Dropout on. A SLURM job sent SIGUSR1 (checkpoint + requeue) then SIGTERM mid-epoch exits 143;
    requeued, it resumes from Lightning's hpc_ckpt_N.ckpt in its run folder with that epoch's remaining
    batches and no others, and ends as the uninterrupted run."""
    runs = tmp_path / "runs"
    make = _tiny(tiny_corpus, runs, DROPOUT)
    _run(make("whole", 2), monkeypatch)
    for name, value in SLURM_TASK_ENV.items():
        monkeypatch.setenv(name, value)
    slurm = [*make("requeued", 2), f"--trainer.plugins={json.dumps(SLURM)}"]
    _killed(slurm, monkeypatch, epoch=1, batch=1, signals=["SIGUSR1", "SIGTERM"])
    folder = runs / "requeued" / "version_0"
    assert (folder / "hpc_ckpt_1.ckpt").is_file()
    capsys.readouterr()
    _run([*slurm, "--ckpt_path=last"], monkeypatch)
    assert f"using last checkpoint {folder / 'hpc_ckpt_1.ckpt'}" in capsys.readouterr().err
    rows_whole = [r for r in _logged(runs / "whole" / "version_0" / "metrics.csv") if "val/pr_auc" in r]
    rows_requeued = [r for r in _logged(folder / "metrics.csv") if "val/pr_auc" in r]
    assert len(rows_whole) == len(rows_requeued) == 2
    for row_whole, row_requeued in zip(rows_whole, rows_requeued, strict=True):
        for key in ("val/pr_auc", "val/roc_auc", "val/loss"):
            assert row_requeued[key] == pytest.approx(row_whole[key], abs=1e-6), key


@pytest.mark.slow
def test_resume_equals_uninterrupted_with_spec_augment_and_wave_augment(tiny_corpus, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    assert_resume_equals_whole(_tiny(tiny_corpus, runs, AUGMENTED), runs, monkeypatch)


def every_device_augmentation(folder: Path) -> dict:
    """Every transform of :mod:`musictag.training.augment` on (p 0.5), measured IRs and backgrounds from
    ``folder``, mixup and a label rule: the model's ``augment`` init argument."""
    import numpy as np

    from musictag.audio import write_audio
    from musictag.training.augment import TRANSFORMS

    rng = np.random.default_rng(0)
    (folder / "irs").mkdir(parents=True)
    (folder / "cafe").mkdir()
    decay = np.exp(-np.arange(4000) / 800.0)
    write_audio(
        folder / "irs" / "room.wav", (rng.standard_normal(4000) * decay * 0.5).astype(np.float32), 16000
    )
    write_audio(folder / "cafe" / "babble.wav", (rng.standard_normal(32000) * 0.1).astype(np.float32), 16000)
    augment: dict = {name: {"p": 0.5} for name in TRANSFORMS}
    augment["reverb"]["ir_dir"] = str(folder / "irs")
    augment["background"]["dir"] = str(folder / "cafe")
    augment["mixup"] = {"p": 0.5, "alpha": 0.4}
    augment["labels"] = {
        "time_stretch": {"tags": ["fast", "slow"]},
        "noise": {"tags": ["noisy"], "action": "set", "value": 1},
    }
    return augment


@pytest.mark.slow
def test_resume_equals_uninterrupted_with_every_device_augmentation(tiny_corpus, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    extra = {**AUGMENTED, "model.init_args.augment": every_device_augmentation(tmp_path / "aug")}
    assert_resume_equals_whole(_tiny(tiny_corpus, runs, extra), runs, monkeypatch)


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
