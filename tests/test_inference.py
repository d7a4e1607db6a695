"""`musictag tag`, `import-weights`, `predict`, and fine-tuning from published weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers.cli import run_musictag
from helpers.reference import SOTA_CHECKPOINTS
from musictag import TaggingModule
from musictag.cli import main
from musictag.convert.sota_tags import JAMENDO_TAGS, MSD_TAGS, MTAT_TAGS
from musictag.testing import (
    TINY_SHORT_CHUNK,
    cli_args,
    save_module_checkpoint,
    sine,
    write_audio,
    write_bad_files,
)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_musictag(argv, capsys)


@pytest.fixture(scope="module")
def probe_wav(tmp_path_factory, reference) -> Path:
    path = tmp_path_factory.mktemp("probe") / "probe.wav"
    sf.write(path, np.load(reference("sota/probe.npy")), 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("checkpoint", SOTA_CHECKPOINTS)
def test_imported_published_models_reproduce_the_probe(checkpoint, probe_wav, tmp_path, capsys, reference):
    dataset, arch = checkpoint.split("/")
    ckpt = tmp_path / "model.ckpt"
    code, out, _ = run(
        [
            "import-weights",
            "--source",
            "sota",
            "--arch",
            arch,
            "--dataset",
            dataset,
            "--weights",
            str(reference(f"sota/models/{checkpoint}/best_model.pth")),
            "--out",
            str(ckpt),
        ],
        capsys,
    )
    assert code == 0 and "wrote" in out
    code, out, _ = run(
        ["tag", str(probe_wav), "--ckpt", str(ckpt), "--format", "json", "--top-k", "3"], capsys
    )
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"path", "sample_rate", "duration_s", "scores", "top"}
    assert result["sample_rate"] == 16000 and result["duration_s"] == 30.0 and len(result["top"]) == 3
    expected = np.load(reference("sota/expected_probe_outputs.npz"))[f"{checkpoint}/probe_song"]
    np.testing.assert_allclose(np.array(list(result["scores"].values())), expected, atol=1e-4)


def test_bundled_tag_orders_are_the_published_ones(reference):
    assert list(MTAT_TAGS) == [str(t) for t in np.load(reference("mtat/tags.npy"))]
    assert list(MSD_TAGS) == reference("msd/50tagList.txt").read_text().split("\n")[:50]
    assert list(JAMENDO_TAGS) == sorted(reference("jamendo/top50.txt").read_text().split())


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    module = TaggingModule(n_tags=3, tag_names=["a", "b", "c"], **TINY_SHORT_CHUNK)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    return save_module_checkpoint(module, path)


def test_tag_a_folder_with_a_corrupt_file(tiny_ckpt, tmp_path, capsys):
    folder = tmp_path / "music"
    write_audio(folder / "a.mp3", sine(440.0, 5.0), 16000)
    write_audio(
        folder / "sub" / "b.wav", np.stack([sine(220.0, 4.0, 44100), sine(330.0, 4.0, 44100)], 1), 44100
    )
    write_audio(folder / "c.flac", sine(660.0, 3.0, 22050), 22050)
    write_bad_files(folder / "bad")  # corrupt.mp3, empty.wav, silent.flac (silent is still audio)
    code, out, err = run(
        ["tag", str(folder), "--ckpt", str(tiny_ckpt), "--format", "json", "--timeline"], capsys
    )
    assert code == 1  # only because of the unreadable files
    results = {Path(r["path"]).name: r for r in map(json.loads, out.strip().splitlines())}
    assert set(results) == {"a.mp3", "b.wav", "c.flac", "silent.flac"}
    assert results["b.wav"]["sample_rate"] == 44100 and results["b.wav"]["duration_s"] == 4.0
    assert set(results["a.mp3"]["scores"]) == {"a", "b", "c"} and len(results["a.mp3"]["timeline"]) == 16
    assert "corrupt.mp3" in err and "empty.wav" in err and "2 of 6 file(s) could not be tagged" in err
    code, out, _ = run(["tag", str(folder / "a.mp3"), "--ckpt", str(tiny_ckpt), "--format", "csv"], capsys)
    assert code == 0 and out.splitlines()[0] == "path,duration_s,a,b,c" and len(out.splitlines()) == 2
    code, out, _ = run(["tag", str(folder / "a.mp3"), "--ckpt", str(tiny_ckpt), "--top-k", "2"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_tag_refuses_a_file_that_is_no_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.ckpt"
    bad.write_bytes(b"nope")
    code, _, err = run(["tag", str(bad), "--ckpt", str(bad)], capsys)
    assert code == 2 and "is not a readable PyTorch checkpoint" in err


def test_fine_tune_an_imported_mtat_model_with_a_new_head(
    tiny_corpus, tmp_path, monkeypatch, capsys, reference
):
    ckpt = tmp_path / "musicnn.ckpt"
    run(
        [
            "import-weights",
            "--arch",
            "musicnn",
            "--dataset",
            "mtat",
            "--weights",
            str(reference("sota/models/mtat/musicnn/best_model.pth")),
            "--out",
            str(ckpt),
        ],
        capsys,
    )
    monkeypatch.setattr(sys, "argv", ["musictag"])
    args = [
        a
        for a in cli_args("fit", str(tiny_corpus), str(tmp_path / "runs"))
        if not a.startswith(
            ("--model.init_args.frontend", "--model.init_args.head", "--model.init_args.arch")
        )
    ]
    main(
        [
            *args,
            f"--model.init_args.pretrained={ckpt}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
        ]
    )
    tuned = TaggingModule.load_from_checkpoint(
        tmp_path / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert tuned.hparams["arch"] == "musicnn" and tuned.net.n_params() == 784_300 - 50 * 201 + 12 * 201
    assert len(tuned.tag_names) == 12
    source = torch.load(ckpt, weights_only=True)["state_dict"]
    # the front end starts from the published weights (trained a little since)
    start = source["net.frontend.layers.0.conv.weight"]
    assert torch.allclose(tuned.state_dict()["net.frontend.layers.0.conv.weight"], start, atol=0.05)


def test_predict_writes_song_scores(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["musictag"])
    runs = tmp_path / "runs"
    main(
        [
            *cli_args("fit", str(tiny_corpus), str(runs)),
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
        ]
    )
    main([*cli_args("predict", str(tiny_corpus), str(runs)), "--ckpt_path=best"])
    saved = np.load(runs / "tiny" / "version_1" / "predictions_test.npz")
    assert saved["scores"].shape == (8, 12) and ((saved["scores"] >= 0) & (saved["scores"] <= 1)).all()
    assert list(saved["tag_names"])[:2] == ["flute", "clarinet"] and len(set(saved["song_ids"])) == 8
    rows = (runs / "tiny" / "version_1" / "predictions_test.csv").read_text().splitlines()
    assert rows[0].startswith("id,flute,clarinet") and len(rows) == 9
