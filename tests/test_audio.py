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
