from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from musictag.training.metrics import SongMetrics, aggregate_chunks, tagging_scores


def test_aggregations():
    chunks = torch.tensor([[[0.2, 0.9], [0.6, 0.1], [0.7, 0.2]]])  # 1 song, 3 chunks, 2 tags
    torch.testing.assert_close(aggregate_chunks(chunks, "mean"), torch.tensor([[0.5, 0.4]]))
    torch.testing.assert_close(aggregate_chunks(chunks, "max"), torch.tensor([[0.7, 0.9]]))
    torch.testing.assert_close(aggregate_chunks(chunks, "vote"), torch.tensor([[2 / 3, 1 / 3]]))
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregate_chunks(chunks, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="songs, chunks, tags"):
        aggregate_chunks(chunks[0])


def test_logit_mean_is_the_sigmoid_of_the_mean_logit():
    logits = torch.tensor([[[-2.0, 30.0], [1.0, 40.0], [4.0, -3.0]], [[0.5, 0.5], [9.0, 9.0], [-9.0, 9.0]]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    probabilities = torch.sigmoid(logits)
    expected = torch.sigmoid(torch.tensor([[1.0, 67.0 / 3], [0.5, 0.5]]))
    exact = aggregate_chunks(probabilities, "logit_mean", mask, logits=logits)
    torch.testing.assert_close(exact, expected, rtol=0, atol=1e-7)
    # not the mean probability (sigmoid(1) = 0.731 vs 0.626)
    assert abs(float(aggregate_chunks(probabilities, "mean", mask)[0, 0]) - float(expected[0, 0])) > 0.1
    # from probabilities alone: the same where no probability has rounded to 0 or 1 (tag 0)
    recovered = aggregate_chunks(probabilities, "logit_mean", mask)
    torch.testing.assert_close(recovered[:, 0], expected[:, 0], rtol=0, atol=1e-5)


def test_scores_equal_scikit_learn_and_skip_tags_without_positives():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (40, 5))
    targets[:, 3] = 0  # no positive
    targets[:, 4] = 1  # no negative
    scores = np.round(rng.random((40, 5)), 2)  # with ties
    result = tagging_scores(torch.from_numpy(scores), torch.from_numpy(targets))
    expected_roc = [roc_auc_score(targets[:, t], scores[:, t]) for t in range(3)]
    expected_ap = [average_precision_score(targets[:, t], scores[:, t]) for t in range(3)]
    np.testing.assert_allclose(result.per_tag_roc_auc[:3].numpy(), expected_roc, atol=1e-6)
    np.testing.assert_allclose(result.per_tag_pr_auc[:3].numpy(), expected_ap, atol=1e-6)
    assert result.skipped == [3, 4]
    assert torch.isnan(result.per_tag_roc_auc[3:]).all()
    assert result.roc_auc == pytest.approx(np.mean(expected_roc), abs=1e-6)
    assert result.pr_auc == pytest.approx(np.mean(expected_ap), abs=1e-6)
    assert result.n_songs == 40


def test_song_metrics_accumulate_batches():
    rng = np.random.default_rng(1)
    targets = torch.from_numpy(rng.integers(0, 2, (30, 4))).float()
    scores = torch.from_numpy(rng.random((30, 4))).float()
    metric = SongMetrics()
    for part in range(3):
        metric.update(scores[part * 10 : (part + 1) * 10], targets[part * 10 : (part + 1) * 10])
    whole = tagging_scores(scores, targets)
    assert metric.compute().roc_auc == pytest.approx(whole.roc_auc, abs=1e-7)
    metric.reset()
    metric.update(scores[:5], targets[:5])
    assert metric.compute().n_songs == 5
