"""Sharded cache folders: the one way the audio cache (:mod:`datamodules.cache`) and the embedding cache
(:mod:`datamodules.embeddings`) are written, resumed after an interruption, and read.

A cache keeps its rows (int16 samples, float16 hidden states) in shard files, each the unit a resumed
run redoes::

    shards/<name><suffix>   raw little-endian rows, tracks back to back
    shards/<name>.json      the shard's commit record: what it holds, and ``task_ids`` (the tracks asked for)

A shard's rows go to a temporary sibling (:func:`musictag.files.atomic_write`) that is fsynced and renamed
once complete, and only then does its record commit it. A shard is *committed* when both files are there
and the record names the tracks asked for now; a reader and a resumed run see committed shards only, and
everything else is redone. A run stopped at any point leaves at most a temporary or a data file without
its record, which the next run removes (:meth:`ShardWriter.start`) and a Ctrl-C removes at once; so a
resumed run gives byte-for-byte the files of an uninterrupted one. Which settings a folder is made with,
and its ``index.json``, are the caches' own.

Nothing here imports torch: cache-preparation workers load no deep-learning stack.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import numpy as np

from musictag.files import atomic_write, atomic_write_text, remove_stale_temporaries
from musictag.types import Pathlike

SHARDS = "shards"


class ShardTask(Protocol):
    """What a shard is made for: its file name (without suffix) and the tracks it is asked to hold."""

    @property
    def name(self) -> str: ...

    @property
    def track_ids(self) -> list[str]: ...


Task = TypeVar("Task", bound=ShardTask)


@dataclass(frozen=True)
class Shard:
    """The plain :class:`ShardTask`."""

    name: str
    track_ids: list[str]


def plan_shards(track_ids: Sequence[str], tracks_per_shard: int, prefix: str = "") -> list[Shard]:
    """``track_ids`` in order, ``tracks_per_shard`` a shard, named ``<prefix>00000``, ``<prefix>00001``..."""
    ids = list(track_ids)
    return [
        Shard(f"{prefix}{number:05d}", ids[first : first + tracks_per_shard])
        for number, first in enumerate(range(0, len(ids), tracks_per_shard))
    ]


class ShardInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a SIGTERM a command turns into one) while shards were written: the committed shards are
    kept, the half-written ones removed, and the message says how to resume."""


@dataclass
class ShardRows:
    """A shard being written: :meth:`write` appends rows to its temporary file; ``record`` is what the
    caller wants its commit record to say (``task_ids`` is added on commit)."""

    file: IO[bytes]
    dtype: str
    row_shape: tuple[int, ...]
    rows: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    def write(self, rows: np.ndarray) -> int:
        """Append ``rows`` (``(n, *row_shape)``); returns the number of the first of them in the shard."""
        if tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(f"rows of shape {tuple(rows.shape[1:])} in a shard of rows {self.row_shape}")
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        first, self.rows = self.rows, self.rows + len(rows)
        return first


class ShardWriter:
    """The write side of the shards of the cache folder ``root`` (see the module docstring).

    Picklable (paths and a dtype only): a worker process builds none of its own.
    """

    def __init__(self, root: Pathlike, suffix: str, dtype: str, row_shape: Sequence[int] = ()) -> None:
        self.root = Path(root)
        self.shard_dir = self.root / SHARDS
        self.suffix, self.dtype, self.row_shape = suffix, dtype, tuple(int(n) for n in row_shape)

    def relative(self, name: str) -> str:
        """The shard's data file relative to the folder, as an index lists it: ``shards/00000.i16``."""
        return f"{SHARDS}/{name}{self.suffix}"

    def data_path(self, name: str) -> Path:
        return self.shard_dir / f"{name}{self.suffix}"

    def record_path(self, name: str) -> Path:
        return self.shard_dir / f"{name}.json"

    def start(self) -> None:
        """Make ``shards/`` and remove what a run killed outright left: its temporaries (of writers no
        longer running, here and in the folder) and data files without a record."""
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.clean()

    def clean(self, tasks: Sequence[ShardTask] = ()) -> None:
        """Remove stale temporaries, data files without a record, and the data files of ``tasks`` not
        committed (a record of another task list)."""
        for folder in (self.root, self.shard_dir):
            remove_stale_temporaries(folder)
        for path in self.shard_dir.glob(f"*{self.suffix}"):
            if not path.name.startswith(".") and not self.record_path(path.stem).is_file():
                path.unlink(missing_ok=True)
        for task in tasks:
            if not self.committed(task):
                self.data_path(task.name).unlink(missing_ok=True)

    def committed(self, task: ShardTask) -> bool:
        """Whether the shard of ``task`` is written and committed for exactly its tracks."""
        if not (self.record_path(task.name).is_file() and self.data_path(task.name).is_file()):
            return False
        try:
            return self.record(task.name).get("task_ids") == task.track_ids
        except (OSError, ValueError):  # a record damaged by hand: not committed, redone
            return False

    def record(self, name: str) -> dict[str, Any]:
        """The commit record of shard ``name``."""
        return json.loads(self.record_path(name).read_text())

    @contextmanager
    def write(self, name: str, task_ids: list[str] | None) -> Iterator[ShardRows]:
        """Write shard ``name``: rows go to a temporary file that becomes the shard, committed by its
        record, only when the block completes. An exception (Ctrl-C included) anywhere before the record
        is written leaves no shard: neither the temporary nor a data file without its record."""
        data_path = self.data_path(name)
        with atomic_write(data_path) as tmp, open(tmp, "wb") as file:
            shard = ShardRows(file, self.dtype, self.row_shape)
            yield shard
            file.flush()
        try:
            atomic_write_text(self.record_path(name), json.dumps({**shard.record, "task_ids": task_ids}))
        except BaseException:
            data_path.unlink(missing_ok=True)
            raise


