"""What a test run leaves in its run folder, so any metric can be recomputed without the model:

- ``test_predictions.npz``: ``song_ids``, ``tag_names``, ``scores`` (N, n_tags) float32 song-level
  probabilities, ``labels`` (N, n_tags) uint8;
- ``test_per_tag.csv``: ``tag, roc_auc, pr_auc, positives, songs`` (AUCs empty for tags left out);

and, with a W&B logger, the per-tag table (``test/per_tag``) and ROC / PR curves of every tag.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from musictag.metrics import TaggingScores

if TYPE_CHECKING:
    from musictag.module import TaggingModule


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary sibling to write; renamed to ``path`` only when the block completes."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def song_ids(trainer: Any, split: str, indices: torch.Tensor | None, n_songs: int) -> list[str]:
    """The ids of a split's songs from the DataModule's dataset, else their positions."""
    dataset = getattr(getattr(trainer, "datamodule", None), "datasets", {}).get(split)
    manifest = getattr(dataset, "manifest", None)
    if indices is None:
        return [str(i) for i in range(n_songs)]
    if manifest is None:
        return [str(int(i)) for i in indices]
    return [manifest.ids[int(i)] for i in indices]


def write_test_outputs(
    module: TaggingModule,
    result: TaggingScores,
    scores: torch.Tensor,
    targets: torch.Tensor,
    indices: torch.Tensor | None,
) -> None:
    trainer = module.trainer
    log_dir = trainer.log_dir  # on every process: under DDP it is a broadcast
    if trainer.global_rank != 0 or log_dir is None:
        return
    if indices is not None:  # one row per song, in dataset order, whatever the process split was
        order = torch.argsort(indices)
        scores, targets, indices = scores[order], targets[order], indices[order]
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ids = song_ids(trainer, "test", indices, len(scores))
    tags = list(module.tag_names)
    with atomic_output(folder / "test_predictions.npz") as tmp:
        np.savez_compressed(
            tmp,
            song_ids=np.array(ids),
            tag_names=np.array(tags),
            scores=scores.cpu().numpy().astype(np.float32),
            labels=targets.cpu().numpy().round().astype(np.uint8),
        )
    positives = targets.round().sum(dim=0).long().tolist()
    rows = [
        {
            "tag": tag,
            "roc_auc": "" if np.isnan(roc) else f"{roc:.6f}",
            "pr_auc": "" if np.isnan(ap) else f"{ap:.6f}",
            "positives": positives[j],
            "songs": len(scores),
        }
        for j, (tag, roc, ap) in enumerate(
            zip(tags, result.per_tag_roc_auc.tolist(), result.per_tag_pr_auc.tolist(), strict=True)
        )
    ]
    with atomic_output(folder / "test_per_tag.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _log_to_wandb(trainer, rows, scores, targets, tags)


def _log_to_wandb(
    trainer: Any, rows: list[dict[str, Any]], scores: torch.Tensor, targets: torch.Tensor, tags: list[str]
) -> None:
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        import wandb
        from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

        columns = list(rows[0])
        logger.log_table("test/per_tag", columns=columns, data=[[row[c] for c in columns] for row in rows])
        curves: dict[str, Any] = {}
        for j, tag in enumerate(tags):
            labels = targets[:, j].round().long()
            if 0 < int(labels.sum()) < len(labels):
                fpr, tpr, _ = binary_roc(scores[:, j], labels)
                precision, recall, _ = binary_precision_recall_curve(scores[:, j], labels)
                curves[f"test/roc/{tag}"] = wandb.plot.line(
                    wandb.Table(
                        data=list(zip(fpr.tolist(), tpr.tolist(), strict=True)), columns=["fpr", "tpr"]
                    ),
                    "fpr",
                    "tpr",
                    title=f"ROC {tag}",
                )
                curves[f"test/pr/{tag}"] = wandb.plot.line(
                    wandb.Table(
                        data=list(zip(recall.tolist(), precision.tolist(), strict=True)),
                        columns=["recall", "precision"],
                    ),
                    "recall",
                    "precision",
                    title=f"PR {tag}",
                )
        if curves:
            logger.experiment.log(curves)


class SongScoresWriter:
    """``musictag predict``: the song-level scores of the predicted split, written to the run folder as
    ``predictions_<split>.npz`` (``song_ids``, ``tag_names``, ``scores``) and ``predictions_<split>.csv``
    (``id`` then one column per tag); one file per process under DDP (``...-rank<r>``)."""

    def __new__(cls) -> Any:  # a Lightning callback, built lazily so this module stays light to import
        from lightning.pytorch.callbacks import BasePredictionWriter

        class _Writer(BasePredictionWriter):
            def __init__(self) -> None:
                super().__init__(write_interval="epoch")

            def write_on_epoch_end(
                self, trainer: Any, pl_module: Any, predictions: Any, batch_indices: Any
            ) -> None:
                outputs = [
                    o
                    for group in (
                        predictions if predictions and isinstance(predictions[0], list) else [predictions]
                    )
                    for o in group
                ]
                if not outputs:
                    return
                indices = torch.cat([o["index"] for o in outputs]).cpu()
                scores = torch.cat([o["scores"] for o in outputs]).float().cpu()
                split = getattr(trainer.datamodule, "predict_split", "predict")
                ids = song_ids(trainer, split, indices, len(scores))
                folder = Path(trainer.log_dir or ".")
                folder.mkdir(parents=True, exist_ok=True)
                suffix = f"-rank{trainer.global_rank}" if trainer.world_size > 1 else ""
                tags = list(pl_module.tag_names)
                with atomic_output(folder / f"predictions_{split}{suffix}.npz") as tmp:
                    np.savez_compressed(
                        tmp, song_ids=np.array(ids), tag_names=np.array(tags), scores=scores.numpy()
                    )
                with (
                    atomic_output(folder / f"predictions_{split}{suffix}.csv") as tmp,
                    open(tmp, "w", newline="") as f,
                ):
                    writer = csv.writer(f)
                    writer.writerow(["id", *tags])
                    writer.writerows(
                        [song, *(f"{v:.6f}" for v in row)]
                        for song, row in zip(ids, scores.tolist(), strict=True)
                    )

        return _Writer()
