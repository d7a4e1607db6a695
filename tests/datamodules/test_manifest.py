from __future__ import annotations

import numpy as np
import pytest

from datamodules.manifest import Manifest


def test_csv_round_trip_keeps_tag_order_and_splits(tmp_path):
    manifest = Manifest(
        ("a", "b", "c"),
        ("train", "valid", "test"),
        np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.uint8),
        ("rock", "female voice", "hip-hop"),
        ("x/a.mp3", "", "c.wav"),
    )
    manifest.write_csv(tmp_path / "m.csv")
    again = Manifest.read_csv(tmp_path / "m.csv")
    assert again.ids == manifest.ids and again.splits == manifest.splits and again.paths == manifest.paths
    assert again.tag_names == manifest.tag_names
    np.testing.assert_array_equal(again.targets, manifest.targets)
    assert again.split("test").ids == ("c",)


def test_inconsistent_manifest_is_refused():
    with pytest.raises(ValueError, match="not unique"):
        Manifest(("a", "a"), ("train", "train"), np.zeros((2, 1), np.uint8), ("t",), ("", ""))
    with pytest.raises(ValueError, match="do not match 2 tag names"):
        Manifest(("a",), ("train",), np.zeros((1, 1), np.uint8), ("t", "u"), ("",))


def test_not_a_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("id,split\n")
    with pytest.raises(ValueError, match="not a musictag manifest"):
        Manifest.read_csv(tmp_path / "m.csv")
