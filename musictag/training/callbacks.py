"""Song-level evaluation as Lightning callbacks: ROC-AUC / PR-AUC, per-tag tables and curves, outputs.

Any LightningModule can use them: its ``validation_step`` / ``test_step`` return the songs of the batch
as a mapping (:data:`SONG_KEYS`)::

    {"scores": (B, n_tags) song-level probabilities,
     "targets": (B, n_tags) 0/1 labels,
     "index": (B,) the songs' positions in the split's dataset (optional: song ids and ordering)}

and its ``predict_step`` ``{"scores", "index"}``. Tag names come from ``pl_module.tag_names``, else the
DataModule's ``tag_names``, else ``tag_0 …``.

- :class:`TaggingMetrics` logs ``val|test/roc_auc``, ``pr_auc``, ``skipped_tags`` (and ``accuracy`` for
  single-label tasks) to every logger; at test time also their bootstrap 95 % intervals
  (``test/roc_auc_ci_low`` / ``_ci_high`` ...), precision / recall / F1 at the per-tag thresholds chosen on
  validation (``test/f1_macro``, ``test/f1_micro`` ...), and the per-tag table and each tag's ROC and PR
  curve to the loggers that take tables (W&B).
- :class:`TestOutputsWriter` writes ``test_predictions.npz``, ``test_per_tag.csv`` and
  ``test_intervals.csv`` into the run folder.
- :class:`SongScoresWriter` writes the song scores of ``predict`` (one merged file under DDP).
- :class:`Checkpoint` is Lightning's ``ModelCheckpoint`` whose ``last.ckpt`` is always the latest state.
- :class:`~musictag.training.clock.TrainingClock` logs ``train/elapsed_s`` per epoch and ``model/n_params``.

Under DDP every process holds the songs its sampler gave it; the callbacks gather them (torchmetrics'
``cat`` reduction), so the numbers are those of one process scoring every song once. Song scores stay on
the device until the epoch ends: a batch only appends tensors, nothing waits for the host.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from musictag.files import atomic_write
from musictag.training.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, Interval
from musictag.training.clock import TrainingClock
from musictag.training.metrics import (
    SongMetrics,
    TaggingScores,
    ThresholdScores,
    f1_thresholds,
    tagging_scores,
)
from musictag.training.tables import (
    checkpoint_thresholds,
    log_per_tag_tables,
    per_tag_rows,
    statistics_of_test,
    write_test_tables,
)

Stage = Literal["val", "test"]
SONG_KEYS = ("scores", "targets", "index")


def tag_names_of(trainer: Any, pl_module: Any, n_tags: int) -> list[str]:
    """The tag names of the module, else of the DataModule, else ``tag_0 …``."""
    for owner in (pl_module, getattr(trainer, "datamodule", None)):
        names = getattr(owner, "tag_names", None)
        if names is not None and len(names) == n_tags:
            return [str(n) for n in names]
    return [f"tag_{i}" for i in range(n_tags)]


def song_ids(trainer: Any, split: str, indices: torch.Tensor | None, n_songs: int) -> list[str]:
    """The ids of a split's songs from the DataModule's dataset manifest, else their positions."""
    datasets = getattr(getattr(trainer, "datamodule", None), "datasets", None)
    dataset = datasets.get(split) if isinstance(datasets, Mapping) else None
    manifest = getattr(dataset, "manifest", None)
    if indices is None:
        return [str(i) for i in range(n_songs)]
    if manifest is None:
        return [str(int(i)) for i in indices]
    return [manifest.ids[int(i)] for i in indices]


def _song_outputs(outputs: Any, hook: str) -> Mapping[str, torch.Tensor]:
    if not isinstance(outputs, Mapping) or "scores" not in outputs:
        raise TypeError(
            f"the musictag evaluation callbacks need {hook} to return a mapping with 'scores' (B, n_tags), "
            f"'targets' (B, n_tags) and optionally 'index' (B,); got {type(outputs).__name__}"
        )
    return outputs


class _SongCollector(pl.Callback):
    """Collects the song outputs of ``val``/``test`` batches in one :class:`SongMetrics` per stage."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self.collected: dict[str, SongMetrics] = {stage: SongMetrics() for stage in self.stages}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for metric in self.collected.values():
            metric.to(pl_module.device)

    def _update(self, stage: Stage, outputs: Any, hook: str) -> None:
        if stage not in self.collected:
            return
        songs = _song_outputs(outputs, hook)
        if "targets" not in songs:
            raise TypeError(f"{hook} returned no 'targets': song-level metrics need the songs' labels")
        self.collected[stage].update(songs["scores"], songs["targets"], songs.get("index"))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "val" in self.collected:
            self.collected["val"].reset()

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "test" in self.collected:
            self.collected["test"].reset()

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("val", outputs, "validation_step")

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("test", outputs, "test_step")

    def _gathered(self, stage: Stage) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Scores, targets and indices of every process's songs, in dataset order when indices are known."""
        scores, targets, indices = self.collected[stage].gathered()
        if indices is not None:
            order = torch.argsort(indices)
            scores, targets, indices = scores[order], targets[order], indices[order]
        return scores, targets, indices


