from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from datamodules.synthetic import SyntheticDataModule
from helpers.trainer import quiet_trainer
from musictag import TaggingModule
from musictag.cli.lightning_cli import resolved_config
from musictag.testing import TINY_SHORT_CHUNK, tiny_synthetic_args
from musictag.training.schedules import ReferenceSchedule

REPO = Path(__file__).resolve().parents[1]


def _fit(
    tiny_corpus, tmp_path, schedule: ReferenceSchedule, epochs: int, ckpt_path: str | None = None
) -> pl.Trainer:
    pl.seed_everything(0)
    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)))
    module = TaggingModule(n_tags=data.n_tags, **TINY_SHORT_CHUNK)
    trainer = quiet_trainer(
        max_epochs=epochs, default_root_dir=tmp_path, callbacks=[schedule], limit_train_batches=2
    )
    trainer.fit(module, data, ckpt_path=ckpt_path)
    return trainer


def test_stages_switch_optimizer_and_rates(tiny_corpus, tmp_path):
    schedule = ReferenceSchedule(adam_epochs=2, sgd_epochs=(1, 1), count="epochs")
    trainer = _fit(tiny_corpus, tmp_path, schedule, epochs=6)
    assert schedule.history == [(2, 1, 1e-3), (3, 2, 1e-4), (4, 3, 1e-5)]
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 1e-5 and optimizer.param_groups[0]["nesterov"] is True
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["weight_decay"] == 1e-4


def test_switch_reloads_the_best_model(tiny_corpus, tmp_path):
    schedule = ReferenceSchedule(adam_epochs=1, sgd_epochs=(5,), sgd_lrs=(1e-3, 1e-4), count="epochs")
    loaded = []
    original = TaggingModule.load_state_dict

    def spy(self, state, *args, **kwargs):
        loaded.append({k: v.clone() for k, v in state.items()})
        return original(self, state, *args, **kwargs)

    TaggingModule.load_state_dict = spy  # type: ignore[method-assign]
    try:
        _fit(tiny_corpus, tmp_path, schedule, epochs=2)
    finally:
        TaggingModule.load_state_dict = original  # type: ignore[method-assign]
    assert len(loaded) == 1 and schedule.best is not None
    assert all(torch.equal(loaded[0][k], v) for k, v in schedule.best_state.items())


def test_resume_past_adam_restores_sgd(tiny_corpus, tmp_path):
    schedule = ReferenceSchedule(adam_epochs=1, sgd_epochs=(10,), sgd_lrs=(1e-3, 1e-4), count="epochs")
    trainer = _fit(tiny_corpus, tmp_path, schedule, epochs=3)
    trainer.save_checkpoint(tmp_path / "sgd.ckpt")
    resumed = ReferenceSchedule(adam_epochs=1, sgd_epochs=(10,), sgd_lrs=(1e-3, 1e-4), count="epochs")
    again = _fit(tiny_corpus, tmp_path, resumed, epochs=4, ckpt_path=str(tmp_path / "sgd.ckpt"))
    assert resumed.stage == 1 and isinstance(again.optimizers[0], torch.optim.SGD)


def test_stage_lengths_must_match_rates():
    with pytest.raises(ValueError, match="3 SGD rates need 2 stage lengths"):
        ReferenceSchedule(sgd_epochs=(20,))


class _Scripted(pl.LightningModule):
    """One weight that moves every step, and a validation loss read from a script (epoch → value)."""

    def __init__(self, val_losses: list[float]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(4))
        self.val_losses = val_losses
        self.after_validation: dict[int, torch.Tensor] = {}
        self.at_epoch_start: dict[int, tuple[torch.Tensor, str, float]] = {}

    def training_step(self, batch, batch_idx):
        target = torch.full_like(self.weight, float(self.current_epoch + 1))
        return ((self.weight - target) ** 2).sum() + 0 * batch[0].sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.val_losses[self.current_epoch])

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.after_validation[self.current_epoch] = self.weight.detach().clone()

    def on_train_epoch_start(self):  # runs after the callbacks' hook: the stage of this epoch
        optimizer = self.trainer.optimizers[0]
        self.at_epoch_start[self.current_epoch] = (
            self.weight.detach().clone(),
            type(optimizer).__name__,
            optimizer.param_groups[0]["lr"],
        )

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-4, weight_decay=1e-4)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(1, 1)))

    val_dataloader = train_dataloader


def _recipe_schedule() -> ReferenceSchedule:
    """The schedule exactly as the published recipes configure it."""
    recipe = resolved_config(REPO / "experiments" / "mtat" / "short_chunk.yaml")
    (spec,) = recipe["trainer"]["callbacks"]
    assert spec["class_path"] == "musictag.training.schedules.ReferenceSchedule"
    return ReferenceSchedule(**spec["init_args"])


def _drive(schedule: ReferenceSchedule, val_losses: list[float], epochs: int, tmp_path) -> _Scripted:
    module = _Scripted(val_losses)
    trainer = quiet_trainer(
        max_epochs=epochs, num_sanity_val_steps=0, default_root_dir=tmp_path, callbacks=[schedule]
    )
    trainer.fit(module)
    return module


def test_recipe_schedule_switches_at_80_100_120_however_often_validation_improves(tmp_path):
    # validation improves every 4th epoch (1, 5, 9, ...): a counter reset by improvements never reaches 20
    val_losses = [1.0 / (2 + e) if e % 4 == 1 else 10.0 for e in range(130)]
    schedule = _recipe_schedule()
    assert schedule.count == "epochs"
    module = _drive(schedule, val_losses, 130, tmp_path)

    assert schedule.history == [(80, 1, 1e-3), (100, 2, 1e-4), (120, 3, 1e-5)]
    stages = {e: module.at_epoch_start[e][1:] for e in (0, 79, 80, 99, 100, 119, 120, 129)}
    assert stages == {
        0: ("Adam", 1e-4),
        79: ("Adam", 1e-4),
        80: ("SGD", 1e-3),
        99: ("SGD", 1e-3),
        100: ("SGD", 1e-4),
        119: ("SGD", 1e-4),
        120: ("SGD", 1e-5),
        129: ("SGD", 1e-5),
    }
    # each switch starts from the best model so far (lowest validation loss), not from the last epoch
    for switch, best in ((80, 77), (100, 97), (120, 117)):
        assert min(range(switch), key=val_losses.__getitem__) == best
        assert torch.equal(module.at_epoch_start[switch][0], module.after_validation[best])
        assert not torch.equal(module.after_validation[switch - 1], module.after_validation[best])


def test_since_improvement_is_a_variant_that_stays_on_adam_while_validation_improves(tmp_path):
    val_losses = [1.0 / (2 + e) if e % 4 == 1 else 10.0 for e in range(130)]
    schedule = ReferenceSchedule(count="since_improvement")
    _drive(schedule, val_losses, 130, tmp_path)
    assert schedule.history == []
