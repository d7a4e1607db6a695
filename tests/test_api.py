"""``musictag.load(ckpt).tag(...)``: the dicts of ``musictag tag --format json --timeline``; taggram PNGs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import musictag
from musictag import TaggingModule
from musictag.audio import AudioError
from musictag.cli import main
from musictag.inference.taggram import plot_path, plot_taggram, taggram_array
from musictag.testing import TINY_SHORT_CHUNK, sine, write_audio, write_bad_files


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    module = TaggingModule(n_tags=3, tag_names=["a", "b", "c"], tag_chunks=4, **TINY_SHORT_CHUNK)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    saved = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    torch.save({**saved, "pytorch-lightning_version": "2.6"}, path)
    return path


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("music")
    write_audio(folder / "a.mp3", sine(440.0, 5.0), 16000)
    write_audio(folder / "b.wav", np.stack([sine(220.0, 4.0, 44100), sine(330.0, 4.0, 44100)], 1), 44100)
    return folder


def test_tag_is_the_json_of_musictag_tag(tiny_ckpt, music, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["musictag"])
    with pytest.raises(SystemExit) as done:
        main(["tag", str(music / "b.wav"), "--ckpt", str(tiny_ckpt), "--format", "json", "--timeline"])
    assert done.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    tagger = musictag.load(tiny_ckpt, device="cpu")
    result = tagger.tag(music / "b.wav")
    assert json.loads(json.dumps(result)) == printed
    assert list(result) == ["path", "sample_rate", "duration_s", "scores", "top", "timeline"]
    assert result["sample_rate"] == 44100 and len(result["timeline"]) == 4 and tagger.tags == ["a", "b", "c"]


def test_tag_many_batches_files_and_skips_unreadable_ones(tiny_ckpt, music, tmp_path):
    tagger = musictag.load(tiny_ckpt, device="cpu")
    bad = tmp_path / "bad"
    write_bad_files(bad)
    with pytest.warns(UserWarning) as warned:
        results = tagger.tag_many([music, bad], batch_chunks=3)
    messages = [str(w.message) for w in warned if "skipped" in str(w.message)]
    assert len(messages) == 2
    assert messages[0].startswith(f"musictag: skipped {bad / 'corrupt.mp3'}: cannot decode (")
    assert messages[1] == f"musictag: skipped {bad / 'empty.wav'}: empty file (0 bytes)"
    # and a file shorter than one chunk is tagged once, with a note (not 16 identical chunks)
    notes = [str(w.message) for w in warned if "skipped" not in str(w.message)]
    assert notes == [
        f"musictag: {bad / 'silent.flac'}: shorter than one chunk (59049 samples): tagged once, zero-padded"
    ]
    assert all(w.filename == __file__ for w in warned)  # the warning points at the caller
    assert [Path(r["path"]).name for r in results] == ["a.mp3", "b.wav", "silent.flac"]
    for result in results[:2]:
        alone = tagger.tag(result["path"])
        np.testing.assert_allclose(list(alone["scores"].values()), list(result["scores"].values()), atol=1e-6)
    with pytest.raises(AudioError, match=r"empty\.wav: empty file"):
        tagger.tag(bad / "empty.wav")


def test_taggram_png_is_written_whole(tmp_path):
    tags = [f"tag {i}" for i in range(50)]
    rng = np.random.default_rng(0)
    timeline = [
        {"start_s": 2.992 * i, "scores": dict(zip(tags, rng.random(50).tolist(), strict=True))}
        for i in range(5)
    ]
    song = {t: float(np.mean([c["scores"][t] for c in timeline])) for t in tags}
    result = {"path": "x/song.mp3", "scores": song, "timeline": timeline}
    matrix, names, starts = taggram_array(result)
    assert matrix.shape == (5, 50) and names == tags and starts[1] == pytest.approx(2.992)
    taken: set[Path] = set()
    first, second = plot_path(tmp_path, "a/song.mp3", taken), plot_path(tmp_path, "b/song.wav", taken)
    assert (first.name, second.name) == ("song.png", "song_2.png")
    plot_taggram(result, first)
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["song.png"]  # no temporary file left
