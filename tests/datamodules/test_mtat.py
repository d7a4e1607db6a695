from __future__ import annotations

import pickle
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datamodules.mtat import (
    MIN_SECONDS_CLEAN,
    TOP50_TAGS,
    folder_split,
    read_annotations,
    read_mtat,
)
from datamodules.pickles import dumps_py2_pickle, load_restricted_pickle

EXTRA_TAGS = ("singer", "duet", "plucking")

# (clip_id, mp3_path, tags): a few clips per folder, three of them with no top-50 tag
CLIPS = [
    ("2", "0/bach-cantatas-01-aria-0-29.mp3", ("guitar", "rock")),
    ("6", "0/bach-cantatas-01-aria-30-59.mp3", ("singer",)),
    ("10", "5/jazz-live-02-intro-0-29.mp3", ("classical",)),
    ("12", "b/folk-songs-03-duet-0-29.mp3", ("piano", "duet")),
    ("20", "c/lvx_nova-lvx_nova-01-contimune-30-59.mp3", ("techno",)),
    ("22", "c/lvx_nova-lvx_nova-01-contimune-59-88.mp3", ()),
    ("30", "d/choir-mass-01-kyrie-0-29.mp3", ("choral", "female voice")),
    ("31", "e/band-loud-04-riff-0-29.mp3", ("metal",)),
    ("40", "f/dj-set-05-drop-0-29.mp3", ("beats",)),
    ("41", "f/dj-set-05-drop-30-59.mp3", ("plucking",)),
]


def write_annotations(path: Path, clips=CLIPS, seed: int = 0) -> tuple[str, ...]:
    """``annotations_final.csv`` in the official format; tag columns in a shuffled order."""
    columns = list(TOP50_TAGS + EXTRA_TAGS)
    random.Random(seed).shuffle(columns)
    lines = ["\t".join(f'"{field}"' for field in ["clip_id", *columns, "mp3_path"])]
    for clip_id, mp3_path, tags in clips:
        cells = ["1" if tag in tags else "0" for tag in columns]
        lines.append("\t".join(f'"{field}"' for field in [clip_id, *cells, mp3_path]))
    path.write_text("\n".join(lines) + "\n")
    return tuple(columns)


@pytest.fixture
def annotations(tmp_path) -> Path:
    write_annotations(tmp_path / "annotations_final.csv")
    return tmp_path / "annotations_final.csv"


def test_read_annotations_keeps_file_order(tmp_path):
    columns = write_annotations(tmp_path / "a.csv")
    parsed = read_annotations(tmp_path / "a.csv")
    assert parsed.tag_names == columns and len(columns) == 53
    assert parsed.clip_ids == tuple(c[0] for c in CLIPS)
    assert parsed.mp3_paths[4] == "c/lvx_nova-lvx_nova-01-contimune-30-59.mp3"
    assert parsed.labels.shape == (10, 53) and parsed.labels.dtype == np.uint8
    assert {columns[j] for j in np.flatnonzero(parsed.labels[3])} == {"piano", "duet"}


def test_top50_constant_matches_the_published_list(reference_file):
    path = reference_file("top50_tags.txt")
    assert TOP50_TAGS == tuple(path.read_text().splitlines())
    assert MIN_SECONDS_CLEAN == 29.1


def test_all_split_is_the_folder_rule(annotations):
    manifest = read_mtat(annotations, split="all")
    assert manifest.ids == tuple(c[0] for c in CLIPS)
    assert manifest.splits == ("train",) * 4 + ("valid",) * 2 + ("test",) * 4
    assert manifest.paths[0] == "0/bach-cantatas-01-aria-0-29.mp3"
    assert manifest.tag_names == TOP50_TAGS and manifest.targets.dtype == np.uint8
    assert manifest.targets[1].sum() == 0  # "singer" is not a top-50 tag


def test_clean_split_drops_clips_without_top50_tags(annotations):
    manifest = read_mtat(annotations)  # clean is the default
    assert manifest.ids == ("2", "10", "12", "20", "30", "31", "40")
    assert Counter(manifest.splits) == {"train": 3, "valid": 1, "test": 3}
    assert manifest.targets.sum(axis=1).min() >= 1


def test_targets_follow_the_requested_tag_order(annotations):
    manifest = read_mtat(annotations)
    choir = manifest.ids.index("30")
    assert [manifest.tag_names[j] for j in np.flatnonzero(manifest.targets[choir])] == [
        "female voice",
        "choral",
    ]
    assert np.flatnonzero(manifest.targets[choir]).tolist() == [48, 49]  # top50_tags.txt positions
    custom = read_mtat(annotations, split="all", tag_names=["singer", "rock"])
    assert custom.tag_names == ("singer", "rock")
    assert custom.targets.tolist()[:2] == [[0, 1], [1, 0]]
    # the clean split means "no top-50 tag" whatever the targets are
    assert len(read_mtat(annotations, tag_names=["singer"])) == 7


def test_unknown_tag_and_split_are_errors(annotations):
    with pytest.raises(ValueError, match=r"tags \['jazzy'\] are not columns"):
        read_mtat(annotations, tag_names=["rock", "jazzy"])
    with pytest.raises(ValueError, match="unknown MTAT split 'dirty'"):
        read_mtat(annotations, split="dirty")
    with pytest.raises(ValueError, match="needs published_dir"):
        read_mtat(annotations, split="published")


