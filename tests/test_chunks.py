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


# --- the plan -------------------------------------------------------------------------------------
def fake_model(mode=None, n_chunks=None, hop=None, input_len=48128, spectrogram=(256, 512)):
    """What ``ChunkPlan.for_model`` reads of a ``TaggingModule``: its chunk, tagging setting and frames."""
    from types import SimpleNamespace

    representation = SimpleNamespace(hop_length=spectrogram[0], n_fft=spectrogram[1]) if spectrogram else None
    return SimpleNamespace(
        input_len=input_len,
        tag_chunk_mode=mode,
        tag_chunks=n_chunks,
        tag_chunk_hop=hop,
        net=SimpleNamespace(representation=representation),
    )


def test_a_plan_is_the_models_setting_unless_overridden():
    from musictag.chunks import ChunkPlan

    assert ChunkPlan.for_model(fake_model()) == ChunkPlan(48128, 16, "even")  # 16 even chunks by default
    assert ChunkPlan.for_model(fake_model("sota", 4)) == ChunkPlan(48128, 4, "sota")
    assert ChunkPlan.for_model(fake_model("sota", 4), "even", 7) == ChunkPlan(48128, 7, "even")
    sliding = ChunkPlan.for_model(fake_model("sliding", hop=1000), chunk_len=3000)
    assert (sliding.mode, sliding.hop, sliding.chunk_len, sliding.whole_song) == ("sliding", 1000, 3000, True)
    assert sliding.starts(10_000).tolist() == list(range(0, 7001, 1000))
    # a hop only sliding windows use is dropped from the others, so equal cuts are equal plans
    assert ChunkPlan.for_model(fake_model("even", 3, hop=1000)) == ChunkPlan(48128, 3, "even")
    assert ChunkPlan.for_model(None, chunk_len=10) == ChunkPlan(10, 16, "even")  # no model: 16 even
    with pytest.raises(ValueError, match="chunk_len is not set and there is no model"):
        ChunkPlan.for_model(None)
    with pytest.raises(AttributeError):  # frozen: handed around, never changed on the way
        sliding.hop = 5  # type: ignore[misc]


def test_patches_take_the_models_spectrogram_frames():
    from musictag.chunks import ChunkPlan

    plan = ChunkPlan.for_model(fake_model("patches", hop=999))  # a sliding hop does not move patches
    assert (plan.mode, plan.hop, plan.n_fft, plan.patch_frames, plan.timeline_offset) == (
        "patches",
        256,
        512,
        187,
        256,
    )
    assert plan.starts(160000).tolist() == [-256, 47616, 95488]
    assert plan.starts(160000).tolist() == chunk_starts(160000, 48128, 16, "patches", 256, 512).tolist()
    even = ChunkPlan(48128, 3)
    assert (even.patch_frames, even.timeline_offset, even.whole_song) == (None, 0, False)


def test_a_plan_that_cannot_cut_is_refused_when_built():
    from musictag.chunks import PYTHON_NAMES, ChunkPlan, SettingNames
    from musictag.guards import InputError
    from musictag.types import ConfigError

    flags = SettingNames("--chunk-mode", "--n-chunks", "--hop")
    with pytest.raises(
        ConfigError, match="^--chunk-mode patches cuts a spectrogram's frames: it needs a model"
    ):
        ChunkPlan.for_model(fake_model(spectrogram=None), "patches", names=flags)
    with pytest.raises(
        InputError,
        match="^chunk_mode patches does not fit this model: chunk_len 48000 is not a whole number of frames "
        "of 512 every 256; use 'even', 'sota', 'sliding' or 'centre'$",
    ):
        ChunkPlan.for_model(fake_model(input_len=48000), "patches", names=PYTHON_NAMES)
    # one message for an n_chunks the mode does not use, in the caller's spelling
    for mode, how in (("sliding", "every --hop samples"), ("patches", "into patches")):
        with pytest.raises(InputError) as refused:
            ChunkPlan.for_model(fake_model(), mode, 4, names=flags)
        assert str(refused.value) == (
            f"--n-chunks is for --chunk-mode even or sota; {mode} cuts the whole file ({how}): drop --n-chunks"
        )
    with pytest.raises(InputError, match="^n_chunks is for chunk_mode even or sota; sliding cuts"):
        ChunkPlan.for_model(fake_model("sliding"), n_chunks=4)
    with pytest.raises(
        InputError, match="^hop is for chunk_mode sliding; this run's mode is sota: drop hop$"
    ):
        ChunkPlan.for_model(fake_model("sota"), hop=100)
    # a DataModule's config carries every default: unused settings are ignored there, not refused
    plan = ChunkPlan.for_model(fake_model(), "sliding", 16, None, refuse_unused=False)
    assert (plan.mode, plan.n_chunks, plan.hop) == ("sliding", 16, None)
    with pytest.raises(
        InputError, match="^unknown chunk_mode 'random'; use one of even, sota, sliding, patches, centre$"
    ):
        ChunkPlan.for_model(fake_model(), "random")
    with pytest.raises(InputError, match="^--n-chunks must be at least 1, got 0$"):
        ChunkPlan.for_model(fake_model(), n_chunks=0, names=flags)
    with pytest.raises(
        ConfigError, match="^chunk_len 1000 is not a whole number of frames of 512 every 256$"
    ):
        ChunkPlan(1000, 1, "patches", 256, 512)
    with pytest.raises(ValueError, match="hop must be at least 1 sample, got 0"):
        ChunkPlan(1000, 1, "sliding", 0)


def test_the_modes_are_listed_once():
    from typing import get_args

    from musictag.chunks import CHUNK_MODES, ChunkMode
    from musictag.cli.tag import _parser

    assert CHUNK_MODES == get_args(ChunkMode) == ("even", "sota", "sliding", "patches", "centre")
    (action,) = [a for a in _parser()._actions if a.dest == "chunk_mode"]
    assert tuple(action.choices) == CHUNK_MODES


def test_centre_takes_the_middle_chunk_or_pads_a_short_song():
    """Choi et al.'s rule: the centre chunk_len samples; a shorter song starts at 0 (zero-padded)."""
    from musictag.chunks import ChunkPlan

    plan = ChunkPlan(100, mode="centre")
    assert plan.starts(1001).tolist() == [450] and plan.starts(50).tolist() == [0]
    with pytest.raises(ValueError, match="centre scores one chunk"):
        ChunkPlan.for_model(None, "centre", n_chunks=3, chunk_len=100)
