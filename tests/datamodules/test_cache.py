from __future__ import annotations

import pickle

import numpy as np
import pytest

from datamodules.cache import AudioCache, to_int16


def test_write_and_read_round_trip(tmp_path):
    a = np.linspace(-1, 1, 1000, dtype=np.float32)
    b = np.full(10, 0.25, dtype=np.float32)
    cache = AudioCache.write(tmp_path / "c", [("a", a), ("b", b)], sample_rate=16000, source="test")
    assert len(cache) == 2 and cache.sample_rate == 16000 and cache.source == "test"
    np.testing.assert_array_equal(cache.read("a"), to_int16(a) / 32768.0)
    np.testing.assert_allclose(cache.read("a", 10, 5), a[10:15], atol=1 / 32768)
    padded = cache.read("b", 8, 5)
    np.testing.assert_array_equal(padded, [0.25, 0.25, 0, 0, 0])
    assert cache.length("b") == 10


def test_cache_pickles_without_its_memory_maps(tmp_path):
    cache = AudioCache.write(tmp_path / "c", [("a", np.zeros(100, np.float32))], 16000)
    cache.read("a", 0, 10)
    assert cache.files._maps
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.files._maps == {}
    np.testing.assert_array_equal(clone.read("a", 0, 10), np.zeros(10))


def test_interrupted_write_leaves_nothing(tmp_path):
    def tracks():
        yield "a", np.zeros(100, np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        AudioCache.write(tmp_path / "c", tracks(), 16000)
    assert list(tmp_path.iterdir()) == []
    assert not AudioCache.exists(tmp_path / "c")


def test_missing_cache_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare the corpus first"):
        AudioCache(tmp_path)
