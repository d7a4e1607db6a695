"""Test doubles shipped with the package: tiny models, tiny corpora and signals for fast tests."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback

from musictag.audio import (
    write_audio as write_audio,  # the writer lives with the reader; re-exported for tests
)
from musictag.types import Pathlike

#: A Short-chunk CNN narrowed to a few channels: same stages and shapes, trains in seconds.
TINY_SHORT_CHUNK: dict[str, Any] = {
    "arch": "short_chunk",
    "frontend": {"name": "conv2d_stack", "channels": [4, 4, 8, 8, 8, 8, 8], "pools": 2},
    "head": {"name": "mlp", "hidden": [8], "dropout": 0.0},
}
#: The Short-chunk CNN's 128-band mel with SpecAugment masks (two of 8 bands, two of 10 frames).
MASKED_MEL: dict[str, Any] = {
    "name": "mel",
    "n_mels": 128,
    "freq_masks": 2,
    "freq_mask_width": 8,
    "time_masks": 2,
    "time_mask_width": 10,
}


def tiny_synthetic_args(root: str, **overrides: Any) -> dict[str, Any]:
    """``SyntheticDataModule`` arguments for a corpus of a few dozen short clips."""
    args: dict[str, Any] = {
        "root": root,
        "n_clips": 32,
        "clip_seconds": 4.0,
        "batch_size": 4,
        "n_chunks": 2,
        "valid_fraction": 0.25,
        "test_fraction": 0.25,
    }
    args.update(overrides)
    return args


def sine(freq: float, seconds: float, sample_rate: int = 16000, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def cli_args(subcommand: str, root: str, save_dir: str, **extra: Any) -> list[str]:
    """Command-line arguments of a tiny ``musictag`` run on the synthetic corpus at ``root``."""
    args = [
        subcommand,
        "--model=musictag.TaggingModule",
        "--data=datamodules.SyntheticDataModule",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run.save_dir={save_dir}",
        "--run.name=tiny",
        "--seed_everything=0",
    ]
    for key, value in TINY_SHORT_CHUNK.items():
        args.append(f"--model.init_args.{key}={_yaml(value)}")
    for key, value in tiny_synthetic_args(root).items():
        args.append(f"--data.init_args.{key}={value}")
    args += [f"--{key}={_yaml(value)}" for key, value in extra.items()]
    return args


def committed(folder: Pathlike, suffix: str = ".json") -> list[Path]:
    """The files of ``folder`` with ``suffix`` that a writer has committed, sorted.

    :func:`musictag.files.atomic_write` writes to a hidden sibling (``.<stem>.tmp-<pid><suffix>``),
    which ``Path.glob("*.json")`` also matches; a test waiting for the first shard of a run must not
    take the one being written for a finished one.
    """
    root = Path(folder)
    return sorted(p for p in root.glob(f"*{suffix}") if not p.name.startswith(".")) if root.is_dir() else []


def _yaml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def write_bad_files(folder: Pathlike) -> dict[str, str]:
    """A corrupt MP3, an empty WAV and a silent FLAC in ``folder``: name → the problem the cache reports."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "corrupt.mp3"), "wb") as f:
        f.write(b"\x00garbage that is not audio\xff" * 64)
    open(os.path.join(folder, "empty.wav"), "wb").close()
    write_audio(os.path.join(folder, "silent.flac"), np.zeros(16000, np.float32), 16000)
    return {"corrupt.mp3": "unreadable", "empty.wav": "empty", "silent.flac": "silent"}


def write_non_finite(path: Pathlike, seconds: float = 1.0, sample_rate: int = 16000) -> None:
    """A float WAV whose samples are all NaN but one Inf: decodes, yet is no audio."""
    import soundfile as sf

    audio = np.full(int(seconds * sample_rate), np.nan, np.float32)
    audio[0] = np.inf
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    sf.write(os.fspath(path), audio, sample_rate, format="WAV", subtype="FLOAT")


class SignalAt(Callback):
    """Sends this process real signals after one training batch, as a scheduler would (SLURM: ``SIGUSR1``
    before the time limit, then ``SIGTERM``). A test double: ``--trainer.callbacks+=musictag.testing.SignalAt``.

    Args:
        epoch, batch: after which training batch.
        signals: signal names, sent in order (``["SIGUSR1", "SIGTERM"]``).
    """

    def __init__(self, epoch: int, batch: int, signals: list[str]) -> None:
        self.epoch, self.batch, self.signals = epoch, batch, signals

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        import signal

        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            for name in self.signals:
                os.kill(os.getpid(), getattr(signal, name))


def save_module_checkpoint(module: Any, path: Pathlike) -> Pathlike:
    """A bare checkpoint of ``module`` (state dict and hyperparameters) as ``musictag tag`` reads one,
    without a Trainer."""
    import torch

    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": "2.6",
        },
        path,
    )
    return path


def last_logged(metrics_csv: Pathlike) -> dict[str, float]:
    """The last value logged for every column of a run's ``metrics.csv``."""
    import csv

    values: dict[str, float] = {}
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return values


class RecordRunFolder(Callback):
    """Writes where this process's run lives (``default_root_dir``, each logger's ``log_dir``) to
    ``<folder>/rank<N>.json`` when fit starts, after every setup hook: a test double for checking that the
    ranks of a multi-process run agree (``--trainer.callbacks+=musictag.testing.RecordRunFolder``)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        record = {
            "default_root_dir": trainer.default_root_dir,
            "log_dirs": [getattr(lg, "log_dir", None) for lg in trainer.loggers],
        }
        os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as f:
            json.dump(record, f)
