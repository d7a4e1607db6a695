"""The manifest: one row per track (id, split, tag vector, audio path), the output of every corpus reader."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from musictag.files import atomic_write
from musictag.types import Pathlike

TAG_SEPARATOR = ";"


@dataclass(frozen=True)
class Manifest:
    """Tracks of a corpus with their split and multi-hot tags.

    Attributes:
        ids: track ids, unique.
        splits: ``"train"``, ``"valid"`` or ``"test"`` per track.
        targets: ``(n_tracks, n_tags)`` uint8 multi-hot matrix, columns in ``tag_names`` order.
        tag_names: the tag of each column.
        paths: audio path of each track (relative to the corpus root), or ``""`` for generated audio.
        groups: what ties tracks together (the artist, where the reader knows it), or ``None``: every
            track is a group of its own. Cross-validation folds (:mod:`datamodules.folds`) keep a
            group together. Written as a ``group`` column only when present.
    """

    ids: tuple[str, ...]
    splits: tuple[str, ...]
    targets: np.ndarray
    tag_names: tuple[str, ...]
    paths: tuple[str, ...]
    groups: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.splits) == len(self.paths) == self.targets.shape[0] == n):
            raise ValueError("manifest columns differ in length")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError("manifest groups differ in length from its tracks")
        if self.targets.ndim != 2 or self.targets.shape[1] != len(self.tag_names):
            raise ValueError(f"targets {self.targets.shape} do not match {len(self.tag_names)} tag names")
        if len(set(self.ids)) != n:
            raise ValueError("manifest track ids are not unique")

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, name: str) -> Manifest:
        rows = [i for i, s in enumerate(self.splits) if s == name]
        return self.take(rows)

    def take(self, rows: Sequence[int]) -> Manifest:
        return Manifest(
            tuple(self.ids[i] for i in rows),
            tuple(self.splits[i] for i in rows),
            self.targets[list(rows)],
            self.tag_names,
            tuple(self.paths[i] for i in rows),
            None if self.groups is None else tuple(self.groups[i] for i in rows),
        )

    def with_splits(self, splits: Sequence[str]) -> Manifest:
        """The same tracks with other splits (a cross-validation fold's)."""
        return replace(self, splits=tuple(splits))

    def write_csv(self, path: Pathlike) -> None:
        """``id,split,path,tags[,group]`` with tags joined by ``;``; the tag order goes in a ``#tags:``
        first line."""
        path = Path(path)
        with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
            f.write("#tags:" + TAG_SEPARATOR.join(self.tag_names) + "\n")
            writer = csv.writer(f)
            writer.writerow(["id", "split", "path", "tags", *(["group"] if self.groups is not None else [])])
            groups = self.groups if self.groups is not None else [None] * len(self)
            for track, split, audio, row, group in zip(
                self.ids, self.splits, self.paths, self.targets, groups, strict=True
            ):
                tags = TAG_SEPARATOR.join(self.tag_names[j] for j in np.flatnonzero(row))
                writer.writerow([track, split, audio, tags, *([group] if group is not None else [])])

    @classmethod
    def read_csv(cls, path: Pathlike) -> Manifest:
        with open(path, newline="") as f:
            header = f.readline().rstrip("\n")
            if not header.startswith("#tags:"):
                raise ValueError(f"{path}: not a musictag manifest (first line must be '#tags:...')")
            tag_names = tuple(header[len("#tags:") :].split(TAG_SEPARATOR))
            column = {tag: j for j, tag in enumerate(tag_names)}
            reader = csv.DictReader(f)
            rows = list(reader)
            has_groups = "group" in (reader.fieldnames or [])
        targets = np.zeros((len(rows), len(tag_names)), dtype=np.uint8)
        for i, row in enumerate(rows):
            for tag in filter(None, row["tags"].split(TAG_SEPARATOR)):
                targets[i, column[tag]] = 1
        return cls(
            tuple(r["id"] for r in rows),
            tuple(r["split"] for r in rows),
            targets,
            tag_names,
            tuple(r["path"] for r in rows),
            tuple(r["group"] for r in rows) if has_groups else None,
        )
