from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from helpers.cli import SLURM_TASK_ENV, musictag_process
from musictag.cli import main
from musictag.stages.registry import BACKENDS
from musictag.testing import cli_args, last_logged
from musictag.testing.wandb_offline import OfflineRun, read_offline_run
from musictag.training.runs import wandb_mode, wandb_run_folders

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["musictag"])
    main(args)


def test_fit_then_test_reproduces_the_checkpoint_scores(tiny_corpus, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    _run(cli_args("fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 2}), monkeypatch)
    version = runs / "tiny" / "version_0"
    assert (version / "checkpoints" / "best.ckpt").is_file()
    assert (version / "checkpoints" / "last.ckpt").is_file()
    assert (version / "config.yaml").is_file()
    fit_log = last_logged(version / "metrics.csv")
    assert {"val/roc_auc", "val/pr_auc", "val/loss", "train/loss_epoch"} <= set(fit_log)

    # `validate` of best.ckpt gives the val/pr_auc the checkpoint was chosen by
    best_score = max(
        float(r["val/pr_auc"]) for r in csv.DictReader(open(version / "metrics.csv")) if r.get("val/pr_auc")
    )
    _run(cli_args("validate", str(tiny_corpus), str(runs), ckpt_path="best"), monkeypatch)
    assert last_logged(runs / "tiny" / "version_1" / "metrics.csv")["val/pr_auc"] == pytest.approx(
        best_score, abs=1e-6
    )

    # `test` twice, by keyword and by path: the same numbers
    _run(cli_args("test", str(tiny_corpus), str(runs), ckpt_path="best"), monkeypatch)
    _run(
        cli_args("test", str(tiny_corpus), str(runs), ckpt_path=str(version / "checkpoints" / "best.ckpt")),
        monkeypatch,
    )
    first = last_logged(runs / "tiny" / "version_2" / "metrics.csv")
    second = last_logged(runs / "tiny" / "version_3" / "metrics.csv")
    for key in ("test/roc_auc", "test/pr_auc", "test/loss"):
        assert 0 <= first[key] and first[key] == pytest.approx(second[key], abs=1e-7)


def test_unknown_back_end_fails_with_one_clear_line(tiny_corpus, tmp_path):
    args = cli_args("fit", str(tiny_corpus), str(tmp_path), **{"model.init_args.backend": "nosuch"})
    result = musictag_process(args, cwd=REPO)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"musictag: error: unknown back end 'nosuch'; registered back ends: {', '.join(BACKENDS.names())}"
    )
    assert {"flatten", "global_max", "gru", "transformer"} <= set(BACKENDS.names())
    assert "Traceback" not in result.stderr


def test_ckpt_path_best_without_a_run_says_what_to_do(tiny_corpus, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(cli_args("test", str(tiny_corpus), str(tmp_path), ckpt_path="best"), monkeypatch)
    assert exit_info.value.code == 2
    assert "no best.ckpt under" in capsys.readouterr().err


def _offline_run(version: Path) -> OfflineRun:
    """The one W&B offline run of a run folder, read once W&B has written all of it."""
    offline_runs = list((version / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1, offline_runs
    return read_offline_run(offline_runs[0])


def _assert_wandb_holds_the_csv_log(history: list[dict], metrics_csv: Path) -> None:
    """Every row of ``metrics.csv`` is a W&B history row with the same values, in the same order."""
    with open(metrics_csv) as f:
        rows = [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]
    assert len(history) == len(rows) > 0
    for logged, row in zip(history, rows, strict=True):
        assert logged["trainer/global_step"] == row.pop("step")
        assert {k: v for k, v in logged.items() if k in row} == pytest.approx(row, rel=1e-6)
        assert set(logged) - set(row) == {"trainer/global_step", "_step", "_runtime", "_timestamp"}


def test_offline_wandb_run_folder_and_csv_log(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a W&B key
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert wandb_mode("auto") == "offline"
    args = cli_args(
        "fit",
        str(tiny_corpus),
        str(tmp_path / "runs"),
        **{"trainer.max_epochs": 1, "trainer.limit_train_batches": 2},
    )
    _run(args, monkeypatch)
    version = tmp_path / "runs" / "tiny" / "version_0"
    assert "val/pr_auc" in last_logged(version / "metrics.csv")
    fitted = _offline_run(version)  # W&B writes it out after the run's finish() has returned
    assert fitted.name == "tiny/version_0"
    _assert_wandb_holds_the_csv_log(fitted.history, version / "metrics.csv")
    assert fitted.exit_code == 0
    # the resolved config and the model's hyperparameters are in the W&B run
    assert fitted.config["data"]["class_path"] == "datamodules.SyntheticDataModule"
    assert fitted.config["data"]["init_args"]["n_clips"] == 32
    assert fitted.config["arch"] == "short_chunk" and fitted.config["n_tags"] == 12
    # the test run logs its per-tag table and curves to its own offline W&B run
    _run(cli_args("test", str(tiny_corpus), str(tmp_path / "runs"), ckpt_path="best"), monkeypatch)
    tested = tmp_path / "runs" / "tiny" / "version_1"
    assert (tested / "test_per_tag.csv").is_file()
    tested_run = _offline_run(tested)
    assert tested_run.summary["test/pr_auc"] == pytest.approx(
        last_logged(tested / "metrics.csv")["test/pr_auc"]
    )
    with open(tested / "test_per_tag.csv") as f:
        n_tags = len(list(csv.DictReader(f)))
    assert tested_run.summary["test/per_tag/_type"] == "table-file"
    assert tested_run.summary["test/per_tag/nrows"] == n_tags == 12


def test_offline_wandb_of_a_requeued_slurm_job_holds_the_whole_run(tiny_corpus, tmp_path, monkeypatch):
    """A SLURM job with W&B offline (synced from the cluster later), stopped mid-fit and requeued: the run
    folder is the Trainer's root, so the requeue checkpoint is there; the stopped job's offline run and
    the requeued job's (the same W&B run) hold every CSV row between them, the config, each its exit."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from musictag.cli.lightning_cli import MusictagCLI
    from musictag.training.runs import finish_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    for name, value in SLURM_TASK_ENV.items():
        monkeypatch.setenv(name, value)
    assert SLURMEnvironment.detect()
    monkeypatch.setattr(sys, "argv", ["musictag"])
    runs = tmp_path / "runs"
    args = cli_args(
        "fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 2, "trainer.limit_train_batches": 2}
    )
    # SLURM's signals before the time limit, after the first batch of epoch 1
    requeue = {"class_path": "musictag.testing.SignalAt", "init_args": {"epoch": 1, "batch": 0}}
    requeue["init_args"]["signals"] = ["SIGUSR1", "SIGTERM"]
    with pytest.raises(SystemExit) as stopped:
        main([*args, f"--trainer.callbacks={json.dumps([requeue])}"])
    version = runs / "tiny" / "version_0"
    assert stopped.value.code == 143 and (version / "hpc_ckpt_1.ckpt").is_file()
    stopped_run = _offline_run(version)
    assert stopped_run.exit_code == 143
    stopped_run_id = stopped_run.path.name[len("run-") : -len(".wandb")]
    _assert_wandb_holds_the_csv_log(stopped_run.history, version / "metrics.csv")
    assert stopped_run.config["data"]["init_args"]["n_clips"] == 32 and stopped_run.config["n_tags"] == 12

    cli = MusictagCLI(args=[*args, "--ckpt_path=last"])  # the requeued job: what `musictag fit` does
    finish_wandb(cli.trainer)
    assert Path(cli.trainer.default_root_dir) == version
    # oldest first; a run resumed within the second it was stopped has a folder named `...-<id>-1`
    offline_runs = wandb_run_folders(version)
    assert len(offline_runs) == 2 and offline_runs[0].name.startswith("offline-run-")
    assert [f.name for run in offline_runs for f in run.glob("run-*.wandb")] == [
        f"run-{stopped_run_id}.wandb"
    ] * 2
    resumed_run = read_offline_run(offline_runs[1])
    assert resumed_run.exit_code == 0
    _assert_wandb_holds_the_csv_log(stopped_run.history + resumed_run.history, version / "metrics.csv")
    assert sum("val/pr_auc" in row for row in stopped_run.history + resumed_run.history) == 2  # per epoch
    assert resumed_run.summary["val/pr_auc"] == pytest.approx(
        last_logged(version / "metrics.csv")["val/pr_auc"]
    )
    assert sorted(p.name for p in runs.iterdir()) == ["tiny"]  # nothing beside the run


def test_a_second_requeue_resumes_the_wandb_run_of_a_folder_that_w_and_b_numbered(tmp_path):
    """W&B names a run's folder ``<mode>-run-<second>-<id>`` and appends ``-1``, ``-2`` when a folder of
    that name exists (a requeued job that resumed the run within the second it was stopped): the id is
    the one in ``run-<id>.wandb``, not the name's last part, and the newest folder is the numbered one."""
    from lightning.pytorch.loggers import WandbLogger

    from musictag.training.runs import RunSettings, default_loggers, wandb_run_folders

    version = tmp_path / "tiny" / "version_0"
    names = [
        "offline-run-20260101_120000-abcd1234",
        "offline-run-20260101_120009-abcd1234",
        "offline-run-20260101_120009-abcd1234-2",
        "offline-run-20260101_120009-abcd1234-10",
        "offline-run-20260101_120009-abcd1234-1",
    ]
    for name in names:
        (version / "wandb" / name).mkdir(parents=True)
        (version / "wandb" / name / "run-abcd1234.wandb").write_bytes(b":W&B")
    (version / "wandb" / "latest-run").symlink_to(version / "wandb" / names[-1])
    assert [f.name for f in wandb_run_folders(version)] == [names[i] for i in (0, 1, 4, 2, 3)]
    loggers = default_loggers(RunSettings(name="tiny", save_dir=str(tmp_path), wandb="offline"), version)
    wandb_logger = next(lg for lg in loggers if isinstance(lg, WandbLogger))  # built lazily: no W&B run
    assert wandb_logger._wandb_init["id"] == "abcd1234" and wandb_logger._wandb_init["resume"] == "allow"


def test_log_model_reaches_the_wandb_logger(tmp_path):
    from lightning.pytorch.loggers import WandbLogger

    from musictag.training.runs import RunSettings, default_loggers

    online = default_loggers(RunSettings(name="x", save_dir=str(tmp_path), wandb="online", log_model="all"))
    assert (
        next(lg for lg in online if isinstance(lg, WandbLogger))._log_model == "all"
    )  # built lazily: no network
    with pytest.warns(UserWarning, match="log_model needs W&B online"):
        offline = default_loggers(
            RunSettings(name="y", save_dir=str(tmp_path), wandb="offline", log_model=True)
        )
    assert next(lg for lg in offline if isinstance(lg, WandbLogger))._log_model is False


def test_wandb_mode_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode("auto") == "disabled"
    assert wandb_mode("offline") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"


def test_every_experiment_config_parses(monkeypatch, capsys):
    for config in sorted((REPO / "experiments").rglob("*.yaml")):
        if {"sweeps", "presets", "published", "marble"} & set(config.parts):
            continue  # W&B sweeps; files that compose with a recipe (tests/test_recipes.py reads them)
        # a model preset composes with a corpus config; give it one
        extra = ["--data=datamodules.SyntheticDataModule"] if "models" in config.parts else []
        monkeypatch.setattr(sys, "argv", ["musictag"])
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", f"--config={config}", *extra, "--print_config"])
        assert exit_info.value.code == 0, config
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["model"]["class_path"].endswith("TaggingModule"), config


def test_print_config_and_python_m(tmp_path):
    """`python -m musictag fit --print_config` prints the resolved config, overrides applied."""
    result = musictag_process(
        ["fit", f"--config={REPO / 'experiments' / 'demo.yaml'}", "--trainer.max_epochs=7", "--print_config"],
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["trainer"]["max_epochs"] == 7  # the override
    assert printed["model"]["init_args"]["frontend"]["channels"] == [32, 32, 64, 64, 64, 64, 128]  # the file
    assert printed["data"]["class_path"] == "datamodules.SyntheticDataModule"
    assert printed["checkpoint"]["monitor"] == "val/pr_auc"  # musictag's defaults


def test_test_run_writes_predictions_and_per_tag_metrics(tiny_corpus, tmp_path, monkeypatch, capsys):
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    runs = tmp_path / "runs"
    _run(cli_args("fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 1}), monkeypatch)
    capsys.readouterr()
    _run(cli_args("test", str(tiny_corpus), str(runs), ckpt_path="best"), monkeypatch)
    folder = runs / "tiny" / "version_1"
    # where the outputs went, and why not into the fit's folder
    said = capsys.readouterr().err
    assert (
        f"musictag: test run folder {folder} (metrics.csv, config.yaml, test_predictions.npz, test_per_tag.csv, "
        "test_intervals.csv); "
        f"the checkpoint's fit run is {runs / 'tiny' / 'version_0'}: every command logs into a new version folder"
    ) in said
    saved = np.load(folder / "test_predictions.npz")
    assert str(saved["checkpoint"]) == str(runs / "tiny" / "version_0" / "checkpoints" / "best.ckpt")
    assert saved["scores"].shape == saved["labels"].shape == (8, 12)
    assert len(set(saved["song_ids"])) == 8 and all(s.startswith("clip") for s in saved["song_ids"])
    per_tag = list(csv.DictReader(open(folder / "test_per_tag.csv")))
    assert [row["tag"] for row in per_tag] == list(saved["tag_names"])
    valid = [j for j, row in enumerate(per_tag) if row["roc_auc"]]
    labels, scores = saved["labels"], saved["scores"]
    for j in valid:  # the saved predictions recompute the logged per-tag and macro metrics
        assert float(per_tag[j]["roc_auc"]) == pytest.approx(
            roc_auc_score(labels[:, j], scores[:, j]), abs=1e-5
        )
        assert float(per_tag[j]["pr_auc"]) == pytest.approx(
            average_precision_score(labels[:, j], scores[:, j]), abs=1e-5
        )
    macro = np.mean([roc_auc_score(labels[:, j], scores[:, j]) for j in valid])
    assert last_logged(folder / "metrics.csv")["test/roc_auc"] == pytest.approx(macro, abs=1e-5)

    _run(cli_args("predict", str(tiny_corpus), str(runs), ckpt_path="best"), monkeypatch)
    predicted = runs / "tiny" / "version_2"
    assert (
        f"musictag: predict run folder {predicted} (config.yaml, predictions_test.npz, predictions_test.csv)"
    ) in capsys.readouterr().err
    assert not (predicted / "metrics.csv").exists()  # predict logs no metric: the line names none
    np.testing.assert_allclose(np.load(predicted / "predictions_test.npz")["scores"], scores, atol=1e-6)


def test_default_root_dir_holds_the_run(tiny_corpus, tmp_path, monkeypatch):
    """`--trainer.default_root_dir D` puts the run (logs, checkpoints) under D, not under ./runs."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "elsewhere"
    args = [
        a
        for a in cli_args("fit", str(tiny_corpus), "unused", **{"trainer.max_epochs": 1})
        if not a.startswith("--run.save_dir")
    ]
    _run([*args, f"--trainer.default_root_dir={root}", "--trainer.limit_train_batches=2"], monkeypatch)
    version = root / "tiny" / "version_0"
    assert (version / "checkpoints" / "last.ckpt").is_file() and (version / "metrics.csv").is_file()
    assert not (tmp_path / "runs").exists()
    # and `--ckpt_path best` finds the run there
    test_args = [
        a for a in cli_args("test", str(tiny_corpus), "unused") if not a.startswith("--run.save_dir")
    ]
    _run([*test_args, f"--trainer.default_root_dir={root}", "--ckpt_path=best"], monkeypatch)
    assert (root / "tiny" / "version_1" / "test_predictions.npz").is_file()


def test_distributed_presets_compose_with_a_recipe(monkeypatch, capsys):
    for preset in ("ddp", "slurm"):
        monkeypatch.setattr(sys, "argv", ["musictag"])
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "fit",
                    f"--config={REPO / 'experiments/mtat/short_chunk.yaml'}",
                    f"--config={REPO / 'experiments/presets' / (preset + '.yaml')}",
                    "--print_config",
                ]
            )
        assert exit_info.value.code == 0
        trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
        assert trainer["strategy"] == "ddp" and trainer["precision"] == "bf16-mixed"
        assert trainer["max_epochs"] == 200 and len(trainer["callbacks"]) == 1  # the recipe's, kept
        assert trainer["use_distributed_sampler"] is False  # the DataModules shard themselves
