"""Where the chunks of a song start: the one place evaluation, prediction and tagging cut songs."""

from __future__ import annotations

from typing import Literal

import numpy as np

ChunkMode = Literal["even", "sota", "sliding", "patches"]


def chunk_starts(
    n_samples: int,
    chunk_len: int,
    n_chunks: int,
    mode: ChunkMode = "even",
    hop: int | None = None,
    n_fft: int | None = None,
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
        ``patches``: the musicnn library's rule, for a model whose spectrogram takes uncentred frames of
            ``n_fft`` every ``hop`` samples: the whole song's centred, zero-padded spectrogram
            (``n_samples // hop + 1`` frames) is cut into non-overlapping patches of the frames one chunk
            holds, ``(chunk_len - n_fft) // hop + 1``, and the incomplete last patch is dropped. Patch
            ``i`` is the chunk starting ``n_fft // 2`` samples before its first frame's centre (the first
            starts before the song: :func:`cut_chunks` zero-pads). ``n_chunks`` is ignored.

    A song no longer than one chunk gives ``n_chunks`` starts at 0 (the chunk is zero-padded); in
    ``patches`` mode, a song shorter than one patch gives one zero-padded patch.
    """
    if n_chunks < 1 and mode != "sliding":
        raise ValueError(f"n_chunks must be at least 1, got {n_chunks}")
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be at least 1, got {chunk_len}")
    if mode == "patches":
        return patch_starts(n_samples, chunk_len, hop, n_fft)
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
    raise ValueError(f"unknown chunk mode {mode!r}; use 'even', 'sota', 'sliding' or 'patches'")


def patch_starts(n_samples: int, chunk_len: int, hop: int | None, n_fft: int | None) -> np.ndarray:
    """Chunk starts of the ``patches`` mode (see :func:`chunk_starts`); may be negative."""
    if not hop or not n_fft or hop < 1 or n_fft < 1:
        raise ValueError("chunk mode 'patches' needs the spectrogram's hop and n_fft")
    frames = (chunk_len - n_fft) // hop + 1
    if frames < 1 or (frames - 1) * hop + n_fft != chunk_len:
        raise ValueError(f"chunk_len {chunk_len} is not a whole number of frames of {n_fft} every {hop}")
    n_patches = max(1, (n_samples // hop + 1) // frames)
    return np.arange(n_patches, dtype=np.int64) * (frames * hop) - n_fft // 2


def spectrogram_frames(net: object) -> tuple[int, int] | None:
    """``(hop_length, n_fft)`` of a network's spectrogram representation, or None if it has none."""
    representation = getattr(net, "representation", None)
    hop, n_fft = getattr(representation, "hop_length", None), getattr(representation, "n_fft", None)
    return (int(hop), int(n_fft)) if hop and n_fft else None


def cut_chunks(audio: np.ndarray, starts: np.ndarray, chunk_len: int) -> np.ndarray:
    """``(n_samples,)`` → ``(len(starts), chunk_len)``, zero-padding chunks that run past either end."""
    chunks = np.zeros((len(starts), chunk_len), dtype=audio.dtype)
    for row, start in enumerate(starts):
        skip = max(0, -int(start))
        piece = audio[start + skip : start + chunk_len]
        chunks[row, skip : skip + len(piece)] = piece
    return chunks
