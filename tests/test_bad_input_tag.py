"""``musictag tag``, ``musictag.load`` and ``AudioTagger`` under bad input (issue 27): one line and exit 2
(never a traceback), nothing of the user's changed, no silently different result."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import musictag
from helpers.cli import musictag_process, run_musictag
from musictag import TaggingModule
from musictag.audio import AudioError
from musictag.guards import InputError
from musictag.testing import TINY_SHORT_CHUNK, save_module_checkpoint, sine, write_audio


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_musictag(argv, capsys)


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a refused command (and that there is no traceback)."""
    assert "Traceback" not in err
    errors = [line for line in err.strip().splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def song(tmp_path) -> Path:
    write_audio(tmp_path / "song.wav", sine(440, 4.0), 16000)
    return tmp_path / "song.wav"


def test_bad_paths_get_one_line(tiny_ckpt, song, tmp_path, capsys):
    cases = {
        "missing audio": ([str(tmp_path / "gone.wav"), "--ckpt", str(tiny_ckpt)], "gone.wav: no such file"),
        "missing ckpt": ([str(song), "--ckpt", str(tmp_path / "no.ckpt")], "no.ckpt: no such file"),
        "ckpt a folder": ([str(song), "--ckpt", str(tmp_path)], "is a folder"),
        "ckpt not a ckpt": ([str(song), "--ckpt", str(song)], "not a readable PyTorch checkpoint"),
    }
    for name, (argv, message) in cases.items():
        code, out, err = run(["tag", *argv], capsys)
        assert code == 2 and out == "", name
        assert message in err, (name, err)
        assert "Traceback" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--top-k", "-2"], "--top-k must be at least 1, got -2"),
        (["--top-k", "0"], "--top-k must be at least 1, got 0"),
        (["--n-chunks", "-1"], "--n-chunks must be at least 1, got -1"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--hop", "0", "--chunk-mode", "sliding"], "--hop must be at least 1, got 0"),
        (["--hop", "1000"], "--hop is for --chunk-mode sliding; this run's mode is even"),
        (["--n-chunks", "3", "--chunk-mode", "sliding"], "--n-chunks is for --chunk-mode even or sota"),
        (["--batch-size", "10000000"], "--batch-size 10000000: a batch of 10000000 chunks"),
    ],
)
def test_bad_numbers_get_one_line(tiny_ckpt, song, flags, message, capsys):
    code, out, err = run(["tag", str(song), "--ckpt", str(tiny_ckpt), *flags], capsys)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_a_device_this_machine_lacks_is_one_line(tiny_ckpt, song, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = run(["tag", str(song), "--ckpt", str(tiny_ckpt), "--device", "cuda"], capsys)
    assert code == 2 and out == ""
    assert one_error_line(err) == (
        "musictag tag: error: --device cuda: no CUDA GPU is available here; use --device auto or cpu"
    )
    with pytest.raises(
        InputError, match=r"^device cuda: no CUDA GPU is available here; use device auto or cpu$"
    ):
        musictag.load(tiny_ckpt, device="cuda")  # the argument's name, not the command's flag


def test_top_k_is_the_best_k(tiny_ckpt, song, capsys):
    code, out, _ = run(
        ["tag", str(song), "--ckpt", str(tiny_ckpt), "--top-k", "2", "--format", "json"], capsys
    )
    result = json.loads(out)
    best = sorted(result["scores"].items(), key=lambda kv: -kv[1])[:2]
    assert code == 0 and [tag for tag, _ in result["top"]] == [tag for tag, _ in best]


def test_csv_keeps_the_timeline(tiny_ckpt, song, capsys):
    code, out, _ = run(
        ["tag", str(song), "--ckpt", str(tiny_ckpt), "--format", "csv", "--timeline", "--n-chunks", "3"],
        capsys,
    )
    rows = [line.split(",") for line in out.strip().splitlines()]
    assert code == 0 and rows[0] == ["path", "duration_s", "start_s", "a", "b", "c"]
    assert rows[1][2] == "" and len(rows) == 2 + 3  # the song's row, then its 3 chunks with their starts
    assert [float(r[2]) for r in rows[2:]] == sorted(float(r[2]) for r in rows[2:])
    assert float(rows[-1][2]) > 0


def test_patches_mode_says_when_a_file_is_shorter_than_one_chunk(tiny_ckpt, song, capsys):
    from musictag.chunks import ChunkPlan
    from musictag.inference.tagging import file_chunk_starts

    chunk = 512 + 256 * 9  # whole frames of 512 every 256
    starts, note = file_chunk_starts(1000, ChunkPlan(chunk, 1, "patches", 256, 512))
    assert len(starts) == 1 and note == f"shorter than one chunk ({chunk} samples): tagged once, zero-padded"
    assert file_chunk_starts(chunk * 4, ChunkPlan(chunk, 1, "patches", 256, 512))[1] is None
    # a model whose chunk is not whole frames: one line, not a traceback from the decoding thread
    code, _, err = run(["tag", str(song), "--ckpt", str(tiny_ckpt), "--chunk-mode", "patches"], capsys)
    assert code == 2 and "--chunk-mode patches does not fit this model" in one_error_line(err)
    # and the command says it: a model of whole frames (8.2 s chunks), a 4-second song
    torch.manual_seed(0)
    frames = TaggingModule(n_tags=3, tag_names=["a", "b", "c"], input_len=512 + 256 * 511, **TINY_SHORT_CHUNK)
    whole = save_module_checkpoint(frames.eval(), song.parent / "frames.ckpt")
    code, out, err = run(["tag", str(song), "--ckpt", str(whole), "--chunk-mode", "patches"], capsys)
    assert code == 0 and "Traceback" not in err and str(song) in out, err
    assert err.strip().splitlines() == [
        f"musictag tag: note: {song}: shorter than one chunk ({512 + 256 * 511} samples): tagged once, zero-padded"
    ]


def test_zero_settings_are_refused_in_python_too(tiny_model, tiny_ckpt, song):
    with pytest.raises(InputError, match="n_chunks must be at least 1, got 0"):
        musictag.load(tiny_ckpt, device="cpu", n_chunks=0)
    tagger = musictag.load(tiny_ckpt, device="cpu")
    with pytest.raises(InputError, match="batch_chunks must be at least 1, got 0"):
        tagger.tag_many([song], batch_chunks=0)
    with pytest.raises(InputError, match="top_k must be at least 1, got -2"):
        tagger.tag_many([song], top_k=-2)
    from musictag.chunks import ChunkPlan
    from musictag.inference.tagging import tag_many

    with pytest.raises(InputError, match="n_chunks must be at least 1, got 0"):
        list(tag_many(tiny_model, [song], ChunkPlan.for_model(tiny_model, n_chunks=0)))
    with pytest.raises(InputError, match="batch_size must be at least 1, got 0"):
        list(tag_many(tiny_model, [song], batch_size=0))
    with pytest.raises(musictag.types.ConfigError, match="tag_chunks must be at least 1, got 0"):
        TaggingModule(n_tags=3, tag_chunks=0, **TINY_SHORT_CHUNK)
    with pytest.raises(InputError, match="n_chunks is for chunk_mode even or sota"):
        musictag.load(tiny_ckpt, device="cpu", n_chunks=4, chunk_mode="sliding")


def test_embed_chunk_len_zero_is_refused(tmp_path, capsys):
    code, _, err = run(
        [
            "embed",
            "--encoder",
            str(tmp_path),
            "--data",
            str(tmp_path / "d.yaml"),
            "--out",
            str(tmp_path / "o"),
            "--chunk-len",
            "0",
        ],
        capsys,
    )
    assert code == 2 and "--chunk-len must be at least 1, got 0" in one_error_line(err)


def test_tag_many_takes_one_path_as_one_path(tiny_ckpt, song, tmp_path, monkeypatch):
    tagger = musictag.load(tiny_ckpt, device="cpu")
    (tmp_path / "sub").mkdir()
    write_audio(tmp_path / "sub" / "other.wav", sine(220, 4.0), 16000)
    monkeypatch.chdir(tmp_path)
    results = tagger.tag_many("song.wav")  # one file, not the characters s, o, n, g, ".", ...
    assert [Path(r["path"]).name for r in results] == ["song.wav"]
    assert [Path(r["path"]).name for r in tagger.tag_many(Path("sub"))] == ["other.wav"]
    # tag(): one file; a folder (empty or not) is refused with what to use instead
    (tmp_path / "emptydir").mkdir()
    for folder in ("sub", "emptydir"):
        with pytest.raises(InputError, match=rf"{folder} is a folder: tag\(\) tags one file; use tag_many"):
            tagger.tag(folder)
    with pytest.warns(UserWarning, match="no audio files under emptydir"):
        assert tagger.tag_many(["emptydir"]) == []
    with pytest.raises(AudioError, match="gone.wav: no such file"):
        tagger.tag("gone.wav")


def test_entries_that_cannot_be_looked_at_are_skipped_and_named(
    tiny_ckpt, song, tmp_path, monkeypatch, capsys
):
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    write_audio(tmp_path / "vanishing.wav", sine(330, 4.0), 16000)
    write_audio(tmp_path / "locked.wav", sine(330, 4.0), 16000)
    (tmp_path / "closed").mkdir()
    real_stat, real_scandir = os.stat, os.scandir

    def stat(path, *args, **kwargs):  # root ignores chmod: the failures are simulated
        name = os.path.basename(os.fspath(path))
        if name == "vanishing.wav":
            raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
        if name == "locked.wav":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "closed":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = run(["tag", str(tmp_path), "--ckpt", str(tiny_ckpt), "--format", "json"], capsys)
    assert "Traceback" not in err
    assert code == 1 and [Path(json.loads(line)["path"]).name for line in out.splitlines()] == ["song.wav"]
    assert f"skipped {tmp_path / 'dangling.wav'}: a dangling symlink" in err
    assert f"skipped {tmp_path / 'vanishing.wav'}: vanished while searched" in err
    assert f"skipped {tmp_path / 'locked.wav'}: cannot be looked at (Permission denied)" in err
    assert f"skipped {tmp_path / 'closed'}: cannot be listed (Permission denied)" in err
    assert "4 of 5 file(s) could not be tagged" in err


def test_named_pipes_are_refused_without_reading_them(tiny_ckpt, song, tmp_path):
    """A hang would be the failure, so the command runs in a child with a timeout."""
    folder = tmp_path / "music"
    folder.mkdir()
    shutil.copy(song, folder / "song.wav")
    os.mkfifo(folder / "pipe.wav")
    child = musictag_process(["tag", "--format", "json", "--ckpt", str(tiny_ckpt), str(folder)], timeout=120)
    assert child.returncode == 1 and "Traceback" not in child.stderr
    assert f"skipped {folder / 'pipe.wav'}: is a named pipe, not a file" in child.stderr
    assert [Path(json.loads(line)["path"]).name for line in child.stdout.splitlines()] == ["song.wav"]
    from musictag.audio import audio_duration, load_audio

    for read in (load_audio, audio_duration):  # the choke point refuses by type too, before libsndfile
        with pytest.raises(AudioError, match="is a named pipe, not a file"):
            read(folder / "pipe.wav")
    from musictag.training.module import load_checkpoint

    with pytest.raises(musictag.types.ConfigError, match="is a named pipe, not a file"):
        load_checkpoint(str(folder / "pipe.wav"))


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def test_plot_changes_nothing_but_the_new_pictures(tiny_ckpt, tmp_path, capsys):
    music = tmp_path / "music"
    (music / "sub").mkdir(parents=True)
    write_audio(music / "a.wav", sine(440, 4.0), 16000)
    write_audio(music / "sub" / "b.wav", sine(220, 4.0), 16000)
    shutil.copy(tiny_ckpt, tmp_path / "model.ckpt")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "notes.txt").write_text("the user's")
    before = checksums(tmp_path)
    argv = ["tag", str(music), "--ckpt", str(tmp_path / "model.ckpt"), "--plot", str(plots)]
    code, _, err = run(argv, capsys)
    after = checksums(tmp_path)
    assert code == 0, err
    assert {k: v for k, v in after.items() if k not in before}.keys() == {"plots/a.png", "plots/b.png"}
    assert all(after[k] == v for k, v in before.items())
    # a second run would replace those pictures: refused before the model runs, nothing changed
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert f"--plot {plots / 'a.png'} exists" in one_error_line(err)
    assert checksums(tmp_path) == after
    # a file as the folder; a folder that cannot be written
    for target, message in (
        (music / "a.wav", "is a file, not a folder"),
        (tmp_path / "model.ckpt", "is a file"),
    ):
        code, _, err = run(
            ["tag", str(music), "--ckpt", str(tmp_path / "model.ckpt"), "--plot", str(target)], capsys
        )
        assert code == 2 and message in one_error_line(err)
    assert checksums(tmp_path) == after


