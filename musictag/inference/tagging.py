"""Tagging audio files with a model: chunk planning, batching across files, song-level results.

(``musictag tag`` itself is :mod:`musictag.cli.tag`.) Every file (folders are searched recursively) is decoded, downmixed and resampled to the model's rate,
cut into chunks (the checkpoint's setting unless overridden; never more than the file holds), scored in
batches of chunks across files on the best available device (a progress bar on stderr), and
aggregated to song-level tag probabilities. A file that cannot be read (or holds NaN/Inf samples) is
reported on stderr and skipped; the exit status is 1 if any was, or if a folder held no audio, and 2
when there is nothing to tag at all.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musictag.audio import AudioError, load_audio
from musictag.chunks import ChunkPlan, cut_chunks
from musictag.guards import InputError, at_least, physical_memory, pick_device
from musictag.inference.loading import load_model
from musictag.inference.search import find_audio
from musictag.training.metrics import aggregate_chunks

# pick_device is musictag.guards' (the one device choice), named here too for code that imports it from here
__all__ = ["audio_files", "file_chunk_starts", "load_model", "pick_device", "tag_file", "tag_many"]


def audio_files(paths: list[str]) -> Iterator[Path]:
    """The given files, and the audio files under the given folders (sorted); entries that are not
    regular files are left out (:func:`musictag.inference.search.find_audio` says which and why)."""
    yield from find_audio(list(paths)).files


def file_chunk_starts(n_samples: int, plan: ChunkPlan) -> tuple[np.ndarray, str | None]:
    """Where the chunks of one file start for tagging, and a note when the request was cut down.

    The request is capped at what the file holds: a file no longer than a chunk is scored once
    (zero-padded), and ``even``/``sota`` chunks are at most one per distinct start sample, so asking for
    100,000 chunks of a 6-second file costs what the file holds, not 100,000 chunks. ``patches`` (the
    musicnn library's rule) already cuts a file into what it holds.
    """
    chunk_len = plan.chunk_len
    short = f"shorter than one chunk ({chunk_len} samples): tagged once, zero-padded"
    if plan.mode == "patches":
        return plan.starts(n_samples), short if n_samples < chunk_len else None
    if n_samples <= chunk_len:
        return np.zeros(1, dtype=np.int64), short if plan.n_chunks > 1 or plan.mode == "sliding" else None
    distinct = n_samples - chunk_len + 1
    if not plan.whole_song and plan.n_chunks > distinct:
        return plan.with_n_chunks(distinct).starts(n_samples), (
            f"holds {distinct} distinct chunk position(s): {distinct} chunks scored, not {plan.n_chunks}"
        )
    return plan.starts(n_samples), None


@dataclass
class FileChunks:
    """One file decoded at the model's rate and planned into chunks (cut on demand: see :attr:`chunks`).

    ``cut_starts`` are where each chunk's samples start (may be negative in ``patches`` mode);
    ``starts`` where its audio starts for the timeline (a patch's first frame's centre).
    """

    path: Path
    native_rate: int
    rate: int
    n_samples: int
    audio: np.ndarray
    cut_starts: np.ndarray
    starts: np.ndarray
    chunk_len: int
    note: str | None = None  # when fewer chunks than asked were cut (see :func:`file_chunk_starts`)

    @property
    def chunks(self) -> torch.Tensor:
        """``(n_chunks, chunk_len)`` float32 chunks, zero-padded past the file's ends."""
        return torch.from_numpy(cut_chunks(self.audio, self.cut_starts, self.chunk_len))

    def __len__(self) -> int:
        return len(self.cut_starts)


def file_chunks(model: Any, path: Path, plan: ChunkPlan) -> FileChunks:
    """Decode, downmix and resample a file to the model's rate and cut it by ``plan``, capped at what
    the file holds."""
    delay = int(getattr(model, "mp3_decoder_delay", 0) or 0)  # the checkpoint's; 0 unless imported so
    audio, rate = load_audio(
        path, model.sample_rate, mp3_decoder_delay=delay
    )  # first: it refuses a named pipe by its type
    info_rate = _native_rate(path)
    cut_starts, note = file_chunk_starts(len(audio), plan)
    starts = cut_starts + plan.timeline_offset  # a patch: its first frame's centre
    return FileChunks(path, info_rate, rate, len(audio), audio, cut_starts, starts, plan.chunk_len, note)


def file_result(model: Any, item: FileChunks, chunk_scores: torch.Tensor) -> dict[str, Any]:
    """The ``--format json`` object of a file (``top`` left out) from its chunk probabilities
    ``(n_chunks, n_tags)``.

    Raises:
        AudioError: the scores are not finite (NaN or Inf): they are never reported as scores.
    """
    chunk_scores = chunk_scores.float().cpu()
    single_label = getattr(model, "task", "multilabel") == "multiclass"
    song = aggregate_chunks(chunk_scores.unsqueeze(0), model.aggregate, single_label=single_label)[0]
    if not (torch.isfinite(song).all() and torch.isfinite(chunk_scores).all()):
        raise AudioError(item.path, "the model's scores are not finite (NaN or Inf)", "non_finite")
    tags = list(model.tag_names)
    return {
        "path": str(item.path),
        "sample_rate": item.native_rate,
        "duration_s": round(item.n_samples / item.rate, 3),
        "scores": dict(zip(tags, song.tolist(), strict=True)),
        "timeline": [
            {
                "start_s": round(int(start) / item.rate, 3),
                "scores": dict(zip(tags, row.tolist(), strict=True)),
            }
            for start, row in zip(item.starts, chunk_scores, strict=True)
        ],
    }


@dataclass
class _Pending:
    """A file on its way through :func:`tag_many`: its plan (or error) and its logits so far."""

    item: FileChunks | None
    error: AudioError | None = None
    logits: list[torch.Tensor] = field(default_factory=list)
    scored: int = 0

    @property
    def done(self) -> bool:
        return self.error is not None or (self.item is not None and self.scored == len(self.item))


@torch.inference_mode()
def tag_many(
    model: Any,
    paths: Iterable[str | os.PathLike],
    plan: ChunkPlan | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    note: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any] | AudioError]:
    """Tag many files, their chunks batched across files: one result per file, in order.

    Files are decoded by a background thread (a couple ahead of the network) and cut by ``plan``
    (default: the model's tagging setting, ``ChunkPlan.for_model(model)``), capped at what each file
    holds (:func:`file_chunk_starts`); chunks of consecutive files are cut into batches of ``batch_size``
    (default: the model's ``eval_chunk_batch``), so memory is bounded whatever the number of chunks or
    files. ``note`` receives a line for each file whose chunks were cut down.

    Yields:
        for each file, :func:`file_result`'s dict (``path``, ``sample_rate``, ``duration_s``,
        ``scores``, ``timeline``), or the :class:`AudioError` that kept it from being tagged
        (unreadable, no audio, NaN/Inf samples, or scores that are not finite).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    at_least("batch_size", batch_size)  # 0 is refused, not taken for "the default"
    plan = plan if plan is not None else ChunkPlan.for_model(model)
    if plan.chunk_len != model.input_len:
        raise InputError(
            f"the plan's chunks of {plan.chunk_len} samples are not the model's {model.input_len}"
        )
    batch_size = batch_size if batch_size is not None else model.eval_chunk_batch
    check_batch_memory(batch_size, plan.chunk_len)
    if isinstance(paths, (str, os.PathLike)):  # one path, not its characters
        paths = [paths]
    files = [Path(p) for p in paths]
    pending: deque[_Pending] = deque()
    batches = _Batches(model, batch_size, plan.chunk_len)

    def decode(path: Path) -> FileChunks | AudioError:
        try:
            return file_chunks(model, path, plan)
        except AudioError as err:
            return err

    bar = tqdm(total=len(files), unit="file", desc="tag", file=sys.stderr, disable=not progress or None)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for planned in _prefetched(pool, decode, files):
                if isinstance(planned, AudioError):
                    pending.append(_Pending(None, planned))
                    yield from _finished(model, pending, bar)
                    continue
                entry = _Pending(planned)
                pending.append(entry)
                if planned.note is not None and note is not None:
                    note(f"{planned.path}: {planned.note}")
                position = 0
                while position < len(planned):
                    position = batches.add(entry, position)
                    if batches.full:
                        batches.run()
                        yield from _finished(model, pending, bar)
            batches.run()
            yield from _finished(model, pending, bar)
        finally:
            bar.close()


class _Batches:
    """The one batch of :func:`tag_many`: chunks of one or more files, run through the model when full,
    each file's logits handed back to it in order."""

    def __init__(self, model: Any, batch_size: int, chunk_len: int) -> None:
        self.model, self.chunk_len = model, chunk_len
        self.batch = np.zeros((batch_size, chunk_len), dtype=np.float32)
        self.owners: list[tuple[_Pending, int]] = []  # (file, chunks of it in the batch) in batch order

    @property
    def filled(self) -> int:
        return sum(count for _, count in self.owners)

    @property
    def full(self) -> bool:
        return self.filled == len(self.batch)

    def add(self, entry: _Pending, position: int) -> int:
        """Cut ``entry``'s chunks from ``position`` into the batch, as many as fit; the next position."""
        assert entry.item is not None
        item, filled = entry.item, self.filled
        take = min(len(self.batch) - filled, len(item) - position)
        part = item.cut_starts[position : position + take]
        self.batch[filled : filled + take] = cut_chunks(item.audio, part, self.chunk_len)
        self.owners.append((entry, take))
        return position + take

    def run(self) -> None:
        """The model on the chunks in the batch (if any); each file's logits appended to it."""
        if not self.owners:
            return
        filled = self.filled
        logits = self.model(torch.from_numpy(self.batch[:filled]).to(self.model.device)).float().cpu()
        offset = 0
        for entry, count in self.owners:
            entry.logits.append(logits[offset : offset + count])
            entry.scored += count
            offset += count
        self.owners.clear()


