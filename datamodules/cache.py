"""A packed, memory-mappable int16 audio cache: decode once, then slice chunks without decoding.

Layout of a cache folder::

    .musictag-cache       the mark of a folder the cache owns (written first)
    settings.json         what an unfinished cache is being made from (sample rate, settings, sources)
    index.json            written last: {"format", "sample_rate", "source", "shards", "tracks": {id: [shard, offset, length]}}
    report.json           every track that did not make it in, and why
    shards/00000.i16      raw little-endian int16 samples of many tracks back to back
    shards/00000.json     the shard's commit record: its tracks and problems (written after the .i16)

Tracks are assigned to shards by their order in the task list (``tracks_per_shard`` each); the shards
are written, committed and resumed as :mod:`datamodules.store` writes every sharded cache, so an
interrupted and resumed run gives byte-for-byte the cache of an uninterrupted one. ``index.json`` is
written once every shard is committed; a folder with an ``index.json`` is complete.

A cache records what it was made from (``source``: the corpus, its audio root, metadata and settings).
Asked for again from other sources, it refuses with the line to fix it rather than serve stale audio;
a cache into which no track could be decoded is an error, not an empty cache that sticks; and a folder
that holds anything but a cache (the user's own audio and files) is never written into.

Here: the format, the read side (:class:`AudioCache`), the folder's ownership and sources, and the
writing of one shard and of the index; decoding a corpus into a cache is :mod:`datamodules.prepare`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.store import ShardFiles, ShardWriter
from musictag.audio import INT16_SCALE
from musictag.files import atomic_write_text
from musictag.guards import check_output_folder
from musictag.types import ConfigError, Pathlike

FORMAT = "musictag-cache/2"
INDEX = "index.json"
REPORT = "report.json"
SETTINGS = "settings.json"
MARK = ".musictag-cache"


class CacheError(ConfigError):
    """A cache that cannot be made or used as asked; the message says what to do."""


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] → int16 (clipped)."""
    return np.clip(np.round(audio * INT16_SCALE), -32768, 32767).astype("<i2")


