from __future__ import annotations

import numpy as np
import pytest

from musictag.audio import AudioError, load_audio
from musictag.testing import sine, write_non_finite


def test_nan_and_inf_samples_are_a_decode_problem(tmp_path):
    write_non_finite(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match=r"nan\.wav: 16000 of 16000 samples are NaN or Inf") as info:
        load_audio(tmp_path / "nan.wav")
    assert info.value.problem == "non_finite"
    # one bad sample is enough: it would turn every mel frame around it into NaN
    audio = sine(440, 1.0)
    audio[100] = np.nan
    import soundfile as sf

    sf.write(tmp_path / "one.wav", audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="1 of 16000 samples"):
        load_audio(tmp_path / "one.wav", 16000)


def test_what_is_not_audio_says_why(tmp_path):
    (tmp_path / "notes.mp3").write_text("these are my notes, not an mp3\n")
    with pytest.raises(AudioError, match=r"notes\.mp3: cannot decode \(not a recognised audio format\)"):
        load_audio(tmp_path / "notes.mp3")
    with pytest.raises(AudioError, match="is a folder, not an audio file"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match=r"gone\.wav: no such file") as info:
        load_audio(tmp_path / "gone.wav")
    assert info.value.problem == "missing"  # a partial download: told apart from undecodable files
    (tmp_path / "empty.wav").touch()
    with pytest.raises(AudioError, match="empty file") as info:
        load_audio(tmp_path / "empty.wav")
    assert info.value.problem == "empty"


def test_a_file_this_user_may_not_read_says_so(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    import soundfile as sf

    sf.write(path, sine(440, 0.5), 16000)
    # chmod 000 does not stop root (the tests may run as root): what os.access says for another user
    monkeypatch.setattr("musictag.audio.os.access", lambda p, mode: False)
    with pytest.raises(AudioError, match=r"locked\.wav: permission denied .*check the file's permissions"):
        load_audio(path)


def test_mp3_decoder_delay_applies_to_mp3_only_and_only_when_set(tmp_path):
    """The delay is dropped at the file's own rate before resampling, the length kept, for MP3 content
    only (a WAV, even one named .mp3, is decoded as it is); 0 changes nothing."""
    import shutil

    from musictag.audio import write_audio

    rate = 44_100
    tone = np.sin(2 * np.pi * 441 * np.arange(rate // 2) / rate).astype(np.float32) * 0.5
    write_audio(tmp_path / "t.mp3", tone, rate)
    write_audio(tmp_path / "t.wav", tone, rate)
    shutil.copy(tmp_path / "t.wav", tmp_path / "wav_named.mp3")
    plain, _ = load_audio(tmp_path / "t.mp3")
    moved, _ = load_audio(tmp_path / "t.mp3", mp3_decoder_delay=529)
    assert len(moved) == len(plain)
    np.testing.assert_array_equal(moved[:-529], plain[529:])
    assert not moved[-529:].any()
    np.testing.assert_array_equal(load_audio(tmp_path / "t.mp3", mp3_decoder_delay=0)[0], plain)
    for wav in ("t.wav", "wav_named.mp3"):
        wav_plain, _ = load_audio(tmp_path / wav)
        np.testing.assert_array_equal(load_audio(tmp_path / wav, mp3_decoder_delay=529)[0], wav_plain)
        np.testing.assert_allclose(wav_plain, tone, atol=1e-4)  # 16-bit PCM
    at_12k, _ = load_audio(tmp_path / "t.mp3", 12_000, mp3_decoder_delay=529)
    from musictag.audio import resample

    np.testing.assert_allclose(at_12k, resample(moved, rate, 12_000), atol=1e-6)


def test_the_checkpoints_mp3_decoder_delay_reaches_the_decoder(tmp_path):
    """Tagging decodes with the model's setting; a model (an old checkpoint) without one uses 0."""
    from types import SimpleNamespace

    from musictag.audio import write_audio
    from musictag.chunks import ChunkPlan
    from musictag.inference.tagging import file_chunks

    rate = 16_000
    tone = np.sin(2 * np.pi * 400 * np.arange(rate) / rate).astype(np.float32) * 0.5
    write_audio(tmp_path / "t.mp3", tone, rate)
    plan = ChunkPlan(4_000, 1, "centre")
    old = SimpleNamespace(sample_rate=rate)
    new = SimpleNamespace(sample_rate=rate, mp3_decoder_delay=100)
    plain, moved = file_chunks(old, tmp_path / "t.mp3", plan), file_chunks(new, tmp_path / "t.mp3", plan)
    np.testing.assert_array_equal(moved.audio[:-100], plain.audio[100:])
