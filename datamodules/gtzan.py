"""GTZAN genre collection: 1,000 excerpts of 30 s, 10 genres of 100, one genre per excerpt.

Files (Tzanetakis and Cook 2002): ``genres/<genre>/<genre>.000NN.au`` (22,050 Hz mono; many copies are
converted to ``.wav``), ``NN`` = ``00``–``99``, genres :data:`GENRES`. ``audio_root`` is the folder
that holds ``genres/``, or a folder of the ten genre folders itself (a copy's ``genres_original/``). Any other file in it is not read. In the widely
shared WAV copy ``jazz/jazz.00054.wav`` cannot be decoded: preparing the cache leaves it out and
reports it, as every missing or unreadable excerpt.

Splits:

- ``"filtered"`` (default): the fault-filtered split of Kereliuk et al. 2015 (no artist in two splits,
  repeated and mislabelled excerpts left out): 443 train / 197 valid / 290 test excerpts listed in
  ``train_filtered.txt``, ``valid_filtered.txt``, ``test_filtered.txt`` (``genre/genre.000NN.wav``, one
  a line), read from ``splits_dir``; by default the copies shipped in ``datamodules/splits/gtzan/`` (MIT
  licence, file names only), byte-identical to those of Lee et al.'s ``music_dataset_split``.
- ``"random"``: all 1,000 excerpts, for the usual 10-fold random protocol: run it with ``musictag cv
  --folds 10`` (each fold tests a tenth of the songs). Outside cross-validation the split is a seeded
  80/10/10 draw (``seed``).

A listed excerpt is found as ``.wav`` or ``.au``, whichever exists (``.wav`` when neither does: the cache
then reports it missing). Track ids are the file stems, ``blues.00000``; the targets are one-hot
(``task: multiclass``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from datamodules.folder import random_split
from datamodules.manifest import Manifest
from musictag.types import Pathlike

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SPLITS = ("filtered", "random")
SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}
#: The fault-filtered split shipped with the package.
SHIPPED_SPLITS = Path(__file__).resolve().parent / "splits" / "gtzan"
EXCERPTS_PER_GENRE = 100
_LISTED = re.compile(r"(?P<genre>[a-z]+)/(?P=genre)\.(?P<number>\d{5})\.(?:wav|au)")


def genres_folder(audio_root: Pathlike) -> str:
    """The prefix of the excerpt paths under ``audio_root``: ``genres/`` when it holds that folder."""
    return "genres/" if os.path.isdir(os.path.join(audio_root, "genres")) else ""


def read_split_lists(splits_dir: Pathlike | None = None) -> dict[str, list[str]]:
    """The excerpt stems (``blues.00012``) of each split of the fault-filtered split files."""
    folder = Path(SHIPPED_SPLITS if splits_dir is None else splits_dir)
    missing = [name for name in SPLIT_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}; the GTZAN filtered split needs train_filtered.txt, "
            "valid_filtered.txt and test_filtered.txt (leave splits_dir unset for the shipped copies)"
        )
    stems: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for split, name in SPLIT_FILES.items():
        source = folder / name
        stems[split] = []
        for line_number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            entry = line.strip()
            if not entry:
                continue
            match = _LISTED.fullmatch(entry)
            if match is None or match["genre"] not in GENRES:
                raise ValueError(
                    f"{source}, line {line_number}: {entry!r} is not a GTZAN excerpt 'genre/genre.000NN.wav' "
                    f"of the genres {', '.join(GENRES)}"
                )
            stem = f"{match['genre']}.{match['number']}"
            if stem in first:
                raise ValueError(f"{source}, line {line_number}: {entry!r} is also in the {first[stem]} list")
            first[stem] = split
            stems[split].append(stem)
    return stems


def excerpt_path(audio_root: Pathlike, stem: str, prefix: str) -> str:
    """``[genres/]<genre>/<stem>.wav``, or ``.au`` where only that exists."""
    relative = f"{prefix}{stem.split('.')[0]}/{stem}"
    if not os.path.exists(os.path.join(audio_root, relative + ".wav")) and os.path.exists(
        os.path.join(audio_root, relative + ".au")
    ):
        return relative + ".au"
    return relative + ".wav"


def read_gtzan(
    audio_root: Pathlike,
    split: str = "filtered",
    splits_dir: Pathlike | None = None,
    seed: int = 0,
) -> Manifest:
    """The GTZAN manifest of one of the splits of the module docstring.

    Args:
        audio_root: the folder holding ``genres/`` (or the ``genres`` folder).
        split: ``"filtered"`` (default) or ``"random"``.
        splits_dir: the folder of the three filtered split files; default: the shipped copies.
        seed: seed of the 80/10/10 draw of the ``random`` split.

    Returns:
        A manifest, genres as :data:`GENRES` columns (one-hot); filtered: train, valid, test in file
        order; random: every excerpt, genre by genre.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown GTZAN split {split!r}; choose one of {SPLITS}")
    if split == "filtered":
        listed = read_split_lists(splits_dir)
        pairs = [(stem, name) for name, stems in listed.items() for stem in stems]
    else:
        stems = [f"{genre}.{n:05d}" for genre in GENRES for n in range(EXCERPTS_PER_GENRE)]
        pairs = list(zip(stems, random_split(len(stems), None, seed, 0.1, 0.1), strict=True))
    prefix = genres_folder(audio_root)
    targets = np.zeros((len(pairs), len(GENRES)), dtype=np.uint8)
    for row, (stem, _) in enumerate(pairs):
        targets[row, GENRES.index(stem.split(".")[0])] = 1
    return Manifest(
        ids=tuple(stem for stem, _ in pairs),
        splits=tuple(name for _, name in pairs),
        targets=targets,
        tag_names=GENRES,
        paths=tuple(excerpt_path(audio_root, stem, prefix) for stem, _ in pairs),
    )