def test_an_unwritable_plot_folder_is_refused_before_the_model_runs(
    tiny_ckpt, song, tmp_path, monkeypatch, capsys
):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before --plot was checked")

    monkeypatch.setattr("musictag.cli.tag.load_model", no_model)
    code, _, err = run(["tag", str(song), "--ckpt", str(tiny_ckpt), "--plot", str(locked)], capsys)
    assert code == 2 and "cannot write in it (permission denied)" in one_error_line(err)
    assert list(locked.iterdir()) == []


def test_evaluating_untrained_layers_is_refused(tiny_ckpt, tiny_corpus, tmp_path, capsys):
    """``pretrained`` of another tag set leaves the output layer random: test/validate/predict refuse it
    unless asked for; fit trains it (legitimately)."""
    from musictag.testing import cli_args

    for command in ("test", "validate"):
        argv = cli_args(
            command, str(tiny_corpus), str(tmp_path), **{"model.init_args.pretrained": str(tiny_ckpt)}
        )
        code, _, err = run(argv, capsys)
        assert code == 2, err
        line = one_error_line(err)
        assert f"{command} would evaluate untrained layers (net.head" in line
        assert "--model.init_args.allow_untrained=true" in line
    assert not list(tmp_path.rglob("metrics.csv"))
    module = TaggingModule(n_tags=5, pretrained=str(tiny_ckpt), allow_untrained=True)
    assert module.untrained_layers and module.untrained_layers[0].startswith("net.head")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.check_trained("test")
    assert any("untrained layers" in str(w.message) for w in caught)
    module.on_load_checkpoint({})  # a ckpt_path's weights are trained ones
    module.allow_untrained = False
    module.check_trained("test")