def write_shards(
    writer: ShardWriter,
    tasks: Sequence[Task],
    write_shard: Callable[[Task, Callable[[int], object]], None],
    *,
    prog: str,
    desc: str,
    progress: bool = True,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Write the shard of every task not committed yet, then return every task's record, in order.

    ``write_shard(task, advance)`` writes one shard through ``writer`` (:meth:`ShardWriter.write`) and
    calls ``advance(n)`` for each ``n`` tracks done (the progress bar). With ``workers > 1`` it runs in
    worker processes (it and the tasks must pickle; the bar then advances a shard at a time). Ctrl-C
    ends the workers, removes the half-written shards, says how many are done and how to resume
    (``prog: interrupted: ...``), and raises :class:`ShardInterrupted`.
    """
    todo = [task for task in tasks if not writer.committed(task)]
    total = sum(len(task.track_ids) for task in tasks)
    bar = progress_bar(total, total - sum(len(task.track_ids) for task in todo), desc, progress)
    try:
        if workers <= 1 or len(todo) <= 1:
            for task in todo:
                write_shard(task, bar.update)
        else:
            _write_in_pool(write_shard, todo, workers, bar)
    except KeyboardInterrupt:
        bar.close()
        writer.clean(tasks)  # the stopped workers' shards in progress
        done = sum(writer.committed(task) for task in tasks)
        message = (
            f"interrupted: {done} of {len(tasks)} shards of {writer.root} are done (half-written files "
            "removed); run the same command again to resume from there"
        )
        print(f"{prog}: {message}", file=sys.stderr)
        raise ShardInterrupted(message) from None
    finally:
        bar.close()
    return [writer.record(task.name) for task in tasks]


def progress_bar(total: int, done: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="track", desc=desc, disable=not enabled, file=sys.stderr)


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


def _ignore(n_tracks: int) -> None:
    """A worker's progress: counted by the parent when the worker's shard is done."""


def _write_in_pool(
    write_shard: Callable[[Task, Callable[[int], object]], None], todo: list[Task], workers: int, bar: Any
) -> None:
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
        futures = {pool.submit(write_shard, task, _ignore): task for task in todo}
        for future in as_completed(futures):
            future.result()
            bar.update(len(futures[future].track_ids))
    except BaseException:
        # stop now: the workers' shards in progress are uncommitted and redone by the next run
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
            process.join()
        raise
    pool.shutdown()


class ShardFiles:
    """The read side: the shard files of a cache folder as arrays of rows, memory-mapped on first use
    in each process (safe to pickle into DataLoader workers: the maps are not pickled)."""

    def __init__(
        self, root: Pathlike, names: Sequence[str], dtype: str, row_shape: Sequence[int] = ()
    ) -> None:
        self.root = Path(root)
        self.names = list(names)
        self.dtype, self.row_shape = dtype, tuple(int(n) for n in row_shape)
        self.row_bytes = np.dtype(dtype).itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self._maps: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, shard: int) -> np.ndarray:
        """Shard ``shard``'s rows, ``(n_rows, *row_shape)``: a plain ndarray view of its memmap (slicing
        it is cheaper than slicing a memmap)."""
        if shard not in self._maps:
            mapped = np.memmap(self.root / self.names[shard], dtype=self.dtype, mode="r")
            self._maps[shard] = mapped.view(np.ndarray).reshape(-1, *self.row_shape)
        return self._maps[shard]

    def sizes(self) -> list[int | None]:
        """Each shard file's size in bytes (``None``: missing), to check the rows an index lists against
        the files when a cache is opened, not in the middle of an epoch."""
        paths = [self.root / name for name in self.names]
        return [path.stat().st_size if path.is_file() else None for path in paths]
