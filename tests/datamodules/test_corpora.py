"""Generated corpora in each official layout: prepare, train one epoch and test through `musictag`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from datamodules.cache import AudioCache
from musictag.cli import main
from musictag.testing import TINY_SHORT_CHUNK, _yaml, committed, last_logged
from musictag.testing.corpora import (
    make_folder_corpus,
    make_jamendo_corpus,
    make_msd_corpus,
    make_mtat_corpus,
)

LAYOUTS = {
    "mtat": (
        make_mtat_corpus,
        "datamodules.MTATDataModule",
        lambda c: {"annotations": c.metadata, "split": "all"},
    ),
    "msd": (
        make_msd_corpus,
        "datamodules.MSDDataModule",
        lambda c: {"metadata_dir": c.metadata, "n_train": c.n_train},
    ),
    "jamendo": (make_jamendo_corpus, "datamodules.JamendoDataModule", lambda c: {"splits_dir": c.metadata}),
    "folder": (
        make_folder_corpus,
        "datamodules.FolderDataModule",
        lambda c: {"csv": c.metadata, "split_column": "split"},
    ),
}


@pytest.mark.parametrize("corpus", sorted(LAYOUTS))
def test_prepare_fit_and_test(corpus, tmp_path, monkeypatch, capsys):
    make, class_path, reader_args = LAYOUTS[corpus]
    dummy = make(tmp_path / "corpus")
    cache_dir = tmp_path / "cache"
    data_args = {
        "cache_dir": cache_dir,
        "audio_root": dummy.audio_root,
        **reader_args(dummy),
        "batch_size": 4,
        "n_chunks": 2,
    }
    args = [
        f"--data={class_path}",
        *(f"--data.init_args.{k}={v}" for k, v in data_args.items()),
        "--model=musictag.TaggingModule",
        *(f"--model.init_args.{k}={_yaml(v)}" for k, v in TINY_SHORT_CHUNK.items()),
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run.save_dir={tmp_path / 'runs'}",
        f"--run.name={corpus}",
    ]
    monkeypatch.setattr(sys, "argv", ["musictag"])
    main(["fit", *args, "--trainer.max_epochs=1"])
    cache = AudioCache(cache_dir)
    reported = {p["id"]: p["problem"] for p in cache.report()}
    assert reported == dummy.bad
    assert not set(dummy.bad) & set(cache.tracks)  # the bad files are in the report and nowhere else
    assert dummy.short in cache and dummy.stereo in cache
    assert cache.length(dummy.stereo) == 4 * 16000  # 44.1 kHz stereo → 16 kHz mono
    main(["test", *args, "--ckpt_path=best"])
    metrics = last_logged(tmp_path / "runs" / corpus / "version_1" / "metrics.csv")
    assert 0.0 <= metrics["test/roc_auc"] <= 1.0 and 0.0 <= metrics["test/pr_auc"] <= 1.0
    assert metrics["test/skipped_tags"] < len(cache_tags(cache_dir))


def cache_tags(cache_dir: Path) -> tuple[str, ...]:
    from datamodules.manifest import Manifest

    return Manifest.read_csv(cache_dir / "manifest.csv").tag_names


def test_prepare_command_reports_the_bad_files(tmp_path, capsys):
    dummy = make_folder_corpus(tmp_path / "corpus")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "prepare",
                "folder",
                "--root",
                str(dummy.audio_root),
                "--out",
                str(tmp_path / "cache"),
                "--metadata",
                str(dummy.metadata),
                "--split-column",
                "split",
                "--workers",
                "2",
            ]
        )
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"musictag prepare: {16 - 2} tracks in" in out
    assert "2 left out (1 empty, 1 unreadable)" in out
    for track in dummy.bad:
        assert track in out


def test_missing_cache_without_audio_says_what_to_do(tmp_path):
    from datamodules.corpora import FolderDataModule
    from musictag.stages.registry import ConfigError

    dummy = make_folder_corpus(tmp_path / "corpus", n_tracks=8)
    datamodule = FolderDataModule(
        cache_dir=str(tmp_path / "cache"), csv=str(dummy.metadata), split_column="split"
    )
    datamodule.audio_root = None
    with pytest.raises(ConfigError, match="musictag prepare folder --root AUDIO"):
        datamodule.prepare_data()


@pytest.mark.slow  # kills and resumes a child process
def test_killed_prepare_command_resumes_to_the_same_cache(tmp_path):
    import subprocess
    import time

    dummy = make_folder_corpus(tmp_path / "corpus", n_tracks=14)
    args = [
        "folder",
        "--root",
        str(dummy.audio_root),
        "--metadata",
        str(dummy.metadata),
        "--split-column",
        "split",
        "--tracks-per-shard",
        "2",
    ]
    assert main_exit(["prepare", *args, "--out", str(tmp_path / "whole")]) == 0
    child = (  # `musictag prepare` with decoding slowed down, killed after a few shards
        "import sys, time\n"
        "import datamodules.prepare as prepare\n"
        "decode = prepare._decode\n"
        "prepare._decode = lambda *a: (time.sleep(0.15), decode(*a))[1]\n"
        "from musictag.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", child, "prepare", *args, "--out", str(out)],
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(committed(out / "shards")) < 2:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not AudioCache.exists(out)
    assert main_exit(["prepare", *args, "--out", str(out)]) == 0
    whole = AudioCache(tmp_path / "whole")
    resumed = AudioCache(out)
    assert resumed.tracks == whole.tracks and resumed.report() == whole.report()
    for track in whole.tracks:
        assert (resumed.read(track) == whole.read(track)).all()


def main_exit(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def test_a_cache_at_another_rate_is_refused(tmp_path):
    from datamodules.corpora import FolderDataModule
    from musictag.stages.registry import ConfigError

    dummy = make_folder_corpus(tmp_path / "corpus", n_tracks=14)
    FolderDataModule(
        cache_dir=str(tmp_path / "cache"), csv=str(dummy.metadata), split_column="split"
    ).prepare_data()
    at_22k = FolderDataModule(
        cache_dir=str(tmp_path / "cache"),
        csv=str(dummy.metadata),
        split_column="split",
        sample_rate=22050,
        chunk_len=22050,
    )
    with pytest.raises(ConfigError, match="holds 16000 Hz audio, not the 22050 Hz asked for"):
        at_22k.setup("fit")


def test_prepare_takes_each_corpus_own_split_names(tmp_path, capsys):
    dummy = make_mtat_corpus(tmp_path / "corpus", n_tracks=8)
    args = ["prepare", "mtat", "--root", str(dummy.audio_root), "--out", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--split", "all"])  # MTAT's splits are names, not jamendo's numbers
    assert exit_info.value.code == 0
    assert AudioCache(tmp_path / "cache").source["split"] == "all"
    jamendo = ["prepare", "jamendo", "--root", str(tmp_path), "--out", str(tmp_path / "c2")]
    with pytest.raises(SystemExit) as exit_info:
        main([*jamendo, "--split", "clean"])
    assert exit_info.value.code == 2
    assert "jamendo: --split is the number of an official split (0-4), not 'clean'" in capsys.readouterr().err
