"""``musictag cv``: K ordinary fit + test runs, cv.csv equal to their own metrics, resume, --collect."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.cli import run_musictag
from musictag.testing import TINY_SHORT_CHUNK, last_logged, tiny_synthetic_args
from musictag.training.crossval import read_cv_csv

FOLDS = 3


def _in_process(calls: list[list[str]]):
    """``run_child`` as the same ``musictag`` command in this process (no interpreter start per run)."""
    from musictag.cli import main

    def run(argv: list[str]) -> int:
        calls.append(list(argv))
        before = sys.argv
        sys.argv = ["musictag"]
        try:
            main(list(argv))
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else 1
        finally:
            sys.argv = before
        return 0

    return run


@pytest.fixture(scope="module")
def cv_world(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cv")
    config = {
        "seed_everything": 0,
        "run": {"name": "tiny", "save_dir": str(root / "runs")},
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 1,
            "limit_train_batches": 1,
            "num_sanity_val_steps": 0,
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
        "model": {"class_path": "musictag.TaggingModule", "init_args": TINY_SHORT_CHUNK},
        "data": {
            "class_path": "datamodules.SyntheticDataModule",
            "init_args": tiny_synthetic_args(str(tiny_corpus), n_chunks=1),
        },
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    return {"root": root, "config": root / "tiny.yaml", "runs": root / "runs"}


def _cv(world: dict[str, Path], capsys, monkeypatch, *extra: str) -> tuple[int, str, str, list[list[str]]]:
    calls: list[list[str]] = []
    monkeypatch.setattr("musictag.cli.cv.run_child", _in_process(calls))
    code, out, err = run_musictag(
        ["cv", "--config", str(world["config"]), "--folds", str(FOLDS), *extra], capsys
    )
    return code, out, err, calls


@pytest.fixture(scope="module")
def done(cv_world):
    """The cross-validation run once for the module's tests."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        capsys = _Capture()
        code, out, err, calls = _cv(cv_world, capsys, monkeypatch)
    assert code == 0, err
    return {"out": out, "calls": calls}


class _Capture:
    """capsys for a module fixture: the output went to the terminal already."""

    def readouterr(self):
        return type("Captured", (), {"out": "", "err": ""})()


def _test_runs(runs: Path) -> dict[int, Path]:
    return {k: runs / f"tiny-fold{k}" / "version_1" for k in range(FOLDS)}


def test_cv_csv_holds_each_fold_and_the_mean_and_sample_std_of_their_own_metrics(cv_world, done):
    table = read_cv_csv(cv_world["runs"] / "tiny-cv" / "cv.csv")
    assert list(table) == ["0", "1", "2", "mean", "std"]
    own = {k: last_logged(folder / "metrics.csv") for k, folder in _test_runs(cv_world["runs"]).items()}
    for metric in ("test/roc_auc", "test/pr_auc", "test/loss"):
        values = np.array([own[k][metric] for k in range(FOLDS)])
        assert [table[str(k)][metric] for k in range(FOLDS)] == values.tolist()
        assert table["mean"][metric] == pytest.approx(values.mean(), abs=1e-12)
        assert table["std"][metric] == pytest.approx(values.std(ddof=1), abs=1e-12)
    # each fold an ordinary fit, then a test of its best checkpoint, under its own run name
    assert [c[0] for c in done["calls"]] == ["fit", "test"] * FOLDS
    assert all(f"--run.name=tiny-fold{i // 2}" in c for i, c in enumerate(done["calls"]))
    assert (cv_world["runs"] / "tiny-fold1" / "version_0" / "checkpoints" / "best.ckpt").is_file()


def test_the_test_folds_partition_the_corpus(cv_world, done):
    tested = []
    for folder in _test_runs(cv_world["runs"]).values():
        tested += np.load(folder / "test_predictions.npz")["song_ids"].tolist()
        recorded = yaml.safe_load((folder / "config.yaml").read_text())["data"]["init_args"]
        assert recorded["folds"] == FOLDS
    assert sorted(tested) == [f"clip{i:05d}" for i in range(32)]


def test_collect_makes_the_same_cv_csv(cv_world, done, capsys):
    out = cv_world["root"] / "collected" / "cv.csv"
    code, printed, err = run_musictag(["cv", "--collect", str(cv_world["runs"]), "--out", str(out)], capsys)
    assert code == 0, err
    assert out.read_text() == (cv_world["runs"] / "tiny-cv" / "cv.csv").read_text()
    assert "mean ± std" in printed


