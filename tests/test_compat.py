"""What an earlier main wrote still works: a checkpoint and run config committed from main of 2026-12-03
(before the layers became packages, with the old class paths) load, tag, test and resume identically."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers.cli import run_musictag
from musictag.audio import write_audio
from musictag.testing import sine

FIXTURE = Path(__file__).parent / "fixtures" / "main-2026-12-03"


def tone(path: Path) -> Path:
    """The file the fixture's ``tag.json`` scores: 6 s of 440 Hz + 1320 Hz at 16 kHz."""
    write_audio(path, (sine(440, 6.0) + sine(1320, 6.0, amplitude=0.2)).astype(np.float32), 16000)
    return path


def test_an_old_checkpoint_tags_as_it_did(tmp_path, capsys):
    expected = json.loads((FIXTURE / "tag.json").read_text())
    code, out, err = run_musictag(
        ["tag", str(tone(tmp_path / "tone.wav")), "--ckpt", str(FIXTURE / "last.ckpt"), "--format", "json"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert list(result["scores"]) == list(expected["scores"])  # the tags, in their order
    np.testing.assert_allclose(list(result["scores"].values()), list(expected["scores"].values()), atol=1e-6)
    assert [tag for tag, _ in result["top"]] == [tag for tag, _ in expected["top"]]
    from musictag.inference.loading import load_model

    assert load_model(str(FIXTURE / "last.ckpt"), torch.device("cpu")).mp3_decoder_delay == 0  # none saved


@pytest.fixture
def old_run(tmp_path) -> Path:
    """The fixture's run config with its corpus and run folders moved under ``tmp_path``."""
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    assert config["model"]["class_path"] == "musictag.TaggingModule"  # as the old main wrote it
    config["data"]["init_args"]["root"] = str(tmp_path / "corpus")
    config["run"]["save_dir"] = str(tmp_path / "runs")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_old_run_config_and_checkpoint_test_to_the_same_metrics(old_run, tmp_path, capsys):
    code, _, err = run_musictag(
        ["test", "--config", str(old_run), "--ckpt_path", str(FIXTURE / "last.ckpt")], capsys
    )
    assert code == 0, err
    (metrics,) = (tmp_path / "runs").glob("tiny/version_*/metrics.csv")
    with open(metrics) as now, open(FIXTURE / "test_metrics.csv") as then:
        # the test's metrics, whichever row holds them (a run also logs model/n_params in a row of its own)
        logged = {k: v for row in csv.DictReader(now) for k, v in row.items() if v}
        expected = next(csv.DictReader(then))
    for key in ("test/roc_auc", "test/pr_auc", "test/loss"):
        assert float(logged[key]) == pytest.approx(float(expected[key]), abs=1e-6), key


def test_an_old_checkpoint_resumes_its_fit(old_run, tmp_path, capsys):
    ckpt = tmp_path / "old.ckpt"
    shutil.copy(FIXTURE / "last.ckpt", ckpt)
    code, _, err = run_musictag(
        ["fit", "--config", str(old_run), "--ckpt_path", str(ckpt), "--trainer.max_epochs=2"], capsys
    )
    assert code == 0, err
    (metrics,) = (tmp_path / "runs").glob("tiny/version_*/metrics.csv")
    epochs = {row["epoch"] for row in csv.DictReader(open(metrics)) if row.get("val/pr_auc")}
    assert epochs == {"1"}  # the one epoch left, after the old run's epoch 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("musictag.schedules.ReferenceSchedule", "musictag.training.schedules.ReferenceSchedule"),
        ("musictag.callbacks.TaggingMetrics", "musictag.training.callbacks.TaggingMetrics"),
        ("musictag.module.TaggingModule", "musictag.training.module.TaggingModule"),
        ("musictag.frontends.conv2d.Conv2dStack", "musictag.stages.frontends.conv2d.Conv2dStack"),
        (
            "musictag.frontends.pretrained.PretrainedEncoder",
            "musictag.stages.frontends.hf_encoder.PretrainedEncoder",
        ),
        ("musictag.representations.mel.MelSpectrogram", "musictag.stages.representations.mel.MelSpectrogram"),
    ],
)
def test_old_class_paths_name_the_same_classes(old, new):
    """Class paths of configs written before the move resolve, through jsonargparse as the CLI does, to
    the very classes of the new modules (one class, one registry entry)."""
    from jsonargparse.typing import import_object  # type: ignore[import-untyped]

    assert import_object(old) is import_object(new)


def test_a_renamed_command_still_runs_under_its_old_name(capsys):
    """``import-pretrained`` became ``import-weights``: the old name runs the command; ``--help`` of
    ``musictag`` lists the new one only."""
    code, out, _ = run_musictag(["import-pretrained", "--help"], capsys)
    assert code == 0 and out.startswith("usage: musictag import-weights")
    code, out, _ = run_musictag(["--help"], capsys)
    assert "import-weights" in out and "import-pretrained" not in out
