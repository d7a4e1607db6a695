"""``musictag prepare --config CONFIG``: the DataModule of a config's data section (read as ``fit`` and
``embed`` read it) prepares its cache; the earlier spelling with a corpus and flags is a translation into
the same section and gives the same cache; bad input is one line naming the config key (or the flag)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from datamodules.cache import AudioCache
from helpers.cli import run_musictag
from musictag.testing.corpora import DummyCorpus, make_folder_corpus

FOLDER = "datamodules.FolderDataModule"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_musictag(argv, capsys)


def one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1 and "musictag prepare: error: " in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DummyCorpus:
    return make_folder_corpus(tmp_path_factory.mktemp("corpus"), n_tracks=8, seconds=2.0)


def write(path: Path, config: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def folder_section(corpus: DummyCorpus, cache: Path, **init_args: object) -> dict[str, object]:
    return {
        "class_path": FOLDER,
        "init_args": {
            "cache_dir": str(cache),
            "csv": str(corpus.metadata),
            "audio_root": str(corpus.audio_root),
            "split_column": "split",
            "tracks_per_shard": 2,
            **init_args,
        },
    }


def test_prepare_config_composed_by_path_from_another_cwd_equals_the_flags(
    corpus, tmp_path, monkeypatch, capsys
):
    by_config = tmp_path / "by-config"
    write(tmp_path / "corpora" / "folder.yaml", folder_section(corpus, by_config))
    write(
        tmp_path / "recipes" / "fit.yaml",
        {
            "trainer": {"max_epochs": 3},
            "model": {"class_path": "musictag.TaggingModule"},
            "data": "../corpora/folder.yaml",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run(capsys, "prepare", "--config", "../recipes/fit.yaml")
    assert code == 0, err
    assert f"musictag prepare: 6 tracks in {by_config} at 16000 Hz" in out
    assert "musictag prepare: 2 left out (1 empty, 1 unreadable):" in out
    by_flags = tmp_path / "by-flags"
    code, out, err = run(
        capsys,
        "prepare", "folder", "--root", str(corpus.audio_root), "--metadata", str(corpus.metadata),
        "--out", str(by_flags), "--split-column", "split", "--tracks-per-shard", "2",
    )  # fmt: skip
    assert code == 0 and f"musictag prepare: 6 tracks in {by_flags} at 16000 Hz" in out, err
    a, b = AudioCache(by_config), AudioCache(by_flags)
    assert a.tracks == b.tracks and a.report() == b.report() and a.source == b.source
    assert a.shards == b.shards and len(a.shards) == 4  # 8 tracks listed, 2 per shard
    for name in ("manifest.csv", *a.shards):
        assert (by_config / name).read_bytes() == (by_flags / name).read_bytes(), name
    # run again: the finished cache is used as it is
    code, out, _ = run(capsys, "prepare", "--config", "../recipes/fit.yaml")
    assert code == 0 and "6 tracks in" in out
    # a guard names the recipe and the file of the section
    code, _, err = run(capsys, "prepare", "--config", "../recipes/fit.yaml", "--data.init_args.workers=0")
    assert code == 2
    one_error_line(
        err, "../recipes/fit.yaml (data: ../corpora/folder.yaml): data.init_args.workers must be at least 1"
    )


def test_prepare_config_takes_dotted_overrides_as_fit_does(corpus, tmp_path, capsys):
    cache = tmp_path / "cache"
    config = write(tmp_path / "data.yaml", {"data": folder_section(corpus, tmp_path / "elsewhere")})
    code, _, err = run(
        capsys,
        "prepare", "--config", str(config), f"--data.init_args.cache_dir={cache}",
        "--data.init_args.tracks_per_shard", "3",
    )  # fmt: skip
    assert code == 0, err
    assert len(AudioCache(cache).shards) == 3 and not (tmp_path / "elsewhere").exists()


def test_prepare_config_bad_input_is_one_line_naming_the_key(corpus, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    new = tmp_path / "new"

    path = tmp_path / "config" / "data.yaml"

    def config(**init_args: object) -> dict[str, object]:  # written when its case runs
        return {"data": folder_section(corpus, new, **init_args)}

    cases = [
        (
            [config(), "--data.init_args.sample_rate=16"],
            f"{path}: data.init_args.sample_rate must be at least 1000, got 16",
        ),
        ([config(workers=0)], f"{path}: data.init_args.workers must be at least 1, got 0"),
        ([config(workers=100000)], f"{path}: data.init_args.workers 100000 is more than"),
        ([config(tracks_per_shard=0)], f"{path}: data.init_args.tracks_per_shard must be at least 1, got 0"),
        (
            [config(audio_root=str(tmp_path / "nowhere"))],
            f"{path}: data.init_args.audio_root {tmp_path / 'nowhere'} does not exist; give the folder",
        ),
        (
            [config(cache_dir=str(mine))],
            f"{path}: data.init_args.cache_dir {mine} is not empty and was not written",
        ),
        ([config(cache_dir="")], f"{path}: data.init_args.cache_dir: an empty path; give a folder"),
        ([config(audio_root=" ")], f"{path}: data.init_args.audio_root: an empty path; give a folder"),
        (
            [config(cache_dir=str(corpus.audio_root))],
            f"{path}: data.init_args.cache_dir {corpus.audio_root} is the input",
        ),
        (
            [config(n_chunkz=2)],
            f"{path}: data.init_args of {FOLDER}: no argument 'n_chunkz' (did you mean 'n_chunks'?)",
        ),
        # the DataModule's own message, as it is
        ([config(csv=str(tmp_path / "none.csv"))], "none.csv: no such file"),
        (
            [config(), "--root", "x"],
            "--root is not an option of `musictag prepare --config`; with --config, set data.init_args.audio_root",
        ),
        (
            ["--config", str(write(tmp_path / "fit.yaml", {"trainer": {"max_epochs": 1}}))],
            "fit.yaml has no data section with a class_path",
        ),
        (
            [
                "--config",
                str(
                    write(tmp_path / "syn.yaml", {"data": {"class_path": "datamodules.SyntheticDataModule"}})
                ),
            ],
            "syn.yaml: data class_path 'datamodules.SyntheticDataModule' is not a CorpusDataModule",
        ),
    ]
    for argv, *fragments in cases:
        if isinstance(argv[0], dict):
            argv = ["--config", str(write(path, argv[0])), *argv[1:]]
        before = listing(tmp_path)
        code, _, err = run(capsys, "prepare", *argv)
        assert code == 2, argv
        one_error_line(err, *fragments)
        assert listing(tmp_path) == before and not new.exists(), argv


def test_the_earlier_spelling_names_its_flags(corpus, tmp_path, capsys):
    out = tmp_path / "cache"
    flags = ["--root", str(corpus.audio_root), "--out", str(out)]
    code, _, err = run(capsys, "prepare", "folder", *flags, "--metadata", str(tmp_path / "none.csv"))
    assert code == 2
    one_error_line(err, "none.csv: no such file")
    code, _, err = run(capsys, "prepare", "mtat", *flags, "--subset", "genre")
    assert code == 2
    one_error_line(err, "--subset is not a setting of mtat; only jamendo take it")
    code, _, err = run(
        capsys, "prepare", "folder", *flags, "--metadata", str(corpus.metadata), "--sample-rate", "8k"
    )
    assert code == 2 and "--sample-rate: invalid int value: '8k'" in err
    code, _, err = run(capsys, "prepare", "mtatt", *flags)
    assert code == 2
    one_error_line(
        err, "'mtatt' is not a corpus (ballroom, folder, gtzan, jamendo, msd, mtat); give --config CONFIG"
    )
    assert not out.exists() and os.listdir(tmp_path) == []
