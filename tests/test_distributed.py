"""Evaluation under DDP scores every song exactly once: 2 processes give the 1-process numbers."""

from __future__ import annotations

import sys

import pytest

from musictag.cli import main
from musictag.testing import cli_args, last_logged


def test_two_processes_give_the_one_process_metrics(tmp_path, monkeypatch):
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
    args += [f"--{k}={v}" for k, v in corpus.items()] + ["--trainer.max_epochs=1"]
    main(args)  # 9 test songs: not divisible by 2
    test_args = [a if a != "fit" else "test" for a in args if a != "--trainer.max_epochs=1"] + [
        "--ckpt_path=best"
    ]
    main(test_args)
    main([*test_args, "--trainer.devices=2", "--trainer.strategy=ddp_spawn"])
    one = last_logged(tmp_path / "runs" / "tiny" / "version_1" / "metrics.csv")
    two = last_logged(tmp_path / "runs" / "tiny" / "version_2" / "metrics.csv")
    config = (tmp_path / "runs" / "tiny" / "version_2" / "config.yaml").read_text()
    assert "strategy: ddp_spawn" in config and "devices: '2'" in config
    for key in ("test/roc_auc", "test/pr_auc", "test/loss"):
        assert two[key] == pytest.approx(one[key], abs=1e-6)
    import numpy as np

    saved_one = np.load(tmp_path / "runs" / "tiny" / "version_1" / "test_predictions.npz")
    saved_two = np.load(tmp_path / "runs" / "tiny" / "version_2" / "test_predictions.npz")
    assert len(saved_two["song_ids"]) == 9 and list(saved_two["song_ids"]) == list(saved_one["song_ids"])
    np.testing.assert_allclose(saved_two["scores"], saved_one["scores"], atol=1e-6)
