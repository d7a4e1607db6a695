"""``musictag compare``: the paired bootstrap of two test runs, which files it takes, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_musictag
from musictag.training.bootstrap import paired_difference

TAGS = ["rock", "jazz", "piano", "calm"]


def _run(
    path: Path,
    scores: np.ndarray,
    labels: np.ndarray,
    ids: list[str] | None = None,
    tags: list[str] | None = None,
    checkpoint: str = "runs/x/version_0/checkpoints/best.ckpt",
) -> Path:
    """A ``test_predictions.npz`` as ``musictag test`` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        song_ids=np.array(ids or [f"song{i}" for i in range(len(scores))]),
        tag_names=np.array(tags or TAGS),
        scores=scores.astype(np.float32),
        labels=labels.astype(np.uint8),
        checkpoint=np.array(checkpoint),
        task=np.array("multilabel"),
    )
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 4)) < 0.4).astype(np.uint8)
    a = (0.5 * rng.random((50, 4)) + 0.4 * labels).astype(np.float32)
    b = (0.8 * rng.random((50, 4)) + 0.2 * labels).astype(np.float32)
    return _run(tmp_path / "a.npz", a, labels), _run(tmp_path / "b.npz", b, labels), a, b, labels


def test_compare_prints_the_paired_bootstrap_of_the_difference(two_runs, capsys):
    path_a, path_b, a, b, labels = two_runs
    code, out, err = run_musictag(
        ["compare", str(path_a), str(path_b), "--draws", "50", "--seed", "3", "--format", "json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert (report["songs"], report["tags"], report["draws"], report["seed"]) == (50, 4, 50, 3)
    expected = paired_difference(a.astype(np.float64), b.astype(np.float64), labels, draws=50, seed=3)
    assert [m["metric"] for m in report["metrics"]] == ["roc_auc", "pr_auc"]
    for got, want in zip(report["metrics"], expected, strict=True):
        for key in ("a", "b", "difference", "low", "high", "p_value"):
            assert got[key] == pytest.approx(getattr(want, key), abs=1e-9)
    assert report["metrics"][0]["difference"] > 0  # A separates the tags better

    code, out, err = run_musictag(
        ["compare", str(path_a), str(path_b), "--draws", "50", "--seed", "3"], capsys
    )
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("roc_auc"))
    d = expected[0]
    assert row.split()[1:4] == [f"{d.a:.4f}", f"{d.b:.4f}", f"{d.difference:+.4f}"]
    assert f"[{d.low:+.4f}, {d.high:+.4f}]" in row and row.split()[-1] == f"{d.p_value:.3f}"


def test_songs_in_another_order_are_aligned_by_id(two_runs, tmp_path, capsys):
    path_a, path_b, a, b, labels = two_runs
    order = np.random.default_rng(1).permutation(50)
    tags = [3, 1, 0, 2]  # the tags in another order, too
    shuffled = _run(
        tmp_path / "b_shuffled.npz",
        b[order][:, tags],
        labels[order][:, tags],
        ids=[f"song{i}" for i in order],
        tags=[TAGS[j] for j in tags],
    )
    outputs = []
    for other in (path_b, shuffled):
        code, out, err = run_musictag(
            ["compare", str(path_a), str(other), "--draws", "30", "--format", "json"], capsys
        )
        assert code == 0, err
        outputs.append(json.loads(out)["metrics"])
    assert outputs[0] == outputs[1]


def test_a_run_folder_means_its_test_of_the_best_checkpoint(two_runs, tmp_path, capsys):
    path_a, _, a, b, labels = two_runs
    run = tmp_path / "runs" / "demo"
    (run / "version_0").mkdir(parents=True)  # the fit: no test outputs
    _run(
        run / "version_1" / "test_predictions.npz",
        a,
        labels,
        checkpoint=str(run / "version_0/checkpoints/best.ckpt"),
    )
    _run(
        run / "version_2" / "test_predictions.npz",
        b,
        labels,
        checkpoint=str(run / "version_0/checkpoints/last.ckpt"),
    )
    code, out, err = run_musictag(
        ["compare", str(run), str(path_a), "--draws", "40", "--format", "json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["a"] == str(run / "version_1" / "test_predictions.npz")
    for metric in report["metrics"]:  # version_1 holds run A's scores: itself
        assert metric["difference"] == 0 and metric["low"] == metric["high"] == 0 and metric["p_value"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fewer songs", "the runs' test songs differ (50 in {a}, 49 in {b}, 49 in both)"),
        ("other songs", "the runs' test songs differ (50 in {a}, 50 in {b}, 49 in both)"),
        ("other tags", "the runs' tags differ (4 in {a}, 4 in {b}; not in both: calm, sad)"),
        ("other labels", "the same songs have other labels in {a} and {b}"),
    ],
)
def test_runs_of_other_songs_tags_or_labels_are_refused_in_one_line(
    two_runs, tmp_path, capsys, change, message
):
    path_a, _, _, b, labels = two_runs
    ids = [f"song{i}" for i in range(50)]
    tags = list(TAGS)
    if change == "fewer songs":
        b, labels, ids = b[1:], labels[1:], ids[1:]
    elif change == "other songs":
        ids[0] = "another"
    elif change == "other tags":
        tags[3] = "sad"
    else:
        labels = labels.copy()
        labels[0, 0] = 1 - labels[0, 0]
    path_b = _run(tmp_path / "other.npz", b, labels, ids=ids, tags=tags)
    code, out, err = run_musictag(["compare", str(path_a), str(path_b)], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "musictag compare: error: " + message.format(a=path_a, b=path_b)
    )
