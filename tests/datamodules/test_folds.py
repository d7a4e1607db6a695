"""Cross-validation folds (datamodules.folds): a partition of the songs, groups whole, seeded, checked."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.folder import read_folder
from datamodules.folds import check_fold_args, fold_manifest, fold_of_tracks
from datamodules.manifest import Manifest
from datamodules.mtat import artist_of
from datamodules.synthetic import SyntheticDataModule
from musictag.testing import tiny_synthetic_args
from musictag.types import ConfigError


def _manifest(n: int, groups: tuple[str, ...] | None = None) -> Manifest:
    splits = tuple(("train", "valid", "test")[i % 3] for i in range(n))
    return Manifest(
        tuple(f"t{i}" for i in range(n)), splits, np.zeros((n, 1), np.uint8), ("x",), ("",) * n, groups
    )


def test_folds_partition_the_songs_and_each_is_tested_once():
    manifest, k_folds = _manifest(23), 5
    tested: list[str] = []
    for fold in range(k_folds):
        folded = fold_manifest(manifest, k_folds, fold, seed=3)
        test, valid, train = (set(folded.split(s).ids) for s in ("test", "valid", "train"))
        assert test.isdisjoint(valid) and test.isdisjoint(train) and valid.isdisjoint(train)
        assert test | valid | train == set(manifest.ids)
        # validation is the next fold's test set
        assert valid == set(fold_manifest(manifest, k_folds, (fold + 1) % k_folds, seed=3).split("test").ids)
        tested += folded.split("test").ids
    assert sorted(tested) == sorted(manifest.ids)  # every song tested exactly once
    sizes = np.bincount(fold_of_tracks([None] * 23, k_folds, seed=3))
    assert sizes.max() - sizes.min() <= 1  # without groups: 23 songs as 5, 5, 5, 4, 4


def test_a_group_is_never_split_and_the_folds_stay_balanced():
    rng = np.random.default_rng(0)
    groups = tuple(f"artist{int(a)}" for a in rng.integers(0, 12, 90)) + ("",) * 6  # blanks: alone
    of_track = fold_of_tracks(groups, 4, seed=1)
    for group in set(groups) - {""}:
        assert len({of_track[i] for i, g in enumerate(groups) if g == group}) == 1, group
    blanks = of_track[-6:]
    assert len(set(blanks)) > 1  # a blank group is each track's own, not one shared group
    sizes = np.bincount(of_track, minlength=4)
    biggest = max(groups.count(g) for g in set(groups) - {""})
    assert sizes.max() - sizes.min() <= biggest
    # the manifest carries its groups through take() and the CSV
    manifest = _manifest(len(groups), groups)
    assert manifest.take([3, 1]).groups == (groups[3], groups[1])


def test_the_deal_is_seeded():
    groups = [None] * 40
    assert np.array_equal(fold_of_tracks(groups, 4, seed=7), fold_of_tracks(groups, 4, seed=7))
    assert not np.array_equal(fold_of_tracks(groups, 4, seed=7), fold_of_tracks(groups, 4, seed=8))


@pytest.mark.parametrize(
    ("folds", "fold", "message"),
    [
        (2, 0, "data folds must be an integer >= 3 (a test fold, a validation fold and at least one"),
        (3, 3, "data fold must be an integer in 0..2 (folds=3), got 3"),
        (3, -1, "data fold must be an integer in 0..2 (folds=3), got -1"),
        (3, None, "data folds=3 and fold=None: give both"),
        (None, 1, "data folds=None and fold=1: give both"),
    ],
)
def test_bad_fold_arguments_are_one_line(folds, fold, message):
    with pytest.raises(
        ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        check_fold_args(folds, fold)
    with pytest.raises(ConfigError):
        SyntheticDataModule(root="unused", folds=folds, fold=fold)


def test_more_folds_than_groups_is_refused():
    with pytest.raises(ConfigError, match=r"folds=4 but the corpus has only 3 group\(s\).*folds <= 3"):
        fold_manifest(_manifest(9, ("a", "b", "c") * 3), 4, 0)


def test_the_demo_datamodule_takes_its_splits_from_the_fold(tiny_corpus):
    tested: list[str] = []
    for fold in range(4):
        dm = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)), chunk_len=4000, folds=4, fold=fold)
        dm.setup("fit")
        assert dm.manifest is not None
        assert len(dm.manifest.split("test")) == len(dm.manifest.split("valid")) == 8  # 32 clips / 4
        tested += dm.manifest.split("test").ids
        assert len(dm.datasets["test"]) == 8 and len(dm.datasets["train"]) == 16  # type: ignore[arg-type]
    assert sorted(tested) == [f"clip{i:05d}" for i in range(32)]


def test_readers_that_know_artists_fill_the_groups(tmp_path):
    assert artist_of("f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3") == (
        "american_bach_soloists"
    )
    (tmp_path / "tags.csv").write_text("path,tags,artist\na.wav,rock,x\nb.wav,jazz,\nc.wav,rock,x\n")
    manifest = read_folder(tmp_path / "tags.csv")
    assert manifest.groups == ("x", "", "x")
    manifest.write_csv(tmp_path / "m.csv")
    assert Manifest.read_csv(tmp_path / "m.csv").groups == ("x", "", "x")
    (tmp_path / "plain.csv").write_text("path,tags\na.wav,rock\n")
    plain = read_folder(tmp_path / "plain.csv")
    plain.write_csv(tmp_path / "p.csv")
    assert plain.groups is None and Manifest.read_csv(tmp_path / "p.csv").groups is None
    assert (tmp_path / "p.csv").read_text().splitlines()[1] == "id,split,path,tags"  # unchanged format
