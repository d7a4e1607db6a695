from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datamodules.msd import (
    METADATA_FILES,
    N_TRAIN,
    N_VALID,
    PUBLISHED_SKIPS,
    read_msd,
    read_tag_list,
    train_valid_boundary,
)
from datamodules.pickles import load_restricted_pickle, write_py2_pickle

TAGS = ["rock", "Hip-Hop", "female vocalists", "00s"]


@pytest.fixture
def reference_file(reference):
    """A file of the reference data's ``msd/`` folder (see the ``reference`` fixture)."""
    return lambda name: reference(f"msd/{name}")


def track_id(i: int) -> str:
    return f"TRAAA{i:04d}128F9318786"


def write_metadata(folder: Path, n_train_list: int = 10, n_test: int = 3) -> dict[str, np.ndarray]:
    """A tiny metadata folder in the original form: Python-2 pickles of byte strings, (n_tags, 1) vectors."""
    folder.mkdir(exist_ok=True)
    ids = [track_id(i) for i in range(n_train_list + n_test)]
    rng = np.random.default_rng(0)
    vectors = {track: rng.integers(0, 2, (len(TAGS), 1)) for track in ids}
    write_py2_pickle(folder / "filtered_list_train.cP", [t.encode() for t in ids[:n_train_list]])
    write_py2_pickle(folder / "filtered_list_test.cP", [t.encode() for t in ids[n_train_list:]])
    write_py2_pickle(folder / "msd_id_to_tag_vector.cP", {t.encode(): v for t, v in vectors.items()})
    # 7digital ids are numbers in one map and keys of the other
    write_py2_pickle(folder / "MSD_id_to_7D_id.pkl", {t.encode(): 8_000_000 + i for i, t in enumerate(ids)})
    write_py2_pickle(
        folder / "7D_id_to_path.pkl",
        {
            str(8_000_000 + i).encode(): f"{i % 10}/{i % 7}/{8_000_000 + i}.clip.mp3".encode()
            for i in range(len(ids))
        },
    )
    (folder / "50tagList.txt").write_text("\n".join(TAGS) + "\n")
    return vectors


def test_real_tag_list_and_test_ids(reference_file):
    tags = read_tag_list(reference_file("50tagList.txt"))
    assert len(tags) == 50 and tags[:3] == ("rock", "pop", "alternative")
    assert "Hip-Hop" in tags  # mixed case kept as written
    test_ids = load_restricted_pickle(reference_file("filtered_list_test.cP"))
    assert len(test_ids) == 28_435 and all(isinstance(t, str) for t in test_ids)


def test_tiny_metadata_dir_gives_the_manifest(tmp_path):
    vectors = write_metadata(tmp_path)
    manifest = read_msd(tmp_path, n_train=8)
    assert manifest.ids == tuple(track_id(i) for i in range(13))
    assert manifest.splits == ("train",) * 8 + ("valid",) * 2 + ("test",) * 3
    assert manifest.tag_names == tuple(TAGS)
    assert manifest.paths[0] == "0/0/8000000.clip.mp3" and manifest.paths[12] == "2/5/8000012.clip.mp3"
    assert manifest.targets.dtype == np.uint8 and manifest.targets.shape == (13, 4)
    np.testing.assert_array_equal(manifest.targets, np.stack([v[:, 0] for v in vectors.values()]))


def test_excluded_ids_leave_every_split_after_the_boundary(tmp_path):
    write_metadata(tmp_path)
    manifest = read_msd(tmp_path, n_train=8, exclude={track_id(2), track_id(9), track_id(11)})
    # the boundary is counted on the published list, before the exclusion (as the published code does)
    assert manifest.splits == ("train",) * 7 + ("valid",) * 1 + ("test",) * 2
    assert {track_id(2), track_id(9), track_id(11)}.isdisjoint(manifest.ids)


def test_published_skips_in_the_real_test_list(reference_file):
    assert len(PUBLISHED_SKIPS) == 55 and all(len(t) == 18 and t.startswith("TR") for t in PUBLISHED_SKIPS)
    test_ids = load_restricted_pickle(reference_file("filtered_list_test.cP"))
    assert len(set(test_ids) - PUBLISHED_SKIPS) == 28_434  # the published evaluation's test songs


def test_short_train_list_needs_a_decision(tmp_path):
    write_metadata(tmp_path)
    with pytest.raises(ValueError, match=r"filtered_list_train\.cP lists 10 ids.*proportional=True"):
        read_msd(tmp_path)  # the published boundary, 201,680, leaves no valid ids
    manifest = read_msd(tmp_path, proportional=True)
    assert Counter(manifest.splits) == {"train": 9, "valid": 1, "test": 3}


def test_boundary():
    assert train_valid_boundary(N_TRAIN + N_VALID, N_TRAIN, False, "x") == N_TRAIN
    assert train_valid_boundary(N_TRAIN + N_VALID, N_TRAIN, True, "x") == N_TRAIN
    assert train_valid_boundary(1000, N_TRAIN, True, "x") == 945  # 201,680 / 213,454 of it


def test_missing_file_is_named(tmp_path):
    write_metadata(tmp_path)
    (tmp_path / "7D_id_to_path.pkl").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks the MSD metadata files \['7D_id_to_path.pkl'\]"):
        read_msd(tmp_path, n_train=8)
    assert "7D_id_to_path.pkl" in METADATA_FILES


def test_unresolved_tracks_fail_or_are_skipped(tmp_path):
    write_metadata(tmp_path)
    to_7digital = load_restricted_pickle(tmp_path / "MSD_id_to_7D_id.pkl", decode=False)
    del to_7digital[track_id(3).encode()]
    write_py2_pickle(tmp_path / "MSD_id_to_7D_id.pkl", to_7digital)
    with pytest.raises(ValueError, match=f"1 listed tracks .*first: {track_id(3)}, has no 7digital"):
        read_msd(tmp_path, n_train=8)
    manifest = read_msd(tmp_path, n_train=8, skip_missing=True)
    assert len(manifest) == 12 and track_id(3) not in manifest.ids


def test_bad_tag_vector_and_duplicates(tmp_path):
    write_metadata(tmp_path)
    vectors = load_restricted_pickle(tmp_path / "msd_id_to_tag_vector.cP", decode=False)
    vectors[track_id(1).encode()] = np.ones((3, 1), dtype=np.int64)
    write_py2_pickle(tmp_path / "msd_id_to_tag_vector.cP", vectors)
    with pytest.raises(ValueError, match=f"vector of {track_id(1)} is not 4 values of 0/1"):
        read_msd(tmp_path, n_train=8)
    write_metadata(tmp_path)
    write_py2_pickle(tmp_path / "filtered_list_test.cP", [track_id(0).encode()])
    with pytest.raises(ValueError, match=f"track {track_id(0)} is listed twice"):
        read_msd(tmp_path, n_train=8)


def test_malicious_metadata_pickle_is_refused(tmp_path):
    write_metadata(tmp_path)
    (tmp_path / "msd_id_to_tag_vector.cP").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"msd_id_to_tag_vector\.cP.*'os\.system'"):
        read_msd(tmp_path, n_train=8)
