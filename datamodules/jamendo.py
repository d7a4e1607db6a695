"""MTG-Jamendo: 55,701 full Creative Commons tracks from Jamendo with genre, instrument and mood tags.

Files (Bogdanov et al. 2019, https://github.com/MTG/mtg-jamendo-dataset):

- audio ``NN/<id>.mp3`` (320 kbps; ``NN`` = id mod 100), or the low-quality ``NN/<id>.low.mp3``;
- ``data/splits/split-<N>/autotagging[_<subset>]-{train,validation,test}.tsv``, N = 0..4, subset
  ``top50tags``, ``genre``, ``instrument``, ``moodtheme`` or none for all tags (``autotagging-train.tsv``).
  Each is tab-separated with CRLF line ends, header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``,
  and a variable number of trailing tag fields like ``genre---rock``, ``mood/theme---calm``.

Splits: the official ones; each keeps every artist in one split. Split 0 of ``top50tags`` has
32,136 / 10,888 / 11,356 tracks. The tag order is alphabetical, as sklearn's ``LabelBinarizer`` gave the
original baselines and sota-music-tagging-models.

A folder that holds the three files directly (one split copied out of the repository) is read as the
requested split too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from datamodules.manifest import Manifest
from musictag.types import Pathlike

SUBSETS = ("all", "top50tags", "genre", "instrument", "moodtheme")
QUALITIES = ("full", "low")
FILE_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")


class JamendoTrack(NamedTuple):
    """One row of an autotagging TSV."""

    track_id: str
    artist_id: str
    album_id: str
    path: str
    duration: float
    tags: tuple[str, ...]


def split_file_name(subset: str, file_split: str) -> str:
    """``autotagging_<subset>-<file_split>.tsv``, without the subset for ``"all"``."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown MTG-Jamendo subset {subset!r}; choose one of {SUBSETS}")
    return f"autotagging{'' if subset == 'all' else '_' + subset}-{file_split}.tsv"


def find_split_files(splits_dir: Pathlike, split: int = 0, subset: str = "top50tags") -> dict[str, Path]:
    """The train/validation/test TSVs of a split: ``<splits_dir>/split-<split>/`` or ``<splits_dir>/``."""
    splits_dir = Path(splits_dir)
    names = {file_split: split_file_name(subset, file_split) for file_split in FILE_SPLITS}
    candidates = (splits_dir / f"split-{split}", splits_dir)
    for folder in candidates:
        if all((folder / name).is_file() for name in names.values()):
            return {file_split: folder / name for file_split, name in names.items()}
    raise FileNotFoundError(
        f"no MTG-Jamendo split files {sorted(names.values())} in {candidates[0]} or {candidates[1]}; "
        "pass the data/splits folder of the mtg-jamendo-dataset repository (or a folder holding the "
        "three files)"
    )


def read_tracks(tsv_path: Pathlike) -> list[JamendoTrack]:
    """The rows of one autotagging TSV (CRLF and blank lines tolerated)."""
    tsv_path = Path(tsv_path)
    lines = tsv_path.read_text(encoding="utf-8").splitlines()  # splitlines drops the \r of CRLF
    if not lines or tuple(lines[0].rstrip("\r").split("\t")) != HEADER:
        raise ValueError(
            f"{tsv_path}: not an MTG-Jamendo autotagging file: the header must be {' '.join(HEADER)} "
            "separated by tabs"
        )
    tracks = []
    for line_number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split("\t")
        if fields == [""]:
            continue
        if len(fields) < len(HEADER) - 1:
            raise ValueError(f"{tsv_path}, line {line_number}: {len(fields)} fields, expected at least 5")
        track_id, artist_id, album_id, path, duration = fields[:5]
        try:
            seconds = float(duration)
        except ValueError:
            raise ValueError(
                f"{tsv_path}, line {line_number}: DURATION {duration!r} is not a number"
            ) from None
        tags = tuple(tag.strip() for tag in fields[5:] if tag.strip())
        tracks.append(JamendoTrack(track_id, artist_id, album_id, path, seconds, tags))
    return tracks


def read_jamendo_tracks(
    splits_dir: Pathlike, split: int = 0, subset: str = "top50tags"
) -> dict[str, list[JamendoTrack]]:
    """Tracks per manifest split (``"train"``, ``"valid"``, ``"test"``), with artist, album and duration."""
    files = find_split_files(splits_dir, split, subset)
    return {FILE_SPLITS[file_split]: read_tracks(path) for file_split, path in files.items()}


def low_quality_path(path: str) -> str:
    """``NN/<id>.mp3`` → ``NN/<id>.low.mp3``, the 96 kbps release of the same track."""
    stem, extension = os.path.splitext(path)
    if extension != ".mp3":
        raise ValueError(f"MTG-Jamendo path {path!r} does not end in .mp3")
    return f"{stem}.low.mp3"


def read_jamendo(
    splits_dir: Pathlike,
    split: int = 0,
    subset: str = "top50tags",
    quality: str = "full",
    tag_names: tuple[str, ...] | list[str] | None = None,
) -> Manifest:
    """The MTG-Jamendo manifest of one official split and subset.

    Args:
        splits_dir: ``data/splits`` of the mtg-jamendo-dataset repository, or a folder with the 3 TSVs.
        split: which of the five official splits, 0–4.
        subset: ``"top50tags"`` (default), ``"genre"``, ``"instrument"``, ``"moodtheme"`` or ``"all"``.
        quality: ``"full"`` (``NN/<id>.mp3``) or ``"low"`` (``NN/<id>.low.mp3``).
        tag_names: the target columns; default all tags found, sorted. Tags outside them are ignored.

    Returns:
        A manifest, train then valid then test in file order. ``ARTIST_ID`` is the manifest's ``groups``
        (cross-validation folds keep an artist together); the other columns are available from
        :func:`read_jamendo_tracks`.
    """
    if quality not in QUALITIES:
        raise ValueError(f"unknown MTG-Jamendo quality {quality!r}; choose one of {QUALITIES}")
    tracks_by_split = read_jamendo_tracks(splits_dir, split, subset)
    listed = [(split_name, track) for split_name, tracks in tracks_by_split.items() for track in tracks]
    first_split: dict[str, str] = {}
    for split_name, track in listed:
        if track.track_id in first_split:
            raise ValueError(
                f"{splits_dir}: track {track.track_id} is in both the {first_split[track.track_id]} and the "
                f"{split_name} file of split-{split}"
            )
        first_split[track.track_id] = split_name
    if tag_names is None:
        tag_names = sorted({tag for _, track in listed for tag in track.tags})
    column = {tag: j for j, tag in enumerate(tag_names)}
    targets = np.zeros((len(listed), len(tag_names)), dtype=np.uint8)
    for row, (_, track) in enumerate(listed):
        targets[row, [column[tag] for tag in track.tags if tag in column]] = 1
    return Manifest(
        ids=tuple(track.track_id for _, track in listed),
        splits=tuple(split_name for split_name, _ in listed),
        targets=targets,
        tag_names=tuple(tag_names),
        paths=tuple(track.path if quality == "full" else low_quality_path(track.path) for _, track in listed),
        groups=tuple(track.artist_id for _, track in listed),
    )