class AudioCache:
    """Read side of a cache folder. Safe to pickle into DataLoader workers: memmaps open lazily per process."""

    def __init__(self, root: Pathlike) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"no complete audio cache at {self.root} (missing {INDEX}); prepare the corpus first "
                "(`musictag prepare`), or rerun it to finish an interrupted one"
            )
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(
                f"{index_path}: cache format {index.get('format')!r}, expected {FORMAT!r}; prepare it again"
            )
        self.sample_rate: int = int(index["sample_rate"])
        self.source: Any = index.get("source")
        self.shards: list[str] = list(index["shards"])
        self.tracks: dict[str, tuple[int, int, int]] = {k: tuple(v) for k, v in index["tracks"].items()}
        self.files = ShardFiles(self.root, self.shards, "<i2")

    def __contains__(self, track_id: str) -> bool:
        return track_id in self.tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def length(self, track_id: str) -> int:
        return self.tracks[track_id][2]

    def _shard(self, shard: int) -> np.ndarray:
        """The shard's samples, memory-mapped (:meth:`ShardFiles.rows`)."""
        return self.files.rows(shard)

    def read(self, track_id: str, start: int = 0, length: int | None = None) -> np.ndarray:
        """Float32 samples ``[start, start + length)`` of a track, zero-padded past its end."""
        return self.read_int16(track_id, start, length).astype(np.float32) / np.float32(INT16_SCALE)

    def read_int16(self, track_id: str, start: int = 0, length: int | None = None) -> np.ndarray:
        """The stored int16 samples ``[start, start + length)`` of a track, zero-padded past its end."""
        shard, offset, n = self.tracks[track_id]
        length = n - start if length is None else length
        out = np.zeros((1, length), dtype=np.int16)
        self.read_chunks(np.array([[shard, offset, n]]), np.array([start]), length, out)
        return out[0]

    def locations(self, track_ids: Sequence[str]) -> np.ndarray:
        """``(len(track_ids), 3)`` int64 rows of (shard, offset, length), for :meth:`read_chunks`."""
        return np.array([self.tracks[t] for t in track_ids], dtype=np.int64).reshape(-1, 3)

    def read_chunks(
        self, locations: np.ndarray, starts: np.ndarray, length: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Chunks of many tracks in one pass: ``(B, length)`` int16, row ``i`` the samples
        ``[starts[i], starts[i] + length)`` of the track at ``locations[i]``, zero-padded before its
        start (a negative start: the ``patches`` chunk mode) and past its end.

        Rows are read in (shard, offset) order, so a batch touches each shard file front to back; every
        row is one memmap slice copied straight into ``out`` (no float conversion, no per-row arrays).
        """
        if out is None:
            out = np.empty((len(locations), length), dtype=np.int16)
        order = np.lexsort((locations[:, 1] + starts, locations[:, 0]))
        shards, offsets, lengths = locations.T.tolist()
        firsts = starts.tolist()
        samples = self.files.rows
        for row in order.tolist():
            start, n = firsts[row], lengths[row]
            skip = max(0, -start)  # samples before the track's first
            first, stop = start + skip, min(n, start + length)
            if stop > first:
                offset = offsets[row]
                if skip:
                    out[row, :skip] = 0
                out[row, skip : skip + stop - first] = samples(shards[row])[offset + first : offset + stop]
                if skip + stop - first < length:
                    out[row, skip + stop - first :] = 0
            else:
                out[row] = 0
        return out

    def damaged_tracks(self) -> dict[str, str]:
        """Tracks whose samples a shard file does not hold (a missing or truncated ``.i16``) → why.

        Checked once when a DataModule loads the cache, so a damaged file leaves its tracks out with a
        warning instead of failing a read in the middle of an epoch.
        """
        sizes = [-1 if size is None else size // 2 for size in self.files.sizes()]
        damaged = {}
        for track_id, (shard, offset, n) in self.tracks.items():
            if sizes[shard] < offset + n:
                what = "missing" if sizes[shard] < 0 else f"truncated to {sizes[shard]} samples"
                damaged[track_id] = f"{self.root / self.shards[shard]} is {what}"
        return damaged

    def report(self) -> list[dict[str, str]]:
        """The tracks left out when the cache was prepared (``id``, ``path``, ``problem``, ``detail``)."""
        path = self.root / REPORT
        return json.loads(path.read_text())["problems"] if path.is_file() else []

    @staticmethod
    def exists(root: Pathlike) -> bool:
        return (Path(root) / INDEX).is_file()

    @staticmethod
    def write(
        root: Pathlike, tracks: Iterable[tuple[str, np.ndarray]], sample_rate: int, source: Any = None
    ) -> AudioCache:
        """Write in-memory ``(track_id, float audio)`` pairs as a one-shard cache at ``root`` (atomically)."""
        root = Path(root)
        _refuse_foreign(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            (tmp / MARK).touch()
            writer = shard_writer(tmp)
            writer.start()
            record = write_shard(writer, "00000", ((t, a, "") for t, a in tracks), task_ids=None)
            write_index(tmp, [record], sample_rate, source)
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return AudioCache(root)


# --- the folder: its ownership and sources, its shards and index ----------------------------------


def is_cache_dir(root: Pathlike) -> bool:
    """Whether ``root`` is a folder this module made (its mark, or a complete index of this format)."""
    root = Path(root)
    if (root / MARK).is_file():
        return True
    try:
        return json.loads((root / INDEX).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _refuse_foreign(root: Path) -> None:
    """Refuse to write a cache into a file or a folder holding anything the cache did not create (the
    shared output-folder guard, so ``prepare``, ``embed`` and the DataModules refuse alike)."""
    check_output_folder(
        root, "cache folder", ours=is_cache_dir, hint="give a new or empty folder for the cache"
    )


def claim_cache_dir(root: Pathlike) -> Path:
    """Create the cache folder ``root`` (or accept an empty one, or an earlier cache) and mark it as one."""
    root = Path(root)
    _refuse_foreign(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARK).touch()
    return root


def check_source(root: Pathlike, recorded: Any, asked: Any) -> None:
    """Refuse a cache made from other sources than the ones asked for now.

    Both are ``source`` records (dicts with ``"record"``); only the entries given now (not ``None``) are
    compared, so a cache can be used without its audio root or metadata. Caches from before sources
    were recorded are not checked.
    """
    if not (isinstance(recorded, dict) and isinstance(asked, dict) and "record" in recorded):
        return
    for key, value in asked.items():
        if value is not None and key in recorded and recorded[key] != value:
            raise CacheError(
                f"the cache at {root} was prepared with {key}={recorded[key]!r}, not {value!r} as asked "
                f"now; remove {root} to prepare it again from the new {key}, or give another cache folder"
            )


def shard_writer(root: Pathlike) -> ShardWriter:
    """The writer of the int16 shards of the cache folder ``root``: a row is a sample."""
    return ShardWriter(root, ".i16", "<i2")


def write_shard(
    writer: ShardWriter,
    name: str,
    tracks: Iterable[tuple[str, np.ndarray | Exception, str]],
    task_ids: list[str] | None,
) -> dict[str, Any]:
    """Write and commit shard ``name``; ``tracks`` yields (id, float audio or the error that stands
    for it, path). Its record lists each track's ``[id, offset, length]`` and each problem."""
    entries: list[list[Any]] = []
    problems: list[dict[str, str]] = []
    with writer.write(name, task_ids) as shard:
        for track_id, audio, path in tracks:
            if isinstance(audio, Exception):
                problem, detail = getattr(audio, "problem", "unreadable"), str(audio)
                problems.append({"id": track_id, "path": path, "problem": problem, "detail": detail})
                continue
            samples = to_int16(audio)
            entries.append([track_id, shard.write(samples), len(samples)])
        shard.record.update(shard=writer.relative(name), tracks=entries, problems=problems)
    return {**shard.record, "task_ids": task_ids}


def write_index(root: Path, records: Sequence[dict[str, Any]], sample_rate: int, source: Any) -> None:
    """``report.json`` (every track left out) and then ``index.json``, the mark of a complete cache."""
    tracks: dict[str, list[int]] = {}
    problems: list[dict[str, str]] = []
    for number, record in enumerate(records):
        for track_id, offset, length in record["tracks"]:
            tracks[track_id] = [number, offset, length]
        problems += record["problems"]
    atomic_write_text(root / REPORT, json.dumps({"n_tracks": len(tracks), "problems": problems}, indent=1))
    index = {
        "format": FORMAT,
        "sample_rate": sample_rate,
        "source": source,
        "shards": [r["shard"] for r in records],
        "tracks": tracks,
    }
    atomic_write_text(root / INDEX, json.dumps(index))
