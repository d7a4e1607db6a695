"""A user's own tagged audio, described by one CSV.

File: a CSV with a header that holds at least ``path`` and ``tags``::

    path,tags,split,artist
    rock/song1.mp3,rock;guitar;male vocal,train,artist_a
    jazz/song2.wav,jazz;piano,valid,artist_b
    noise/untagged.flac,,test,artist_c

- ``path``: the audio file relative to the audio root (usually the CSV's folder), inside it; also the
  track id (normalised: ``./b/x.wav`` is ``b/x.wav``). Each audio file may appear once: two rows naming
  the same file under any spelling (``b/x.wav`` and ``./b/x.wav``, a symlink, a hard link) are an error
  naming both rows.
- ``tags``: separated by ``;`` (``tag_separator``), stripped; an empty cell is a track without tags.
- an optional split column (``split``, or the one named by ``split_column``): ``train``, ``valid`` (also
  ``validation``, ``val``) or ``test``, case-insensitive.
- an optional artist column (``artist``, or the one named by ``artist_column``) for the random split
  below; next to a split column it is checked (a warning names artists found in two splits). It is
  also the manifest's ``groups``: cross-validation folds (``folds``/``fold``) keep an artist together.

Any other column is an error: a column musictag does not read is never silently ignored. So is a CSV
without rows, or one whose tags column is empty in every row (there would be nothing to learn).

Splits: the split column when there is one. Otherwise a random split, the same for the same ``seed``: a
``test_fraction`` and a ``valid_fraction`` of the tracks, rest train. With an artist column whole artists
are drawn, so no artist is in two splits (the sizes are then close to, not exactly, the fractions; a
blank artist counts as an artist of its own). Tag columns are sorted alphabetically.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np

from datamodules.manifest import TAG_SEPARATOR, Manifest
from musictag.guards import check_input_file
from musictag.types import Pathlike

SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}


def random_split(
    n_tracks: int,
    groups: list[str] | None,
    seed: int,
    valid_fraction: float,
    test_fraction: float,
) -> list[str]:
    """A seeded train/valid/test assignment of ``n_tracks`` tracks, whole ``groups`` at a time if given.

    Groups (artists) are shuffled and dealt to test while that brings it closer to ``test_fraction`` of
    the tracks, then likewise to valid, the rest to train — so a group never straddles two splits.
    """
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(
            f"valid_fraction={valid_fraction} and test_fraction={test_fraction} must be in [0, 1) "
            "and leave some tracks for training"
        )
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = [str(i) for i in range(n_tracks)]
    members: dict[str, list[int]] = {}
    for track, group in enumerate(groups):
        members.setdefault(group, []).append(track)
    names = list(members)
    order = [names[i] for i in rng.permutation(len(names))]
    n_test = round(n_tracks * test_fraction)
    n_valid = round(n_tracks * valid_fraction)
    targets = {"test": n_test, "valid": n_valid}
    counts = {"test": 0, "valid": 0}
    splits = ["train"] * n_tracks
    for group in order:
        size = len(members[group])
        for split, target in targets.items():
            # only where the group brings the split closer to its size, so a big artist cannot
            # overshoot it (such an artist stays in train)
            if abs(counts[split] + size - target) < abs(counts[split] - target):
                counts[split] += size
                for track in members[group]:
                    splits[track] = split
                break
    return splits


def _inside(path: str, root: Path) -> bool:
    """Whether the normalised ``path`` lies in ``root`` (by its spelling: a symlink in the root that
    points elsewhere is inside, as the user put it there)."""
    base = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([os.path.abspath(path), base]) == base


def _file_key(path: str) -> object:
    """What makes two paths the same audio file: its device and inode where it exists (symlinks and
    hard links included), else its resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def _warn_artists_in_two_splits(csv_path: Path, artists: list[str], splits: list[str]) -> None:
    seen: dict[str, set[str]] = {}
    for artist, split in zip(artists, splits, strict=True):
        if artist:
            seen.setdefault(artist, set()).add(split)
    shared = sorted(a for a, s in seen.items() if len(s) > 1)
    if shared:
        warnings.warn(
            f"{csv_path}: {len(shared)} artist(s) in more than one split ({', '.join(shared[:5])}"
            f"{', ...' if len(shared) > 5 else ''}); results on test may be optimistic",
            stacklevel=3,
        )


def read_folder(
    csv_path: Pathlike,
    split_column: str | None = None,
    artist_column: str | None = None,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    tag_separator: str = TAG_SEPARATOR,
    audio_root: Pathlike | None = None,
) -> Manifest:
    """The manifest of a user's CSV (see the module docstring for its format and the split rules).

    Args:
        csv_path: the CSV file.
        split_column: the column that names each track's split; ``None``: the ``split`` column if the
            CSV has one, else a random split.
        artist_column: the column that groups tracks for the random split; ``None``: the ``artist``
            column if the CSV has one.
        seed: seed of the random split.
        valid_fraction, test_fraction: sizes of the random split.
        tag_separator: what separates the tags in a ``tags`` cell.
        audio_root: the folder the paths are relative to (default: the CSV's folder); every path must
            lie inside it, and two paths naming one file in it are an error.

    Returns:
        A manifest in file order; ``ids`` and ``paths`` are both the ``path`` column.
    """
    csv_path = check_input_file(csv_path, "tag CSV")  # a folder or a named pipe is not read
    root = Path(audio_root) if audio_root is not None else csv_path.resolve().parent
    columns, rows = _read_rows(csv_path)
    split_column, artist_column = _check_columns(csv_path, columns, split_column, artist_column)
    if not rows:
        raise ValueError(f"{csv_path} lists no tracks (only its header); add one row per audio file")
    paths, tag_lists = _paths_and_tags(csv_path, rows, root, tag_separator)
    splits = _splits(csv_path, rows, split_column, artist_column, seed, valid_fraction, test_fraction)
    tag_names = sorted({tag for tags in tag_lists for tag in tags})
    column = {tag: j for j, tag in enumerate(tag_names)}
    targets = np.zeros((len(rows), len(tag_names)), dtype=np.uint8)
    for row_index, tags in enumerate(tag_lists):
        targets[row_index, [column[tag] for tag in tags]] = 1
    return Manifest(
        ids=tuple(paths),
        splits=tuple(splits),
        targets=targets,
        tag_names=tuple(tag_names),
        paths=tuple(paths),
        groups=None
        if artist_column is None
        else tuple((row[artist_column] or "").strip() for row in rows),  # blank: a group of its own
    )


