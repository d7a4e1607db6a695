"""Preparing an audio cache (:mod:`datamodules.cache`): decode every track of a corpus once, in worker
processes, into int16 shards; resumable after an interruption (:mod:`datamodules.store`).

Every track that cannot be read, is empty, holds NaN/Inf, is silent or is shorter than asked for is left
out and listed with its reason in ``report.json``. A cache into which no track could be decoded is an
error, not an empty cache that sticks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.cache import (
    SETTINGS,
    AudioCache,
    CacheError,
    check_source,
    claim_cache_dir,
    shard_writer,
    write_index,
    write_shard,
)
from datamodules.store import ShardInterrupted, write_shards
from musictag.files import atomic_write_text
from musictag.types import Pathlike

#: Peak below which a track counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: Ctrl-C (or SIGTERM in ``musictag prepare``) during :func:`prepare_cache`: the finished shards are kept,
#: the half-written ones removed.
PrepareInterrupted = ShardInterrupted


class TrackProblem(Exception):
    """A track left out of the cache (``problem``: missing, unreadable, empty, non_finite, silent, too_short)."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


@dataclass(frozen=True)
class DecodeTask:
    """One shard to decode (a :class:`~datamodules.store.ShardTask`; it pickles into a worker)."""

    number: int
    track_ids: list[str]
    paths: list[str]
    sample_rate: int
    min_seconds: float
    root: str

    @property
    def name(self) -> str:
        return f"{self.number:05d}"


def _decode(path: str, sample_rate: int, min_seconds: float) -> np.ndarray | Exception:
    from musictag.audio import AudioError, load_audio

    try:
        audio, _ = load_audio(path, sample_rate)
    except AudioError as err:  # missing, unreadable, empty, or NaN/Inf samples (non_finite)
        return TrackProblem(err.problem, str(err))
    except Exception as err:  # noqa: BLE001  (a decoder crash on one file must not stop the corpus)
        return TrackProblem("unreadable", f"{path}: {type(err).__name__}: {err}")
    if np.abs(audio).max() < SILENCE_PEAK:
        return TrackProblem("silent", f"{path}: silent (peak below -80 dBFS)")
    seconds = len(audio) / sample_rate
    if seconds < min_seconds:
        return TrackProblem(
            "too_short", f"{path}: {seconds:.2f} s, shorter than the {min_seconds:g} s asked for"
        )
    return audio


def _prepare_shard(task: DecodeTask, advance: Callable[[int], object]) -> None:
    """Decode and write one shard (runs in a worker process)."""
    tracks = (
        (track_id, _decode(path, task.sample_rate, task.min_seconds), path)
        for track_id, path in zip(task.track_ids, task.paths, strict=True)
    )
    write_shard(shard_writer(task.root), task.name, tracks, task_ids=task.track_ids)
    advance(len(task.track_ids))


def prepare_cache(
    root: Pathlike,
    tracks: Sequence[tuple[str, str]],
    sample_rate: int = 16000,
    workers: int = 1,
    tracks_per_shard: int = 128,
    min_seconds: float = 0.0,
    source: Any = None,
    progress: bool = True,
) -> AudioCache:
    """Decode ``(track_id, audio path)`` pairs into the cache at ``root``; resumable (see the module
    docstring of :mod:`datamodules.cache`).

    Every track that cannot be read, is empty, silent, or shorter than ``min_seconds`` is left out and
    listed in ``report.json`` (:meth:`AudioCache.report`).
    """
    root = Path(root)
    if AudioCache.exists(root):
        return _finished(root, sample_rate, source)
    if not tracks:
        raise CacheError(f"no tracks to prepare into {root}: the metadata lists none")
    ids = [t for t, _ in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError("track ids must be unique")
    claim_cache_dir(root)
    writer = shard_writer(root)
    writer.start()  # half-written files of a killed earlier run
    settings = {
        "sample_rate": sample_rate,
        "min_seconds": min_seconds,
        "tracks_per_shard": tracks_per_shard,
        "source": source,
    }
    _record_settings(root, settings)
    paths = [p for _, p in tracks]
    tasks = [
        DecodeTask(
            n,
            ids[s : s + tracks_per_shard],
            paths[s : s + tracks_per_shard],
            sample_rate,
            min_seconds,
            str(root),
        )
        for n, s in enumerate(range(0, len(tracks), tracks_per_shard))
    ]
    records = write_shards(
        writer,
        tasks,
        _prepare_shard,
        prog="musictag prepare",
        desc="prepare",
        progress=progress,
        workers=workers,
    )
    _refuse_empty(root, records, len(tracks))
    write_index(root, records, sample_rate, source)
    return AudioCache(root)


def _finished(root: Path, sample_rate: int, source: Any) -> AudioCache:
    """The complete cache at ``root``, if made at ``sample_rate`` from ``source``."""
    cache = AudioCache(root)
    if cache.sample_rate != sample_rate:
        raise ValueError(
            f"{root} already holds a {cache.sample_rate} Hz cache; use another folder for {sample_rate} Hz"
        )
    check_source(root, cache.source, source)
    return cache


def _record_settings(root: Path, settings: dict[str, Any]) -> None:
    """Write what the cache is made from; an unfinished one is resumed only with the same settings."""
    settings_path = root / SETTINGS
    if settings_path.is_file():
        earlier = json.loads(settings_path.read_text())
        check_source(root, earlier.get("source"), settings["source"])
        if {k: v for k, v in earlier.items() if k != "source"} != {
            k: v for k, v in settings.items() if k != "source"
        }:
            raise CacheError(
                f"{root} holds an unfinished cache with other settings ({settings_path}); remove it or use "
                "another folder"
            )
    atomic_write_text(settings_path, json.dumps(settings))


def _refuse_empty(root: Path, records: Sequence[dict[str, Any]], n_tracks: int) -> None:
    """Nothing decoded (a wrong audio root, most likely): leave no cache behind that would stick."""
    if any(record["tracks"] for record in records):
        return
    first = next((p["detail"] for r in records for p in r["problems"]), "")
    shutil.rmtree(root / "shards", ignore_errors=True)
    (root / SETTINGS).unlink(missing_ok=True)
    raise CacheError(
        f"none of the {n_tracks} tracks could be used, e.g. {first}; check the audio root "
        "(and the metadata's paths), then prepare again"
    )