class TaggingMetrics(_SongCollector):
    """ROC-AUC and PR-AUC (macro over tags) of the song scores, logged as ``<stage>/roc_auc`` and
    ``<stage>/pr_auc`` with ``<stage>/skipped_tags`` (tags without a positive or a negative song, left out
    of the macro) and, for single-label tasks, ``<stage>/accuracy``.

    At test time also (:mod:`musictag.training.bootstrap`) ``test/<metric>_ci_low`` and ``_ci_high``, the
    bootstrap 95 % interval of each of those metrics, and for multilabel tasks ``test/precision_macro``,
    ``recall_macro``, ``f1_macro`` and their ``_micro`` forms at the per-tag thresholds that maximised F1
    on the validation songs (:func:`~musictag.training.metrics.f1_thresholds`).

    Thresholds: each validation chooses them and the checkpoints saved after it keep them
    (``tag_thresholds``): a test uses those of the checkpoint it tests (no validation pass; those chosen
    with these weights), else of the last validation, else 0.5 for every tag (and says so).

    Args:
        stages: the evaluation stages to score.
        accuracy: log ``accuracy`` (top-scored tag is one of the song's); ``None``: when the module's
            ``task`` is ``multiclass``.
        per_tag: stages whose per-tag table and ROC / PR curves go to the loggers that take tables (W&B).
        bootstrap_draws: resamplings of the test songs for the intervals (0: no intervals).
        bootstrap_seed: the seed of the resampling.

    Attributes:
        results: the last :class:`~musictag.training.metrics.TaggingScores` of each stage.
        intervals: the last test's :class:`~musictag.training.bootstrap.Interval` of each metric.
        thresholded: the last test's :class:`~musictag.training.metrics.ThresholdScores`.
        thresholds: the per-tag thresholds of the last validation (or of the tested checkpoint).
    """

    def __init__(
        self,
        stages: Sequence[Stage] = ("val", "test"),
        accuracy: bool | None = None,
        per_tag: Sequence[Stage] = ("test",),
        bootstrap_draws: int = DEFAULT_DRAWS,
        bootstrap_seed: int = DEFAULT_SEED,
    ) -> None:
        super().__init__(stages)
        self.accuracy = accuracy
        self.per_tag = tuple(per_tag)
        self.bootstrap_draws = bootstrap_draws
        self.bootstrap_seed = bootstrap_seed
        self.results: dict[str, TaggingScores] = {}
        self.intervals: list[Interval] = []
        self.thresholded: ThresholdScores | None = None
        self.thresholds: torch.Tensor | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.thresholds is not None:
            checkpoint["tag_thresholds"] = self.thresholds.clone()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # a resumed fit: a checkpoint written before its first validation keeps the thresholds
        if checkpoint.get("tag_thresholds") is not None:
            self.thresholds = torch.as_tensor(checkpoint["tag_thresholds"], dtype=torch.float32).clone()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.ckpt_path:
            self.thresholds = checkpoint_thresholds(trainer.ckpt_path)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_test_epoch_start(trainer, pl_module)
        self.intervals, self.thresholded = [], None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_end("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_end("test", trainer, pl_module)

    def _epoch_end(self, stage: Stage, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if stage not in self.collected:
            return
        scores, targets, _ = self._gathered(stage)  # a collective: every process calls it
        result = tagging_scores(scores, targets)
        self.results[stage] = result
        values = {
            f"{stage}/roc_auc": result.roc_auc,
            f"{stage}/pr_auc": result.pr_auc,
            f"{stage}/skipped_tags": float(len(result.skipped)),
        }
        wants_accuracy = self.accuracy
        if wants_accuracy is None:
            wants_accuracy = getattr(pl_module, "task", "multilabel") == "multiclass"
        if wants_accuracy:
            values[f"{stage}/accuracy"] = result.accuracy
        multiclass = getattr(pl_module, "task", "multilabel") == "multiclass"
        if stage == "val" and not multiclass:
            self.thresholds = f1_thresholds(scores, targets)
        if stage == "test":
            values.update(self._test_statistics(scores, targets, multiclass, wants_accuracy))
        for name, value in values.items():
            # Every process holds the same value, computed from the gathered songs: the reduction only
            # tells Lightning the value is global (no `sync_dist` warning); `max` of equal values is exact.
            pl_module.log(name, value, sync_dist=True, reduce_fx="max")
        if trainer.sanity_checking:
            return
        tags = tag_names_of(trainer, pl_module, scores.shape[1])
        if result.skipped:
            names = ", ".join(tags[i] for i in result.skipped)
            rank_zero_info(
                f"{stage}: {len(result.skipped)} tag(s) without positives or negatives left out: {names}"
            )
        if stage in self.per_tag and trainer.is_global_zero:
            rows = per_tag_rows(tags, result, targets, self.thresholded if stage == "test" else None)
            log_per_tag_tables(trainer, stage, rows, scores, targets, tags)

    def _test_statistics(
        self, scores: torch.Tensor, targets: torch.Tensor, multiclass: bool, accuracy: bool
    ) -> dict[str, float]:
        """The intervals and the thresholded precision / recall / F1 of a test, as logged values."""
        self.intervals, self.thresholded, values = statistics_of_test(
            scores, targets, self.thresholds, self.bootstrap_draws, self.bootstrap_seed, multiclass, accuracy
        )
        return values


class TestOutputsWriter(_SongCollector):
    """Writes what a test run leaves in its run folder (``trainer.log_dir``), so that any metric can be
    recomputed without the model:

    - ``test_predictions.npz``: ``song_ids``, ``tag_names``, ``scores`` (N, n_tags) float32 song-level
      probabilities, ``labels`` (N, n_tags) uint8, ``checkpoint`` (the tested checkpoint, or "") and
      ``task`` (``multilabel`` or ``multiclass``);
    - ``test_per_tag.csv``: ``tag, roc_auc, pr_auc, positives, songs`` (AUCs empty for tags left out),
      then for multilabel tasks ``threshold, precision, recall, f1`` at the validation thresholds;
    - ``test_intervals.csv``: ``metric, value, ci_low, ci_high, draws, seed``, the bootstrap 95 %
      intervals (:class:`TaggingMetrics`' settings; its defaults when the trainer has none).

    One row per song in dataset order, whatever the split of songs between processes was.

    Attributes:
        written: the files of the last test run.
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self) -> None:
        super().__init__(("test",))
        self.written: list[Path] = []

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        scores, targets, indices = self._gathered("test")  # a collective: every process calls it
        log_dir = trainer.log_dir  # on every process: under DDP it is a broadcast
        if not trainer.is_global_zero or log_dir is None:
            return
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        ids = song_ids(trainer, "test", indices, len(scores))
        tags = tag_names_of(trainer, pl_module, scores.shape[1])
        scores, targets = scores.cpu(), targets.cpu()
        task = str(getattr(pl_module, "task", "multilabel"))
        predictions = folder / "test_predictions.npz"
        with atomic_write(predictions) as tmp:
            np.savez_compressed(
                tmp,
                song_ids=np.array(ids),
                tag_names=np.array(tags),
                scores=scores.numpy().astype(np.float32),
                labels=targets.numpy().round().astype(np.uint8),
                checkpoint=np.array(str(trainer.ckpt_path or "")),
                task=np.array(task),
            )
        metrics = next((c for c in trainer.callbacks if isinstance(c, TaggingMetrics)), None)  # type: ignore[attr-defined]
        metrics = metrics or TaggingMetrics(stages=("test",))
        if not metrics.intervals and metrics.thresholded is None:  # it has not scored this test (yet)
            metrics._test_statistics(scores, targets, task == "multiclass", task == "multiclass")
        self.written = [predictions, *write_test_tables(folder, tags, scores, targets, metrics)]
        rank_zero_info(f"test outputs ({len(ids)} songs): {', '.join(str(p) for p in self.written)}")


class SongScoresWriter(BasePredictionWriter):
    """``predict``: the song-level scores of the predicted split, written to the run folder as
    ``predictions_<split>.npz`` (``song_ids``, ``tag_names``, ``scores``) and ``predictions_<split>.csv``
    (``id`` then one column per tag). Under DDP the processes' songs are gathered into one file, in
    dataset order.

    Args:
        output_dir: where to write; default the run folder (``trainer.log_dir``).

    Attributes:
        written: the files of the last predict run.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch_and_epoch")
        self.output_dir = output_dir
        self.collected = SongMetrics()
        self.written: list[Path] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.collected.to(pl_module.device)

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.collected.reset()

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        songs = _song_outputs(prediction, "predict_step")
        scores = songs["scores"]
        index = songs.get("index")
        if index is None:
            raise TypeError("predict_step returned no 'index': the writer needs the songs' dataset positions")
        self.collected.update(scores, torch.zeros_like(scores), index)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        scores, _, indices = self.collected.gathered()  # collectives: every process calls them
        log_dir = self.output_dir or trainer.log_dir  # (under DDP, log_dir is a broadcast)
        if not trainer.is_global_zero or indices is None:
            return
        order = torch.argsort(indices)
        scores, indices = scores[order].float().cpu(), indices[order].cpu()
        datamodule = getattr(trainer, "datamodule", None)
        split = getattr(datamodule, "predict_split", "predict")
        ids = song_ids(trainer, split, indices, len(scores))
        tags = tag_names_of(trainer, pl_module, scores.shape[1])
        folder = Path(log_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        npz, table = folder / f"predictions_{split}.npz", folder / f"predictions_{split}.csv"
        with atomic_write(npz) as tmp:
            np.savez_compressed(tmp, song_ids=np.array(ids), tag_names=np.array(tags), scores=scores.numpy())
        with atomic_write(table) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", *tags])
            writer.writerows(
                [song, *(f"{v:.6f}" for v in row)] for song, row in zip(ids, scores.tolist(), strict=True)
            )
        self.written = [npz, table]
        rank_zero_info(f"predictions ({len(ids)} songs of split {split!r}): {npz}, {table}")


class SharedRunFolder(pl.Callback):
    """Every process of a multi-process run works in rank 0's run folder, and ends its process group
    before its interpreter finalizes.

    Run folder: each process builds its own loggers. Under ``ddp_spawn`` the ranks get the parent's
    (pickled), but under ``torchrun`` every process works out ``version_N`` for itself, and a rank that
    looks after rank 0 has made its folder takes the next number. The process group does not exist yet
    when the loggers are built, and it cannot be started early and again later under ``torchrun`` (gloo
    would meet the ranks' addresses of the first group in the launcher's store), so the folder is shared
    at ``setup``, the first hook after Lightning started the group: rank 0's CSV version and
    ``default_root_dir`` are broadcast and every rank takes them, before any callback or logger writes.

    Process group: Lightning destroys only an NCCL group at exit. A gloo group left to the end is torn
    down while Python finalizes, and a gloo worker thread still releasing the last collective's tensors
    then needs the GIL, which a finalizing interpreter refuses by ending the thread: the unwinding
    crosses a ``noexcept`` destructor and ``std::terminate`` aborts the rank ("terminate called without
    an active exception", SIGABRT after its outputs are written; seen in a core of rank 1:
    ``ProcessGroupGloo::runLoop`` → ``~AsyncBarrierWork`` → ``~AsyncAllgatherWork`` →
    ``TensorImpl::decref_pyobject`` → ``take_gil`` → ``pthread_exit``). pytorch/pytorch#179291 proposed
    the same remedy in torch (abandoned). An ``atexit`` handler, which runs before finalization on
    success, on an error and on SIGTERM (Lightning turns it into an exception), destroys the group,
    which waits for its workers. The group is kept until then: under ``torchrun`` the next command of
    the same process reuses it, as Lightning does.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return
        _destroy_process_group_at_exit()
        if trainer.world_size < 2:
            return
        versions = [getattr(lg, "_version", None) for lg in trainer.loggers]
        root, versions = trainer.strategy.broadcast((trainer.default_root_dir, versions))
        # the attribute behind the read-only property (set by Lightning's Trainer.__init__)
        trainer._default_root_dir = root  # type: ignore[attr-defined]
        for lg, version in zip(trainer.loggers, versions, strict=True):
            if version is not None and hasattr(lg, "_version"):
                lg._version = version


_AT_EXIT_REGISTERED = False


def _destroy_process_group_at_exit() -> None:
    """Register (once per process) the ``atexit`` handler that destroys the default process group."""
    global _AT_EXIT_REGISTERED
    if _AT_EXIT_REGISTERED:
        return
    import atexit

    def destroy() -> None:
        if torch.distributed.is_initialized():
            # releases the GIL while it joins the group's threads (torch's holder of process groups)
            torch.distributed.destroy_process_group()

    atexit.register(destroy)
    _AT_EXIT_REGISTERED = True


def default_callbacks(
    subcommand: str | None, bootstrap_draws: int = DEFAULT_DRAWS, bootstrap_seed: int = DEFAULT_SEED
) -> list[pl.Callback]:
    """The callbacks ``musictag`` installs for a subcommand (a user's own instances win): evaluation, and
    the run folder and process group of a multi-process run."""
    callbacks: list[pl.Callback] = [
        SharedRunFolder(),
        TaggingMetrics(bootstrap_draws=bootstrap_draws, bootstrap_seed=bootstrap_seed),
        TrainingClock(),
    ]
    if subcommand in (None, "test"):
        callbacks.append(TestOutputsWriter())
    if subcommand == "predict":
        callbacks.append(SongScoresWriter())
    return callbacks


class Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``save_last`` writes ``last.ckpt`` at every save point (each validation, or
    each training epoch's end), whether or not a top-k checkpoint was written there.

    From Lightning 2.6 ``last.ckpt`` is written only when a top-k checkpoint is written at the same step,
    so with ``save_top_k: 1`` it is a copy of the best epoch's state, and resuming "from the last
    checkpoint" would silently repeat every epoch since the best one. This keeps the meaning it had before
    (and has in Lightning 2.5, where nothing is written twice: the second write is skipped).
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_if_missed(self, trainer: pl.Trainer) -> None:
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
