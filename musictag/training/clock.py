"""The two x axes of Choi et al. 2017's comparisons in every run's log: training wall-clock and model size.

:class:`TrainingClock` (installed by :func:`~musictag.training.callbacks.default_callbacks`) logs

- ``train/elapsed_s`` at the end of every training epoch: the cumulative wall-clock seconds spent
  training, **validation excluded** (the clock stops at each validation's start and runs again at its
  end; the sanity check before the first epoch is outside every epoch). Data loading, the optimiser
  step and the callbacks of the training batches are included: that is what an epoch costs. Validation
  is left out so that two architectures validated on different numbers of songs, or at different
  intervals, are compared on the time they took to learn. A resumed fit continues from the time stored
  in the checkpoint (the callback's state), so a run killed and resumed reads as one run.
- ``model/n_params`` (every parameter of the LightningModule, trainable or frozen) once when a fit or a
  test starts, so both the fit's and the test's run folders carry the model's size.

Both are written to every logger directly, each in its own row of ``metrics.csv`` with its ``epoch``
(never in the row of a metric the module logs), so a run's metric rows stay those of its metrics alone.

References: K. Choi, G. Fazekas, M. Sandler, K. Cho, 'Convolutional recurrent neural networks for music
classification', ICASSP 2017 (AUC against parameters and against training time).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl


def _now() -> float:
    return time.perf_counter()


def count_parameters(module: Any) -> int:
    """Every parameter of ``module`` (its ``n_params()`` when it has one, e.g. a Tagger's net)."""
    net = getattr(module, "net", None)
    if net is not None and hasattr(net, "n_params"):
        return int(net.n_params())
    return sum(p.numel() for p in module.parameters())


class TrainingClock(pl.Callback):
    """Logs ``train/elapsed_s`` (cumulative training seconds, validation excluded) per epoch and
    ``model/n_params`` at the start of ``fit`` and ``test``; the elapsed time is checkpointed."""

    def __init__(self) -> None:
        self.elapsed_s = 0.0
        self._since: float | None = None  # _now() at the running stretch's start
        self._in_epoch = False

    def _running_s(self) -> float:
        return 0.0 if self._since is None else _now() - self._since

    def _stop(self) -> None:
        self.elapsed_s += self._running_s()
        self._since = None

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: Mapping[str, float], step: int) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(dict(metrics), step=step)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_size(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_size(trainer, pl_module)

    def _log_size(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        size = {"model/n_params": count_parameters(pl_module), "epoch": trainer.current_epoch}
        self._log(trainer, size, trainer.global_step)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._in_epoch = True
        self._since = _now()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._in_epoch:
            self._stop()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._in_epoch:
            self._since = _now()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()
        self._in_epoch = False
        # the step of the epoch's own rows: Lightning logs epoch-end metrics at the last batch's step
        step = max(trainer.global_step - 1, 0)
        self._log(trainer, {"train/elapsed_s": self.elapsed_s, "epoch": trainer.current_epoch}, step)

    def state_dict(self) -> dict[str, Any]:
        # a checkpoint written mid-epoch (a requeue signal) holds the stretch so far as well
        return {"elapsed_s": self.elapsed_s + self._running_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed_s = float(state_dict["elapsed_s"])
        self._since = None
