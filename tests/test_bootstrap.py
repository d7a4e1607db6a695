"""Bootstrap intervals and paired differences against a plain numpy bootstrap with the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from musictag.training.bootstrap import bootstrap_intervals, paired_difference, resample_counts
from musictag.training.metrics import tagging_scores


def _songs(n: int = 60, n_tags: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals (tied scores), a rare tag that many draws miss, and a tag whose
    every song is negative (left out of every macro)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, n_tags)) < 0.3).astype(np.uint8)
    labels[:, 2] = 0
    labels[:2, 2] = 1  # two positives: some draws have none
    labels[:, 3] = 0  # never positive
    scores = np.round(0.6 * rng.random((n, n_tags)) + 0.3 * labels, 2)
    return scores, labels


def _plain_bootstrap(
    scores: np.ndarray, labels: np.ndarray, draws: int, seed: int, metric: str
) -> np.ndarray:
    """The reference: resample the songs, then scikit-learn's metric averaged over the tags that have a
    positive and a negative among the drawn songs."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        idx = rng.integers(0, len(scores), size=len(scores))
        s, y = scores[idx], labels[idx]
        if metric == "accuracy":
            values.append(float(np.mean(y[np.arange(len(y)), s.argmax(axis=1)] > 0)))
            continue
        score = roc_auc_score if metric == "roc_auc" else average_precision_score
        per_tag = [score(y[:, j], s[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
        values.append(float(np.mean(per_tag)) if per_tag else np.nan)
    return np.array(values)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values[~np.isnan(values)], [2.5, 97.5])
    return float(low), float(high)


def test_the_draws_resample_the_songs_as_numpy_does_one_draw_at_a_time():
    counts = np.concatenate(list(resample_counts(7, 5, seed=3)), axis=1)
    rng = np.random.default_rng(3)
    for d in range(5):
        expected = np.bincount(rng.integers(0, 7, size=7), minlength=7)
        np.testing.assert_array_equal(counts[:, d], expected)
    with pytest.raises(ValueError, match="needs songs and draws"):
        next(resample_counts(0, 5, seed=3))


def test_intervals_equal_a_plain_numpy_bootstrap_with_the_same_seed():
    scores, labels = _songs()
    intervals = {i.metric: i for i in bootstrap_intervals(scores, labels, draws=40, seed=7)}
    point = tagging_scores(torch.tensor(scores), torch.tensor(labels))  # what the test logs
    assert intervals["roc_auc"].value == pytest.approx(point.roc_auc, abs=1e-6)
    assert intervals["pr_auc"].value == pytest.approx(point.pr_auc, abs=1e-6)
    for metric in ("roc_auc", "pr_auc"):
        low, high = _percentiles(_plain_bootstrap(scores, labels, 40, 7, metric))
        assert intervals[metric].low == pytest.approx(low, abs=1e-6)
        assert intervals[metric].high == pytest.approx(high, abs=1e-6)
        assert low < intervals[metric].value < high
    assert "accuracy" not in intervals


def test_multiclass_intervals_are_of_accuracy_too():
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 4, size=60)
    labels = np.eye(4, dtype=np.uint8)[classes]
    scores = rng.random((60, 4)) + 0.8 * labels
    intervals = {i.metric: i for i in bootstrap_intervals(scores, labels, draws=150, seed=2, multiclass=True)}
    low, high = _percentiles(_plain_bootstrap(scores, labels, 150, 2, "accuracy"))
    assert intervals["accuracy"].value == pytest.approx(np.mean(scores.argmax(1) == classes))
    assert (intervals["accuracy"].low, intervals["accuracy"].high) == pytest.approx((low, high), abs=1e-9)


def test_the_paired_difference_resamples_the_same_songs_for_both_runs():
    scores_a, labels = _songs(seed=0)
    scores_b = np.round(np.random.default_rng(5).random(scores_a.shape), 2)  # B guesses
    differences = {d.metric: d for d in paired_difference(scores_a, scores_b, labels, draws=25, seed=4)}
    for metric in ("roc_auc", "pr_auc"):
        a = _plain_bootstrap(scores_a, labels, 25, 4, metric)
        b = _plain_bootstrap(scores_b, labels, 25, 4, metric)
        diff = a - b
        d = differences[metric]
        assert (d.low, d.high) == pytest.approx(_percentiles(diff), abs=1e-6)
        assert d.difference == pytest.approx(d.a - d.b, abs=1e-12)
        defined = diff[~np.isnan(diff)]
        expected_p = min(1.0, 2 * min(np.mean(defined <= 0), np.mean(defined >= 0)))
        assert d.p_value == pytest.approx(expected_p)
    assert differences["roc_auc"].low > 0 and differences["roc_auc"].p_value == 0  # every draw: A wins


def test_a_run_against_itself_differs_by_zero_with_p_one():
    scores, labels = _songs()
    for d in paired_difference(scores, scores, labels, draws=50, seed=0):
        assert d.difference == 0 and d.low == 0 and d.high == 0 and d.p_value == 1
