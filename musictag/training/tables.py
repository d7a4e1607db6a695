"""What a test adds to the point metrics: intervals, thresholded scores, and the per-tag tables.

:func:`statistics_of_test` gives the test's bootstrap intervals (:mod:`musictag.training.bootstrap`) and its
precision / recall / F1 at per-tag thresholds (:mod:`musictag.training.metrics`) as logged values;
:func:`per_tag_rows` the rows of ``test_per_tag.csv`` and of the W&B per-tag table; the callbacks of
:mod:`musictag.training.callbacks` log and write them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from musictag.files import atomic_write
from musictag.training.bootstrap import Interval, bootstrap_intervals
from musictag.training.metrics import (
    DEFAULT_THRESHOLD,
    TaggingScores,
    ThresholdScores,
    tagging_scores,
    threshold_scores,
)


def statistics_of_test(
    scores: torch.Tensor,
    targets: torch.Tensor,
    thresholds: torch.Tensor | None,
    draws: int,
    seed: int,
    multiclass: bool,
    accuracy: bool,
) -> tuple[list[Interval], ThresholdScores | None, dict[str, float]]:
    """A test's intervals (none with ``draws`` 0), its thresholded scores (multilabel tasks: at
    ``thresholds``, :data:`~musictag.training.metrics.DEFAULT_THRESHOLD` for every tag without them),
    and both as the logged ``test/...`` values."""
    values: dict[str, float] = {}
    intervals: list[Interval] = []
    thresholded = None
    if draws > 0 and len(scores):
        labels = targets.cpu().round().numpy()
        intervals = bootstrap_intervals(scores.cpu().double().numpy(), labels, draws, seed, multiclass)
        for interval in intervals:
            if interval.metric != "accuracy" or accuracy:
                values[f"test/{interval.metric}_ci_low"] = interval.low
                values[f"test/{interval.metric}_ci_high"] = interval.high
    if not multiclass:
        if thresholds is None or thresholds.shape != scores.shape[1:]:
            rank_zero_info(
                "test: no validation thresholds (neither in the checkpoint nor from a validation run): "
                f"precision / recall / F1 at {DEFAULT_THRESHOLD} for every tag"
            )
            thresholds = torch.full(scores.shape[1:], DEFAULT_THRESHOLD)
        thresholded = threshold_scores(scores, targets, thresholds)
        for name in ("precision", "recall", "f1"):
            for kind in ("macro", "micro"):
                values[f"test/{name}_{kind}"] = getattr(thresholded, f"{name}_{kind}")
    return intervals, thresholded, values


def interval_rows(intervals: list[Interval], draws: int, seed: int) -> list[dict[str, Any]]:
    """The rows of ``test_intervals.csv``: ``metric, value, ci_low, ci_high, draws, seed``."""
    return [
        {
            "metric": i.metric,
            "value": _fmt(i.value),
            "ci_low": _fmt(i.low),
            "ci_high": _fmt(i.high),
            "draws": draws,
            "seed": seed,
        }
        for i in intervals
    ]


def write_test_tables(
    folder: Path, tags: list[str], scores: torch.Tensor, targets: torch.Tensor, metrics: Any
) -> list[Path]:
    """``test_per_tag.csv`` and (with intervals) ``test_intervals.csv`` in ``folder``, from the scores and
    what ``metrics`` (the test's :class:`~musictag.training.callbacks.TaggingMetrics`) made of them:
    ``thresholded``, ``intervals``, ``bootstrap_draws``, ``bootstrap_seed``. Returns the files written."""
    per_tag, intervals = folder / "test_per_tag.csv", folder / "test_intervals.csv"
    write_rows(per_tag, per_tag_rows(tags, tagging_scores(scores, targets), targets, metrics.thresholded))
    if not metrics.intervals:
        return [per_tag]
    write_rows(intervals, interval_rows(metrics.intervals, metrics.bootstrap_draws, metrics.bootstrap_seed))
    return [per_tag, intervals]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as a CSV file with a header, written whole or not at all."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def checkpoint_thresholds(path: str | Path) -> torch.Tensor | None:
    """The per-tag thresholds a checkpoint holds (``tag_thresholds``), or ``None``.

    Memory-mapped: only that entry is read, not the weights (the test has loaded those already)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  (a remote or a foreign file: the test itself has read the weights)
        return None
    thresholds = checkpoint.get("tag_thresholds") if isinstance(checkpoint, dict) else None
    return torch.as_tensor(thresholds, dtype=torch.float32).clone() if thresholds is not None else None


def _fmt(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6f}"


def per_tag_rows(
    tags: list[str],
    result: TaggingScores,
    targets: torch.Tensor,
    thresholded: ThresholdScores | None = None,
) -> list[dict[str, Any]]:
    """One row per tag: ``tag, roc_auc, pr_auc, positives, songs`` (AUCs ``""`` for tags left out), and
    with ``thresholded`` ``threshold, precision, recall, f1`` (recall and F1 ``""`` without positives)."""
    positives = targets.round().sum(dim=0).long().tolist()
    rows: list[dict[str, Any]] = [
        {
            "tag": tag,
            "roc_auc": _fmt(roc),
            "pr_auc": _fmt(ap),
            "positives": positives[j],
            "songs": int(targets.shape[0]),
        }
        for j, (tag, roc, ap) in enumerate(
            zip(tags, result.per_tag_roc_auc.tolist(), result.per_tag_pr_auc.tolist(), strict=True)
        )
    ]
    if thresholded is not None:
        for j, row in enumerate(rows):
            for name in ("thresholds", "precision", "recall", "f1"):
                row[name.removesuffix("s")] = _fmt(float(getattr(thresholded, name)[j]))
    return rows


def log_per_tag_tables(
    trainer: Any,
    stage: str,
    rows: list[dict[str, Any]],
    scores: torch.Tensor,
    targets: torch.Tensor,
    tags: list[str],
) -> None:
    """The per-tag table (``<stage>/per_tag``) and each tag's ROC and PR curves, to every W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        import wandb
        from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

        columns = list(rows[0])
        logger.log_table(
            f"{stage}/per_tag", columns=columns, data=[[row[c] for c in columns] for row in rows]
        )
        curves: dict[str, Any] = {}
        for j, tag in enumerate(tags):
            labels = targets[:, j].round().long()
            if not 0 < int(labels.sum()) < len(labels):
                continue
            fpr, tpr, _ = binary_roc(scores[:, j], labels)
            precision, recall, _ = binary_precision_recall_curve(scores[:, j], labels)
            for kind, x, y, x_name, y_name in (
                ("roc", fpr, tpr, "fpr", "tpr"),
                ("pr", recall, precision, "recall", "precision"),
            ):
                table = wandb.Table(
                    data=list(zip(x.tolist(), y.tolist(), strict=True)), columns=[x_name, y_name]
                )
                curves[f"{stage}/{kind}/{tag}"] = wandb.plot.line(
                    table, x_name, y_name, title=f"{kind.upper()} {tag}"
                )
        if curves:
            logger.experiment.log(curves)
