"""Cross-validation folds of a corpus: every DataModule's ``folds``, ``fold`` and ``fold_seed``.

With ``folds=K`` the songs of all splits are pooled and dealt into K folds, whole groups at a time
(:attr:`~datamodules.manifest.Manifest.groups`: the artist where the reader knows it; a track without a
group, or with a blank one, is a group of its own). The groups are taken in a permutation seeded by
``fold_seed``, each given to the fold that holds the fewest tracks so far (the lowest-numbered among
equals), so the folds differ in size by at most the largest group (by one song without groups).

Fold ``k``'s splits: **test** = fold ``k``, **valid** = fold ``(k + 1) mod K`` (the fold after it, so
every fold is also the validation fold of exactly one run), **train** = the other ``K - 2`` folds. Hence
``K >= 3``. Over the K runs of ``musictag cv`` every song is tested exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datamodules.manifest import Manifest
from musictag.types import ConfigError

#: Fewest folds: one to test, one to validate, at least one to train.
MIN_FOLDS = 3


def check_fold_args(folds: int | None, fold: int | None) -> None:
    """One line for a ``folds``/``fold`` pair that cannot be a cross-validation fold."""
    if folds is None and fold is None:
        return
    if folds is None or fold is None:
        raise ConfigError(
            f"data folds={folds} and fold={fold}: give both (folds=K, fold in 0..K-1) or neither"
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < MIN_FOLDS:
        raise ConfigError(
            f"data folds must be an integer >= {MIN_FOLDS} (a test fold, a validation fold and at least "
            f"one training fold), got {folds!r}"
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ConfigError(f"data fold must be an integer in 0..{folds - 1} (folds={folds}), got {fold!r}")


def fold_of_tracks(groups: Sequence[str | None], folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of each track, whole groups together (see the module docstring)."""
    members: dict[tuple[int, str], list[int]] = {}
    for track, group in enumerate(groups):
        key = (0, group) if group else (1, str(track))  # blank: a group of its own
        members.setdefault(key, []).append(track)
    if len(members) < folds:
        raise ConfigError(
            f"data folds={folds} but the corpus has only {len(members)} group(s) of songs to deal into "
            f"folds; choose folds <= {len(members)}"
        )
    keys = list(members)
    order = np.random.default_rng(seed).permutation(len(keys))
    sizes = np.zeros(folds, dtype=np.int64)
    fold = np.empty(len(groups), dtype=np.int64)
    for index in order:
        tracks = members[keys[index]]
        target = int(np.argmin(sizes))  # the first of the smallest folds
        fold[tracks] = target
        sizes[target] += len(tracks)
    return fold


def fold_manifest(manifest: Manifest, folds: int, fold: int, seed: int = 0) -> Manifest:
    """``manifest`` with the splits of cross-validation fold ``fold`` of ``folds`` (module docstring)."""
    check_fold_args(folds, fold)
    groups = manifest.groups if manifest.groups is not None else [None] * len(manifest)
    of_track = fold_of_tracks(groups, folds, seed)
    valid = (fold + 1) % folds
    splits = ["test" if f == fold else "valid" if f == valid else "train" for f in of_track]
    return manifest.with_splits(splits)