@pytest.fixture(scope="module")
def whisper(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from musictag.testing.encoders import make_tiny_encoder

    return make_tiny_encoder("whisper", tmp_path_factory.mktemp("enc") / "whisper")


def test_a_probe_from_an_embedding_cache_tags_as_on_the_embeddings(whisper, tmp_path):
    from musictag.chunks import ChunkPlan
    from musictag.files import EMBEDDINGS_FORMAT as FORMAT
    from musictag.inference.tagging import file_chunks
    from musictag.stages.frontends.hf_encoder import PretrainedEncoder

    chunk_len = 16000
    encoder = PretrainedEncoder((1, chunk_len), 16000, str(whisper), layers="all", encoder_batch=1)
    cache = tmp_path / "cache"
    cache.mkdir()
    index = {  # what `musictag embed` records about the encoder
        "format": FORMAT,
        "encoder": {"path": str(whisper), "family": encoder.family, "sample_rate": encoder.encoder_rate},
        "time_pool": "none",
        "layers": encoder.layers,
        "frame_shape": list(encoder.frame_shape),
        "chunk_len": chunk_len,
        "sample_rate": 16000,
    }
    (cache / "index.json").write_text(json.dumps(index))
    (cache / "settings.json").write_text(json.dumps({"encoder_batch": 1}))
    torch.manual_seed(1)
    probe = TaggingModule(
        n_tags=3,
        tag_names=["a", "b", "c"],
        arch=None,
        representation={"name": "embedding", "cache": str(cache), "layers": encoder.layers[1:]},
        frontend={"name": "layer_mix", "mix": "weighted"},
        backend="global_mean",
        head="linear",
        tag_chunks=3,
    ).eval()
    with torch.no_grad():
        probe.net.frontend.mix.layer_weights.normal_()
    path = save_module_checkpoint(probe, tmp_path / "probe.ckpt")
    write_audio(tmp_path / "song.wav", sine(440, 2.5) + sine(97, 2.5, amplitude=0.2), 16000)
    tagger = musictag.load(path, device="cpu")
    result = tagger.tag(tmp_path / "song.wav")
    # the probe on the embeddings of the same chunks
    chunks = file_chunks(
        tagger.model, tmp_path / "song.wav", ChunkPlan.for_model(tagger.model, "even", 3)
    ).chunks
    with torch.no_grad():
        hidden = encoder.hidden_states(chunks)  # (3, L, T, D) float16, as the cache holds them
        flat = hidden.reshape(len(chunks), -1)  # every stored layer, as the cache's rows
        expected = torch.sigmoid(probe(flat))
    got = torch.tensor([[c["scores"][t] for t in "abc"] for c in result["timeline"]])
    assert got.shape == (3, 3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # without the cache, nothing records the encoder: refused, saying how
    shutil.rmtree(cache)
    with pytest.raises(
        InputError, match=r"probe\.ckpt is a probe trained from the embedding cache .*which is gone"
    ):
        musictag.load(path, device="cpu")


def test_an_encoder_folder_holding_another_architecture_is_named(whisper, song, tmp_path, capsys):
    from musictag.testing.encoders import make_tiny_encoder

    folder = tmp_path / "encoder"
    shutil.copytree(whisper, folder)
    live = TaggingModule(
        n_tags=2,
        arch=None,
        representation="waveform",
        frontend={"name": "hf_encoder", "path": str(folder), "layers": -1},
        backend="global_mean",
        head="linear",
        input_len=16000,
        sample_rate=16000,
    )
    path = save_module_checkpoint(live, tmp_path / "live.ckpt")
    shutil.rmtree(folder)
    make_tiny_encoder("wav2vec2", folder)
    code, out, err = run(["tag", str(song), "--ckpt", str(path)], capsys)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert f"the encoder folder {folder} holds a wav2vec2 model" in line and "built on a whisper one" in line


@pytest.mark.slow  # a child process, tagging long enough to be stopped midway (~30 s on 2 busy cores)
def test_ctrl_c_midway_exits_130_without_a_traceback(tiny_ckpt, tmp_path):
    import signal
    import time

    for i in range(40):
        write_audio(tmp_path / f"{i:02d}.wav", sine(220 + 10 * i, 4.0), 16000)
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "musictag",
        "tag",
        str(tmp_path),
        "--ckpt",
        str(tiny_ckpt),
        "--batch-size",
        "1",
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    first = child.stdout.readline()  # a file was tagged: the run is midway
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert first and child.returncode == 130, err
    assert "Traceback" not in err and "musictag tag: stopped by Ctrl-C" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:02d}.wav" for i in range(40)]
