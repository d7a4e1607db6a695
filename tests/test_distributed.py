"""Under DDP every song is scored exactly once: 2 processes give the 1-process numbers and files."""

from __future__ import annotations

import sys

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
    for key in ("test/roc_auc", "test/pr_auc", "test/loss"):
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
