from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from datamodules.synthetic import SyntheticDataModule
from musictag import TaggingModule
from musictag.schedules import ReferenceSchedule
from musictag.testing import TINY_SHORT_CHUNK, tiny_synthetic_args


def _fit(
    tiny_corpus, tmp_path, schedule: ReferenceSchedule, epochs: int, ckpt_path: str | None = None
) -> pl.Trainer:
    pl.seed_everything(0)
    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)))
    module = TaggingModule(n_tags=data.n_tags, **TINY_SHORT_CHUNK)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[schedule],
        enable_checkpointing=False,
        limit_train_batches=2,
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