def test_collect_refuses_missing_and_duplicate_folds(cv_world, done, capsys, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(cv_world["runs"] / "tiny-fold0", partial / "a")
    shutil.copytree(cv_world["runs"] / "tiny-fold2", partial / "b")
    code, _, err = run_musictag(["cv", "--collect", str(partial)], capsys)
    assert code == 2 and f"fold(s) 1 of 3 have no test run under {partial}" in err
    shutil.copytree(cv_world["runs"] / "tiny-fold1", partial / "c")
    shutil.copytree(cv_world["runs"] / "tiny-fold1", partial / "d")
    code, _, err = run_musictag(["cv", "--collect", str(partial)], capsys)
    assert code == 2 and "fold 1 of 3 has 2 test runs" in err
    assert str(partial / "c" / "version_1") in err and str(partial / "d" / "version_1") in err


def test_collect_refuses_folds_of_different_configs(cv_world, done, capsys, tmp_path):
    for fold in range(FOLDS):
        shutil.copytree(cv_world["runs"] / f"tiny-fold{fold}", tmp_path / f"f{fold}")
    changed = tmp_path / "f2" / "version_1" / "config.yaml"
    config = yaml.safe_load(changed.read_text())
    config["data"]["init_args"]["batch_size"] = 2
    changed.write_text(yaml.safe_dump(config))
    code, _, err = run_musictag(["cv", "--collect", str(tmp_path)], capsys)
    assert code == 2 and f"the fold runs under {tmp_path} differ in data.init_args.batch_size" in err
    assert f"{changed.parent}: 2): they are not one cross-validation" in err


def test_a_rerun_with_another_config_is_refused(cv_world, done, capsys, monkeypatch):
    code, _, err, calls = _cv(cv_world, capsys, monkeypatch, "--trainer.max_epochs=2")
    assert code == 2 and not calls
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"musictag cv: error: {cv_world['runs'] / 'tiny-cv' / 'cv_config.yaml'} records this cross-validation "
            "with another config (trainer.max_epochs: 1, now 2)"
        )
    )


@pytest.mark.slow
def test_a_rerun_after_an_interruption_runs_only_the_unfinished_folds(cv_world, done, capsys, monkeypatch):
    runs = cv_world["runs"]
    before = (runs / "tiny-cv" / "cv.csv").read_text()
    shutil.rmtree(runs / "tiny-fold1" / "version_1")  # stopped after fold 1's fit: its last.ckpt is there
    shutil.rmtree(runs / "tiny-fold2")  # stopped before fold 2's fit wrote a checkpoint
    code, out, err, calls = _cv(cv_world, capsys, monkeypatch)
    assert code == 0, err
    assert [(c[0], c[-1]) for c in calls] == [
        ("fit", "--ckpt_path=last"),
        ("test", "--ckpt_path=best"),
        ("fit", "--run.name=tiny-fold2"),
        ("test", "--ckpt_path=best"),
    ]
    assert "--run.name=tiny-fold1" in calls[0]
    assert sorted(p.name for p in (runs / "tiny-fold0").iterdir()) == ["version_0", "version_1"]
    # the same seeds and folds give the same figures
    with open(runs / "tiny-cv" / "cv.csv") as f:
        again = list(csv.reader(f))
    assert [row[2:] for row in again] == [row[2:] for row in csv.reader(before.splitlines())]


def test_one_fold_alone_for_a_sweep_or_an_array_job(cv_world, done, capsys, monkeypatch):
    code, out, err, calls = _cv(cv_world, capsys, monkeypatch, "--data.init_args.fold=1")
    assert code == 0 and not calls  # finished already
    assert "musictag cv: fold 1: test/roc_auc=" in out and "--collect" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "2"], "data folds must be an integer >= 3"),
        (
            ["--folds", "3", "--data.init_args.fold=3"],
            "data fold must be an integer in 0..2 (folds=3), got 3",
        ),
        (["--folds", "3", "--data.init_args.folds=4"], "give the cross-validation's folds as --folds"),
        (["--collect", "{root}/nosuch"], "--collect {root}/nosuch: not a folder"),
        ([], "give --folds K"),
    ],
)
def test_bad_cv_arguments_are_one_line(args, message, tmp_path, capsys):
    args = [a.replace("{root}", str(tmp_path)) for a in args]
    code, _, err = run_musictag(["cv", *args], capsys)
    assert code == 2
    assert err.strip() == f"musictag cv: error: {message.replace('{root}', str(tmp_path))}" or (
        err.strip().startswith(f"musictag cv: error: {message.replace('{root}', str(tmp_path))}")
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_killed_cv_stops_its_child_and_a_rerun_continues_with_the_first_unfinished_fold(cv_world, tmp_path):
    """The real command: child processes, SIGTERM to the parent while fold 1 trains."""
    import os
    import signal
    import subprocess
    import time

    config = yaml.safe_load(cv_world["config"].read_text())
    config["run"]["save_dir"] = str(tmp_path / "runs")
    config["trainer"]["max_epochs"] = 3
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "musictag", "cv", "--config", str(tmp_path / "c.yaml"), "--folds", "3"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    log = open(tmp_path / "cv.log", "w")  # a file, not a pipe: nothing blocks on a full pipe
    cv = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    fold1 = tmp_path / "runs" / "tiny-fold1" / "version_0"
    deadline = time.monotonic() + 600
    while not (fold1 / "metrics.csv").is_file() and cv.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    cv.send_signal(signal.SIGTERM)
    cv.wait(timeout=120)
    log.close()
    out = (tmp_path / "cv.log").read_text()
    assert cv.returncode == 128 + signal.SIGTERM, out
    assert "musictag cv: stopped by SIGTERM; rerun the same command" in out
    assert not list((tmp_path / "runs" / "tiny-fold1").glob("version_1"))  # fold 1 never tested
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "fold 0 of 3" not in done.stderr and "fold 1 of 3 (tiny-fold1)" in done.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny-fold0").iterdir()) == ["version_0", "version_1"]
    assert list(read_cv_csv(tmp_path / "runs" / "tiny-cv" / "cv.csv")) == ["0", "1", "2", "mean", "std"]
