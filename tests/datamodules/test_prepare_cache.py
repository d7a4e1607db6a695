from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datamodules.cache import AudioCache
from datamodules.prepare import prepare_cache
from musictag.audio import load_audio
from musictag.testing import committed, sine, write_audio, write_bad_files


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real files in several formats: MP3 and WAV at 16 kHz, a stereo 44.1 kHz WAV, a FLAC, a short OGG."""
    root = tmp_path_factory.mktemp("audio")
    for i in range(6):
        write_audio(root / f"a/{i}.mp3", sine(220.0 * (i + 1), 2.0), 16000)
    write_audio(root / "b/wav16.wav", sine(330.0, 2.0), 16000)
    stereo = np.stack([sine(440.0, 2.0, 44100), sine(660.0, 2.0, 44100)], axis=1)
    write_audio(root / "b/stereo44.wav", stereo, 44100)
    write_audio(root / "b/flac.flac", sine(550.0, 2.0, 22050, 0.3), 22050)
    write_audio(root / "b/short.ogg", sine(500.0, 0.5), 16000)
    write_bad_files(root / "bad")
    return root


def _tracks(root: Path) -> list[tuple[str, str]]:
    return [(str(p.relative_to(root)), str(p)) for p in sorted(root.rglob("*.*"))]


def test_decodes_downmixes_resamples_and_reports(audio_dir, tmp_path):
    cache = prepare_cache(
        tmp_path / "c",
        _tracks(audio_dir),
        sample_rate=16000,
        tracks_per_shard=4,
        min_seconds=1.0,
        progress=False,
    )
    report = {Path(p["path"]).name: p["problem"] for p in cache.report()}
    assert report == {
        "corrupt.mp3": "unreadable",
        "empty.wav": "empty",
        "silent.flac": "silent",
        "short.ogg": "too_short",
    }
    assert len(cache) == 9 and cache.sample_rate == 16000
    for bad in ("bad/corrupt.mp3", "bad/empty.wav", "bad/silent.flac", "b/short.ogg"):
        assert bad not in cache  # nothing in the report reaches training
    stereo = cache.read("b/stereo44.wav")
    assert len(stereo) == 32000  # 2 s at 16 kHz
    expected, _ = load_audio(audio_dir / "b/stereo44.wav", 16000)
    np.testing.assert_allclose(stereo, expected, atol=1 / 32768)
    spectrum = np.abs(np.fft.rfft(stereo))
    freqs = np.fft.rfftfreq(len(stereo), 1 / 16000)
    assert sorted(freqs[np.argsort(spectrum)[-2:]].round()) == [440.0, 660.0]  # both channels, downmixed
    mp3 = cache.read("a/0.mp3")
    assert abs(len(mp3) - 32000) < 2000 and np.abs(mp3).max() > 0.3


def test_parallel_equals_serial(audio_dir, tmp_path):
    serial = prepare_cache(tmp_path / "s", _tracks(audio_dir), tracks_per_shard=3, progress=False)
    parallel = prepare_cache(
        tmp_path / "p", _tracks(audio_dir), tracks_per_shard=3, workers=2, progress=False
    )
    assert serial.tracks == parallel.tracks
    for shard in serial.shards:
        assert filecmp.cmp(serial.root / shard, parallel.root / shard, shallow=False)


@pytest.mark.slow  # kills and resumes a child process
def test_killed_and_resumed_run_gives_the_same_cache(audio_dir, tmp_path):
    tracks = _tracks(audio_dir)
    reference = prepare_cache(tmp_path / "ref", tracks, tracks_per_shard=1, progress=False)
    script = (  # a child whose decoding is slowed down, so that the kill lands mid-run
        "import json, sys, time\n"
        "import datamodules.prepare as prepare\n"
        "decode = prepare._decode\n"
        "prepare._decode = lambda *a: (time.sleep(0.1), decode(*a))[1]\n"
        "from datamodules.prepare import prepare_cache\n"
        f"prepare_cache({str(tmp_path / 'killed')!r}, [tuple(t) for t in json.loads(sys.argv[1])], tracks_per_shard=1, progress=False)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(tracks)], cwd=Path(__file__).resolve().parents[2]
    )
    shards = tmp_path / "killed" / "shards"
    deadline = time.time() + 60
    while time.time() < deadline and len(committed(shards)) < 3:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert not AudioCache.exists(tmp_path / "killed"), "killed before the end: no index may exist"
    assert 3 <= len(committed(shards)) < len(tracks)
    resumed = prepare_cache(tmp_path / "killed", tracks, tracks_per_shard=1, progress=False)
    for name in ("index.json", "report.json", *reference.shards):
        assert filecmp.cmp(reference.root / name, resumed.root / name, shallow=False), name


def test_refuses_another_rate_in_a_finished_cache(audio_dir, tmp_path):
    prepare_cache(tmp_path / "c", _tracks(audio_dir)[:2], sample_rate=16000, progress=False)
    with pytest.raises(ValueError, match="already holds a 16000 Hz cache"):
        prepare_cache(tmp_path / "c", _tracks(audio_dir)[:2], sample_rate=22050, progress=False)


def test_non_finite_audio_is_reported_and_left_out(tmp_path):
    from musictag.testing import sine, write_audio, write_non_finite

    write_non_finite(tmp_path / "audio" / "nan.wav")
    write_audio(tmp_path / "audio" / "ok.wav", sine(440, 1.0), 16000)
    cache = prepare_cache(tmp_path / "c", _tracks(tmp_path / "audio"), progress=False)
    assert list(cache.tracks) == ["ok.wav"]
    assert [(p["id"], p["problem"]) for p in cache.report()] == [("nan.wav", "non_finite")]


def test_a_resumed_run_removes_the_half_written_shard_of_a_killed_one(audio_dir, tmp_path):
    tracks = _tracks(audio_dir)[:4]
    reference = prepare_cache(tmp_path / "ref", tracks, tracks_per_shard=2, progress=False)
    # what a SIGKILL leaves: one committed shard, and the temporary of the writer of the next
    killed = tmp_path / "killed"
    shutil.copytree(reference.root, killed)
    for name in ("index.json", "report.json", "shards/00001.i16", "shards/00001.json"):
        (killed / name).unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    (killed / "shards" / f".00001.tmp-{int(dead.stdout)}.i16").write_bytes(b"\0" * 1000)
    resumed = prepare_cache(killed, tracks, tracks_per_shard=2, progress=False)
    assert sorted(p.name for p in (killed / "shards").iterdir()) == sorted(
        p.name for p in (reference.root / "shards").iterdir()
    )
    for name in ("index.json", *reference.shards):
        assert filecmp.cmp(reference.root / name, resumed.root / name, shallow=False), name
