"""Song-level evaluation: chunk-score aggregation and ROC-AUC / PR-AUC over tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torchmetrics import MeanMetric, Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.utilities import dim_zero_cat

Aggregation = Literal["mean", "max", "vote", "logit_mean"]


def aggregate_chunks(
    chunk_scores: torch.Tensor,
    how: Aggregation = "mean",
    mask: torch.Tensor | None = None,
    logits: torch.Tensor | None = None,
    single_label: bool = False,
) -> torch.Tensor:
    """Chunk probabilities ``(B, n_chunks, n_tags)`` → song scores ``(B, n_tags)``.

    ``mean`` averages the chunk probabilities (the field's standard), ``max`` keeps the most confident
    chunk, ``vote`` is the fraction of chunks whose probability exceeds 0.5, ``logit_mean`` the sigmoid of
    the mean chunk logit (MARBLE's song score; for sigmoid outputs only). ``mask`` ``(B, n_chunks)``
    marks the real chunks when songs of a batch have different numbers of chunks (sliding windows).
    ``logits``, the chunk logits behind the probabilities, make ``logit_mean`` exact where a probability
    has rounded to 0 or 1 (without them the logits are recovered from the probabilities).
    ``single_label`` (a multiclass model's softmax outputs): ``vote`` is the majority vote, each chunk
    voting for its top class, the score of a class the fraction of chunks that voted for it (Pons et al.
    2016); a tie goes to the class of the lower index.
    """
    if chunk_scores.ndim != 3:
        raise ValueError(f"chunk scores must be (songs, chunks, tags), got shape {tuple(chunk_scores.shape)}")
    if how not in ("mean", "max", "vote", "logit_mean"):
        raise ValueError(f"unknown aggregation {how!r}; use 'mean', 'max', 'vote' or 'logit_mean'")
    if mask is None:
        mask = torch.ones(chunk_scores.shape[:2], dtype=torch.bool, device=chunk_scores.device)
    weights = mask.unsqueeze(-1).to(chunk_scores.dtype)
    count = weights.sum(dim=1).clamp(min=1)
    if how == "mean":
        return (chunk_scores * weights).sum(dim=1) / count
    if how == "logit_mean":
        if logits is None:
            logits = torch.logit(chunk_scores, eps=torch.finfo(chunk_scores.dtype).eps)
        return torch.sigmoid((logits.to(chunk_scores.dtype) * weights).sum(dim=1) / count)
    if how == "max":
        return chunk_scores.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    if single_label:
        top = chunk_scores.argmax(dim=-1, keepdim=True)
        votes = torch.zeros_like(chunk_scores).scatter_(-1, top, 1.0)
    else:
        votes = (chunk_scores > 0.5).to(chunk_scores.dtype)
    return (votes * weights).sum(dim=1) / count


@dataclass
class TaggingScores:
    """Macro and per-tag ROC-AUC and PR-AUC (average precision) of one split.

    Tags with no positive or no negative song have no defined AUC: they are left out of the macro
    averages, their per-tag values are NaN, and their indices are listed in ``skipped``.
    """

    roc_auc: float
    pr_auc: float
    per_tag_roc_auc: torch.Tensor
    per_tag_pr_auc: torch.Tensor
    skipped: list[int] = field(default_factory=list)
    n_songs: int = 0
    accuracy: float = float("nan")  # songs whose top-scored tag is one of theirs (single-label tasks)


def tagging_scores(scores: torch.Tensor, targets: torch.Tensor) -> TaggingScores:
    """Exact ROC-AUC and average precision per tag from song scores and 0/1 targets, ``(N, n_tags)``."""
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(
            f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} must both be (N, n_tags)"
        )
    n_tags = scores.shape[1]
    scores = scores.float()
    targets = targets.round().long()
    roc = torch.full((n_tags,), float("nan"))
    ap = torch.full((n_tags,), float("nan"))
    skipped: list[int] = []
    for tag in range(n_tags):
        positives = int(targets[:, tag].sum())
        if positives == 0 or positives == targets.shape[0]:
            skipped.append(tag)
            continue
        roc[tag] = binary_auroc(scores[:, tag], targets[:, tag], thresholds=None).cpu()
        ap[tag] = binary_average_precision(scores[:, tag], targets[:, tag], thresholds=None).cpu()
    valid = ~torch.isnan(roc)
    macro_roc = float(roc[valid].mean()) if valid.any() else float("nan")
    macro_ap = float(ap[valid].mean()) if valid.any() else float("nan")
    top = scores.argmax(dim=1, keepdim=True)
    accuracy = float(targets.gather(1, top).float().mean()) if len(scores) else float("nan")
    return TaggingScores(macro_roc, macro_ap, roc, ap, skipped, int(scores.shape[0]), accuracy)


class SongMetrics(Metric):
    """Collects song scores and targets (gathered across processes) and computes :func:`tagging_scores`."""

    full_state_update = False
    scores: list[torch.Tensor]  # list states (torchmetrics), typed for the type checker
    targets: list[torch.Tensor]
    indices: list[torch.Tensor]

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")
        self.add_state("indices", default=[], dist_reduce_fx="cat")

    def update(
        self, scores: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor | None = None
    ) -> None:
        self.scores.append(scores.detach().float())
        self.targets.append(targets.detach().float())
        if indices is not None:
            self.indices.append(indices.detach().long())

    def gathered(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Song scores, targets and dataset indices of every process (a collective under DDP)."""
        with self.sync_context():
            indices = dim_zero_cat(self.indices) if len(self.indices) else None
            return dim_zero_cat(self.scores), dim_zero_cat(self.targets), indices

    def compute(self) -> TaggingScores:
        return tagging_scores(dim_zero_cat(self.scores), dim_zero_cat(self.targets))


class WeightedMean(MeanMetric):
    """A weighted mean synced as sums and counts, without a NaN check (which would wait for the device).

    torchmetrics' ``MeanMetric(nan_strategy="disable")`` drops the weights (1.9: every update counts 1),
    which made the evaluation loss a mean of batch means: another value under DDP, whose processes hold
    batches of other sizes. Here ``value`` and ``weight`` (broadcast to ``value``) are used as given.
    """

    def __init__(self) -> None:
        super().__init__(nan_strategy="disable")

    def update(self, value: torch.Tensor, weight: torch.Tensor | float = 1.0) -> None:  # type: ignore[override]
        weight = torch.broadcast_to(
            torch.as_tensor(weight, dtype=value.dtype, device=value.device), value.shape
        )
        self.mean_value += (value * weight).sum()
        self.weight += weight.sum()


#: The threshold of a tag whose validation songs hold no positive (its F1 is 0 at every threshold).
DEFAULT_THRESHOLD = 0.5


def f1_thresholds(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per tag, the score threshold that maximises F1 on these songs, ``(N, n_tags)`` → ``(n_tags,)``.

    A song is predicted positive when its score is ``>=`` the threshold. The candidates are the songs'
    own scores (every F1 the songs can give is reached at one of them); of equal F1s the highest
    threshold wins. A tag without positive songs gets :data:`DEFAULT_THRESHOLD`.
    """
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(
            f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} must both be (N, n_tags)"
        )
    if scores.shape[0] == 0:
        return torch.full((scores.shape[1],), DEFAULT_THRESHOLD)
    scores = scores.detach().double().cpu()
    targets = targets.detach().round().double().cpu()
    ordered, order = torch.sort(scores, dim=0, descending=True, stable=True)
    true_positives = torch.cumsum(targets.gather(0, order), dim=0)  # predicted: the first k + 1 songs
    predicted = torch.arange(1, len(scores) + 1, dtype=torch.float64).unsqueeze(1)
    positives = targets.sum(dim=0)
    f1 = 2 * true_positives / (predicted + positives)
    # a threshold predicts a whole group of tied scores: only the last song of each group is a cut
    cut = torch.ones_like(ordered, dtype=torch.bool)
    cut[:-1] = ordered[:-1] != ordered[1:]
    f1 = f1.masked_fill(~cut, -1.0)
    best = f1.argmax(dim=0, keepdim=True)  # the first maximum: the highest threshold
    thresholds = ordered.gather(0, best).squeeze(0)
    return torch.where(positives > 0, thresholds, DEFAULT_THRESHOLD).float()


@dataclass
class ThresholdScores:
    """Precision, recall and F1 of the songs whose score reaches each tag's threshold.

    Per tag: precision is 0 for a tag predicted for no song; recall and F1 are NaN for a tag without
    positive songs. The macro averages are over the tags with at least one positive song; the micro
    ones count the predictions of every tag together.
    """

    thresholds: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor
    f1: torch.Tensor
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_micro: float
    recall_micro: float
    f1_micro: float


def threshold_scores(
    scores: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor
) -> ThresholdScores:
    """Per-tag, macro and micro precision / recall / F1 at ``thresholds`` ``(n_tags,)``."""
    if thresholds.shape != scores.shape[1:]:
        raise ValueError(f"thresholds of shape {tuple(thresholds.shape)} for {scores.shape[1]} tags")
    thresholds = thresholds.detach().float().cpu()
    predicted = scores.detach().float().cpu() >= thresholds
    truth = targets.detach().cpu().round() > 0
    tp = (predicted & truth).sum(dim=0).double()
    fp = (predicted & ~truth).sum(dim=0).double()
    fn = (~predicted & truth).sum(dim=0).double()
    has_positives = (tp + fn) > 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), 0.0)
    recall = torch.where(has_positives, tp / (tp + fn).clamp(min=1), nan)
    f1 = torch.where(has_positives, 2 * tp / (2 * tp + fp + fn).clamp(min=1), nan)

    def macro(values: torch.Tensor) -> float:
        return float(values[has_positives].mean()) if has_positives.any() else float("nan")

    def ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
        return float(numerator / denominator) if denominator > 0 else float("nan")

    all_tp, all_fp, all_fn = tp.sum(), fp.sum(), fn.sum()
    return ThresholdScores(
        thresholds=thresholds,
        precision=precision.float(),
        recall=recall.float(),
        f1=f1.float(),
        precision_macro=macro(precision),
        recall_macro=macro(recall),
        f1_macro=macro(f1),
        precision_micro=ratio(all_tp, all_tp + all_fp) if all_tp + all_fp > 0 else 0.0,
        recall_micro=ratio(all_tp, all_tp + all_fn),
        f1_micro=ratio(2 * all_tp, 2 * all_tp + all_fp + all_fn),
    )
