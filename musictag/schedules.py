"""The training schedule of the field's benchmark (Won et al. 2020, sota-music-tagging-models).

Adam at 1e-4; when it stops improving, reload the best model (lowest validation loss) and continue
with SGD (Nesterov momentum 0.9, weight decay 1e-4) at 1e-3, then 1e-4, then 1e-5, reloading the best
model at each drop. Early stopping and cosine schedules need nothing special: Lightning's
``EarlyStopping`` callback and ``torch.optim.lr_scheduler.CosineAnnealingLR`` as ``lr_scheduler``.
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

    Args:
        adam_epochs: epochs of the Adam stage; then ``sgd_epochs`` for each SGD rate but the last, which
            runs to the end.
        count: ``since_improvement`` (the reference implementation: a stage ends after that many epochs
            without a better ``monitor``; its counter restarts at every improvement) or ``epochs``
            (a stage ends after that many epochs, as the paper describes the schedule).
        monitor: the validation metric that selects the model to reload (lower is better).
    """

    def __init__(
        self,
        adam_epochs: int = 80,
        sgd_lrs: Sequence[float] = (1e-3, 1e-4, 1e-5),
        sgd_epochs: Sequence[int] = (20, 20),
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        count: Literal["since_improvement", "epochs"] = "since_improvement",
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
