from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from datamodules.synthetic import SyntheticDataModule
from helpers.trainer import quiet_trainer
from musictag import TaggingModule
from musictag.stages.registry import ConfigError, UnknownNameError
from musictag.testing import TINY_SHORT_CHUNK, tiny_synthetic_args
from musictag.training.callbacks import TaggingMetrics


def tiny_module(**kwargs) -> TaggingModule:
    torch.manual_seed(0)
    return TaggingModule(n_tags=3, **{**TINY_SHORT_CHUNK, **kwargs})


def test_training_step_is_bce_with_logits():
    module = tiny_module()  # train mode: BatchNorm uses the batch's statistics, so a rerun is identical
    batch = {"audio": torch.randn(4, 59049), "target": torch.tensor([[1.0, 0, 1]] * 4)}
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        logits = module(batch["audio"])
    expected = -(
        batch["target"] * torch.log(torch.sigmoid(logits))
        + (1 - batch["target"]) * torch.log(1 - torch.sigmoid(logits))
    ).mean()
    assert loss.ndim == 0
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)


def test_training_loss_is_the_step_on_int16_or_float_audio():
    """``training_loss`` is what ``training_step`` computes (and what ``musictag bench`` times): int16
    chunks are scaled by ``INT16_SCALE`` first, float chunks (as the batch hook hands them over) are not."""
    from musictag.audio import INT16_SCALE

    module = tiny_module()
    wave = (torch.randn(4, 59049) * 3000).to(torch.int16)
    target = torch.tensor([[1.0, 0, 1]] * 4)
    from_int16 = module.training_loss(wave, target)
    from_float = module.training_loss(wave.float() / INT16_SCALE, target)
    step = module.training_step({"audio": wave.float() / INT16_SCALE, "target": target}, 0)
    torch.testing.assert_close(from_int16, from_float)
    torch.testing.assert_close(step, from_float)
    unscaled = module.training_loss(wave.float(), target)  # int16 values taken as floats: another loss
    assert not torch.allclose(unscaled, from_int16)


@pytest.mark.parametrize("how", ["mean", "max", "logit_mean"])
def test_song_scores_aggregate_the_chunk_probabilities(how):
    module = tiny_module(aggregate=how).eval()
    songs = torch.randn(2, 3, 59049)
    with torch.no_grad():
        logits = torch.stack([module(songs[:, c]) for c in range(3)], dim=1)
        per_chunk = torch.sigmoid(logits)
        expected = {
            "mean": per_chunk.mean(dim=1),
            "max": per_chunk.amax(dim=1),
            "logit_mean": torch.sigmoid(logits.mean(dim=1)),
        }[how]
        torch.testing.assert_close(module.song_scores(songs), expected, rtol=1e-5, atol=1e-6)


def test_eval_loss_is_the_mean_over_every_chunk_whatever_the_batches():
    """Batches of 2 and 1 songs: the epoch's loss weighs each chunk once (not each batch), so that DDP
    processes holding batches of other sizes log the 1-process value."""
    module = tiny_module().eval()
    songs, targets = torch.randn(3, 2, 59049), torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 0]])
    with torch.no_grad():
        module.validation_step({"audio": songs[:2], "target": targets[:2]}, 0)
        module.validation_step({"audio": songs[2:], "target": targets[2:]}, 1)
        logits = module.chunk_logits(songs).float()
    expected = module.chunk_losses(logits, targets.unsqueeze(1).expand_as(logits)).mean()
    torch.testing.assert_close(module.eval_loss["val"].compute(), expected, rtol=1e-5, atol=1e-6)


def test_eval_chunk_batch_does_not_change_results():
    module = tiny_module().eval()
    songs = torch.randn(2, 5, 59049)
    with torch.no_grad():
        all_at_once = module.song_scores(songs)
        module.eval_chunk_batch = 3
        torch.testing.assert_close(module.song_scores(songs), all_at_once, rtol=1e-5, atol=1e-6)


def test_hparams_hold_the_resolved_architecture():
    module = tiny_module()
    assert module.hparams["representation"] == {"name": "mel", "n_mels": 128}
    assert module.hparams["frontend"]["channels"] == [4, 4, 8, 8, 8, 8, 8]
    assert module.hparams["input_len"] == 59049 and module.hparams["sample_rate"] == 16000
    assert "optimizer" not in module.hparams


def test_config_errors():
    with pytest.raises(UnknownNameError, match="registered back ends"):
        tiny_module(backend="nosuch")
    with pytest.raises(ConfigError, match="2 tag_names for n_tags=3"):
        tiny_module(tag_names=["a", "b"])
    with pytest.raises(ConfigError, match="set `arch`"):
        TaggingModule(arch=None, n_tags=2)
    with pytest.raises(ConfigError, match="aggregate 'logit_mean' is for multilabel tagging"):
        tiny_module(aggregate="logit_mean", task="multiclass")


@pytest.mark.parametrize("monitor", [None, "val/roc_auc"])
def test_lr_scheduler_monitors_the_value_asked_for(monitor):
    schedule = lambda optimizer: torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max")  # noqa: E731
    extra = {} if monitor is None else {"lr_scheduler_monitor": monitor}
    configured = tiny_module(lr_scheduler=schedule, **extra).configure_optimizers()
    assert configured["lr_scheduler"]["monitor"] == (monitor or "val/loss")
    assert isinstance(configured["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)


def test_fit_checkpoint_and_reload(tiny_corpus, tmp_path):
    """A Lightning checkpoint (loaded with weights_only=True) rebuilds the same network and scores."""
    pl.seed_everything(0)
    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)))
    module = TaggingModule(n_tags=data.n_tags, tag_names=data.tag_names, **TINY_SHORT_CHUNK)
    trainer = quiet_trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        callbacks=[TaggingMetrics()],
    )
    trainer.fit(module, data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    first = trainer.test(module, data, verbose=False)[0]
    reloaded = TaggingModule.load_from_checkpoint(path, weights_only=True)
    assert reloaded.tag_names == data.tag_names
    second = trainer.test(reloaded, data, verbose=False)[0]
    assert first["test/roc_auc"] == pytest.approx(second["test/roc_auc"], abs=1e-7)
    assert first["test/pr_auc"] == pytest.approx(second["test/pr_auc"], abs=1e-7)
    assert 0.0 <= first["test/roc_auc"] <= 1.0
