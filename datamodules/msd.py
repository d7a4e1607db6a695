"""Million Song Dataset (MSD), last.fm top-50 tags: ~241k tracks with 30 s 7digital previews.

Files, all in one metadata folder (Choi et al. 2017 split, filtered to previews of at least 29.1 s by
Lee et al. 2017; https://github.com/jongpillee/music_dataset_split, also sota-music-tagging-models
``split/msd``). Every ``.cP``/``.pkl`` is a Python-2 pickle, read with
:func:`~datamodules.pickles.load_restricted_pickle`:

- ``filtered_list_train.cP``: list of 213,454 MSD track ids (``b'TRAAAAK128F9318786'``); the first
  201,680 are train, the remaining 11,774 valid;
- ``filtered_list_test.cP``: list of 28,435 test ids;
- ``msd_id_to_tag_vector.cP``: dict id → numpy 0/1 vector of the 50 tags, shape ``(50, 1)``;
- ``MSD_id_to_7D_id.pkl``: dict id → 7digital id; ``7D_id_to_path.pkl``: dict 7digital id → preview
  path relative to the audio root, e.g. ``8/9/8947470.clip.mp3``;
- ``50tagList.txt``: the 50 tag names, one a line, in the column order of the vectors, mixed case as
  written (``Hip-Hop``, ``female vocalists``).

Splits: train / valid from the train list by position (:data:`N_TRAIN`), test from the test list.
Track ids are the MSD ids. sota-music-tagging-models also leaves out 55 ids whose preview is broken
(:data:`PUBLISHED_SKIPS`) in every split: ``read_msd(..., exclude=PUBLISHED_SKIPS)``, or
``exclude_published_skips: true`` on the DataModule as the published recipes do. Without that, such
tracks drop out only if the audio cache fails to decode them.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.manifest import Manifest
from datamodules.pickles import load_restricted_pickle
from musictag.types import Pathlike

TRAIN_LIST = "filtered_list_train.cP"
TEST_LIST = "filtered_list_test.cP"
TAG_VECTORS = "msd_id_to_tag_vector.cP"
MSD_TO_7DIGITAL = "MSD_id_to_7D_id.pkl"
SEVEN_DIGITAL_TO_PATH = "7D_id_to_path.pkl"
TAG_LIST = "50tagList.txt"
METADATA_FILES = (TRAIN_LIST, TEST_LIST, TAG_VECTORS, MSD_TO_7DIGITAL, SEVEN_DIGITAL_TO_PATH, TAG_LIST)
N_TRAIN = 201_680
N_VALID = 11_774

#: Track ids that sota-music-tagging-models leaves out of training, validation and test (their 7digital
#: previews are broken). Its evaluation lists these 55; its training loader lists the first 54.
PUBLISHED_SKIPS = frozenset(
    """
    TRAIISZ128F42684BB TRAONEQ128F42A8AB7 TRADRNH128E0784511 TRBGHEU128F92D778F TRCHYIF128F1464CE7
    TRCVDKQ128E0790C86 TREWVFM128F146816E TREQRIV128F1468B08 TREUVBN128F1468AC9 TRDKNBI128F14682B0
    TRFWOAG128F14B12CB TRFIYAF128F14688A6 TRGYAEZ128F14A473F TRIXPRK128F1468472 TRAQKCW128F9352A52
    TRLAWQU128F1468AC8 TRMSPLW128F14A544A TRLNGQT128F1468261 TROTUWC128F1468AB4 TRNDAXE128F934C50E
    TRNHIBI128EF35F57D TRMOREL128F1468AC4 TRPNFAG128F146825F TRIXPOY128F14A46C7 TROCQVE128F1468AC6
    TRPCXJI128F14688A8 TRQKRKL128F1468AAE TRPKNDC128F145998B TRRUHEH128F1468AAD TRLUSKX128F14A4E50
    TRMIRQA128F92F11F1 TRSRUXF128F1468784 TRTNQKQ128F931C74D TRTTUYE128F4244068 TRUQZKD128F1468243
    TRUINWL128F1468258 TRVRHOY128F14680BC TRWVEYR128F1458A6F TRVLISA128F1468960 TRYDUYU128F92F6BE0
    TRYOLFS128F9308346 TRMVCVS128F1468256 TRZSPHR128F1468AAC TRXBJBW128F92EBD96 TRYPGJX128F1468479
    TRYNNNZ128F1468994 TRVDOVF128F92DC7F3 TRWUHZQ128F1451979 TRXMAVV128F146825C TRYNMEX128F14A401D
    TREGWSL128F92C9D42 TRJKZDA12903CFBA43 TRBGJIZ128F92E42BC TRVWNOH128E0788B78 TRCGBRK128F146A901
    """.split()
)


def read_tag_list(path: Pathlike) -> tuple[str, ...]:
    """The tag names of ``50tagList.txt``, one a line, exactly as written (blank lines ignored)."""
    path = Path(path)
    tags = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(set(tags)) != len(tags):
        raise ValueError(f"{path}: a tag is listed twice")
    return tags


def _load_id_list(path: Path) -> list[str]:
    ids = load_restricted_pickle(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"{path}: expected a list of MSD track ids, found {type(ids).__name__}")
    return ids


def _load_dict(path: Path) -> dict[str, Any]:
    mapping = load_restricted_pickle(path)
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: expected a dict, found {type(mapping).__name__}")
    # 7digital ids may be ints in one file and strings in the other: compare them as text.
    return {str(key): value for key, value in mapping.items()}


def train_valid_boundary(n_listed: int, n_train: int, proportional: bool, source: Pathlike) -> int:
    """How many ids of the train list are train; the rest are valid.

    The published list holds 201,680 train + 11,774 valid ids. A shorter list (a subset, a test
    fixture) has no valid ids under the fixed boundary, which is an error unless ``proportional`` asks
    to split it in the same ratio, ``n_train / (N_TRAIN + N_VALID)`` of it train.
    """
    if proportional:
        boundary = int(round(n_listed * N_TRAIN / (N_TRAIN + N_VALID)))
        return min(max(boundary, 1), n_listed - 1) if n_listed > 1 else n_listed
    if n_listed <= n_train:
        raise ValueError(
            f"{source} lists {n_listed} ids, not more than n_train={n_train}, so no valid ids remain; "
            f"use the published list ({N_TRAIN + N_VALID} ids), a smaller n_train, or proportional=True"
        )
    return n_train


def read_msd(
    metadata_dir: Pathlike,
    n_train: int = N_TRAIN,
    proportional: bool = False,
    skip_missing: bool = False,
    exclude: Collection[str] = (),
) -> Manifest:
    """The MSD last.fm top-50 manifest (see the module docstring for files and splits).

    Args:
        metadata_dir: the folder with the six metadata files.
        n_train: the first ``n_train`` ids of the train list are train, the rest valid.
        proportional: split a train list of another length in the published ratio instead.
        skip_missing: drop ids that have no tag vector or no preview path instead of failing.
        exclude: track ids to leave out of every split (e.g. :data:`PUBLISHED_SKIPS`); the train/valid
            boundary is applied before, as the published code does.

    Returns:
        A manifest in list order (train, valid, test); ``paths`` are the 7digital preview paths.
    """
    metadata_dir = Path(metadata_dir)
    missing = [name for name in METADATA_FILES if not (metadata_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{metadata_dir} lacks the MSD metadata files {missing}; put the split files "
            f"({TRAIN_LIST}, {TEST_LIST}, {TAG_VECTORS}, {TAG_LIST}) and the 7digital maps "
            f"({MSD_TO_7DIGITAL}, {SEVEN_DIGITAL_TO_PATH}) in one folder"
        )
    tag_names = read_tag_list(metadata_dir / TAG_LIST)
    train_list = _load_id_list(metadata_dir / TRAIN_LIST)
    test_list = _load_id_list(metadata_dir / TEST_LIST)
    boundary = train_valid_boundary(len(train_list), n_train, proportional, metadata_dir / TRAIN_LIST)
    listed = [
        *((track, "train") for track in train_list[:boundary]),
        *((track, "valid") for track in train_list[boundary:]),
        *((track, "test") for track in test_list),
    ]
    seen: set[str] = set()
    for track, _ in listed:
        if track in seen:
            raise ValueError(
                f"{metadata_dir}: track {track} is listed twice in {TRAIN_LIST} and {TEST_LIST}; "
                "each id must be in one split"
            )
        seen.add(track)
    excluded = set(exclude)
    listed = [(track, split) for track, split in listed if track not in excluded]

    tag_vectors = _load_dict(metadata_dir / TAG_VECTORS)
    to_7digital = _load_dict(metadata_dir / MSD_TO_7DIGITAL)
    to_path = _load_dict(metadata_dir / SEVEN_DIGITAL_TO_PATH)

    def preview_path(track: str) -> str | None:
        seven_digital = to_7digital.get(track)
        return None if seven_digital is None else to_path.get(str(seven_digital))

    unresolved = [track for track, _ in listed if track not in tag_vectors or preview_path(track) is None]
    if unresolved and not skip_missing:
        first = unresolved[0]
        reason = f"not in {TAG_VECTORS}" if first not in tag_vectors else "has no 7digital preview path"
        raise ValueError(
            f"{metadata_dir}: {len(unresolved)} listed tracks lack a tag vector or a preview path "
            f"(first: {first}, {reason} via {MSD_TO_7DIGITAL} and {SEVEN_DIGITAL_TO_PATH}); "
            "fix the metadata or pass skip_missing=True to drop them"
        )
    dropped = set(unresolved)
    listed = [(track, split) for track, split in listed if track not in dropped]

    vectors = [np.asarray(tag_vectors[track]).reshape(-1) for track, _ in listed]
    wrong = [row for row, vector in enumerate(vectors) if vector.size != len(tag_names)]
    stacked = np.stack(vectors) if vectors and not wrong else np.zeros((0, len(tag_names)))
    wrong = wrong or np.flatnonzero(((stacked != 0) & (stacked != 1)).any(axis=1)).tolist()
    if wrong:
        track = listed[wrong[0]][0]
        raise ValueError(
            f"{metadata_dir / TAG_VECTORS}: the vector of {track} is not {len(tag_names)} values of 0/1 "
            f"(shape {np.shape(tag_vectors[track])}); it must match the tags of {TAG_LIST}"
        )
    targets = stacked.astype(np.uint8).reshape(len(listed), len(tag_names))
    return Manifest(
        ids=tuple(track for track, _ in listed),
        splits=tuple(split for _, split in listed),
        targets=targets,
        tag_names=tag_names,
        paths=tuple(str(preview_path(track)) for track, _ in listed),
    )