def _read_rows(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The CSV's column names (stripped) and its rows."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets write a BOM
        reader = csv.DictReader(f)
        columns = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = columns
        return columns, list(reader)


def _check_columns(
    csv_path: Path, columns: list[str], split_column: str | None, artist_column: str | None
) -> tuple[str | None, str | None]:
    """The split and artist columns to use (``split`` and ``artist`` when present and not named);
    every column must be one of path, tags and those two."""
    if not columns:
        raise ValueError(
            f"{csv_path} is empty; a tag CSV has a header line (path,tags and optionally split, artist) "
            "and one row per audio file"
        )
    if split_column is None and "split" in columns:
        split_column = "split"
    if artist_column is None and "artist" in columns:
        artist_column = "artist"
    required = ["path", "tags"] + [c for c in (split_column, artist_column) if c is not None]
    missing = [name for name in required if name not in columns]
    if missing:
        raise ValueError(f"{csv_path}: no column {missing}; the header has {columns}")
    unknown = [name for name in columns if name not in required]
    if unknown:
        raise ValueError(
            f"{csv_path}: unknown column(s) {unknown}; a tag CSV has path, tags and optionally split and "
            "artist (name other split/artist columns with split_column/artist_column, remove the rest)"
        )
    return split_column, artist_column


def _paths_and_tags(
    csv_path: Path, rows: list[dict[str, str]], root: Path, tag_separator: str
) -> tuple[list[str], list[list[str]]]:
    """Each row's track id (its normalised relative path) and tags; every file listed once, inside root."""
    paths: list[str] = []
    tag_lists: list[list[str]] = []
    first_line: dict[object, tuple[int, str]] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        given = (row["path"] or "").strip()
        if not given:
            raise ValueError(f"{csv_path}, line {line}: empty path")
        path = os.path.normpath(given)  # the track id: one spelling of each relative path
        full = os.path.normpath(os.path.join(root, path))
        if not _inside(full, root):
            raise ValueError(
                f"{csv_path}, line {line}: path {given!r} is outside the audio root {root}; list the files "
                "under the audio root, relative to it (or give an audio root that holds them all)"
            )
        # Identity is the audio file itself, not its spelling: b/x.wav and ./b/x.wav, a symlink to it
        # or a hard link are one file. Listed twice, it is an error rather than a track kept once:
        # with different splits the same audio would be trained on and tested on, with different tags
        # one of the two tag sets would be dropped silently, and whichever row we kept could be the
        # wrong one. The user knows which row is right; the message names both.
        key = _file_key(full)
        if key in first_line:
            earlier_line, earlier = first_line[key]
            same = f"path {given!r}" if earlier == given else f"path {given!r} (the file of {earlier!r})"
            raise ValueError(
                f"{csv_path}, line {line}: {same} already appears on line {earlier_line}; "
                "each audio file may be listed once: remove one of the two rows"
            )
        first_line[key] = (line, given)
        tags = [tag.strip() for tag in (row["tags"] or "").split(tag_separator) if tag.strip()]
        for tag in tags:
            if TAG_SEPARATOR in tag:  # manifests store tags joined by ';'
                raise ValueError(f"{csv_path}, line {line}: tag {tag!r} contains {TAG_SEPARATOR!r}")
        paths.append(path)
        tag_lists.append(tags)
    if not any(tag_lists):
        raise ValueError(
            f"{csv_path}: the tags column is empty in every row, so there is nothing to learn; give each "
            f"track its tags in the tags column (joined by {tag_separator!r})"
        )
    return paths, tag_lists


def _splits(
    csv_path: Path,
    rows: list[dict[str, str]],
    split_column: str | None,
    artist_column: str | None,
    seed: int,
    valid_fraction: float,
    test_fraction: float,
) -> list[str]:
    """Each row's split: its split column, else a random split grouped by artist when there is one."""
    if split_column is not None:
        splits = []
        for line, row in enumerate(rows, start=2):
            value = (row[split_column] or "").strip()
            if value.lower() not in SPLIT_NAMES:
                raise ValueError(
                    f"{csv_path}, line {line}: {split_column} {value!r} is not a split; use train, valid "
                    "(or validation, val) or test"
                )
            splits.append(SPLIT_NAMES[value.lower()])
        if artist_column is not None:
            _warn_artists_in_two_splits(
                csv_path, [(row[artist_column] or "").strip() for row in rows], splits
            )
    else:
        groups = None
        if artist_column is not None:
            # a blank artist is unknown, not one shared artist: give it a group of its own
            groups = [
                (row[artist_column] or "").strip() or f"\0{line}" for line, row in enumerate(rows, start=2)
            ]
        splits = random_split(len(rows), groups, seed, valid_fraction, test_fraction)
    return splits
