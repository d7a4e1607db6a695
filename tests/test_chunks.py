from __future__ import annotations

import numpy as np
import pytest

from musictag.chunks import chunk_starts, cut_chunks


def test_even_chunks_cover_the_song():
    starts = chunk_starts(100, 10, 4, "even")
    assert starts.tolist() == [0, 30, 60, 90]


def test_sota_rule():
    # sota-music-tagging-models: hop = (length - input_len) // n_chunks, start i * hop
    starts = chunk_starts(480_000, 464_000, 16, "sota")
    assert starts.tolist() == [i * 1000 for i in range(16)]


def test_song_shorter_than_a_chunk():
    assert chunk_starts(5, 10, 3).tolist() == [0, 0, 0]
    chunks = cut_chunks(np.arange(1, 6, dtype=np.float32), np.array([0]), 8)
    assert chunks.tolist() == [[1, 2, 3, 4, 5, 0, 0, 0]]


def test_cut_chunks_values():
    audio = np.arange(20, dtype=np.float32)
    chunks = cut_chunks(audio, chunk_starts(20, 5, 3), 5)
    assert chunks.shape == (3, 5)
    assert chunks[1].tolist() == [8, 9, 10, 11, 12]  # start round(7.5) = 8
    assert chunks[-1].tolist() == [15, 16, 17, 18, 19]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_chunks must be at least 1"):
        chunk_starts(10, 5, 0)
    with pytest.raises(ValueError, match="unknown chunk mode"):
        chunk_starts(10, 5, 2, "random")  # type: ignore[arg-type]
