"""The sharded writer and reader of both caches (``datamodules.store``): a shard is visible only once
committed, a resumed run redoes exactly the shards not committed, and nothing half-written is left."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import datamodules.store as store
from datamodules.store import Shard, ShardFiles, ShardInterrupted, ShardWriter, plan_shards, write_shards

ROW = (2, 3)


def rows_of(track_id: str) -> np.ndarray:
    """Two float16 rows per track, different for each track."""
    return np.full((2, *ROW), float(sum(map(ord, track_id))), dtype=np.float16) + np.arange(6).reshape(
        1, *ROW
    )


class Writes:
    """A ``write_shard`` for :func:`write_shards` that records what it wrote and can stop at a shard."""

    def __init__(self, writer: ShardWriter, stop_at: str | None = None) -> None:
        self.writer, self.stop_at, self.written = writer, stop_at, []

    def __call__(self, task: Shard, advance) -> None:
        self.written.append(task.name)
        with self.writer.write(task.name, task.track_ids) as shard:
            entries = []
            for track_id in task.track_ids:
                if task.name == self.stop_at and entries:
                    raise KeyboardInterrupt  # Ctrl-C in the middle of the shard
                entries.append([track_id, shard.write(rows_of(track_id)), 2])
                advance(1)
            shard.record.update(tracks=entries)


def files_of(folder) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_committed_shard_holds_its_rows_and_its_record(tmp_path):
    writer = ShardWriter(tmp_path, ".f16", "<f2", ROW)
    writer.start()
    with writer.write("train-00000", ["a", "b"]) as shard:
        assert shard.write(rows_of("a")) == 0 and shard.write(rows_of("b")) == 2
        shard.record.update(split="train", tracks=[["a", 0, 2], ["b", 2, 2]])
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["train-00000.f16", "train-00000.json"]
    # the record says what the caller put in it, then the tracks the shard was asked for
    assert (tmp_path / "shards" / "train-00000.json").read_text() == json.dumps(
        {"split": "train", "tracks": [["a", 0, 2], ["b", 2, 2]], "task_ids": ["a", "b"]}
    )
    assert writer.committed(Shard("train-00000", ["a", "b"]))
    assert not writer.committed(Shard("train-00000", ["a", "c"]))  # made for other tracks: redone
    assert writer.relative("train-00000") == "shards/train-00000.f16"
    files = ShardFiles(tmp_path, ["shards/train-00000.f16"], "<f2", ROW)
    assert files.sizes() == [4 * 6 * 2] and files.row_bytes == 12
    np.testing.assert_array_equal(files.rows(0), np.concatenate([rows_of("a"), rows_of("b")]))
    with pytest.raises(ValueError, match=r"rows of shape \(3,\) in a shard of rows \(2, 3\)"):
        with writer.write("train-00001", ["c"]) as shard:
            shard.write(np.zeros((1, 3), np.float16))


@pytest.mark.parametrize("where", ["rows", "record"])
def test_a_crash_before_the_commit_leaves_no_shard(tmp_path, monkeypatch, where):
    writer = ShardWriter(tmp_path, ".i16", "<i2")
    writer.start()
    if where == "record":  # the rows are complete and renamed, and the record's write fails
        written = store.atomic_write_text

        def failing(path, text):
            if path.name.endswith(".json"):
                raise KeyboardInterrupt
            written(path, text)

        monkeypatch.setattr(store, "atomic_write_text", failing)
    with pytest.raises(KeyboardInterrupt):
        with writer.write("00000", ["a"]) as shard:
            shard.write(np.arange(10, dtype=np.int16))
            if where == "rows":
                raise KeyboardInterrupt
    assert list((tmp_path / "shards").iterdir()) == []  # no data file, no record, no temporary
    assert not writer.committed(Shard("00000", ["a"]))


def test_start_removes_what_a_killed_run_left(tmp_path):
    writer = ShardWriter(tmp_path, ".f16", "<f2", ROW)
    writer.start()
    with writer.write("test-00000", ["a"]) as shard:
        shard.write(rows_of("a"))
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )
    shards = tmp_path / "shards"
    (shards / f".test-00001.tmp-{dead}.f16").write_bytes(b"\0" * 24)  # killed while writing rows
    (shards / "test-00002.f16").write_bytes(b"\0" * 24)  # killed between the rows and the record
    (tmp_path / f".settings.tmp-{dead}.json").write_text("{")
    writer.start()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["shards", "test-00000.f16", "test-00000.json"]


def test_a_resumed_run_redoes_only_the_shards_not_committed_and_gives_the_same_files(tmp_path, capsys):
    ids = [f"t{i}" for i in range(7)]
    tasks = plan_shards(ids, 3, prefix="train-")
    assert [(t.name, t.track_ids) for t in tasks] == [
        ("train-00000", ["t0", "t1", "t2"]),
        ("train-00001", ["t3", "t4", "t5"]),
        ("train-00002", ["t6"]),
    ]
    whole = ShardWriter(tmp_path / "whole", ".f16", "<f2", ROW)
    whole.start()
    records = write_shards(whole, tasks, Writes(whole), prog="test", desc="test", progress=False)
    assert [r["tracks"] for r in records][2] == [["t6", 0, 2]]
    # Ctrl-C in the middle of the second shard: the first is kept, the second leaves nothing
    stopped = ShardWriter(tmp_path / "stopped", ".f16", "<f2", ROW)
    stopped.start()
    with pytest.raises(ShardInterrupted) as interrupted:
        write_shards(
            stopped, tasks, Writes(stopped, stop_at="train-00001"), prog="test", desc="t", progress=False
        )
    message = f"interrupted: 1 of 3 shards of {stopped.root} are done (half-written files removed)"
    assert str(interrupted.value).startswith(message)
    assert isinstance(interrupted.value, KeyboardInterrupt)  # a command's Ctrl-C: exit 130
    assert f"test: {message}; run the same command again to resume from there" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "stopped" / "shards").iterdir()) == [
        "train-00000.f16",
        "train-00000.json",
    ]
    resumed = Writes(stopped)
    assert write_shards(stopped, tasks, resumed, prog="test", desc="t", progress=False) == records
    assert resumed.written == ["train-00001", "train-00002"]
    assert files_of(tmp_path / "stopped") == files_of(tmp_path / "whole")
    # a record damaged by hand is no commit: that shard alone is redone
    (tmp_path / "stopped" / "shards" / "train-00001.json").write_text("{")
    again = Writes(stopped)
    write_shards(stopped, tasks, again, prog="test", desc="t", progress=False)
    assert again.written == ["train-00001"]
    assert files_of(tmp_path / "stopped") == files_of(tmp_path / "whole")


def test_shard_files_pickle_without_their_memory_maps(tmp_path):
    writer = ShardWriter(tmp_path, ".i16", "<i2")
    writer.start()
    with writer.write("00000", None) as shard:
        shard.write(np.arange(5, dtype=np.int16))
    files = ShardFiles(tmp_path, ["shards/00000.i16", "shards/00001.i16"], "<i2")
    assert files.rows(0).tolist() == [0, 1, 2, 3, 4] and files._maps
    clone = pickle.loads(pickle.dumps(files))
    assert clone._maps == {} and clone.rows(0).tolist() == [0, 1, 2, 3, 4]
    assert files.sizes() == [10, None]  # the second is missing
