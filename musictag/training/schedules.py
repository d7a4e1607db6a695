"""The training schedule of the field's benchmark (Won et al. 2020, sota-music-tagging-models).

The published training loop counts epochs: Adam (lr 1e-4, weight decay 1e-4) for exactly 80 epochs,
then, each time reloading the best model so far by validation loss, SGD with Nesterov momentum 0.9 and
weight decay 1e-4 at 1e-3 for 20 epochs, 1e-4 for 20 epochs and 1e-5 to the end (200 epochs in all).
Its stage counter grows by one every epoch and restarts only when the optimizer changes, never when
validation improves. That is ``count="epochs"``, the default here. ``count="since_improvement"`` is a
variant (a stage ends after that many epochs *without a better* validation loss, like a patience);
it is not what the published code does.

Early stopping and cosine schedules need nothing special: Lightning's ``EarlyStopping`` callback and
``torch.optim.lr_scheduler.CosineAnnealingLR`` as ``lr_scheduler``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info


class ReferenceSchedule(pl.Callback):
    """Adam → SGD 1e-3 → 1e-4 → 1e-5, each switch from the best model so far (by ``monitor``).

    With the defaults and validation every epoch, epochs 0–79 train with the module's optimizer (Adam in
    the recipes), epochs 80–99 with SGD at 1e-3, 100–119 at 1e-4 and 120 onwards at 1e-5, as the
    published code does.

    Args:
        adam_epochs: epochs of the first stage (the module's own optimizer); then ``sgd_epochs`` for each
            SGD rate but the last, which runs to the end.
        sgd_lrs: the SGD learning rates, one stage each.
        sgd_epochs: the length of every SGD stage but the last.
        momentum, weight_decay: of the SGD stages (Nesterov momentum).
        count: ``epochs`` (the published code: a stage ends after that many validated epochs; the counter
            restarts only when the optimizer changes) or ``since_improvement`` (a variant, not the
            reference: a stage ends after that many epochs without a better ``monitor``, its counter
            restarting at every improvement, so a model that keeps improving stays on Adam).
        monitor: the validation metric that selects the model to reload (lower is better).
    """

    def __init__(
        self,
        adam_epochs: int = 80,
        sgd_lrs: Sequence[float] = (1e-3, 1e-4, 1e-5),
        sgd_epochs: Sequence[int] = (20, 20),
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        count: Literal["epochs", "since_improvement"] = "epochs",
        monitor: str = "val/loss",
    ) -> None:
        if len(sgd_epochs) != len(sgd_lrs) - 1:
            raise ValueError(
                f"{len(sgd_lrs)} SGD rates need {len(sgd_lrs) - 1} stage lengths, got {list(sgd_epochs)}"
            )
        self.lengths = [adam_epochs, *sgd_epochs]
        self.sgd_lrs = list(sgd_lrs)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.count, self.monitor = count, monitor
        self.stage = 0  # 0 = Adam, k = SGD at sgd_lrs[k - 1]
        self.counter = 0
        self.best: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[tuple[int, int, float]] = []  # (epoch, stage, lr) at each switch

    def sgd(self, parameters: Any) -> torch.optim.Optimizer:
        lr = self.sgd_lrs[max(self.stage, 1) - 1]
        return torch.optim.SGD(
            parameters, lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=True
        )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Resumed past the Adam stage: the run continues with SGD. Lightning calls this after the
        module's ``configure_optimizers`` and before it restores the optimizer state from the
        checkpoint, so the checkpoint's SGD state goes into an SGD optimizer."""
        if self.stage > 0:
            trainer.optimizers = [self.sgd(pl_module.parameters())]
            trainer.strategy.lr_scheduler_configs = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self.best is None or value < self.best:
            self.best = value
            self.best_state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
            if self.count == "since_improvement":
                self.counter = 0
                return
        self.counter += 1

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stage >= len(self.lengths) or self.counter < self.lengths[self.stage]:
            return
        self.stage += 1
        self.counter = 0
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)
        if self.stage == 1:
            trainer.optimizers = [self.sgd(pl_module.parameters())]
            trainer.strategy.lr_scheduler_configs = []
        else:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = self.sgd_lrs[self.stage - 1]
        lr = self.sgd_lrs[self.stage - 1]
        self.history.append((trainer.current_epoch, self.stage, lr))
        rank_zero_info(
            f"reference schedule: epoch {trainer.current_epoch}, best model reloaded, SGD at lr {lr:g}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "counter": self.counter,
            "best": self.best,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stage, self.counter, self.best = state_dict["stage"], state_dict["counter"], state_dict["best"]
        self.best_state = copy.copy(state_dict.get("best_state"))
