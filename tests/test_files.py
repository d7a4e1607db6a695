"""The one atomic-write helper: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import pytest

from musictag.files import atomic_write, atomic_write_text


def test_the_file_appears_only_when_the_block_completes(tmp_path):
    target = tmp_path / "scores.npz"
    target.write_text("old")
    with atomic_write(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old" and tmp.suffix == ".npz" and tmp.parent == tmp_path
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.npz"]


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "per_tag.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as tmp:
        tmp.write_text("half of it")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["per_tag.csv"]
