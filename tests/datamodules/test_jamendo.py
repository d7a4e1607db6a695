from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datamodules.jamendo import (
    find_split_files,
    low_quality_path,
    read_jamendo,
    read_jamendo_tracks,
    read_tracks,
    split_file_name,
)
from datamodules.manifest import Manifest

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"


@pytest.fixture(scope="module")
def real_dir(reference) -> Path:
    return reference("jamendo/autotagging_top50tags-train.tsv").parent


@pytest.fixture(scope="module")
def real_manifest(real_dir: Path) -> Manifest:
    return read_jamendo(real_dir)


def test_real_split_sizes_and_paths(real_dir, real_manifest):
    manifest = real_manifest
    assert Counter(manifest.splits) == {"train": 32_136, "valid": 10_888, "test": 11_356}
    assert manifest.ids[0] == "track_0000241" and manifest.paths[0] == "41/241.mp3"
    # NN = id mod 100, for every track
    assert all(
        p.split("/")[0] == f"{int(t.split('_')[1]) % 100:02d}"
        for t, p in zip(manifest.ids, manifest.paths, strict=True)
    )
    assert read_jamendo(real_dir, quality="low").paths[0] == "41/241.low.mp3"
    assert manifest.targets.dtype == np.uint8 and manifest.targets.sum(axis=1).min() >= 1


def test_real_tags_are_top50_in_alphabetical_order(real_dir, real_manifest):
    manifest = real_manifest
    top50 = (real_dir / "top50.txt").read_text().split()
    assert len(top50) == 50 and top50[0].startswith("genre---")  # top50.txt holds prefixed names
    assert manifest.tag_names == tuple(sorted(top50))
    assert manifest.tag_names[:2] == ("genre---alternative", "genre---ambient")


def test_real_no_artist_in_two_splits(real_dir):
    tracks = read_jamendo_tracks(real_dir)
    artists = {split: {t.artist_id for t in rows} for split, rows in tracks.items()}
    assert not artists["train"] & artists["valid"]
    assert not artists["train"] & artists["test"]
    assert not artists["valid"] & artists["test"]
    first = tracks["train"][0]
    assert (first.artist_id, first.album_id, first.duration, first.tags) == (
        "artist_000005",
        "album_000033",
        340.1,
        ("genre---rock",),
    )


def write_split(folder: Path, subset: str, rows: dict[str, list[str]]) -> None:
    """The official nested layout, CRLF line ends, variable trailing tag fields."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_split, lines in rows.items():
        (folder / split_file_name(subset, file_split)).write_bytes(
            ("\r\n".join([HEADER, *lines]) + "\r\n").encode()
        )


ROWS = {
    "train": [
        "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tgenre---punkrock",
        "track_0000215\tartist_000014\talbum_000031\t15/215.mp3\t98.0\tgenre---punkrock\tmood/theme---energetic",
    ],
    "validation": ["track_0000300\tartist_000020\talbum_000040\t00/300.mp3\t200.0\tinstrument---piano"],
    "test": ["track_0001201\tartist_000030\talbum_000050\t01/1201.mp3\t31.5"],
}


def test_nested_layout_other_split_and_subset(tmp_path):
    write_split(tmp_path / "split-3", "all", ROWS)
    manifest = read_jamendo(tmp_path, split=3, subset="all")
    assert manifest.splits == ("train", "train", "valid", "test")
    assert manifest.tag_names == ("genre---punkrock", "instrument---piano", "mood/theme---energetic")
    assert manifest.targets.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert find_split_files(tmp_path, 3, "all")["train"] == tmp_path / "split-3" / "autotagging-train.tsv"
    with pytest.raises(FileNotFoundError, match=r"autotagging-test\.tsv.*split-0"):
        read_jamendo(tmp_path, split=0, subset="all")


def test_given_tag_names_fix_the_columns(tmp_path):
    write_split(tmp_path, "genre", ROWS)
    manifest = read_jamendo(tmp_path, subset="genre", tag_names=["mood/theme---energetic", "genre---jazz"])
    assert manifest.tag_names == ("mood/theme---energetic", "genre---jazz")
    assert manifest.targets[:, 0].tolist() == [0, 1, 0, 0] and manifest.targets[:, 1].sum() == 0


def test_format_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown MTG-Jamendo subset 'mood'"):
        read_jamendo(tmp_path, subset="mood")
    write_split(tmp_path, "top50tags", ROWS)
    with pytest.raises(ValueError, match="unknown MTG-Jamendo quality 'medium'"):
        read_jamendo(tmp_path, quality="medium")
    duplicated = {**ROWS, "test": ROWS["validation"]}
    write_split(tmp_path, "top50tags", duplicated)
    with pytest.raises(ValueError, match="track_0000300 is in both the valid and the test file"):
        read_jamendo(tmp_path)
    bad = tmp_path / "bad.tsv"
    bad.write_text("TRACK_ID,ARTIST_ID\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: not an MTG-Jamendo autotagging file"):
        read_tracks(bad)
    bad.write_text(HEADER + "\ntrack_1\tartist_1\talbum_1\t01/1.mp3\tlong\n")
    with pytest.raises(ValueError, match=r"bad\.tsv, line 2: DURATION 'long' is not a number"):
        read_tracks(bad)
    with pytest.raises(ValueError, match="does not end in .mp3"):
        low_quality_path("01/1.flac")
