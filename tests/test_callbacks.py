"""The evaluation callbacks work for any LightningModule that yields song scores."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch.utils.data import DataLoader

from helpers.plain import PlainModule, Songs, Worsening
from helpers.trainer import quiet_trainer
from musictag.training.callbacks import Checkpoint, SongScoresWriter, TaggingMetrics, TestOutputsWriter


def _trainer(tmp_path, callbacks: list[pl.Callback]) -> pl.Trainer:
    from lightning.pytorch.loggers import CSVLogger

    return quiet_trainer(max_epochs=2, logger=CSVLogger(tmp_path, name="plain"), callbacks=callbacks)


def _sklearn_macro(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    return (
        float(np.mean([roc_auc_score(labels[:, j], scores[:, j]) for j in range(labels.shape[1])])),
        float(np.mean([average_precision_score(labels[:, j], scores[:, j]) for j in range(labels.shape[1])])),
    )


def test_a_plain_lightning_module_gets_the_metrics_and_the_test_outputs(tmp_path):
    torch.manual_seed(0)
    module = PlainModule()
    val, test = Songs(37, seed=1), Songs(29, seed=2)
    metrics = TaggingMetrics()
    trainer = _trainer(tmp_path, [metrics, TestOutputsWriter()])
    trainer.fit(module, DataLoader(Songs(64, seed=0), batch_size=8), DataLoader(val, batch_size=5))
    logged = dict(trainer.callback_metrics)
    with torch.no_grad():
        val_scores = torch.sigmoid(module.linear(val.features)).numpy()
    roc, ap = _sklearn_macro(val_scores, val.targets.numpy())
    assert float(logged["val/roc_auc"]) == pytest.approx(roc, abs=1e-6)
    assert float(logged["val/pr_auc"]) == pytest.approx(ap, abs=1e-6)
    assert float(logged["val/skipped_tags"]) == 0.0 and "val/accuracy" not in logged

    shuffled = torch.utils.data.Subset(
        test, torch.randperm(29, generator=torch.Generator().manual_seed(5)).tolist()
    )
    result = trainer.test(module, DataLoader(shuffled, batch_size=4), verbose=False)[0]
    folder = tmp_path / "plain" / "version_0"
    saved = np.load(folder / "test_predictions.npz")
    assert list(saved["tag_names"]) == module.tag_names
    assert list(saved["song_ids"]) == [str(i) for i in range(29)]  # dataset order; no manifest: positions
    with torch.no_grad():
        np.testing.assert_allclose(saved["scores"], torch.sigmoid(module.linear(test.features)), atol=1e-6)
    np.testing.assert_array_equal(saved["labels"], test.targets.numpy().astype(np.uint8))
    roc, ap = _sklearn_macro(saved["scores"], saved["labels"])
    assert result["test/roc_auc"] == pytest.approx(roc, abs=1e-6)
    assert result["test/pr_auc"] == pytest.approx(ap, abs=1e-6)
    per_tag = list(csv.DictReader(open(folder / "test_per_tag.csv")))
    assert [row["tag"] for row in per_tag] == module.tag_names
    for j, row in enumerate(per_tag):
        assert float(row["roc_auc"]) == pytest.approx(
            roc_auc_score(saved["labels"][:, j], saved["scores"][:, j]), abs=1e-5
        )
        assert int(row["positives"]) == int(test.targets[:, j].sum()) and int(row["songs"]) == 29
    # the CSV logger got them too
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert any(r.get("test/pr_auc") for r in rows) and any(r.get("val/roc_auc") for r in rows)
    assert metrics.results["test"].n_songs == 29


def test_without_the_callbacks_nothing_is_scored(tmp_path):
    """The metrics come from the callbacks, not the module: a Trainer without them logs none."""
    module = PlainModule()
    trainer = _trainer(tmp_path, [])
    result = trainer.test(module, DataLoader(Songs(12, seed=2), batch_size=4), verbose=False)[0]
    assert "test/roc_auc" not in result
    assert not (tmp_path / "plain" / "version_0" / "test_predictions.npz").exists()


def test_a_step_without_song_scores_is_told_what_to_return(tmp_path):
    class NoScores(PlainModule):
        def validation_step(self, batch, batch_idx):  # type: ignore[override]
            return None

    trainer = _trainer(tmp_path, [TaggingMetrics()])
    with pytest.raises(TypeError, match="validation_step to return a mapping with 'scores'"):
        trainer.validate(NoScores(), DataLoader(Songs(8, seed=3), batch_size=4), verbose=False)


def test_predict_writer_is_a_callback_class_and_writes_in_dataset_order(tmp_path):
    module = PlainModule()
    songs = Songs(10, seed=4)
    writer = SongScoresWriter(output_dir=str(tmp_path / "out"))
    trainer = _trainer(tmp_path, [writer])
    order = [7, 2, 9, 0, 1, 3, 8, 4, 6, 5]  # the loader visits songs out of order
    trainer.predict(module, DataLoader(torch.utils.data.Subset(songs, order), batch_size=3))
    saved = np.load(tmp_path / "out" / "predictions_predict.npz")
    assert list(saved["song_ids"]) == [str(i) for i in range(10)]
    with torch.no_grad():
        np.testing.assert_allclose(saved["scores"], torch.sigmoid(module.linear(songs.features)), atol=1e-6)
    assert writer.written == [
        tmp_path / "out" / "predictions_predict.npz",
        tmp_path / "out" / "predictions_predict.csv",
    ]


def test_evaluation_steps_never_wait_for_the_host():
    """The module's evaluation step and the callback's per-batch update run on meta tensors, which have
    no values: any host synchronisation (``.item()``, ``bool(tensor)``, a boolean-mask index, a copy to
    the CPU) raises. So song scores, targets and the loss stay on the device until the epoch ends."""
    from musictag import TaggingModule
    from musictag.testing import TINY_SHORT_CHUNK

    module = TaggingModule(n_tags=4, **TINY_SHORT_CHUNK).eval().to("meta")
    module.eval_loss.to("meta")
    batch = {
        "audio": torch.empty(2, 3, 59049, device="meta"),
        "target": torch.empty(2, 4, device="meta"),
        "index": torch.empty(2, dtype=torch.long, device="meta"),
        "chunk_mask": torch.empty(2, 3, dtype=torch.bool, device="meta"),
    }
    metrics = TaggingMetrics()
    for metric in metrics.collected.values():
        metric.to("meta")
    trainer = SimpleNamespace(sanity_checking=False)
    with torch.no_grad():
        songs = module.validation_step(batch, 0)
        metrics.on_validation_batch_end(trainer, module, songs, batch, 0)  # type: ignore[arg-type]
    assert songs["scores"].shape == (2, 4) and songs["scores"].is_meta
    assert metrics.collected["val"].scores[0].is_meta and metrics.collected["val"].indices[0].is_meta
    # the check itself can fail: a host sync on a meta tensor raises
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(songs["scores"].sum() > 0)


@pytest.mark.parametrize("on_train_epoch_end", [False, True])
def test_last_checkpoint_is_the_latest_epoch_even_when_it_is_not_the_best(tmp_path, on_train_epoch_end):
    checkpoint = Checkpoint(
        dirpath=tmp_path / "checkpoints",
        filename="best",
        monitor="val/score",
        mode="max",
        save_last=True,
        save_on_train_epoch_end=on_train_epoch_end,
    )
    trainer = quiet_trainer(max_epochs=3, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(Worsening(), DataLoader(Songs(16, 0), batch_size=8), DataLoader(Songs(8, 1), batch_size=8))
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (best["epoch"], best["global_step"]) == (0, 2)
    assert (last["epoch"], last["global_step"]) == (2, 6)  # Lightning 2.6's own ModelCheckpoint: (0, 2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
