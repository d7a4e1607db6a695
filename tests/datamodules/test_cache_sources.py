"""A cache knows what it was made from: wrong sources are refused, nothing empty sticks, nothing of the
user's is overwritten, and an interrupted preparation leaves no half-written file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamodules.cache import AudioCache
from datamodules.corpora import FolderDataModule
from musictag.cli import main
from musictag.stages.registry import ConfigError
from musictag.testing import committed
from musictag.testing.corpora import make_folder_corpus

REPO = Path(__file__).resolve().parents[2]


def prepare(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(["prepare", "folder", *args])
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_wrong_audio_root_is_an_error_and_leaves_nothing_that_sticks(tmp_path, capsys):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=6)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    cache = tmp_path / "cache"
    code, out, err = prepare(
        capsys, "--root", str(wrong), "--metadata", str(corpus.metadata), "--out", str(cache)
    )
    last = err.strip().splitlines()[-1]  # after the progress bar
    assert code == 2 and out == "" and "Traceback" not in err
    assert last.startswith("musictag prepare: error: none of the 6 tracks could be used, e.g. ")
    assert "no such file; check the audio root" in err
    assert not AudioCache.exists(cache)
    # corrected, the same command prepares the corpus
    code, out, _ = prepare(
        capsys, "--root", str(corpus.audio_root), "--metadata", str(corpus.metadata), "--out", str(cache)
    )
    assert code == 0 and len(AudioCache(cache)) > 0
    # asked again from the wrong root, the cache refuses rather than serve what it holds
    code, _, err = prepare(
        capsys, "--root", str(wrong), "--metadata", str(corpus.metadata), "--out", str(cache)
    )
    assert (
        code == 2
        and f"prepared with audio_root='{corpus.audio_root.resolve()}', not '{wrong.resolve()}'" in err
    )
    assert f"remove {cache} to prepare it again" in err
    # a missing root is named
    code, _, err = prepare(
        capsys,
        "--root",
        str(tmp_path / "nowhere"),
        "--metadata",
        str(corpus.metadata),
        "--out",
        str(tmp_path / "c2"),
    )
    assert code == 2 and f"--root {tmp_path / 'nowhere'} does not exist" in err


def test_a_partial_download_lists_a_few_missing_files_and_counts_the_rest(tmp_path, capsys):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=6)
    with open(corpus.metadata, "a") as f:  # 25 rows whose audio was never downloaded
        f.writelines(f"audio/absent{i}.mp3,rock,train\n" for i in range(25))
    cache = tmp_path / "cache"
    code, out, _ = prepare(
        capsys, "--root", str(corpus.audio_root), "--metadata", str(corpus.metadata), "--out", str(cache)
    )
    assert code == 0
    assert "27 left out (1 empty, 25 missing, 1 unreadable):" in out
    missing = [line for line in out.splitlines() if line.startswith("  missing ")]
    assert len(missing) == 21 and all("no such file" in line for line in missing[:20])
    assert missing[20] == f"  missing    ... and 5 more, all in {cache / 'report.json'}"
    assert sum(p["problem"] == "missing" for p in AudioCache(cache).report()) == 25


def test_a_datamodule_refuses_a_cache_of_other_metadata_or_settings(tmp_path):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=6)
    cache = tmp_path / "cache"
    FolderDataModule(cache_dir=str(cache), csv=str(corpus.metadata)).prepare_data()
    other_csv = corpus.audio_root / "other.csv"
    shutil.copy(corpus.metadata, other_csv)
    with pytest.raises(ConfigError, match=r"prepared with csv='.*tags\.csv', not '.*other\.csv'"):
        FolderDataModule(cache_dir=str(cache), csv=str(other_csv))
    with pytest.raises(ConfigError, match=r"prepared with min_seconds=0.0, not 2.0"):
        FolderDataModule(cache_dir=str(cache), csv=str(corpus.metadata), min_seconds=2.0)
    with pytest.raises(ConfigError, match=r"prepared with seed=0, not 1"):
        FolderDataModule(cache_dir=str(cache), csv=str(corpus.metadata), seed=1)
    # the cache alone (no sources given) is fine
    assert FolderDataModule(cache_dir=str(cache), csv=None).tag_names


def test_a_folder_of_user_files_is_never_written_into(tmp_path, capsys):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=6)
    mine = corpus.audio_root / "manifest.csv"
    mine.write_text("my own file\n")
    before = sorted(p.name for p in corpus.audio_root.iterdir())
    code, _, err = prepare(
        capsys,
        "--root",
        str(corpus.audio_root),
        "--metadata",
        str(corpus.metadata),
        "--out",
        str(corpus.audio_root),
    )
    assert code == 2 and f"--out {corpus.audio_root} is the input {corpus.audio_root}" in err
    assert (
        mine.read_text() == "my own file\n" and sorted(p.name for p in corpus.audio_root.iterdir()) == before
    )
    from musictag.types import ConfigError

    with pytest.raises(
        ConfigError, match=r"not empty and was not written by this command \(audio, manifest.csv"
    ):
        AudioCache.write(corpus.audio_root, [("a", np.zeros(10, np.float32))], 16000)
    assert mine.read_text() == "my own file\n"
    # an empty folder, or an earlier cache, is fine
    (tmp_path / "empty").mkdir()
    for _ in ("into the empty folder", "again, into the cache it holds now"):
        flags = ["--root", str(corpus.audio_root), "--metadata", str(corpus.metadata)]
        code, _, _ = prepare(capsys, *flags, "--out", str(tmp_path / "empty"))
        assert code == 0


def test_ctrl_c_in_prepare_cleans_up_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import json

    import datamodules.prepare as prepare_module

    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=12)
    tracks = [(f"t{i}", str(p)) for i, p in enumerate(sorted((corpus.audio_root / "audio").iterdir()))]
    out = tmp_path / "cache"
    # a real Ctrl-C (SIGINT to the process) while two worker processes decode, shard by shard
    child = (
        "import json, sys, time\n"
        "import datamodules.prepare as prepare\n"
        "decode = prepare._decode\n"
        "prepare._decode = lambda *a: (time.sleep(0.1), decode(*a))[1]\n"
        "try:\n"
        "    prepare.prepare_cache(sys.argv[1], [tuple(t) for t in json.loads(sys.argv[2])], tracks_per_shard=1, workers=2)\n"
        "except prepare.PrepareInterrupted:\n"
        "    sys.exit(130)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, str(out), json.dumps(tracks)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(committed(out / "shards")) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert (
        "shards of " + str(out) + " are done (half-written files removed); run the same command again" in err
    )
    assert not [p.name for p in out.rglob("*") if ".tmp-" in p.name]  # the workers' shards in progress
    assert not AudioCache.exists(out)
    # the same through `musictag prepare` (exit 130, no traceback), here on the one-process path
    shard = prepare_module._prepare_shard

    def interrupted(task, advance):
        if task.number == 3:
            raise KeyboardInterrupt
        shard(task, advance)

    monkeypatch.setattr(prepare_module, "_prepare_shard", interrupted)
    args = [
        "--root",
        str(corpus.audio_root),
        "--metadata",
        str(corpus.metadata),
        "--out",
        str(tmp_path / "c2"),
    ]
    code, _, err = prepare(capsys, *args, "--tracks-per-shard", "2")
    assert code == 130 and "3 of 6 shards of" in err and "Traceback" not in err
    monkeypatch.setattr(prepare_module, "_prepare_shard", shard)
    code, _, _ = prepare(capsys, *args, "--tracks-per-shard", "2")  # resumed
    assert code == 0 and len(AudioCache(tmp_path / "c2")) > 0


@pytest.mark.slow  # a child process that imports musictag, killed mid-run
def test_sigterm_in_prepare_ends_the_workers_and_cleans_up(tmp_path):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=12)
    out = tmp_path / "cache"
    stderr = tmp_path / "stderr.txt"  # a file, not a pipe: workers left running would hold a pipe open
    with open(stderr, "w") as err_file:
        proc, workers = _slowed_prepare(corpus, out, err_file)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.05)
    left_running = [pid for pid in workers if _running(pid)]
    for pid in left_running:
        os.kill(pid, signal.SIGKILL)
    err = stderr.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "run the same command again to resume" in err
    assert workers and not left_running, "workers left running"
    assert not [p.name for p in out.rglob("*") if ".tmp-" in p.name]
    assert not AudioCache.exists(out)


@pytest.mark.slow  # a child process that imports musictag, killed mid-run
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal")
def test_workers_end_with_a_prepare_killed_outright(tmp_path):
    corpus = make_folder_corpus(tmp_path / "corpus", n_tracks=12)
    out = tmp_path / "cache"
    proc, workers = _slowed_prepare(corpus, out, subprocess.DEVNULL)
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.05)
    left_running = [pid for pid in workers if _running(pid)]
    for pid in left_running:
        os.kill(pid, signal.SIGKILL)
    assert workers and not left_running, "workers left running after their parent was killed"
    # and what they left half-written goes when the preparation is resumed
    cache = FolderDataModule(cache_dir=str(out), csv=str(corpus.metadata), tracks_per_shard=1)
    cache.prepare_data()
    assert AudioCache.exists(out) and not [p.name for p in out.rglob("*") if ".tmp-" in p.name]


def _slowed_prepare(corpus: Any, out: Path, stderr: Any) -> tuple[subprocess.Popen, list[int]]:
    """``musictag prepare`` of ``corpus`` into ``out`` in a child process with two workers whose decoding
    is slowed down, once two shards are committed: the process and its workers' pids."""
    child = (
        "import sys, time\n"
        "import datamodules.prepare as prepare\n"
        "decode = prepare._decode\n"
        "prepare._decode = lambda *a: (time.sleep(0.1), decode(*a))[1]\n"
        "from musictag.cli.prepare import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["folder", "--root", str(corpus.audio_root), "--metadata", str(corpus.metadata)]
    args += ["--out", str(out), "--workers", "2", "--tracks-per-shard", "1"]
    proc = subprocess.Popen([sys.executable, "-c", child, *args], cwd=REPO, stderr=stderr)
    deadline = time.time() + 120
    while time.time() < deadline and len(committed(out / "shards")) < 2:
        time.sleep(0.02)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    workers = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    return proc, workers


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
