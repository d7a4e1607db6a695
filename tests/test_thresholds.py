"""Precision / recall / F1 at per-tag thresholds chosen on validation: hand-computed values, and the
thresholds' way from a validation through a checkpoint into the test that loads it."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.plain import PlainModule, Songs, Worsening
from helpers.trainer import quiet_trainer
from musictag.training.bootstrap import bootstrap_intervals
from musictag.training.callbacks import Checkpoint, TaggingMetrics, TestOutputsWriter
from musictag.training.metrics import DEFAULT_THRESHOLD, f1_thresholds, threshold_scores

# validation songs (rows) x 3 tags
VAL_SCORES = torch.tensor(
    [[0.9, 0.4, 0.3], [0.8, 0.4, 0.2], [0.7, 0.2, 0.9], [0.6, 0.2, 0.1], [0.5, 0.1, 0.4]]
)
VAL_LABELS = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])


def test_the_threshold_maximises_f1_on_the_validation_songs():
    # tag 0, cut after k songs by score: F1 = 2/3, 2/4, 4/5 (>= 0.7), 4/6, 4/7
    # tag 1, tied scores cut only between groups: >= 0.4: 2/5; >= 0.2: 6/7; >= 0.1: 6/8
    # tag 2 has no positive: the default threshold
    thresholds = f1_thresholds(VAL_SCORES, VAL_LABELS)
    assert thresholds.tolist() == pytest.approx([0.7, 0.2, DEFAULT_THRESHOLD])
    # of equal F1s the highest threshold: one positive at the top, 0.9 and 0.8 give F1 1 and 2/3
    assert f1_thresholds(torch.tensor([[0.9], [0.8]]), torch.tensor([[1], [0]])).tolist() == pytest.approx(
        [0.9]
    )


def test_precision_recall_and_f1_by_hand():
    scores = torch.tensor([[0.95, 0.1, 0.6], [0.7, 0.3, 0.4], [0.3, 0.25, 0.2], [0.1, 0.2, 0.1]])
    labels = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    result = threshold_scores(scores, labels, torch.tensor([0.7, 0.2, 0.5]))
    # tag 0: predicted songs 0, 1 -> tp 1, fp 1, fn 1; tag 1: songs 1, 2, 3 -> tp 1, fp 2, fn 1;
    # tag 2: song 0 -> tp 0, fp 1, and no positive: recall and F1 undefined, left out of the macro
    assert result.precision.tolist() == pytest.approx([1 / 2, 1 / 3, 0.0])
    np.testing.assert_allclose(result.recall.numpy(), [1 / 2, 1 / 2, np.nan])
    np.testing.assert_allclose(result.f1.numpy(), [1 / 2, 2 / 5, np.nan], rtol=1e-6)
    assert result.precision_macro == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert result.recall_macro == pytest.approx(1 / 2)
    assert result.f1_macro == pytest.approx((1 / 2 + 2 / 5) / 2)
    # micro: tp 2, fp 4, fn 2 over every tag
    assert (result.precision_micro, result.recall_micro, result.f1_micro) == pytest.approx(
        (2 / 6, 2 / 4, 4 / 10)
    )
    # a tag predicted for no song has precision 0
    none = threshold_scores(scores[:, :1], labels[:, :1], torch.tensor([2.0]))
    assert none.precision.tolist() == [0.0] and none.f1.tolist() == [0.0] and none.precision_micro == 0.0
    with pytest.raises(ValueError, match=r"thresholds of shape \(2,\) for 3 tags"):
        threshold_scores(scores, labels, torch.tensor([0.5, 0.5]))


def test_a_test_of_the_best_checkpoint_uses_its_validation_thresholds(tmp_path):
    """Validation thresholds travel in the checkpoint: ``best.ckpt`` (the first epoch here) holds those of
    its own validation, not the last epoch's, and a test of it scores with them."""
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    val, test = Songs(40, seed=1), Songs(50, seed=2)
    metrics = TaggingMetrics(bootstrap_draws=60, bootstrap_seed=3)
    checkpoint = Checkpoint(dirpath=tmp_path / "ckpt", filename="best", monitor="val/score", mode="max")
    seen: list[torch.Tensor] = []

    class Recorder(pl.Callback):  # after `metrics`: the thresholds of each validation
        def on_validation_epoch_end(self, trainer, pl_module):  # type: ignore[no-untyped-def]
            seen.append(metrics.thresholds.clone())  # type: ignore[union-attr]

    trainer = quiet_trainer(
        max_epochs=3,
        callbacks=[metrics, Recorder(), checkpoint, TestOutputsWriter()],
        enable_checkpointing=True,
        logger=CSVLogger(tmp_path, name="plain"),
        num_sanity_val_steps=0,
    )
    module = Worsening()
    trainer.fit(module, DataLoader(Songs(64, seed=0), batch_size=8), DataLoader(val, batch_size=8))
    saved = torch.load(tmp_path / "ckpt" / "best.ckpt", map_location="cpu", weights_only=True)
    assert len(seen) == 3 and not torch.equal(seen[0], seen[2])
    torch.testing.assert_close(saved["tag_thresholds"], seen[0])

    result = trainer.test(module, DataLoader(test, batch_size=8), ckpt_path="best", verbose=False)[0]
    with torch.no_grad():
        best = PlainModule()
        best.load_state_dict(saved["state_dict"])
        scores = torch.sigmoid(best.linear(test.features))
    expected = threshold_scores(scores, test.targets, seen[0])
    for name in ("precision", "recall", "f1"):
        for kind in ("macro", "micro"):
            assert result[f"test/{name}_{kind}"] == pytest.approx(
                getattr(expected, f"{name}_{kind}"), abs=1e-6
            )
    folder = tmp_path / "plain" / "version_0"
    per_tag = list(csv.DictReader(open(folder / "test_per_tag.csv")))
    assert [float(row["threshold"]) for row in per_tag] == pytest.approx(seen[0].tolist(), abs=1e-6)
    assert [float(row["f1"]) for row in per_tag] == pytest.approx(expected.f1.tolist(), abs=1e-6)
    # the intervals: logged, and in test_intervals.csv, as bootstrap_intervals gives them
    intervals = bootstrap_intervals(scores.double().numpy(), test.targets.numpy(), draws=60, seed=3)
    written = {row["metric"]: row for row in csv.DictReader(open(folder / "test_intervals.csv"))}
    assert sorted(written) == ["pr_auc", "roc_auc"]
    for interval in intervals:
        row = written[interval.metric]
        assert float(row["ci_low"]) == pytest.approx(interval.low, abs=1e-6)
        assert float(row["ci_high"]) == pytest.approx(interval.high, abs=1e-6)
        assert (row["draws"], row["seed"]) == ("60", "3")
        assert result[f"test/{interval.metric}_ci_low"] == pytest.approx(interval.low, abs=1e-6)
        assert result[f"test/{interval.metric}_ci_high"] == pytest.approx(interval.high, abs=1e-6)
        assert interval.low <= result[f"test/{interval.metric}"] <= interval.high
    logged = list(csv.DictReader(open(folder / "metrics.csv")))
    assert any(row.get("test/roc_auc_ci_low") for row in logged) and any(
        row.get("test/f1_micro") for row in logged
    )


