"""The genre corpora GTZAN and Ballroom: readers on generated corpora of the published layouts (with broken
and stray files), the shipped fault-filtered split against the reference files, prepare, and a Pons recipe
trained and tested on the generated Ballroom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.ballroom import CLASSES, read_ballroom
from datamodules.cache import AudioCache
from datamodules.gtzan import GENRES, SHIPPED_SPLITS, SPLIT_FILES, read_gtzan
from datamodules.manifest import Manifest
from helpers.cli import run_musictag
from musictag.testing import last_logged
from musictag.testing.corpora import BALLROOM_FOLDERS, make_ballroom_corpus, make_gtzan_corpus

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gtzan(tmp_path_factory):
    return make_gtzan_corpus(tmp_path_factory.mktemp("gtzan"))


@pytest.fixture(scope="module")
def ballroom(tmp_path_factory):
    return make_ballroom_corpus(tmp_path_factory.mktemp("ballroom"))


def counts(manifest: Manifest) -> dict[str, int]:
    return {split: manifest.splits.count(split) for split in ("train", "valid", "test")}


def test_gtzan_filtered_split_lists_what_the_split_files_name(gtzan):
    manifest = read_gtzan(gtzan.audio_root, "filtered", gtzan.metadata)
    # 3 excerpts of 10 genres + the 3 broken ones (train) + one listed but absent (test)
    assert counts(manifest) == {"train": 13, "valid": 10, "test": 11}
    assert manifest.tag_names == GENRES and (manifest.targets.sum(axis=1) == 1).all()
    row = manifest.ids.index("jazz.00054")
    assert manifest.paths[row] == "genres/jazz/jazz.00054.wav" and manifest.targets[row, GENRES.index("jazz")]
    # found as .au where only that exists; stray files are not excerpts
    assert manifest.paths[manifest.ids.index("classical.00000")] == "genres/classical/classical.00000.au"
    assert not any(p.endswith(".txt") for p in manifest.paths)
    # the genres folder itself is a root too
    inside = read_gtzan(gtzan.audio_root / "genres", "filtered", gtzan.metadata)
    assert inside.ids == manifest.ids and inside.paths[0] == "blues/blues.00000.wav"


def test_gtzan_random_split_is_every_excerpt_and_seeded(gtzan):
    manifest = read_gtzan(gtzan.audio_root, "random")
    assert len(manifest) == 1000 and (manifest.targets.sum(axis=0) == 100).all()
    assert counts(manifest) == {"train": 800, "valid": 100, "test": 100}
    assert read_gtzan(gtzan.audio_root, "random", seed=0).splits == manifest.splits
    assert read_gtzan(gtzan.audio_root, "random", seed=1).splits != manifest.splits


def test_the_shipped_filtered_split_is_the_reference_one(reference, gtzan):
    folder = reference("gtzan")
    for name in SPLIT_FILES.values():
        assert (SHIPPED_SPLITS / name).read_bytes() == (folder / name).read_bytes(), name
    for splits_dir in (folder, None):  # the reference folder given, or the shipped copies by default
        manifest = read_gtzan(gtzan.audio_root, "filtered", splits_dir)
        assert counts(manifest) == {"train": 443, "valid": 197, "test": 290}
        assert len(set(manifest.ids)) == 930 and set(manifest.targets.sum(axis=1)) == {1}


def test_a_bad_split_file_is_one_line_naming_it(tmp_path, gtzan):
    for name in SPLIT_FILES.values():
        (tmp_path / name).write_text("blues/blues.00000.wav\n")
    with pytest.raises(
        ValueError, match=r"valid_filtered.txt, line 1: 'blues/blues.00000.wav' is also in the train"
    ):
        read_gtzan(gtzan.audio_root, "filtered", tmp_path)
    (tmp_path / "valid_filtered.txt").write_text("\nfolk/folk.00001.wav\n")
    with pytest.raises(
        ValueError, match=r"valid_filtered.txt, line 2: 'folk/folk.00001.wav' is not a GTZAN excerpt"
    ):
        read_gtzan(gtzan.audio_root, "filtered", tmp_path)
    (tmp_path / "test_filtered.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['test_filtered.txt'\]"):
        read_gtzan(gtzan.audio_root, "filtered", tmp_path)
    with pytest.raises(ValueError, match="unknown GTZAN split 'fault'"):
        read_gtzan(gtzan.audio_root, "fault")


def test_ballroom_reads_ten_folders_as_eight_classes(ballroom):
    manifest = read_ballroom(ballroom.audio_root)
    good = 2 * len(BALLROOM_FOLDERS)
    assert len(manifest) == good + len(ballroom.bad)  # no ._ fork, no stray file
    assert manifest.tag_names == CLASSES and (manifest.targets.sum(axis=1) == 1).all()
    per_class = dict(zip(CLASSES, manifest.targets.sum(axis=0).tolist(), strict=True))
    assert per_class == {
        "ChaChaCha": 2, "Jive": 3, "Quickstep": 2, "Rumba": 6, "Samba": 2, "Tango": 3, "VienneseWaltz": 2,
        "Waltz": 3,
    }  # fmt: skip
    row = manifest.ids.index("Rumba-Misc/Media-105000")
    assert manifest.targets[row, CLASSES.index("Rumba")] and manifest.paths[row].startswith("BallroomData/")
    assert read_ballroom(ballroom.audio_root / "BallroomData").ids == manifest.ids
    assert read_ballroom(ballroom.audio_root, seed=0).splits == manifest.splits
    assert set(manifest.splits) == {"train", "valid", "test"}


def test_a_folder_without_ballroom_excerpts_is_one_line(tmp_path):
    (tmp_path / "Polka").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no Ballroom excerpts in .*BallroomData/<style>/\*.wav"):
        read_ballroom(tmp_path)


def test_prepare_gtzan_reports_the_broken_excerpts(gtzan, tmp_path, capsys):
    out = tmp_path / "cache"
    argv = ["prepare", "gtzan", f"--root={gtzan.audio_root}", f"--out={out}", f"--metadata={gtzan.metadata}"]
    code, said, _ = run_musictag(argv, capsys)
    assert code == 0
    cache = AudioCache(out)
    assert {p["id"]: p["problem"] for p in cache.report()} == gtzan.bad
    assert len(cache) == 30 and cache.sample_rate == 16000
    assert cache.length("classical.00000") == 2 * 16000  # the .au, 22,050 Hz → 16 kHz
    assert "30 tracks" in said and "4 left out (1 empty, 1 missing, 2 unreadable)" in said


def test_prepare_ballroom_refuses_metadata(ballroom, tmp_path, capsys):
    argv = ["prepare", "ballroom", f"--root={ballroom.audio_root}", f"--out={tmp_path / 'c'}", "--metadata=x"]
    code, _, err = run_musictag(argv, capsys)
    assert code == 2 and "--metadata is not a setting of ballroom: --root is all it reads" in err
    assert not (tmp_path / "c").exists()


def test_a_pons_recipe_trains_and_tests_on_the_generated_ballroom(ballroom, tmp_path, capsys):
    """prepare --config of the recipe, then fit and test it (44.1 kHz, standardised bands, majority vote)."""
    recipe = REPO / "experiments" / "ballroom" / "pons_blackbox.yaml"
    cache_dir = tmp_path / "cache"
    data = [f"--data.init_args.audio_root={ballroom.audio_root}", f"--data.init_args.cache_dir={cache_dir}"]
    code, _, err = run_musictag(["prepare", f"--config={recipe}", *data], capsys)
    assert code == 0, err
    cache = AudioCache(cache_dir)
    assert {p["id"]: p["problem"] for p in cache.report()} == ballroom.bad and cache.sample_rate == 44100
    runs = [
        f"--config={recipe}",
        *data,
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run.save_dir={tmp_path / 'runs'}",
    ]
    assert run_musictag(["fit", *runs], capsys)[0] == 0
    best = tmp_path / "runs" / "ballroom-pons_blackbox" / "version_0" / "checkpoints" / "best.ckpt"
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    mean, std = state["net.representation.band_mean"], state["net.representation.band_std"]
    assert mean.shape == (40, 1) and bool(state["net.representation.statistics_fitted"])
    assert float(mean.abs().max()) > 0 and float(std.min()) > 0  # the training set's, not the identity
    assert run_musictag(["test", *runs, "--ckpt_path=best"], capsys)[0] == 0
    folder = tmp_path / "runs" / "ballroom-pons_blackbox" / "version_1"
    metrics = last_logged(folder / "metrics.csv")
    saved = np.load(folder / "test_predictions.npz")
    test_ids = {t for t, s in zip(*_ids_and_splits(cache_dir), strict=True) if s == "test" and t in cache}
    assert set(saved["song_ids"]) == test_ids and list(saved["tag_names"]) == list(CLASSES)
    # majority vote: each song's scores are the fractions of its excerpts (2.5 s: 2 of 80 frames) per class
    scores = saved["scores"]
    assert np.allclose(scores.sum(axis=1), 1) and np.allclose(scores * 2, np.round(scores * 2))
    top = scores.argmax(axis=1)
    assert metrics["test/accuracy"] == pytest.approx(
        float((saved["labels"][np.arange(len(top)), top] == 1).mean())
    )


def _ids_and_splits(cache_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    manifest = Manifest.read_csv(cache_dir / "manifest.csv")
    return manifest.ids, manifest.splits
