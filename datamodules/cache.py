"""A packed, memory-mappable int16 audio cache: decode once, then slice chunks without decoding.

Layout of a cache folder::

    .musictag-cache       the mark of a folder the cache owns (written first)
    settings.json         what an unfinished cache is being made from (sample rate, settings, sources)
    index.json            written last: {"format", "sample_rate", "source", "shards", "tracks": {id: [shard, offset, length]}}
    report.json           every track that did not make it in, and why
    shards/00000.i16      raw little-endian int16 samples of many tracks back to back
    shards/00000.json     the shard's commit record: its tracks and problems (written after the .i16)

Tracks are assigned to shards by their order in the task list (``tracks_per_shard`` each). A shard is
decoded, written to a temporary file, fsynced and renamed, and only then committed by its JSON record,
so a run that is killed leaves at most an uncommitted shard, which a later run redoes: an interrupted
and resumed run gives byte-for-byte the cache of an uninterrupted one. ``index.json`` is written once
every shard is committed; a folder with an ``index.json`` is complete.

A cache records what it was made from (``source``: the corpus, its audio root, metadata and settings).
Asked for again from other sources, it refuses with the line to fix it rather than serve stale audio;
a cache into which no track could be decoded is an error, not an empty cache that sticks; and a folder
that holds anything but a cache (the user's own audio and files) is never written into.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np

from musictag.audio import INT16_SCALE
from musictag.files import atomic_write, atomic_write_text, remove_stale_temporaries
from musictag.guards import check_output_folder
from musictag.types import ConfigError, Pathlike

FORMAT = "musictag-cache/2"
INDEX = "index.json"
REPORT = "report.json"
SETTINGS = "settings.json"
MARK = ".musictag-cache"
#: Peak below which a track counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4


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
        self._maps: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def __contains__(self, track_id: str) -> bool:
        return track_id in self.tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def length(self, track_id: str) -> int:
        return self.tracks[track_id][2]

    def _shard(self, shard: int) -> np.ndarray:
        """The shard's samples, memory-mapped (a plain ndarray view: slicing it is cheaper than a memmap's)."""
        if shard not in self._maps:
            self._maps[shard] = np.memmap(self.root / self.shards[shard], dtype="<i2", mode="r").view(
                np.ndarray
            )
        return self._maps[shard]

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
        for row in order.tolist():
            start, n = firsts[row], lengths[row]
            skip = max(0, -start)  # samples before the track's first
            first, stop = start + skip, min(n, start + length)
            if stop > first:
                offset = offsets[row]
                if skip:
                    out[row, :skip] = 0
                out[row, skip : skip + stop - first] = self._shard(shards[row])[
                    offset + first : offset + stop
                ]
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
        sizes: dict[int, int] = {}
        for number, name in enumerate(self.shards):
            path = self.root / name
            sizes[number] = path.stat().st_size // 2 if path.is_file() else -1
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
            (tmp / "shards").mkdir()
            record = _write_shard(tmp / "shards", 0, ((t, a, "") for t, a in tracks), task_ids=None)
            _write_index(tmp, [record], sample_rate, source)
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return AudioCache(root)


# --- writing ---------------------------------------------------------------------------------------


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


def _write_shard(
    shard_dir: Path,
    number: int,
    tracks: Iterable[tuple[str, np.ndarray | Exception, str]],
    task_ids: list[str] | None,
) -> dict[str, Any]:
    """Write one shard; ``tracks`` yields (id, audio or the error that stands for it, path)."""
    name = f"{number:05d}"
    data_path = shard_dir / f"{name}.i16"
    entries: list[list[Any]] = []
    problems: list[dict[str, str]] = []
    offset = 0
    with atomic_write(data_path) as tmp, open(tmp, "wb") as f:
        for track_id, audio, path in tracks:
            if isinstance(audio, Exception):
                problem, detail = getattr(audio, "problem", "unreadable"), str(audio)
                problems.append({"id": track_id, "path": path, "problem": problem, "detail": detail})
                continue
            samples = to_int16(audio)
            f.write(samples.tobytes())
            entries.append([track_id, offset, len(samples)])
            offset += len(samples)
    record = {"shard": f"shards/{name}.i16", "tracks": entries, "problems": problems, "task_ids": task_ids}
    atomic_write_text(shard_dir / f"{name}.json", json.dumps(record))  # the commit
    return record


def _write_index(root: Path, records: Sequence[dict[str, Any]], sample_rate: int, source: Any) -> None:
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


class TrackProblem(Exception):
    """A track left out of the cache (``problem``: missing, unreadable, empty, non_finite, silent, too_short)."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


@dataclass(frozen=True)
class ShardTask:
    number: int
    track_ids: list[str]
    paths: list[str]
    sample_rate: int
    min_seconds: float
    shard_dir: str


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


