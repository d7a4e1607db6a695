"""Bootstrap intervals of a test run's metrics, and the paired bootstrap of two runs' difference.

A draw resamples the test songs with replacement (``numpy.random.default_rng(seed).integers(0, N, N)``
per draw, drawn in order): song ``i`` then counts ``c_i`` times, and every metric of the draw is the
metric of the songs so repeated. The draws are vectorised as a ``(draws, N)`` matrix of these counts:
per tag the songs are sorted once by score, tied scores grouped, and the weighted positive and negative
counts of each group give the draw's ROC-AUC (Mann-Whitney, a tie counting one half) and average
precision (precision at each distinct score, weighted by the positives there) in a few array passes, the
same values scikit-learn's ``roc_auc_score`` and ``average_precision_score`` give on the repeated songs.

As for the point metric (:func:`~musictag.training.metrics.tagging_scores`), a tag without a positive
or a negative among a draw's songs is left out of that draw's macro average. Intervals are the 2.5th and
97.5th percentiles of the draws (the percentile bootstrap).

:func:`paired_difference` resamples the same songs for both runs; its two-sided p-value is
``min(1, 2 · min(share of draws with difference <= 0, share with difference >= 0))``: the smallest level
at which the percentile interval of the difference leaves out 0 (a run against itself: 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_DRAWS = 1000
DEFAULT_SEED = 0
LEVEL = 0.95
#: Songs x draws resampled at a time: bounds the memory to a few such int32 / int64 matrices.
CHUNK_ELEMENTS = 1 << 23


def resample_counts(n_songs: int, draws: int, seed: int) -> Iterator[np.ndarray]:
    """``(n_songs, rows)`` blocks (a column per draw) of how often each song is drawn, ``draws`` columns
    in all."""
    if n_songs < 1 or draws < 1:
        raise ValueError(f"a bootstrap needs songs and draws, got {n_songs} songs and {draws} draws")
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_ELEMENTS // n_songs)
    for start in range(0, draws, chunk):
        rows = min(chunk, draws - start)
        picks = rng.integers(0, n_songs, size=(rows, n_songs))
        flat = picks + np.arange(rows)[:, None] * n_songs
        counts = np.bincount(flat.ravel(), minlength=rows * n_songs).reshape(rows, n_songs)
        yield np.ascontiguousarray(counts.T.astype(np.int32))


def weighted_aucs(
    scores: np.ndarray, labels: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision of one tag in each draw: ``scores``/``labels`` ``(N,)``, ``counts``
    ``(N, draws)`` → two ``(draws,)`` arrays, NaN where a draw has no positive or no negative.

    Only the reordering of the counts and one sum touch every song; the rest is on the positive songs. A group of tied scores is one threshold: a positive sees the counts up to the end
    of its group, and the negatives of its own group count half in its ROC-AUC.
    """
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(new_group) - 1  # tie group of each sorted song
    starts = np.flatnonzero(new_group)
    positive_rows = np.flatnonzero(labels[order] > 0)
    if not len(positive_rows):
        nan = np.full(counts.shape[1], np.nan)
        return nan, nan
    weights = counts[order]
    # songs scored >= a positive's group (through its end) and > it (before its start): the running sum
    # of the counts is needed only there, so it is summed segment by segment between those places
    pos_group = group[positive_rows]
    through_row = np.r_[starts[1:] - 1, len(ordered) - 1][pos_group]
    before_row = starts[pos_group] - 1
    needed = np.unique(np.r_[through_row, before_row[before_row >= 0]])
    cuts = np.r_[0, needed[:-1] + 1]
    running = np.cumsum(np.add.reduceat(weights[: needed[-1] + 1], cuts, axis=0), axis=0).astype(np.float64)
    all_through = running[np.searchsorted(needed, through_row)]
    all_before = np.where(
        (before_row >= 0)[:, None], running[np.searchsorted(needed, np.maximum(before_row, 0))], 0.0
    )
    pos_weights = weights[positive_rows].astype(np.float64)
    pos_above = np.cumsum(pos_weights, axis=0)
    last_in_group = np.searchsorted(pos_group, pos_group, side="right") - 1
    first_in_group = np.searchsorted(pos_group, pos_group, side="left")
    pos_through = pos_above[last_in_group]  # positives scored >= the group's score
    pos_before = np.where((first_in_group > 0)[:, None], pos_above[np.maximum(first_in_group - 1, 0)], 0.0)
    neg_through, neg_before = all_through - pos_through, all_before - pos_before
    n_pos = pos_above[-1]
    n_neg = len(scores) - n_pos  # a draw holds as many songs as the split
    valid = (n_pos > 0) & (n_neg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = n_neg - neg_through + 0.5 * (neg_through - neg_before)  # ties count half
        roc = (pos_weights * below).sum(axis=0) / (n_pos * n_neg)
        precision = np.divide(pos_through, all_through, out=np.zeros_like(pos_through), where=all_through > 0)
        ap = (pos_weights * precision).sum(axis=0) / n_pos
    return np.where(valid, roc, np.nan), np.where(valid, ap, np.nan)


def draw_metrics(
    scores: np.ndarray, labels: np.ndarray, counts: np.ndarray, multiclass: bool = False
) -> dict[str, np.ndarray]:
    """Each draw's macro ``roc_auc`` and ``pr_auc`` (and ``accuracy`` for multiclass), ``(draws,)`` each."""
    n_tags = scores.shape[1]
    roc = np.empty((counts.shape[1], n_tags))
    ap = np.empty((counts.shape[1], n_tags))
    for tag in range(n_tags):
        roc[:, tag], ap[:, tag] = weighted_aucs(scores[:, tag], labels[:, tag], counts)
    any_valid = ~np.isnan(roc).all(axis=1)
    with np.errstate(invalid="ignore"):
        macro_roc = np.where(any_valid, np.nansum(roc, axis=1) / (~np.isnan(roc)).sum(axis=1), np.nan)
        macro_ap = np.where(any_valid, np.nansum(ap, axis=1) / (~np.isnan(ap)).sum(axis=1), np.nan)
    values = {"roc_auc": macro_roc, "pr_auc": macro_ap}
    if multiclass:
        correct = labels[np.arange(len(labels)), scores.argmax(axis=1)] > 0
        values["accuracy"] = correct.astype(np.float64) @ counts / len(labels)
    return values


def _draws(
    runs: list[tuple[np.ndarray, np.ndarray]], draws: int, seed: int, multiclass: bool
) -> list[dict[str, np.ndarray]]:
    """The draw metrics of each ``(scores, labels)`` run on the same resampled songs."""
    blocks: list[list[dict[str, np.ndarray]]] = [[] for _ in runs]
    for counts in resample_counts(len(runs[0][0]), draws, seed):  # (N, rows)
        for block, (scores, labels) in zip(blocks, runs, strict=True):
            block.append(draw_metrics(scores, labels, counts, multiclass))
    return [{name: np.concatenate([b[name] for b in block]) for name in block[0]} for block in blocks]


def point_metrics(scores: np.ndarray, labels: np.ndarray, multiclass: bool = False) -> dict[str, float]:
    """The metrics of the songs as they are (every count 1): the values
    :func:`~musictag.training.metrics.tagging_scores` gives, without its per-tag curves."""
    ones = np.ones((len(scores), 1), dtype=np.int32)
    return {name: float(value[0]) for name, value in draw_metrics(scores, labels, ones, multiclass).items()}


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of the draws where the metric is defined (NaN, NaN without any)."""
    defined = values[~np.isnan(values)]
    if not len(defined):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class Interval:
    """A metric's point value and the bootstrap interval around it."""

    metric: str
    value: float
    low: float
    high: float


def bootstrap_intervals(
    scores: np.ndarray,
    labels: np.ndarray,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    multiclass: bool = False,
) -> list[Interval]:
    """The 95 % intervals of a run's macro ROC-AUC and PR-AUC (and accuracy for multiclass)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    drawn = _draws([(scores, labels)], draws, seed, multiclass)[0]
    points = point_metrics(scores, labels, multiclass)
    return [Interval(name, points[name], *percentile_interval(drawn[name])) for name in drawn]


@dataclass
class Difference:
    """``metric(A) - metric(B)``, its paired-bootstrap interval and two-sided p-value."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float


def paired_difference(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    labels: np.ndarray,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    multiclass: bool = False,
) -> list[Difference]:
    """The paired bootstrap of ``A - B`` on the same songs (``labels``), for each metric."""
    labels = np.asarray(labels)
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    drawn_a, drawn_b = _draws([(a, labels), (b, labels)], draws, seed, multiclass)
    point_a, point_b = point_metrics(a, labels, multiclass), point_metrics(b, labels, multiclass)
    results = []
    for name in point_a:
        diff = drawn_a[name] - drawn_b[name]
        defined = diff[~np.isnan(diff)]
        p_value = (
            min(1.0, 2 * min(float(np.mean(defined <= 0)), float(np.mean(defined >= 0))))
            if len(defined)
            else float("nan")
        )
        low, high = percentile_interval(diff)
        results.append(
            Difference(name, point_a[name], point_b[name], point_a[name] - point_b[name], low, high, p_value)
        )
    return results