def test_malformed_annotations_name_the_line(tmp_path):
    path = tmp_path / "annotations_final.csv"
    write_annotations(path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"0"', '"2"', 1)
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"line 4: tag .* is '2', expected 0 or 1"):
        read_annotations(path)
    path.write_text("clip_id,guitar,mp3_path\n1,0,0/a.mp3\n")
    with pytest.raises(ValueError, match="not an MTAT annotations file"):
        read_annotations(path)
    with pytest.raises(FileNotFoundError, match="annotations_final.csv"):
        read_annotations(tmp_path / "nowhere" / "annotations_final.csv")


def test_folder_rule():
    assert [folder_split(f"{d}/x.mp3") for d in "0123456789abcdef"] == ["train"] * 12 + ["valid"] + [
        "test"
    ] * 3
    with pytest.raises(ValueError, match="'g/x.mp3'"):
        folder_split("g/x.mp3")


def write_published(folder: Path, train_rows, valid_rows, test_rows, py2: bool) -> None:
    folder.mkdir(exist_ok=True)
    for name, rows in (("valid.npy", valid_rows), ("test.npy", test_rows)):
        np.save(folder / name, np.array([f"{row}\t{CLIPS[row][1]}" for row in rows]))
    train = [CLIPS[row][1].replace(".mp3", ".npy").encode() for row in train_rows]
    blob = dumps_py2_pickle(train) if py2 else pickle.dumps(train, protocol=2)
    (folder / "train_list_pub.cP").write_bytes(blob)


@pytest.mark.parametrize("py2", [True, False])
def test_published_split_uses_the_lists(annotations, tmp_path, py2):
    write_published(tmp_path / "pub", train_rows=[3, 0], valid_rows=[4], test_rows=[8, 6], py2=py2)
    manifest = read_mtat(annotations, split="published", published_dir=tmp_path / "pub")
    assert manifest.ids == ("2", "12", "20", "30", "40")  # annotation row order
    assert manifest.splits == ("train", "train", "valid", "test", "test")
    assert manifest.paths[1] == "b/folk-songs-03-duet-0-29.mp3"
    assert [manifest.tag_names[j] for j in np.flatnonzero(manifest.targets[1])] == ["piano"]


def test_published_lists_must_match_the_annotations(annotations, tmp_path):
    folder = tmp_path / "pub"
    write_published(folder, [0], [4], [6], py2=True)
    np.save(folder / "valid.npy", np.array([f"5\t{CLIPS[4][1]}"]))  # row 5 is another clip
    with pytest.raises(ValueError, match=r"valid\.npy: row 5 is .* but the annotations have"):
        read_mtat(annotations, split="published", published_dir=folder)
    write_published(folder, [0], [4], [6], py2=True)
    (folder / "train_list_pub.cP").write_bytes(dumps_py2_pickle([b"0/unknown-clip-0-29.npy"]))
    with pytest.raises(ValueError, match=r"train_list_pub\.cP: 1 clips are not in the annotations"):
        read_mtat(annotations, split="published", published_dir=folder)
    write_published(folder, [0, 4], [4], [6], py2=True)
    with pytest.raises(ValueError, match="also in the valid list"):
        read_mtat(annotations, split="published", published_dir=folder)
    (folder / "test.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['test.npy'\]"):
        read_mtat(annotations, split="published", published_dir=folder)


@pytest.fixture
def reference_file(reference):
    """A file of the reference data's ``mtat/`` folder (see the ``reference`` fixture)."""
    return lambda name: reference(f"mtat/{name}")


def test_real_published_lists_follow_the_folder_rule(reference_file):
    train = load_restricted_pickle(reference_file("train_list_pub.cP"))
    assert len(train) == 15_244 and {folder_split(p) for p in train} == {"train"}
    assert {p[0] for p in train} == set("0123456789ab")
    valid = np.load(reference_file("valid.npy"))
    test = np.load(reference_file("test.npy"))
    assert len(valid) == 1_529 and {folder_split(str(e).split("\t")[1]) for e in valid} == {"valid"}
    assert len(test) == 4_332 and {str(e).split("\t")[1][0] for e in test} == set("def")
    assert np.load(reference_file("y_test_pub.npy")).shape == (4_332, 50)


def test_real_valid_lists_agree_by_stem(reference_file):
    # the sota .npy list and Lee's pickle name the same clips, once as mp3, once as npy
    valid = {str(e).split("\t")[1].removesuffix(".mp3") for e in np.load(reference_file("valid.npy"))}
    lee = {p.removesuffix(".npy") for p in load_restricted_pickle(reference_file("valid_list_pub.cP"))}
    assert valid == lee and len(lee) == 1_529


def test_real_published_split_sizes(tmp_path, reference_file):
    """All three real lists against an annotations file laid out like the original (25,863 rows)."""
    train = load_restricted_pickle(reference_file("train_list_pub.cP"))
    entries = [str(e).split("\t") for e in np.load(reference_file("valid.npy"))]
    entries += [str(e).split("\t") for e in np.load(reference_file("test.npy"))]
    paths = [""] * 25_863
    for row, path in entries:
        paths[int(row)] = path
    free = (row for row, path in enumerate(paths) if not path)
    for path in train:
        paths[next(free)] = path.removesuffix(".npy") + ".mp3"
    for row in free:
        paths[row] = f"0/filler-{row}.mp3"
    lines = ['"clip_id"\t"guitar"\t"rock"\t"mp3_path"']
    lines += [f'"{row}"\t"1"\t"0"\t"{path}"' for row, path in enumerate(paths)]
    (tmp_path / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    manifest = read_mtat(
        tmp_path / "annotations_final.csv",
        split="published",
        tag_names=["guitar", "rock"],
        published_dir=reference_file(""),
    )
    assert Counter(manifest.splits) == {"train": 15_244, "valid": 1_529, "test": 4_332}