def _finished(model: Any, pending: deque[_Pending], bar: Any) -> Iterator[dict[str, Any] | AudioError]:
    """The results of the files at the head of ``pending`` that are done, in order."""
    while pending and pending[0].done:
        entry = pending.popleft()
        bar.update(1)
        if entry.error is not None:
            yield entry.error
            continue
        assert entry.item is not None
        try:
            yield file_result(model, entry.item, model.probabilities(torch.cat(entry.logits)))
        except AudioError as err:
            yield err


def check_batch_memory(batch_size: int, chunk_len: int, what: str = "--batch-size") -> None:
    """Refuse, before allocating it, a batch whose chunks alone would take a quarter of this machine's
    memory (the network's activations take many times more)."""
    need = batch_size * chunk_len * 4
    limit = physical_memory() // 4
    if limit and need > limit:
        most = max(1, limit // (chunk_len * 4))
        raise InputError(
            f"{what} {batch_size}: a batch of {batch_size} chunks of {chunk_len} samples needs "
            f"{need / 2**30:.1f} GiB, more than a quarter of this machine's {4 * limit / 2**30:.1f} GiB; "
            f"use at most {most} (the scores do not depend on it)"
        )


def _prefetched(pool: Any, work: Callable[[Path], Any], files: list[Path], ahead: int = 2) -> Iterator[Any]:
    """``work(file)`` of each file in order, at most ``ahead`` done before asked for (bounded memory)."""
    queue: deque[Any] = deque()
    for path in files:
        queue.append(pool.submit(work, path))
        if len(queue) > ahead:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


def tag_file(model: Any, path: Path, plan: ChunkPlan | None = None) -> dict[str, Any]:
    """Song-level scores of one file, with the per-chunk scores and start times (see :func:`tag_many`).

    Raises:
        AudioError: the file could not be tagged.
    """
    (result,) = tag_many(model, [path], plan)
    if isinstance(result, AudioError):
        raise result
    return result


def _native_rate(path: Path) -> int:
    import soundfile as sf

    try:
        return int(sf.info(os.fspath(path)).samplerate)
    except Exception:  # noqa: BLE001  (load_audio reports the file properly)
        return 0


def _top(scores: dict[str, float], k: int) -> list[list[Any]]:
    return [[tag, round(score, 6)] for tag, score in sorted(scores.items(), key=lambda kv: -kv[1])[:k]]
