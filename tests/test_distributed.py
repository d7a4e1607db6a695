"""Under DDP every song is scored exactly once: 2 processes give the 1-process numbers and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musictag.cli import main
from musictag.testing import cli_args, last_logged

pytestmark = pytest.mark.slow  # starts process groups: `make test-slow`


def test_two_processes_give_the_one_process_metrics_and_one_file(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(sys, "argv", ["musictag"])
    corpus = {
        "data.init_args.root": str(tmp_path / "corpus"),
        "data.init_args.n_clips": 30,
        "data.init_args.test_fraction": 0.3,
    }
    args = cli_args("fit", str(tmp_path / "unused"), str(tmp_path / "runs"))
    args = [
        a
        for a in args
        if not a.startswith(
            ("--data.init_args.root", "--data.init_args.n_clips", "--data.init_args.test_fraction")
        )
    ]
    args += [f"--{k}={v}" for k, v in corpus.items()]
    ddp = ["--trainer.devices=2", "--trainer.strategy=ddp_spawn"]
    main([*args, "--trainer.max_epochs=1", *ddp])  # version_0: fit on 2 processes
    test_args = [a if a != "fit" else "test" for a in args] + ["--ckpt_path=best"]
    main(test_args)  # version_1: 9 test songs, not divisible by 2
    main([*test_args, *ddp])  # version_2
    predict_args = [a if a != "fit" else "predict" for a in args] + ["--ckpt_path=best"]
    main(predict_args)  # version_3
    main([*predict_args, *ddp])  # version_4
    runs = tmp_path / "runs" / "tiny"
    # Lightning's advice to sync metrics that the callbacks have already gathered is not printed
    assert "sync_dist=True" not in capfd.readouterr().err
    assert "val/pr_auc" in last_logged(runs / "version_0" / "metrics.csv")

    one, two = (
        last_logged(runs / "version_1" / "metrics.csv"),
        last_logged(runs / "version_2" / "metrics.csv"),
    )
    config = (runs / "version_2" / "config.yaml").read_text()
    assert "strategy: ddp_spawn" in config and "devices: '2'" in config
    # the bootstrap intervals and the thresholded F1 too: every process holds every song
    for key in ("test/roc_auc", "test/pr_auc", "test/loss", "test/roc_auc_ci_low", "test/pr_auc_ci_high"):
        assert two[key] == pytest.approx(one[key], abs=1e-6)
    for key in ("test/f1_macro", "test/f1_micro", "test/precision_micro"):
        assert two[key] == pytest.approx(one[key], abs=1e-6)
    saved_one = np.load(runs / "version_1" / "test_predictions.npz")
    saved_two = np.load(runs / "version_2" / "test_predictions.npz")
    assert len(saved_two["song_ids"]) == 9 and list(saved_two["song_ids"]) == list(saved_one["song_ids"])
    np.testing.assert_allclose(saved_two["scores"], saved_one["scores"], atol=1e-6)

    # predict: one merged file of the 9 songs, equal to the 1-process file
    assert sorted(p.name for p in (runs / "version_4").glob("predictions_*")) == [
        "predictions_test.csv",
        "predictions_test.npz",
    ]
    predicted_one = np.load(runs / "version_3" / "predictions_test.npz")
    predicted_two = np.load(runs / "version_4" / "predictions_test.npz")
    assert list(predicted_two["song_ids"]) == list(predicted_one["song_ids"]) == list(saved_one["song_ids"])
    np.testing.assert_allclose(predicted_two["scores"], predicted_one["scores"], atol=1e-6)
    assert len((runs / "version_4" / "predictions_test.csv").read_text().splitlines()) == 10


REPO = Path(__file__).resolve().parents[1]

# Rank 1 starts its command only once rank 0 has made its run folder: the order in which, without
# sharing the folder, rank 1 would take the next version_N for its own.
LATE_RANK = """
import os, sys, time
from pathlib import Path
if os.environ["RANK"] != "0":
    deadline = time.monotonic() + 300
    while not Path(sys.argv[1]).is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
from musictag.cli import main
main(sys.argv[2:])
"""


def test_torchrun_ranks_work_in_rank_0s_run_folder(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    for earlier in ("version_0", "version_1"):
        (runs / "tiny" / earlier).mkdir(parents=True)
    (tmp_path / "late_rank.py").write_text(LATE_RANK)
    record = {"class_path": "musictag.testing.RecordRunFolder", "init_args": {"folder": str(tmp_path)}}
    args = cli_args("fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 1})
    args += ["--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"]
    args += ["--trainer.devices=2", "--trainer.strategy=ddp", f"--trainer.callbacks={json.dumps([record])}"]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + [str(tmp_path / "late_rank.py"), str(runs / "tiny" / "version_2"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        # W&B offline: rank 0 makes its run folder while it builds its loggers, before the group exists
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "terminate called" not in result.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    assert ranks[0]["default_root_dir"] == str(runs / "tiny" / "version_2")
    assert ranks[0]["log_dirs"][0] == str(runs / "tiny" / "version_2")
    assert sorted(p.name for p in (runs / "tiny").iterdir()) == ["version_0", "version_1", "version_2"]


def test_the_two_process_sequence_ends_cleanly_three_times(tmp_path):
    """fit → test → test → predict (``ddp_spawn``) three times: each time every rank exits 0 and no C++
    thread is left running ("terminate called": a gloo group torn down while Python finalizes)."""
    for repetition in range(3):
        work = tmp_path / str(repetition)
        result = subprocess.run(
            [sys.executable, str(REPO / "tools" / "ddp_sequence.py"), str(work), "spawn"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "WANDB_MODE": "disabled"},
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "terminate called" not in result.stderr
        assert (work / "runs" / "tiny" / "version_3" / "predictions_test.npz").is_file()
