"""Where the chunks of a song start: the one place evaluation, prediction and tagging cut songs."""

from __future__ import annotations

from typing import Literal

import numpy as np

ChunkMode = Literal["even", "sota", "sliding"]


def chunk_starts(
    n_samples: int, chunk_len: int, n_chunks: int, mode: ChunkMode = "even", hop: int | None = None
) -> np.ndarray:
    """Start sample of each chunk of ``chunk_len`` in a song of ``n_samples``.

    Modes:
        ``even``: evenly spaced from the first sample to the last full chunk, so the chunks cover the
            whole song (``linspace(0, n_samples - chunk_len, n_chunks)``, rounded).
        ``sota``: the rule of sota-music-tagging-models (Won et al. 2020): ``hop = (n_samples -
            chunk_len) // n_chunks`` and chunk ``i`` starts at ``i * hop``; the last ``hop`` samples are
            never seen. Use it to reproduce that code's song-level numbers.
        ``sliding``: a window every ``hop`` samples (default ``chunk_len``, no overlap) plus one ending at
            the song's end if the last window stops short of it; ``n_chunks`` is ignored, so songs of
            different lengths get different numbers of chunks.

    A song no longer than one chunk gives ``n_chunks`` starts at 0 (the chunk is zero-padded).
    """
    if n_chunks < 1 and mode != "sliding":
        raise ValueError(f"n_chunks must be at least 1, got {n_chunks}")
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be at least 1, got {chunk_len}")
    room = max(0, n_samples - chunk_len)
    if mode == "sliding":
        step = hop or chunk_len
        if step < 1:
            raise ValueError(f"hop must be at least 1 sample, got {step}")
        starts = np.arange(0, room + 1, step, dtype=np.int64)
        return starts if starts[-1] == room else np.append(starts, room)
    if mode == "even":
        return np.rint(np.linspace(0, room, n_chunks)).astype(np.int64)
    if mode == "sota":
        return np.arange(n_chunks, dtype=np.int64) * (room // n_chunks)
    raise ValueError(f"unknown chunk mode {mode!r}; use 'even', 'sota' or 'sliding'")


def cut_chunks(audio: np.ndarray, starts: np.ndarray, chunk_len: int) -> np.ndarray:
    """``(n_samples,)`` → ``(len(starts), chunk_len)``, zero-padding chunks that run past the end."""
    chunks = np.zeros((len(starts), chunk_len), dtype=audio.dtype)
    for row, start in enumerate(starts):
        piece = audio[start : start + chunk_len]
        chunks[row, : len(piece)] = piece
    return chunks
