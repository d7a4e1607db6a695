"""MagnaTagATune (MTAT): 25,863 clips of ~29 s from Magnatune, tagged by players of the TagATune game.

Files (Law et al. 2009, https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset):

- ``mp3.zip.00[1-3]`` → ``<folder>/<artist>-<album>-<track>-<start>-<end>.mp3``, with 16 folders
  ``0``–``9``, ``a``–``f`` (the paths below are relative to the folder that holds them);
- ``annotations_final.csv``: tab-separated, every field quoted, header
  ``"clip_id" <188 tag columns> "mp3_path"``, one row of 0/1 per clip.

Tags: by convention the 50 most frequent tags, in the order of ``top50_tags.txt``
(:data:`TOP50_TAGS`, the musicnn-training order; Lee et al. swap the last two, the
sota-music-tagging-models outputs swap ``metal`` and ``female voice`` — pass ``tag_names`` to match).

Splits — everyone uses the same folder rule: first folder ``0``–``b`` train, ``c`` valid, ``d``–``f`` test.

- ``"all"``: every clip by the folder rule, 18,709 / 1,825 / 5,329 (musicnn-training; 3 clips whose mp3
  is broken are dropped later, when the audio cache fails to decode them).
- ``"clean"``: the folder rule minus clips with no top-50 tag and clips shorter than
  :data:`MIN_SECONDS_CLEAN` — 15,244 / 1,529 / 4,332 (Lee et al. 2017, Won et al. 2020). The length
  filter needs the audio, so this reader applies only the tag filter; the cache preparation drops the
  short clips through its minimum duration.
- ``"published"``: exactly the published clean lists in ``published_dir``: ``valid.npy`` and ``test.npy``
  (sota-music-tagging-models: numpy arrays of ``"<row>\\t<mp3 path>"``, ``row`` the 0-based data row of
  ``annotations_final.csv``) and Lee et al.'s ``train_list_pub.cP`` (Python-2 pickle of ``b'd/….npy'``
  paths, matched to the mp3 paths by their stem). Tags come from the annotations.

Track ids are the ``clip_id`` column.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.manifest import Manifest
from datamodules.pickles import load_restricted_pickle
from musictag.guards import file_type_problem
from musictag.types import Pathlike

TOP50_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
MIN_SECONDS_CLEAN = 29.1
SPLITS = ("clean", "all", "published")
FOLDER_SPLIT = {**dict.fromkeys("0123456789ab", "train"), "c": "valid", **dict.fromkeys("def", "test")}
PUBLISHED_FILES = {"train": "train_list_pub.cP", "valid": "valid.npy", "test": "test.npy"}


@dataclass(frozen=True)
class Annotations:
    """The contents of ``annotations_final.csv``.

    Attributes:
        clip_ids: ``clip_id`` of each row.
        tag_names: the tag columns, in file order.
        labels: ``(n_clips, n_columns)`` uint8 0/1 matrix.
        mp3_paths: ``mp3_path`` of each row, e.g. ``f/artist-album-01-title-30-59.mp3``.
    """

    clip_ids: tuple[str, ...]
    tag_names: tuple[str, ...]
    labels: np.ndarray
    mp3_paths: tuple[str, ...]

    def columns(self, tag_names: tuple[str, ...] | list[str], source: Pathlike) -> list[int]:
        """Column of each tag; a tag that is missing or appears twice is an error naming it."""
        missing = [tag for tag in tag_names if tag not in self.tag_names]
        if missing:
            raise ValueError(
                f"{source}: tags {missing} are not columns of the annotations; "
                f"choose from its {len(self.tag_names)} tag columns"
            )
        repeated = [tag for tag in tag_names if self.tag_names.count(tag) > 1]
        if repeated:
            raise ValueError(f"{source}: tag columns {sorted(set(repeated))} appear more than once")
        return [self.tag_names.index(tag) for tag in tag_names]


def read_annotations(csv_path: Pathlike) -> Annotations:
    """Parse ``annotations_final.csv`` (quoted, tab-separated, 0/1 tag columns between id and path)."""
    csv_path = Path(csv_path)
    problem = file_type_problem(csv_path)  # by stat: a named pipe would be read forever
    if problem is not None:
        raise FileNotFoundError(
            f"MTAT annotations {csv_path}: {problem}; it ships with the MagnaTagATune audio as "
            "annotations_final.csv"
        )
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or len(rows[0]) < 3 or rows[0][0] != "clip_id" or rows[0][-1] != "mp3_path":
        raise ValueError(
            f"{csv_path}: not an MTAT annotations file: the header must be "
            f'"clip_id" <tag columns> "mp3_path", tab-separated (found {rows[0][:2] if rows else "nothing"}...)'
        )
    header, body = rows[0], [row for row in rows[1:] if row]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"{csv_path}, line {line}: {len(row)} fields, the header has {len(header)}")
    cells = np.array([row[1:-1] for row in body], dtype=str).reshape(len(body), len(header) - 2)
    bad = np.argwhere((cells != "0") & (cells != "1"))
    if len(bad):
        row, column = bad[0]
        raise ValueError(
            f"{csv_path}, line {row + 2}: tag {header[column + 1]!r} is {str(cells[row, column])!r}, expected 0 or 1"
        )
    return Annotations(
        clip_ids=tuple(row[0] for row in body),
        tag_names=tuple(header[1:-1]),
        labels=(cells == "1").astype(np.uint8),
        mp3_paths=tuple(row[-1] for row in body),
    )


def folder_split(mp3_path: str) -> str:
    """The split of a clip by its first folder: ``0``–``b`` train, ``c`` valid, ``d``–``f`` test."""
    folder = mp3_path.split("/", 1)[0].lower()
    if folder not in FOLDER_SPLIT:
        raise ValueError(f"MTAT path {mp3_path!r} does not start with a folder 0-9 or a-f")
    return FOLDER_SPLIT[folder]


def _row_by_stem(annotations: Annotations) -> dict[str, int]:
    return {os.path.splitext(path)[0]: row for row, path in enumerate(annotations.mp3_paths)}


def read_published_rows(annotations: Annotations, published_dir: Pathlike) -> dict[int, str]:
    """Annotation row → split of every clip in the published lists (see the module docstring).

    The rows in ``valid.npy``/``test.npy`` are checked against the paths beside them, so an annotations
    file that is not the original (reordered, filtered) is an error instead of silently wrong labels.
    """
    published_dir = Path(published_dir)
    missing = [name for name in PUBLISHED_FILES.values() if not (published_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{published_dir} lacks {missing}; the published MTAT split needs train_list_pub.cP "
            "(Lee et al. 2017) and valid.npy, test.npy (sota-music-tagging-models split/mtat)"
        )
    split_of_row: dict[int, str] = {}

    def assign(row: int, split: str, source: Path) -> None:
        if row in split_of_row:
            raise ValueError(
                f"{source}: clip {annotations.mp3_paths[row]!r} is also in the {split_of_row[row]} list"
            )
        split_of_row[row] = split

    for split in ("valid", "test"):
        source = published_dir / PUBLISHED_FILES[split]
        try:
            entries = np.load(source, allow_pickle=False)
        except ValueError as error:  # an object array would need pickle, which we do not run
            raise ValueError(f"{source}: not a numpy array of strings ({error})") from None
        for entry in entries:
            row_text, _, path = str(entry).partition("\t")
            if not row_text.isdigit() or not path:
                raise ValueError(f"{source}: entry {str(entry)!r} is not '<row>\\t<mp3 path>'")
            row = int(row_text)
            if row >= len(annotations.mp3_paths) or annotations.mp3_paths[row] != path:
                found = annotations.mp3_paths[row] if row < len(annotations.mp3_paths) else "past the end"
                raise ValueError(
                    f"{source}: row {row} is {path!r} but the annotations have {found!r} there; "
                    "use the original annotations_final.csv"
                )
            assign(row, split, source)

    source = published_dir / PUBLISHED_FILES["train"]
    train_paths = load_restricted_pickle(source)
    if not isinstance(train_paths, list) or not all(isinstance(p, str) for p in train_paths):
        raise ValueError(f"{source}: expected a list of clip paths, found {type(train_paths).__name__}")
    row_by_stem = _row_by_stem(annotations)
    unknown = [p for p in train_paths if os.path.splitext(p)[0] not in row_by_stem]
    if unknown:
        raise ValueError(
            f"{source}: {len(unknown)} clips are not in the annotations (first: {unknown[0]!r}); "
            "use the original annotations_final.csv"
        )
    for path in train_paths:
        assign(row_by_stem[os.path.splitext(path)[0]], "train", source)
    return split_of_row


def read_mtat(
    annotations_csv: Pathlike,
    split: str = "clean",
    tag_names: tuple[str, ...] | list[str] | None = None,
    published_dir: Pathlike | None = None,
) -> Manifest:
    """The MTAT manifest for one of the splits of the module docstring.

    Args:
        annotations_csv: ``annotations_final.csv``.
        split: ``"clean"`` (default), ``"all"`` or ``"published"``.
        tag_names: the target columns, in order; default :data:`TOP50_TAGS`. The ``clean`` filter always
            means "no top-50 tag", whatever the targets, so the split does not depend on them.
        published_dir: the folder with ``train_list_pub.cP``, ``valid.npy``, ``test.npy``; needed for
            ``split="published"``.

    Returns:
        A manifest in annotation row order; ``paths`` are the ``mp3_path`` column.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown MTAT split {split!r}; choose one of {SPLITS}")
    annotations = read_annotations(annotations_csv)
    tag_names = tuple(TOP50_TAGS if tag_names is None else tag_names)
    columns = annotations.columns(tag_names, annotations_csv)

    if split == "published":
        if published_dir is None:
            raise ValueError(
                "split='published' needs published_dir: the folder with train_list_pub.cP, valid.npy "
                "and test.npy"
            )
        split_of_row = read_published_rows(annotations, published_dir)
        rows = sorted(split_of_row)
        splits = [split_of_row[row] for row in rows]
    else:
        rows = list(range(len(annotations.clip_ids)))
        if split == "clean":
            top50 = annotations.labels[:, annotations.columns(TOP50_TAGS, annotations_csv)]
            rows = [row for row in rows if top50[row].any()]
        splits = [folder_split(annotations.mp3_paths[row]) for row in rows]

    return Manifest(
        ids=tuple(annotations.clip_ids[row] for row in rows),
        splits=tuple(splits),
        targets=np.ascontiguousarray(annotations.labels[np.ix_(rows, columns)]),
        tag_names=tag_names,
        paths=tuple(annotations.mp3_paths[row] for row in rows),
        groups=tuple(artist_of(annotations.mp3_paths[row]) for row in rows),
    )


def artist_of(mp3_path: str) -> str:
    """The artist of a clip, the first ``-`` field of its file name (``f/artist-album-01-title-30-59.mp3``:
    the names spell spaces ``_``): cross-validation folds keep an artist's clips together."""
    return mp3_path.rsplit("/", 1)[-1].split("-", 1)[0]
