from __future__ import annotations

import numpy as np

from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from datamodules.synthetic import LEADS, TAGS, SyntheticDataModule, generate_corpus, split_of, synthesize_clip
from musictag.testing import tiny_synthetic_args


def test_clips_are_deterministic_and_seeded():
    a, tags_a = synthesize_clip(3, seed=0, seconds=1.0)
    b, tags_b = synthesize_clip(3, seed=0, seconds=1.0)
    c, _ = synthesize_clip(3, seed=1, seconds=1.0)
    np.testing.assert_array_equal(a, b)
    assert tags_a == tags_b
    assert not np.array_equal(a, c)


def test_tags_follow_the_generator_rules():
    for index in range(120):
        audio, tags = synthesize_clip(index, seconds=0.5)
        assert audio.dtype == np.float32 and audio.shape == (8000,)
        assert 0.3 < np.abs(audio).max() <= 0.9
        assert ("fast" in tags) != ("slow" in tags)
        leads = [t for t in tags if t in LEADS]
        assert len(leads) <= 1
        assert (("high" in tags) or ("low" in tags)) == bool(leads)
        assert leads or "drums" in tags or "bass" in tags  # tempo is audible
        assert tags == sorted(tags, key=TAGS.index)


def _band_energy(audio: np.ndarray, low: float, high: float, sample_rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum())


def test_the_audio_carries_its_tags():
    """Tags are properties of the signal: e.g. drums put energy above 4 kHz, a high lead above 400 Hz."""
    clips = [synthesize_clip(i, seconds=2.0) for i in range(150)]
    drums = [_band_energy(a, 4000, 8000) for a, t in clips if "drums" in t and "noisy" not in t]
    no_drums = [
        _band_energy(a, 4000, 8000)
        for a, t in clips
        if "drums" not in t and "noisy" not in t and "brass" not in t
    ]
    assert np.median(drums) > 3 * np.median(no_drums)
    solo = [
        (a, t)
        for a, t in clips
        if set(t) & {"high", "low"} and not set(t) & {"bass", "pad", "drums", "noisy"}
    ]
    high = [_band_energy(a, 400, 1000) for a, t in solo if "high" in t]
    low = [_band_energy(a, 400, 1000) for a, t in solo if "low" in t]
    assert high and low and min(high) > max(low)


def test_splits():
    splits = [split_of(i, 40, 0.125, 0.25) for i in range(40)]
    assert splits.count("train") == 25 and splits.count("valid") == 5 and splits.count("test") == 10
    assert splits[-1] == "test" and splits[0] == "train"


def test_corpus_is_written_once_through_manifest_and_cache(tmp_path):
    manifest = generate_corpus(tmp_path, n_clips=6, seconds=1.0, valid_fraction=1 / 6, test_fraction=1 / 6)
    stamp = (tmp_path / "manifest.csv").stat().st_mtime_ns
    again = generate_corpus(tmp_path, n_clips=6, seconds=1.0, valid_fraction=1 / 6, test_fraction=1 / 6)
    assert (tmp_path / "manifest.csv").stat().st_mtime_ns == stamp
    assert again.ids == manifest.ids
    np.testing.assert_array_equal(again.targets, manifest.targets)
    cache = AudioCache(tmp_path / "cache")
    audio, tags = synthesize_clip(2, seconds=1.0)
    np.testing.assert_allclose(cache.read("clip00002"), audio, atol=1 / 32768)
    assert [TAGS[j] for j in np.flatnonzero(Manifest.read_csv(tmp_path / "manifest.csv").targets[2])] == tags
    assert manifest.splits.count("test") == 1 and manifest.splits.count("valid") == 1


def test_datamodule_batches(tiny_corpus):
    dm = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)), chunk_len=16000)
    assert dm.n_tags == len(TAGS) == 12
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert train["audio"].shape == (4, 16000) and train["target"].shape == (4, 12)
    valid = next(iter(dm.val_dataloader()))
    assert valid["audio"].shape == (1, 2, 16000)  # eval_batch_size = batch_size // 4 songs
    assert (
        len(dm.datasets["train"]) == 16 and len(dm.datasets["valid"]) == 8 and len(dm.datasets["test"]) == 8
    )
    # the last chunk of an evaluation song ends at the song's end
    song = dm.datasets["valid"][0]
    full = dm.datasets["valid"].cache.read(dm.datasets["valid"].manifest.ids[0])
    np.testing.assert_array_equal(song["audio"][-1].numpy(), full[-16000:])
