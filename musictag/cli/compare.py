"""``musictag compare RUN_A RUN_B``: is A better than B on the same test songs? The paired bootstrap of the
difference of each metric (macro ROC-AUC and PR-AUC; accuracy for multiclass runs), its 95 % interval and
a two-sided p-value (:mod:`musictag.training.bootstrap`).

A run is a ``test_predictions.npz``, the ``version_N`` folder that holds one, or a run's folder
(``runs/<name>``): there, the newest test of its ``best.ckpt`` (what ``musictag test --ckpt_path best``
wrote), else its newest test. The runs must have tested the same songs (ids; their order may differ) with
the same labels and the same tags, else the command refuses in one line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from musictag.guards import InputError, at_least, check_input_file, given_path

PREDICTIONS = "test_predictions.npz"


@dataclass
class TestRun:
    """The song-level test outputs of one run."""

    __test__ = False  # not a pytest test class, whatever its name

    path: Path
    song_ids: list[str]
    tag_names: list[str]
    scores: np.ndarray
    labels: np.ndarray
    task: str


def _version(folder: Path) -> int:
    number = folder.name.removeprefix("version_")
    return int(number) if number.isdigit() else -1


def predictions_file(run: str) -> Path:
    """The ``test_predictions.npz`` that ``run`` names (a file, a version folder or a run's folder)."""
    path = Path(run)
    if path.is_dir() and (path / PREDICTIONS).is_file():
        return path / PREDICTIONS
    if path.is_dir():
        tested = sorted(path.glob(f"version_*/{PREDICTIONS}"), key=lambda p: _version(p.parent))
        if not tested:
            raise InputError(
                f"{run}: no {PREDICTIONS} in it nor in its version_* folders; run `musictag test` first"
            )
        best = [p for p in tested if str(np.load(p)["checkpoint"]).endswith("best.ckpt")]
        return (best or tested)[-1]
    return check_input_file(path, "test predictions file")


def load_test_run(run: str) -> TestRun:
    """A run's test outputs; a file that is not a test's ``test_predictions.npz`` is refused in one line."""
    path = predictions_file(run)
    try:
        saved = np.load(path)
        song_ids = [str(s) for s in saved["song_ids"]]
        tag_names = [str(t) for t in saved["tag_names"]]
        scores = np.asarray(saved["scores"], dtype=np.float64)
        labels = np.asarray(saved["labels"]).round().astype(np.uint8)
        task = str(saved["task"]) if "task" in saved.files else ""
    except Exception:  # noqa: BLE001  (a zip of other arrays, a truncated or foreign file)
        raise InputError(
            f"{path} is not the {PREDICTIONS} of a test (song_ids, tag_names, scores, labels)"
        ) from None
    if scores.shape != labels.shape or scores.shape != (len(song_ids), len(tag_names)):
        raise InputError(
            f"{path}: scores {scores.shape} and labels {labels.shape} do not fit its songs and tags"
        )
    if not task:  # written before the task was kept: a run whose every song has one label is single-label
        task = "multiclass" if len(labels) and (labels.sum(axis=1) == 1).all() else "multilabel"
    return TestRun(path, song_ids, tag_names, scores, labels, task)


def aligned(a: TestRun, b: TestRun) -> TestRun:
    """``b`` with its songs (and tags) in ``a``'s order; one line when the songs, tags or labels differ."""
    if sorted(a.tag_names) != sorted(b.tag_names) or len(set(a.tag_names)) != len(a.tag_names):
        only = sorted(set(a.tag_names) ^ set(b.tag_names))[:3]
        raise InputError(
            f"the runs' tags differ ({len(a.tag_names)} in {a.path}, {len(b.tag_names)} in {b.path}"
            + (f"; not in both: {', '.join(only)}" if only else "")
            + "): compare runs of the same tag set"
        )
    if sorted(a.song_ids) != sorted(b.song_ids) or len(set(a.song_ids)) != len(a.song_ids):
        common = len(set(a.song_ids) & set(b.song_ids))
        raise InputError(
            f"the runs' test songs differ ({len(a.song_ids)} in {a.path}, {len(b.song_ids)} in {b.path}, "
            f"{common} in both): a paired comparison needs the same test split"
        )
    song_at = {song: i for i, song in enumerate(b.song_ids)}
    tag_at = {tag: j for j, tag in enumerate(b.tag_names)}
    rows = np.array([song_at[s] for s in a.song_ids])
    columns = np.array([tag_at[t] for t in a.tag_names])
    labels = b.labels[rows][:, columns]
    if not np.array_equal(labels, a.labels):
        raise InputError(
            f"the same songs have other labels in {a.path} and {b.path}: were they tested on one corpus?"
        )
    if a.task != b.task:
        raise InputError(f"{a.path} is a {a.task} run and {b.path} a {b.task} one")
    return TestRun(b.path, a.song_ids, a.tag_names, b.scores[rows][:, columns], labels, b.task)


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def main(argv: list[str] | None = None) -> int:
    from musictag.training.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, paired_difference

    parser = argparse.ArgumentParser(
        prog="musictag compare",
        description="Is A better than B? The paired bootstrap (the same resampled test songs for both runs) of "
        "A-B for macro ROC-AUC and PR-AUC (and accuracy for multiclass runs): the difference, its 95 % "
        "interval and a two-sided p-value. A run is a test_predictions.npz, the version_N folder holding "
        "one, or a run's folder (its newest test of best.ckpt).",
        epilog="p-value: min(1, 2 x the smaller share of draws with A-B <= 0 or >= 0), the smallest level at "
        "which the percentile interval of A-B leaves out 0; it is resolved to 2/draws.",
    )
    parser.add_argument("run_a", type=given_path, help="run A: a test_predictions.npz or a run folder")
    parser.add_argument("run_b", type=given_path, help="run B: the same, tested on the same songs")
    parser.add_argument(
        "--draws", type=int, default=DEFAULT_DRAWS, help=f"bootstrap draws (default {DEFAULT_DRAWS})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"the draws' seed (default {DEFAULT_SEED})"
    )
    parser.add_argument("--format", choices=["table", "json"], default="table", help="output (default table)")
    args = parser.parse_args(argv)
    at_least("--draws", args.draws, 1)
    a = load_test_run(args.run_a)
    b = aligned(a, load_test_run(args.run_b))
    differences = paired_difference(
        a.scores, b.scores, a.labels, args.draws, args.seed, multiclass=a.task == "multiclass"
    )
    if args.format == "json":
        report = {
            "a": str(a.path),
            "b": str(b.path),
            "songs": len(a.song_ids),
            "tags": len(a.tag_names),
            "draws": args.draws,
            "seed": args.seed,
            "metrics": [asdict(d) for d in differences],
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"A: {a.path}\nB: {b.path}")
    print(
        f"{len(a.song_ids)} test songs, {len(a.tag_names)} tags; paired bootstrap of A-B, "
        f"{args.draws} draws, seed {args.seed}"
    )
    print(f"{'metric':<10}{'A':>9}{'B':>9}{'A-B':>10}   {'95 % interval':<20}{'p':>7}")
    for d in differences:
        interval = f"[{_signed(d.low)}, {_signed(d.high)}]"
        print(
            f"{d.metric:<10}{d.a:>9.4f}{d.b:>9.4f}{_signed(d.difference):>10}   {interval:<20}{d.p_value:>7.3f}"
        )
    return 0