def _prepare_shard(task: ShardTask) -> tuple[int, int, int]:
    """Decode and write one shard (runs in a worker process). Returns (shard, tracks, problems)."""
    tracks = (
        (track_id, _decode(path, task.sample_rate, task.min_seconds), path)
        for track_id, path in zip(task.track_ids, task.paths, strict=True)
    )
    record = _write_shard(Path(task.shard_dir), task.number, tracks, task_ids=task.track_ids)
    return task.number, len(task.track_ids), len(record["problems"])


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
    """Decode ``(track_id, audio path)`` pairs into the cache at ``root``; resumable (see module docstring).

    Every track that cannot be read, is empty, silent, or shorter than ``min_seconds`` is left out and
    listed in ``report.json`` (:meth:`AudioCache.report`).
    """
    root = Path(root)
    if AudioCache.exists(root):
        cache = AudioCache(root)
        if cache.sample_rate != sample_rate:
            raise ValueError(
                f"{root} already holds a {cache.sample_rate} Hz cache; use another folder for {sample_rate} Hz"
            )
        check_source(root, cache.source, source)
        return cache
    if not tracks:
        raise CacheError(f"no tracks to prepare into {root}: the metadata lists none")
    ids = [t for t, _ in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError("track ids must be unique")
    claim_cache_dir(root)
    shard_dir = root / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    for folder in (root, shard_dir):  # half-written files of a killed earlier run
        remove_stale_temporaries(folder)
    tasks = [
        ShardTask(
            n,
            ids[s : s + tracks_per_shard],
            [p for _, p in tracks[s : s + tracks_per_shard]],
            sample_rate,
            min_seconds,
            str(shard_dir),
        )
        for n, s in enumerate(range(0, len(tracks), tracks_per_shard))
    ]
    settings = {
        "sample_rate": sample_rate,
        "min_seconds": min_seconds,
        "tracks_per_shard": tracks_per_shard,
        "source": source,
    }
    settings_path = root / SETTINGS
    if settings_path.is_file():
        earlier = json.loads(settings_path.read_text())
        check_source(root, earlier.get("source"), source)
        if {k: v for k, v in earlier.items() if k != "source"} != {
            k: v for k, v in settings.items() if k != "source"
        }:
            raise CacheError(
                f"{root} holds an unfinished cache with other settings ({settings_path}); remove it or use "
                "another folder"
            )
    atomic_write_text(settings_path, json.dumps(settings))
    todo = [t for t in tasks if not _committed(shard_dir, t)]
    bar = _progress(len(tracks), len(tracks) - sum(len(t.track_ids) for t in todo), progress)
    try:
        if workers <= 1 or len(todo) <= 1:
            for task in todo:
                _, n_tracks, _ = _prepare_shard(task)
                bar.update(n_tracks)
        else:
            _prepare_in_pool(todo, workers, bar)
    except KeyboardInterrupt:
        bar.close()
        for folder in (root, shard_dir):  # the stopped workers' shards in progress
            remove_stale_temporaries(folder)
        done = sum(_committed(shard_dir, t) for t in tasks)
        message = (
            f"interrupted: {done} of {len(tasks)} shards of {root} are done (half-written files removed); "
            "run the same command again to resume from there"
        )
        print(f"musictag prepare: {message}", file=sys.stderr)
        raise PrepareInterrupted(message) from None
    finally:
        bar.close()
    records = [json.loads((shard_dir / f"{t.number:05d}.json").read_text()) for t in tasks]
    if not any(record["tracks"] for record in records):
        # nothing decoded (a wrong audio root, most likely): leave no cache behind that would stick
        first = next((p["detail"] for r in records for p in r["problems"]), "")
        shutil.rmtree(shard_dir, ignore_errors=True)
        settings_path.unlink(missing_ok=True)
        raise CacheError(
            f"none of the {len(tracks)} tracks could be used, e.g. {first}; check the audio root "
            "(and the metadata's paths), then prepare again"
        )
    _write_index(root, records, sample_rate, source)
    return AudioCache(root)


class PrepareInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`prepare_cache`: the finished shards are kept, the half-written ones removed."""


def _init_worker(parent: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # a forked worker inherits the parent's handlers; the parent ends its workers with SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        # a parent killed outright (SIGKILL, the OOM killer) cannot end its workers, which would wait
        # for work forever: the kernel ends them with it (PR_SET_PDEATHSIG)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)


def _prepare_in_pool(todo: list[ShardTask], workers: int, bar: Any) -> None:
    # fork where there is one (as PyTorch's DataLoader): spawned workers would re-import the calling
    # program, Lightning and torch included, before decoding anything
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context(method),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    try:
        for future in as_completed([pool.submit(_prepare_shard, t) for t in todo]):
            _, n_tracks, _ = future.result()
            bar.update(n_tracks)
    except BaseException:
        # stop now: the workers' shards in progress are uncommitted and redone by the next run
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
            process.join()
        raise
    pool.shutdown()


def _committed(shard_dir: Path, task: ShardTask) -> bool:
    record_path = shard_dir / f"{task.number:05d}.json"
    if not record_path.is_file() or not (shard_dir / f"{task.number:05d}.i16").is_file():
        return False
    try:
        return json.loads(record_path.read_text()).get("task_ids") == task.track_ids
    except json.JSONDecodeError:
        return False


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="track", desc="prepare", disable=not enabled, file=sys.stderr)
