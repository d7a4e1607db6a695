"""``musictag embed``, ``musictag prepare`` and their DataModules under bad input (issue 27, second wave).

Every bad path, number or device is one ``error:`` line with exit 2 (130 for Ctrl-C), never a traceback;
a refused run writes nothing; no run modifies an input or a file of the user's; and what used to pass
silently with another result (an old embedding cache for new settings, one audio file listed twice) is
refused with the difference named.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("transformers")

from datamodules.embeddings import EmbeddingDataModule  # noqa: E402
from helpers.cli import run_musictag
from musictag.cli import main  # noqa: E402
from musictag.testing import committed, sine, write_audio
from musictag.testing.encoders import make_tiny_encoder  # noqa: E402
from musictag.types import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHUNK_LEN = 8000
SPLITS = ["train", "train", "train", "train", "valid", "valid", "test", "test"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """A command in-process as the console script runs it: (exit status, stdout, stderr)."""
    return run_musictag(argv, capsys)


def one_error_line(err: str, *fragments: str) -> None:
    """``err`` is one ``musictag ...: error:`` line holding every fragment, with no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and ": error: " in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def write_corpus(root: Path, rows: list[tuple[str, str, str]] | None = None) -> Path:
    """``root/audio/t{i}.wav`` (1 s tones) and ``root/tags.csv``; returns the CSV."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(len(SPLITS)):
        write_audio(root / "audio" / f"t{i}.wav", sine(220.0 * (i + 1), 1.0), 16000)
    if rows is None:
        rows = [(f"audio/t{i}.wav", "rock" if i % 2 else "jazz;piano", s) for i, s in enumerate(SPLITS)]
    return write_csv(root / "tags.csv", rows)


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("path,tags,split\n" + "".join(f"{p},{t},{s}\n" for p, t, s in rows))
    return path


def checksums(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` → its sha256 (what must not change)."""
    sums = {}
    for root in roots:
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_encoder("hubert", tmp_path_factory.mktemp("hubert"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared folder-corpus cache shared by the embed tests (never written by them)."""
    root = tmp_path_factory.mktemp("corpus")
    csv_path = write_corpus(root)
    cache = root.parent / f"{root.name}-cache"
    with pytest.raises(SystemExit) as stop:
        main(["prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(cache)])
    assert stop.value.code in (0, None)
    return cache


def data_config(folder: Path, cache: Path, **overrides: object) -> Path:
    init_args = {"cache_dir": str(cache), "chunk_len": CHUNK_LEN, "n_chunks": 2, "batch_size": 2, **overrides}
    path = folder / "data.yaml"
    path.write_text(
        yaml.safe_dump({"data": {"class_path": "datamodules.FolderDataModule", "init_args": init_args}})
    )
    return path


# --- embed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--batch-size", "0"),
        ("--batch-size", "-1"),
        ("--tracks-per-shard", "0"),
        ("--tracks-per-shard", "-1"),
        ("--encoder-batch", "0"),
        ("--chunk-len", "0"),
        ("--chunk-len", "-1"),
    ],
)
def test_embed_refuses_a_number_below_one_before_writing(encoder, prepared, tmp_path, capsys, flag, value):
    # --batch-size 0 left settings.json and a .tmp; --tracks-per-shard 0 said "range() arg 3 must not be zero"
    out = tmp_path / "emb"
    config = data_config(tmp_path, prepared)
    code, _, err = run(
        capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={out}", f"{flag}={value}"
    )
    assert code == 2
    one_error_line(err, f"{flag} must be at least 1, got {value}")
    assert not out.exists()


@pytest.mark.parametrize(
    "device,message",
    [("cuda", "--device cuda: no CUDA GPU is available"), ("gpu", "unknown device 'gpu'")],
)
def test_embed_refuses_a_device_it_cannot_use(
    encoder, prepared, tmp_path, capsys, monkeypatch, device, message
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    out = tmp_path / "emb"
    config = data_config(tmp_path, prepared)
    code, _, err = run(
        capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={out}", f"--device={device}"
    )
    assert code == 2
    one_error_line(err, message)
    assert not out.exists()


def test_embed_bad_paths_are_one_line(encoder, prepared, tmp_path, capsys):
    config = data_config(tmp_path, prepared)
    (tmp_path / "a-file").write_text("mine\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "broken.yaml").write_text("data: {class_path: [unclosed\n")
    cases = [
        ([f"--data={config}", f"--out={tmp_path / 'a-file'}"], ["a-file is a file, not a folder"]),
        ([f"--data={config}", f"--out={prepared}"], [f"--out {prepared} is the input"]),
        ([f"--data={config}", f"--out={config}"], ["is a file, not a folder"]),
        ([f"--data={tmp_path / 'missing.yaml'}", f"--out={tmp_path / 'x'}"], ["missing.yaml: no such file"]),
        ([f"--data={folder}", f"--out={tmp_path / 'x'}"], ["a-folder: is a folder, not a file"]),
        ([f"--data={tmp_path / 'pipe.yaml'}", f"--out={tmp_path / 'x'}"], ["is a named pipe, not a file"]),
        (
            [f"--data={tmp_path / 'broken.yaml'}", f"--out={tmp_path / 'x'}"],
            ["is not a readable YAML config"],
        ),
    ]
    for args, fragments in cases:
        code, _, err = run(capsys, "embed", f"--encoder={encoder}", *args, "--quiet")
        assert code == 2, args
        one_error_line(err, *fragments)
    assert (tmp_path / "a-file").read_text() == "mine\n" and not (tmp_path / "x").exists()
    code, _, err = run(
        capsys, "embed", f"--encoder={tmp_path / 'no-encoder'}", f"--data={config}", f"--out={tmp_path / 'x'}"
    )
    assert code == 2 and "Traceback" not in err and "no-encoder" in err


def test_embed_unknown_data_init_args_key_is_one_line(encoder, prepared, tmp_path, capsys):
    config = data_config(tmp_path, prepared, n_chunkz=4)
    code, _, err = run(capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={tmp_path / 'e'}")
    assert code == 2
    one_error_line(
        err,
        f"{config}: data.init_args of datamodules.FolderDataModule: no argument 'n_chunkz'",
        "(did you mean 'n_chunks'?)",
        "; it takes cache_dir, csv, audio_root,",
    )
    assert not (tmp_path / "e").exists()
    # a required argument left out, and a class that is not a DataModule, are one line too
    for section, fragment in [
        (
            {"class_path": "datamodules.FolderDataModule", "init_args": {"csv": "x.csv"}},
            f"{config}: data.init_args of datamodules.FolderDataModule: cache_dir must be set",
        ),
        (
            {"class_path": "musictag.TaggingModule"},
            f"{config}: data class_path 'musictag.TaggingModule' is not a musictag DataModule",
        ),
        (
            {"class_path": "datamodules.NoSuchDataModule"},
            f"{config}: cannot import data class_path 'datamodules.NoSuchDataModule': module 'datamodules' "
            "has no attribute 'NoSuchDataModule'",
        ),
    ]:
        config.write_text(yaml.safe_dump({"data": section}))
        code, _, err = run(
            capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={tmp_path / 'e'}"
        )
        assert code == 2
        one_error_line(err, fragment)
    assert not (tmp_path / "e").exists()


def test_embed_into_a_folder_of_the_users_files_is_refused(encoder, prepared, tmp_path, capsys):
    # it used to overwrite the user's manifest.csv
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("my own manifest\n")
    (mine / "notes.txt").write_text("notes\n")
    before = checksums(mine)
    config = data_config(tmp_path, prepared)
    code, _, err = run(
        capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={mine}", "--quiet"
    )
    assert code == 2
    one_error_line(
        err, f"--out {mine} is not empty and was not written by this command (manifest.csv, notes.txt)"
    )
    assert checksums(mine) == before and listing(mine) == ["manifest.csv", "notes.txt"]


def test_embed_into_a_finished_cache_with_other_settings_is_refused(encoder, prepared, tmp_path, capsys):
    other = make_tiny_encoder("hubert", tmp_path / "other-encoder", seed=1)
    config = data_config(tmp_path, prepared)
    out = tmp_path / "emb"
    common = [f"--data={config}", f"--out={out}", "--quiet"]
    assert run(capsys, "embed", f"--encoder={encoder}", *common, "--layers=0,2")[0] == 0
    index = (out / "index.json").read_bytes()
    shards = checksums(out / "shards")
    for args, differs in [
        ([f"--encoder={encoder}"], "layers [0, 2] → [0, 1, 2]"),
        ([f"--encoder={encoder}", "--layers=0,2", "--time-pool=mean"], "time_pool 'none' → 'mean'"),
        ([f"--encoder={other}", "--layers=0,2"], f"encoder '{encoder.resolve()}' → '{other.resolve()}'"),
        ([f"--encoder={encoder}", "--layers=0,2", "--chunk-len=4000"], "chunk_len 8000 → 4000"),
    ]:
        code, _, err = run(capsys, "embed", *args, *common)
        assert code == 2, args
        one_error_line(err, "holds a finished embedding cache made with other settings", differs)
        assert f"remove {out} to embed it again with the new settings, or give another --out" in err
        assert (out / "index.json").read_bytes() == index and checksums(out / "shards") == shards
    # several settings at once: each is named
    code, _, err = run(capsys, "embed", f"--encoder={other}", "--time-pool=mean", *common)
    assert code == 2 and "encoder" in err and "layers [0, 2] → [0, 1, 2]" in err and "time_pool" in err
    # the same settings (under another spelling of the encoder folder) are the finished cache
    relative = os.path.relpath(encoder)
    code, out_text, _ = run(capsys, "embed", f"--encoder={relative}", *common, "--layers=0,2")
    assert code == 0 and "4 train, 2 valid, 2 test tracks" in out_text
    # the shard size only splits the same rows into other files: the finished cache is what is asked
    assert (
        run(capsys, "embed", f"--encoder={encoder}", *common, "--layers=0,2", "--tracks-per-shard=1")[0] == 0
    )
    assert (out / "index.json").read_bytes() == index


def test_a_truncated_embedding_shard_is_refused_when_the_cache_is_opened(encoder, prepared, tmp_path, capsys):
    config = data_config(tmp_path, prepared)
    out = tmp_path / "emb"
    args = ["embed", f"--encoder={encoder}", f"--data={config}", f"--out={out}", "--quiet", "--layers=0"]
    assert run(capsys, *args, "--tracks-per-shard=2")[0] == 0
    shard = out / "shards" / "train-00001.f16"
    whole = shard.read_bytes()
    shard.write_bytes(whole[: len(whole) // 2])
    # fit from it: one line before the first step, not an error in the middle of an epoch
    code, _, err = run(
        capsys,
        "fit",
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--model=musictag.TaggingModule",
        "--model.init_args.arch=null",
        "--model.init_args.backend=global_mean",
        '--model.init_args.head={"name": "linear"}',
        f'--model.init_args.representation={{"name": "embedding", "cache": "{out}"}}',
        '--model.init_args.frontend={"name": "layer_mix", "mix": "concat"}',
        "--data=datamodules.EmbeddingDataModule",
        f"--data.init_args.embeddings={out}",
        "--data.init_args.batch_size=2",
        f"--run.save_dir={tmp_path / 'runs'}",
    )
    assert code == 2 and "Traceback" not in err  # (Lightning's own warnings come before the line)
    last = err.strip().splitlines()[-1]
    assert last.startswith("musictag: error: embedding cache") and f"shard {shard} holds" in last
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))
    datamodule = EmbeddingDataModule(str(out), batch_size=2)
    with pytest.raises(
        ConfigError, match=rf"shard {shard} holds {len(whole) // 2} bytes, its index lists {len(whole)}"
    ):
        datamodule.setup()  # at opening, not in the middle of an epoch
    # the message's way out redoes exactly that shard
    (out / "shards" / "train-00001.json").unlink()
    (out / "index.json").unlink()
    assert run(capsys, *args, "--tracks-per-shard=2")[0] == 0
    assert shard.read_bytes() == whole
    EmbeddingDataModule(str(out), batch_size=2).setup()


def test_embed_stopped_by_ctrl_c_exits_130_and_resumes_exactly(encoder, prepared, tmp_path, capsys):
    config = data_config(tmp_path, prepared)
    reference = tmp_path / "whole"
    flags = [f"--encoder={encoder}", f"--data={config}", "--quiet", "--layers=0", "--tracks-per-shard=1"]
    assert run(capsys, "embed", *flags, f"--out={reference}")[0] == 0
    out = tmp_path / "emb"
    # a child whose encoding is slowed down, so that Ctrl-C comes in the middle of the corpus
    child = (
        "import sys, time, datamodules.embedding_writer as e\n"
        "encode = e._encode\n"
        "e._encode = lambda *a, **k: (time.sleep(0.25), encode(*a, **k))[1]\n"
        "from musictag.cli import main\n"
        "main(['embed', *sys.argv[1:]])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child, *flags, f"--out={out}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not committed(out / "shards") and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "musictag embed: stopped by Ctrl-C" in err
    assert "shards of" in err and "run the same command again to resume from there" in err
    names = [p.stem for p in committed(out / "shards")]
    assert 1 <= len(names) < 8 and not (out / "index.json").exists()
    # no half-written shard: every data file there is a committed one
    assert [p.stem for p in committed(out / "shards", ".f16")] == names
    assert not [p for p in (out / "shards").iterdir() if ".tmp" in p.name]
    kept = checksums(*[out / "shards" / f"{name}.f16" for name in names])
    assert run(capsys, "embed", *flags, f"--out={out}")[0] == 0
    assert checksums(*[out / "shards" / f"{name}.f16" for name in names]) == kept
    # the resumed cache holds the rows of an uninterrupted run
    index, whole = (
        json.loads((out / "index.json").read_text()),
        json.loads((reference / "index.json").read_text()),
    )
    assert index["tracks"] == whole["tracks"] and index["shards"] == whole["shards"]
    for name in whole["shards"]:
        np.testing.assert_array_equal(
            np.fromfile(out / name, dtype="<f2"), np.fromfile(reference / name, dtype="<f2"), err_msg=name
        )


# --- prepare ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag,value,minimum",
    [
        ("--tracks-per-shard", "0", 1),
        ("--tracks-per-shard", "-1", 1),
        ("--sample-rate", "0", 1000),
        ("--sample-rate", "-1", 1000),
        ("--sample-rate", "16", 1000),  # 16 for 16000
        ("--workers", "0", 1),
        ("--workers", "-1", 1),
        ("--min-seconds", "-1", 0),
    ],
)
def test_prepare_refuses_a_bad_number_before_decoding(tmp_path, capsys, flag, value, minimum):
    csv_path = write_corpus(tmp_path / "corpus")
    out = tmp_path / "cache"
    code, _, err = run(
        capsys,
        "prepare", "folder", "--root", str(tmp_path / "corpus"), "--metadata", str(csv_path),
        "--out", str(out), flag, value,
    )  # fmt: skip
    assert code == 2
    one_error_line(err, f"{flag} must be at least {minimum}, got {value}")
    assert not out.exists()  # nothing decoded, nothing written


def test_prepare_bad_paths_are_one_line(tmp_path, capsys):
    root = tmp_path / "corpus"
    csv_path = write_corpus(root)
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "a-file").write_text("mine\n")
    new = str(tmp_path / "new")
    cases = [
        (["--root", str(tmp_path / "nowhere"), "--metadata", str(csv_path), "--out", new], "does not exist"),
        (
            ["--root", str(csv_path), "--metadata", str(csv_path), "--out", new],
            f"--root {csv_path} is a file",
        ),
        (
            ["--root", str(root), "--metadata", str(tmp_path / "none.csv"), "--out", new],
            "none.csv: no such file",
        ),
        (["--root", str(root), "--metadata", str(root / "audio"), "--out", new], "is a folder, not a file"),
        (["--root", str(root), "--metadata", str(tmp_path / "pipe.csv"), "--out", new], "is a named pipe"),
        (
            ["--root", str(root), "--metadata", str(csv_path), "--out", str(root)],
            f"--out {root} is the input",
        ),
        (["--root", str(root), "--metadata", str(csv_path), "--out", str(tmp_path / "a-file")], "is a file"),
        (
            ["--root", str(root), "--metadata", str(csv_path), "--out", str(root / "audio")],
            "is not empty and was not written",
        ),
    ]
    before = checksums(root, tmp_path / "a-file")
    for args, fragment in cases:
        code, _, err = run(capsys, "prepare", "folder", *args)
        assert code == 2, args
        one_error_line(err, fragment)
    assert checksums(root, tmp_path / "a-file") == before and not Path(new).exists()


def write_rows(root: Path, rows: list[str]) -> Path:
    path = root / "rows.csv"
    path.write_text("".join(f"{row}\n" for row in rows))
    return path


def test_prepare_folder_one_audio_file_listed_twice_is_refused(tmp_path, capsys):
    # `b/x.wav` (train) and `./b/x.wav` (test) used to become two tracks: the same audio in train and test
    root = tmp_path / "corpus"
    write_corpus(root)
    (root / "audio" / "link.wav").symlink_to(root / "audio" / "t0.wav")
    os.link(root / "audio" / "t1.wav", root / "audio" / "hard.wav")
    head = "path,tags,split"
    for rows, named in [
        ([head, "audio/t0.wav,rock,train", "./audio/t0.wav,rock,test"], "line 3: path './audio/t0.wav'"),
        ([head, "audio/t0.wav,rock,train", "audio//t0.wav,jazz,train"], "line 3: path 'audio//t0.wav'"),
        ([head, "audio/t0.wav,rock,train", "audio/x/../t0.wav,jazz,valid"], "line 3"),
        ([head, "audio/t0.wav,rock,train", "audio/t2.wav,jazz,valid", "audio/link.wav,rock,test"], "line 4"),
        ([head, "audio/t1.wav,rock,train", "audio/hard.wav,rock,test"], "line 3: path 'audio/hard.wav'"),
    ]:
        out = tmp_path / "cache"
        csv_path = write_rows(root, rows)
        code, _, err = run(
            capsys, "prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(out)
        )
        assert code == 2, rows
        one_error_line(err, named, "already appears on line 2", "each audio file may be listed once")
        assert not out.exists()
    # spelled once with ./, it is one track under its normal id
    csv_path = write_rows(root, [head, "./audio/t0.wav,rock,train", "audio/t1.wav,jazz,test"])
    out = tmp_path / "cache"
    code, _, _ = run(
        capsys, "prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(out)
    )
    assert code == 0
    from datamodules.cache import AudioCache
    from datamodules.manifest import Manifest

    assert Manifest.read_csv(out / "manifest.csv").ids == ("audio/t0.wav", "audio/t1.wav")
    assert sorted(AudioCache(out).tracks) == ["audio/t0.wav", "audio/t1.wav"]


def test_prepare_folder_csv_problems_are_one_line(tmp_path, capsys):
    root = tmp_path / "corpus"
    write_corpus(root)
    outside = tmp_path / "outside.wav"
    write_audio(outside, sine(440.0, 1.0), 16000)
    head = "path,tags,split"
    for rows, fragment in [
        ([], "is empty"),
        ([head], "lists no tracks (only its header)"),
        ([head, "audio/t0.wav,,train", "audio/t1.wav,,test"], "the tags column is empty in every row"),
        (
            [head, "audio/t0.wav,rock,train", "../outside.wav,rock,test"],
            "line 3: path '../outside.wav' is outside",
        ),
        ([head, "audio/t0.wav,rock,train", f"{outside},rock,test"], "is outside the audio root"),
    ]:
        csv_path = write_rows(root, rows)
        out = tmp_path / "cache"
        code, _, err = run(
            capsys, "prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(out)
        )
        assert code == 2, rows
        one_error_line(err, str(csv_path), fragment)
        assert not out.exists()


def test_prepare_folder_skips_and_reports_a_named_pipe_as_audio(tmp_path, capsys):
    root = tmp_path / "corpus"
    write_corpus(root)
    os.mkfifo(root / "audio" / "pipe.wav")
    csv_path = write_rows(root, ["path,tags,split", "audio/t0.wav,rock,train", "audio/pipe.wav,jazz,test"])
    out = tmp_path / "cache"
    code, text, _ = run(
        capsys, "prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(out)
    )
    assert code == 0 and "1 tracks in" in text and "pipe.wav: is a named pipe, not a file" in text


# --- the DataModules --------------------------------------------------------------------------------


def test_datamodule_numbers_below_their_minimum_are_refused(prepared, encoder, tmp_path, capsys):
    from datamodules.corpora import FolderDataModule

    for name, value in [
        ("n_chunks", 0),
        ("batch_size", 0),
        ("eval_batch_size", 0),  # used to fall back to batch_size // 4
        ("eval_batch_size", -1),
        ("chunk_len", 0),
        ("chunk_hop", 0),
        ("workers", 0),
        ("tracks_per_shard", 0),
        ("min_seconds", -1),
    ]:
        with pytest.raises(ConfigError, match=rf"^{name} must be at least \d, got {value}$"):
            FolderDataModule(cache_dir=str(prepared), **{name: value})
    config = data_config(tmp_path, prepared)
    out = tmp_path / "emb"
    assert run(capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={out}", "--quiet")[0] == 0
    for name in ("batch_size", "eval_batch_size"):
        with pytest.raises(ConfigError, match=rf"^{name} must be at least 1, got 0$"):
            EmbeddingDataModule(str(out), **{name: 0})
    # in an embed --data config, the same is one line
    code, _, err = run(
        capsys, "embed", f"--encoder={encoder}", f"--data={data_config(tmp_path, prepared, n_chunks=0)}",
        f"--out={tmp_path / 'e2'}",
    )  # fmt: skip
    assert code == 2
    one_error_line(err, "n_chunks must be at least 1, got 0")


# --- nothing of the user's changes --------------------------------------------------------------------


def test_no_run_modifies_an_input_and_a_refused_run_writes_nothing(encoder, tmp_path, capsys):
    root = tmp_path / "corpus"
    csv_path = write_corpus(root)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("my own manifest\n")
    (mine / "index.json").write_text("{}\n")
    cache = tmp_path / "cache"
    config = data_config(tmp_path, cache)
    inputs = [root, mine, config, encoder]
    sums = checksums(*inputs)
    prepare = ["prepare", "folder", "--root", str(root), "--metadata", str(csv_path)]
    embed = ["embed", f"--encoder={encoder}", f"--data={config}", "--quiet"]
    for argv in (
        [*prepare, "--out", str(mine)],
        [*prepare, "--out", str(root)],
        [*prepare, "--out", str(cache), "--sample-rate", "0"],
    ):
        before = listing(tmp_path)
        assert run(capsys, *argv)[0] == 2, argv
        assert listing(tmp_path) == before and checksums(*inputs) == sums
    assert run(capsys, *prepare, "--out", str(cache))[0] == 0
    assert checksums(*inputs) == sums
    cache_sums = checksums(cache)
    for argv in (
        [*embed, f"--out={mine}"],
        [*embed, f"--out={cache}"],
        [*embed, f"--out={encoder}"],
        [*embed, f"--out={tmp_path / 'emb'}", "--batch-size=0"],
    ):
        before = listing(tmp_path)
        assert run(capsys, *argv)[0] == 2, argv
        assert listing(tmp_path) == before and checksums(*inputs) == sums and checksums(cache) == cache_sums
    assert run(capsys, *embed, f"--out={tmp_path / 'emb'}")[0] == 0
    assert checksums(*inputs) == sums and checksums(cache) == cache_sums


def test_synthetic_corpus_sizes_below_their_minimum_are_refused(tmp_path):
    from datamodules.synthetic import SyntheticDataModule

    for name, value in [("n_clips", 0), ("n_clips", -1), ("clip_seconds", 0)]:
        with pytest.raises(ConfigError, match=rf"^{name} must be at least .*, got {value}$"):
            SyntheticDataModule(root=str(tmp_path / "s"), **{name: value})
    assert not (tmp_path / "s").exists()


def test_embed_leaves_out_the_tracks_of_a_truncated_audio_shard_and_says_so(encoder, tmp_path, capsys):
    root = tmp_path / "corpus"
    csv_path = write_corpus(root)
    cache = tmp_path / "cache"
    argv = ["prepare", "folder", "--root", str(root), "--metadata", str(csv_path), "--out", str(cache)]
    assert run(capsys, *argv, "--tracks-per-shard=2")[0] == 0
    shard = cache / "shards" / "00001.i16"  # tracks 2 and 3 (train)
    shard.write_bytes(shard.read_bytes()[:100])
    out = tmp_path / "emb"
    config = data_config(tmp_path, cache)
    code, text, err = run(
        capsys, "embed", f"--encoder={encoder}", f"--data={config}", f"--out={out}", "--quiet"
    )
    assert code == 0 and "Traceback" not in err
    assert "2 track(s) of the audio cache cannot be read and are left out" in err and str(shard) in err
    assert "2 train, 2 valid, 2 test tracks" in text


@pytest.mark.parametrize("name", ["cache_dir", "audio_root"])
def test_an_empty_corpus_path_is_refused_not_taken_for_the_working_folder(name, tmp_path):
    from datamodules import FolderDataModule

    args = {"cache_dir": str(tmp_path / "cache"), "csv": str(tmp_path / "tags.csv"), name: ""}
    with pytest.raises(ConfigError, match=rf"^data.init_args.{name} is an empty path; give a folder$"):
        FolderDataModule(**args)
