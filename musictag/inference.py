"""``musictag tag AUDIO... --ckpt CKPT``: what a model hears in audio files.

Every file (folders are searched recursively) is decoded, downmixed and resampled to the model's rate,
cut into chunks (the checkpoint's setting unless overridden; never more than the file holds), scored in
batches of chunks across files on the best available device (a progress bar on stderr), and
aggregated to song-level tag probabilities. A file that cannot be read (or holds NaN/Inf samples) is
reported on stderr and skipped; the exit status is 1 if any was, or if a folder held no audio, and 2
when there is nothing to tag at all.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musictag.audio import AUDIO_EXTENSIONS, AudioError, load_audio
from musictag.chunks import ChunkMode, chunk_starts, cut_chunks, spectrogram_frames
from musictag.metrics import aggregate_chunks


def audio_files(paths: list[str]) -> Iterator[Path]:
    """The given files, and the audio files under the given folders (sorted)."""
    for item in map(Path, paths):
        if item.is_dir():
            yield from sorted(
                p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
        else:
            yield item


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: a CUDA GPU, else Apple's MPS, else the CPU; or the device named, if this machine has it.

    Raises:
        ValueError: for a device name torch does not know or a device this machine does not have.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is available here; use --device auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here; use --device auto or cpu")
    return device


def load_model(ckpt: str, device: torch.device) -> Any:
    from musictag.module import TaggingModule, load_checkpoint

    load_checkpoint(ckpt)  # a clear error for a missing or foreign file
    return TaggingModule.load_from_checkpoint(ckpt, map_location=device, weights_only=True).eval()


def file_chunk_starts(
    n_samples: int,
    chunk_len: int,
    n_chunks: int,
    mode: ChunkMode,
    hop: int | None = None,
    n_fft: int | None = None,
) -> tuple[np.ndarray, str | None]:
    """Where the chunks of one file start for tagging, and a note when the request was cut down.

    The request is capped at what the file holds: a file no longer than a chunk is scored once
    (zero-padded), and ``even``/``sota`` chunks are at most one per distinct start sample, so asking for
    100,000 chunks of a 6-second file costs what the file holds, not 100,000 chunks. ``patches`` (the
    musicnn library's rule) already cuts a file into what it holds.
    """
    if mode == "patches":
        return chunk_starts(n_samples, chunk_len, n_chunks, mode, hop, n_fft), None
    if n_samples <= chunk_len:
        note = None
        if n_chunks > 1 or mode == "sliding":
            note = f"shorter than one chunk ({chunk_len} samples): tagged once, zero-padded"
        return np.zeros(1, dtype=np.int64), note
    distinct = n_samples - chunk_len + 1
    if mode != "sliding" and n_chunks > distinct:
        return chunk_starts(n_samples, chunk_len, distinct, mode, hop), (
            f"holds {distinct} distinct chunk position(s): {distinct} chunks scored, not {n_chunks}"
        )
    return chunk_starts(n_samples, chunk_len, n_chunks, mode, hop), None


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


def file_chunks(model: Any, path: Path, n_chunks: int, mode: ChunkMode, hop: int | None = None) -> FileChunks:
    """Decode, downmix and resample a file to the model's rate and plan its chunks as the checkpoint
    (or the override) says, capped at what the file holds."""
    info_rate = _native_rate(path)
    audio, rate = load_audio(path, model.sample_rate)
    n_fft = None
    if mode == "patches":  # patches of the whole file's spectrogram (the musicnn library's rule)
        frames = spectrogram_frames(model.net)
        if frames is None:
            raise ValueError("chunk mode 'patches' needs a model whose representation is a spectrogram")
        hop, n_fft = frames
    cut_starts, note = file_chunk_starts(len(audio), model.input_len, n_chunks, mode, hop, n_fft)
    starts = cut_starts + n_fft // 2 if n_fft is not None else cut_starts  # a patch: its first frame's centre
    return FileChunks(path, info_rate, rate, len(audio), audio, cut_starts, starts, model.input_len, note)


def file_result(model: Any, item: FileChunks, chunk_scores: torch.Tensor) -> dict[str, Any]:
    """The ``--format json`` object of a file (``top`` left out) from its chunk probabilities
    ``(n_chunks, n_tags)``.

    Raises:
        AudioError: the scores are not finite (NaN or Inf): they are never reported as scores.
    """
    chunk_scores = chunk_scores.float().cpu()
    song = aggregate_chunks(chunk_scores.unsqueeze(0), model.aggregate)[0]
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
    n_chunks: int | None = None,
    mode: ChunkMode | None = None,
    hop: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    note: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any] | AudioError]:
    """Tag many files, their chunks batched across files: one result per file, in order.

    Files are decoded by a background thread (a couple ahead of the network) and planned into chunks
    (the model's tagging setting unless ``n_chunks``/``mode``/``hop`` are given; see
    :func:`file_chunk_starts`); chunks of consecutive files are cut into batches of ``batch_size``
    (default: the model's ``eval_chunk_batch``), so memory is bounded whatever the number of chunks or
    files. ``note`` receives a line for each file whose chunks were cut down.

    Yields:
        for each file, :func:`file_result`'s dict (``path``, ``sample_rate``, ``duration_s``,
        ``scores``, ``timeline``), or the :class:`AudioError` that kept it from being tagged
        (unreadable, no audio, NaN/Inf samples, or scores that are not finite).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    n_chunks = n_chunks or model.tag_chunks
    mode = mode or model.tag_chunk_mode
    hop = hop if hop is not None else getattr(model, "tag_chunk_hop", None)
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be at least 1, got {n_chunks}")
    batch_size = batch_size or model.eval_chunk_batch
    chunk_len = model.input_len
    files = [Path(p) for p in paths]
    pending: deque[_Pending] = deque()
    batch = np.zeros((batch_size, chunk_len), dtype=np.float32)
    owners: list[tuple[_Pending, int]] = []  # (file, chunks of it in the batch) in batch order

    def plan(path: Path) -> FileChunks | AudioError:
        try:
            return file_chunks(model, path, n_chunks, mode, hop)
        except AudioError as err:
            return err

    def run_batch() -> None:
        filled = sum(count for _, count in owners)
        logits = model(torch.from_numpy(batch[:filled]).to(model.device)).float().cpu()
        offset = 0
        for entry, count in owners:
            entry.logits.append(logits[offset : offset + count])
            entry.scored += count
            offset += count
        owners.clear()

    def finished() -> Iterator[dict[str, Any] | AudioError]:
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

    bar = tqdm(total=len(files), unit="file", desc="tag", file=sys.stderr, disable=not progress or None)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for planned in _prefetched(pool, plan, files):
                if isinstance(planned, AudioError):
                    pending.append(_Pending(None, planned))
                    yield from finished()
                    continue
                entry = _Pending(planned)
                pending.append(entry)
                if planned.note is not None and note is not None:
                    note(f"{planned.path}: {planned.note}")
                position = 0
                while position < len(planned):
                    filled = sum(count for _, count in owners)
                    take = min(batch_size - filled, len(planned) - position)
                    part = planned.cut_starts[position : position + take]
                    batch[filled : filled + take] = cut_chunks(planned.audio, part, chunk_len)
                    owners.append((entry, take))
                    position += take
                    if filled + take == batch_size:
                        run_batch()
                        yield from finished()
            if owners:
                run_batch()
            yield from finished()
        finally:
            bar.close()


def _prefetched(pool: Any, work: Callable[[Path], Any], files: list[Path], ahead: int = 2) -> Iterator[Any]:
    """``work(file)`` of each file in order, at most ``ahead`` done before asked for (bounded memory)."""
    queue: deque[Any] = deque()
    for path in files:
        queue.append(pool.submit(work, path))
        if len(queue) > ahead:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


def tag_file(
    model: Any, path: Path, n_chunks: int, mode: ChunkMode, hop: int | None = None
) -> dict[str, Any]:
    """Song-level scores of one file, with the per-chunk scores and start times (see :func:`tag_many`).

    Raises:
        AudioError: the file could not be tagged.
    """
    (result,) = tag_many(model, [path], n_chunks, mode, hop)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musictag tag", description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="+", help="audio files and folders (searched recursively)")
    parser.add_argument("--ckpt", required=True, help="a musictag checkpoint (fit, or import-pretrained)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.add_argument(
        "--timeline", action="store_true", help="also the scores of every chunk with its start time"
    )
    parser.add_argument(
        "--n-chunks", type=int, default=None, help="chunks per file (default: the checkpoint's)"
    )
    parser.add_argument("--chunk-mode", choices=["even", "sota", "sliding", "patches"], default=None)
    parser.add_argument("--hop", type=int, default=None, help="sliding windows: hop in samples")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="chunks per forward pass (default: the checkpoint's)"
    )
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, mps, ...")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        default=None,
        help="also draw each file's taggram (chunk scores over time beside the song scores) as DIR/<name>.png",
    )
    args = parser.parse_args(argv)

    from musictag.registry import ConfigError

    for flag, value in (
        ("--n-chunks", args.n_chunks),
        ("--hop", args.hop),
        ("--batch-size", args.batch_size),
    ):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    try:
        device = pick_device(args.device)
        model = load_model(args.ckpt, device)
    except (ConfigError, ValueError) as err:
        print(f"musictag tag: error: {err}", file=sys.stderr)
        return 2
    mode = args.chunk_mode or model.tag_chunk_mode
    if mode == "patches" and spectrogram_frames(model.net) is None:
        print("musictag tag: error: --chunk-mode patches needs a spectrogram model", file=sys.stderr)
        return 2
    plotted: set[Path] = set()
    files = list(audio_files(args.audio))
    empty = [p for p in args.audio if Path(p).is_dir() and not any(f.is_relative_to(p) for f in files)]
    for folder in empty:
        print(f"musictag tag: no audio files under {folder} ({', '.join(AUDIO_EXTENSIONS)})", file=sys.stderr)
    if not files:
        print("musictag tag: error: nothing to tag: no audio files in the given paths", file=sys.stderr)
        return 2
    failed, notes = 0, 0
    writer = None

    def note(text: str) -> None:
        nonlocal notes
        notes += 1
        if notes <= 5:
            print(f"musictag tag: note: {text}", file=sys.stderr)

    results = tag_many(model, files, args.n_chunks, mode, args.hop, args.batch_size, len(files) > 1, note)
    for result in results:
        if isinstance(result, AudioError):
            failed += 1
            print(f"musictag tag: skipped {result}", file=sys.stderr)
            continue
        result["top"] = _top(result["scores"], args.top_k)
        if args.plot:
            from musictag.taggram import plot_path, plot_taggram

            plot_taggram(result, plot_path(args.plot, Path(result["path"]), plotted))
        timeline = result.pop("timeline")
        if args.format == "json":
            if args.timeline:
                result["timeline"] = timeline
            print(json.dumps(result, allow_nan=False), flush=True)  # scores are finite: valid JSON
        elif args.format == "csv":
            if writer is None:
                writer = csv.writer(sys.stdout)
                writer.writerow(["path", "duration_s", *result["scores"]])
            writer.writerow(
                [result["path"], result["duration_s"], *(f"{s:.6f}" for s in result["scores"].values())]
            )
        else:
            print(f"{result['path']}  ({result['duration_s']:.1f} s)")
            for tag, score in result["top"]:
                print(f"  {score:6.3f}  {tag}")
            if args.timeline:
                for chunk in timeline:
                    best = _top(chunk["scores"], min(3, args.top_k))
                    print(f"    {chunk['start_s']:8.2f} s  " + ", ".join(f"{t} {s:.2f}" for t, s in best))
    if notes > 5:
        print(f"musictag tag: note: {notes - 5} more file(s) had their chunks cut down", file=sys.stderr)
    if failed:
        print(f"musictag tag: {failed} of {len(files)} file(s) could not be tagged", file=sys.stderr)
    return 1 if failed or empty else 0
