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


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from musictag.files import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)  # a writer that is gone, as a worker killed mid-shard is
    (tmp_path / f".00005.tmp-{dead_pid}.i16").write_bytes(b"half a shard")
    (tmp_path / f".settings.tmp-{dead_pid}.json").write_text("{")
    (tmp_path / f".00006.tmp-{os.getpid()}.i16").write_bytes(b"being written")  # a live writer's
    (tmp_path / "00000.i16").write_bytes(b"a committed shard")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [f".00005.tmp-{dead_pid}.i16", f".settings.tmp-{dead_pid}.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".00006.tmp-{os.getpid()}.i16", "00000.i16"]