def test_without_validation_thresholds_every_tag_is_cut_at_the_default():
    metrics = TaggingMetrics(bootstrap_draws=0)
    scores, labels = VAL_SCORES, VAL_LABELS
    values = metrics._test_statistics(scores, labels, False, False)
    assert metrics.intervals == [] and "test/roc_auc_ci_low" not in values  # no draws: no intervals
    expected = threshold_scores(scores, labels, torch.full((3,), DEFAULT_THRESHOLD))
    assert values["test/f1_micro"] == pytest.approx(expected.f1_micro)
    assert metrics.thresholded is not None and metrics.thresholded.thresholds.tolist() == [0.5] * 3


class OneLabel(Songs):
    """Single-label songs: the tag of each is its largest noisy feature."""

    def __init__(self, n: int, seed: int) -> None:
        super().__init__(n, seed)
        self.targets = torch.nn.functional.one_hot(self.features[:, :3].argmax(dim=1), 3).float()


def test_a_multiclass_test_has_the_interval_of_its_accuracy_and_no_thresholds(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    module = PlainModule()
    module.task = "multiclass"  # type: ignore[attr-defined]
    songs = OneLabel(40, seed=4)
    metrics = TaggingMetrics(bootstrap_draws=80, bootstrap_seed=1)
    trainer = quiet_trainer(logger=CSVLogger(tmp_path, name="mc"), callbacks=[metrics, TestOutputsWriter()])
    result = trainer.test(module, DataLoader(songs, batch_size=8), verbose=False)[0]
    with torch.no_grad():
        scores = torch.sigmoid(module.linear(songs.features)).double().numpy()
    expected = {
        i.metric: i
        for i in bootstrap_intervals(scores, songs.targets.numpy(), draws=80, seed=1, multiclass=True)
    }
    assert result["test/accuracy"] == pytest.approx(expected["accuracy"].value, abs=1e-6)
    assert result["test/accuracy_ci_low"] == pytest.approx(expected["accuracy"].low, abs=1e-6)
    assert result["test/accuracy_ci_high"] == pytest.approx(expected["accuracy"].high, abs=1e-6)
    assert "test/f1_macro" not in result and metrics.thresholded is None
    folder = tmp_path / "mc" / "version_0"
    written = [row["metric"] for row in csv.DictReader(open(folder / "test_intervals.csv"))]
    assert written == ["roc_auc", "pr_auc", "accuracy"]
    assert "threshold" not in next(csv.DictReader(open(folder / "test_per_tag.csv")))
    assert str(np.load(folder / "test_predictions.npz")["task"]) == "multiclass"


def test_a_resumed_fit_keeps_the_thresholds_of_its_checkpoint():
    metrics = TaggingMetrics()
    metrics.on_load_checkpoint(None, None, {"tag_thresholds": torch.tensor([0.2, 0.7])})  # type: ignore[arg-type]
    assert metrics.thresholds is not None and metrics.thresholds.tolist() == pytest.approx([0.2, 0.7])
    saved: dict = {}
    metrics.on_save_checkpoint(None, None, saved)  # type: ignore[arg-type]
    assert saved["tag_thresholds"].tolist() == pytest.approx([0.2, 0.7])
    metrics.on_load_checkpoint(None, None, {})  # type: ignore[arg-type]  # an older checkpoint: kept as they were
    assert metrics.thresholds.tolist() == pytest.approx([0.2, 0.7])
