from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datamodules.folder import random_split, read_folder
from musictag.types import ConfigError


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_split_column_tags_and_order(tmp_path):
    csv_path = write_csv(
        tmp_path / "tags.csv",
        "path,tags,split\n"
        "rock/a.mp3, rock ;guitar;;male vocal,train\n"
        "jazz/b.wav,jazz;piano,Validation\n"
        "c.flac,,val\n"
        "d.mp3,rock,TEST\n"
        "e.mp3,piano,valid\n",
    )
    manifest = read_folder(csv_path, split_column="split")
    assert manifest.ids == manifest.paths == ("rock/a.mp3", "jazz/b.wav", "c.flac", "d.mp3", "e.mp3")
    assert manifest.splits == ("train", "valid", "valid", "test", "valid")
    assert manifest.tag_names == ("guitar", "jazz", "male vocal", "piano", "rock")
    assert manifest.targets.dtype == np.uint8
    assert manifest.targets.tolist()[:3] == [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]


def test_other_tag_separator_and_manifest_round_trip(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", "tags,path\nrock|pop,a.mp3\npop,b.mp3\n")
    manifest = read_folder(csv_path, tag_separator="|", valid_fraction=0, test_fraction=0)
    assert manifest.tag_names == ("pop", "rock") and manifest.splits == ("train", "train")
    manifest.write_csv(tmp_path / "m.csv")
    assert manifest.read_csv(tmp_path / "m.csv").targets.tolist() == [[1, 1], [1, 0]]
    write_csv(csv_path, "path,tags\na.mp3,rock;pop|jazz\n")
    with pytest.raises(ValueError, match=r"line 2: tag 'rock;pop' contains ';'"):
        read_folder(csv_path, tag_separator="|")


def many_tracks(path: Path, n: int, n_artists: int) -> Path:
    lines = ["path,tags,artist"] + [f"t{i:03d}.mp3,tag{i % 3},artist{i % n_artists}" for i in range(n)]
    return write_csv(path, "\n".join(lines) + "\n")


def test_random_split_is_seeded_and_sized(tmp_path):
    csv_path = many_tracks(tmp_path / "t.csv", 100, 100)
    first = read_folder(csv_path, seed=3)
    assert Counter(first.splits) == {"train": 80, "valid": 10, "test": 10}
    assert read_folder(csv_path, seed=3).splits == first.splits
    assert read_folder(csv_path, seed=4).splits != first.splits
    other = read_folder(csv_path, valid_fraction=0.2, test_fraction=0.3)
    assert Counter(other.splits) == {"train": 50, "valid": 20, "test": 30}


def test_random_split_keeps_each_artist_in_one_split(tmp_path):
    csv_path = many_tracks(tmp_path / "t.csv", 120, 24)  # 5 tracks per artist
    manifest = read_folder(csv_path, artist_column="artist", seed=1)
    artist_splits: dict[str, set[str]] = {}
    for i, split in enumerate(manifest.splits):
        artist_splits.setdefault(f"artist{i % 24}", set()).add(split)
    assert all(len(splits) == 1 for splits in artist_splits.values())
    assert Counter(manifest.splits) == {"train": 100, "valid": 10, "test": 10}  # whole artists of 5


def test_blank_artists_are_not_one_group():
    splits = random_split(20, [""] * 20, seed=0, valid_fraction=0.1, test_fraction=0.1)
    assert Counter(splits) == {"train": 20}  # one group of 20 would overshoot test and valid
    groups = [f"\0{i}" for i in range(20)]  # what read_folder passes for blank artists
    assert Counter(random_split(20, groups, 0, 0.1, 0.1)) == {"train": 16, "valid": 2, "test": 2}
    with pytest.raises(ValueError, match="leave some tracks for training"):
        random_split(10, None, 0, 0.5, 0.5)


def test_blank_artist_cells_split_freely(tmp_path):
    lines = ["path,tags,artist"] + [f"t{i}.mp3,x," for i in range(20)]
    manifest = read_folder(write_csv(tmp_path / "t.csv", "\n".join(lines)), artist_column="artist")
    assert Counter(manifest.splits) == {"train": 16, "valid": 2, "test": 2}


def test_errors_name_the_problem(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", "file,tags\na.mp3,rock\n")
    with pytest.raises(ValueError, match=r"t\.csv: no column \['path'\]; the header has \['file', 'tags'\]"):
        read_folder(csv_path)
    write_csv(csv_path, "path,tags\na.mp3,rock\n")
    with pytest.raises(ValueError, match=r"no column \['fold'\]"):
        read_folder(csv_path, split_column="fold")
    with pytest.raises(ValueError, match=r"no column \['band'\]"):
        read_folder(csv_path, artist_column="band")
    write_csv(csv_path, "path,tags,split\na.mp3,rock,train\nb.mp3,pop,dev\n")
    with pytest.raises(ValueError, match=r"line 3: split 'dev' is not a split"):
        read_folder(csv_path, split_column="split")
    write_csv(csv_path, "path,tags\na.mp3,rock\nb.mp3,pop\na.mp3,jazz\n")
    with pytest.raises(ValueError, match=r"line 4: path 'a.mp3' already appears on line 2"):
        read_folder(csv_path)
    write_csv(csv_path, "path,tags\n,rock\n")
    with pytest.raises(ValueError, match="line 2: empty path"):
        read_folder(csv_path)
    with pytest.raises(ConfigError, match="tag CSV .*missing.csv: no such file"):
        read_folder(tmp_path / "missing.csv")


def test_spreadsheet_bom_is_ignored(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes("\ufeffpath,tags\na.mp3,rock\n".encode())
    assert read_folder(csv_path, valid_fraction=0, test_fraction=0).ids == ("a.mp3",)


def test_split_and_artist_columns_are_used_by_default(tmp_path):
    # the README's CSV: its split column decides, without --split-column (no random split)
    lines = ["path,tags,split,artist"] + [
        f"t{i}.mp3,rock,{'test' if i < 10 else 'train'},a{i}" for i in range(20)
    ]
    manifest = read_folder(write_csv(tmp_path / "t.csv", "\n".join(lines)))
    assert manifest.splits == tuple("test" if i < 10 else "train" for i in range(20))
    # an artist column alone groups the random split
    lines = ["path,tags,artist"] + [f"t{i}.mp3,x,a{i // 4}" for i in range(40)]
    manifest = read_folder(write_csv(tmp_path / "a.csv", "\n".join(lines)), seed=3)
    for artist in range(10):
        assert len({manifest.splits[i] for i in range(artist * 4, artist * 4 + 4)}) == 1


def test_no_column_is_ignored_silently(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", "path,tags,genre\na.mp3,rock,metal\n")
    with pytest.raises(
        ValueError, match=r"t\.csv: unknown column\(s\) \['genre'\]; a tag CSV has path, tags"
    ):
        read_folder(csv_path)
    # a split column under another name is read when named, and refused when not
    write_csv(csv_path, "path,tags,fold,band\na.mp3,rock,test,x\nb.mp3,pop,train,x\n")
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['fold', 'band'\]"):
        read_folder(csv_path)
    with pytest.warns(UserWarning, match=r"1 artist\(s\) in more than one split \(x\)"):
        manifest = read_folder(csv_path, split_column="fold", artist_column="band")
    assert manifest.splits == ("test", "train")


def test_one_audio_file_under_two_spellings_is_one_file_listed_twice(tmp_path):
    # identity is the file, not the string: b/x.wav (train) and ./b/x.wav (test) once made two tracks
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.wav").write_bytes(b"audio")
    (tmp_path / "b" / "alias.wav").symlink_to(tmp_path / "b" / "x.wav")
    for other in ("./b/x.wav", "b/./x.wav", "b/../b/x.wav", "b/alias.wav"):
        csv_path = write_csv(tmp_path / "t.csv", f"path,tags,split\nb/x.wav,rock,train\n{other},rock,test\n")
        with pytest.raises(
            ValueError, match=rf"line 3: path '{re.escape(other)}'.* already appears on line 2; each audio"
        ):
            read_folder(csv_path)
    # a path spelled once with ./ is one track with its normal id
    csv_path = write_csv(tmp_path / "t.csv", "path,tags,split\n./b/x.wav,rock,train\nb/y.wav,jazz,test\n")
    assert read_folder(csv_path).ids == ("b/x.wav", "b/y.wav")


def test_rows_outside_the_root_and_csvs_with_nothing_to_learn_are_errors(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", "path,tags\na.wav,rock\n../b.wav,rock\n")
    with pytest.raises(ValueError, match=r"line 3: path '\.\./b\.wav' is outside the audio root"):
        read_folder(csv_path)
    # relative to another audio root, the same row is inside it
    (tmp_path / "sub").mkdir()
    csv_path = write_csv(tmp_path / "sub" / "t.csv", "path,tags\nsub/a.wav,rock\n")
    assert read_folder(csv_path, audio_root=tmp_path, valid_fraction=0, test_fraction=0).ids == ("sub/a.wav",)
    for text, message in [
        ("", r"t\.csv is empty"),
        ("path,tags\n", r"t\.csv lists no tracks \(only its header\)"),
        ("path,tags\na.wav,\nb.wav, ; \n", r"t\.csv: the tags column is empty in every row"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_folder(write_csv(tmp_path / "t.csv", text))
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        read_folder(tmp_path / "sub")
