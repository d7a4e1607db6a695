"""fit / validate / test / predict under bad paths, bad numbers and a missing device: one line, exit 2.

The commands run in this process, so a Python traceback would show here as an exception other than
``SystemExit(2)``; each case also asserts the one ``musictag: error:`` line that says what to change.
"""

from __future__ import annotations

import pytest

from helpers.cli import run_musictag
from musictag.testing import cli_args


def run(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    code, _, err = run_musictag(argv, capsys)
    return code, err


def fit_args(tmp_path, *extra: str) -> list[str]:
    return [
        *cli_args("fit", str(tmp_path / "corpus"), str(tmp_path / "runs")),
        "--trainer.fast_dev_run=1",
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        # a path that is a file where a folder belongs, or lies under a file
        (["--data.init_args.root={file}"], "{file}: exists and is not a folder"),
        (["--run.save_dir={file}/runs"], "--run.save_dir {file}/runs: {file} is a file, not a folder"),
        # numbers below their minimum
        (["--data.init_args.batch_size=0"], "batch_size"),
        (["--data.init_args.n_chunks=-1"], "n_chunks"),
        (["--data.init_args.sample_rate=0"], "sample_rate must be at least 1, got 0"),
        (
            ["--model.init_args.optimizer.init_args.lr=-1"],
            "model.init_args.optimizer: Invalid learning rate: -1.0",
        ),
        (["--trainer.max_epochs=-5"], "`max_epochs` must be a non-negative integer or -1"),
        # a device this machine lacks
        (
            ["--trainer.accelerator=cuda"],
            "(this machine has no such device: use --trainer.accelerator=auto or cpu)",
        ),
        (["--trainer.devices=0"], "(this machine has no such device"),
    ],
    ids=[
        "root-is-a-file",
        "save-dir-under-a-file",
        "batch-0",
        "n-chunks--1",
        "sample-rate-0",
        "lr--1",
        "epochs--5",
        "cuda",
        "devices-0",
    ],
)
def test_fit_with_a_bad_path_number_or_device_is_one_line(extra, expected, tmp_path, monkeypatch, capsys):
    import torch

    # "a device this machine lacks" on a GPU machine too: Lightning asks these two
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    file = tmp_path / "a-file"
    file.write_text("mine")
    code, err = run(fit_args(tmp_path, *(e.format(file=file) for e in extra)), monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if line.startswith("musictag: error:")]
    assert len(error_lines) == 1 and expected.format(file=file) in error_lines[0], err
    assert file.read_text() == "mine"


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluation_with_a_checkpoint_that_is_not_one_is_one_line(subcommand, tmp_path, monkeypatch, capsys):
    base = cli_args(subcommand, str(tmp_path / "corpus"), str(tmp_path / "runs"))
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    cases = {
        str(tmp_path / "nosuch.ckpt"): "no checkpoint at",
        str(tmp_path): "is a folder, not a checkpoint file",
        str(tmp_path / "notes.ckpt"): "notes.ckpt",
        "best": "no best.ckpt under",
    }
    for ckpt, expected in cases.items():
        code, err = run([*base, f"--ckpt_path={ckpt}"], monkeypatch, capsys)
        assert code == 2 and "Traceback" not in err, err
        assert err.startswith("musictag: error:") and expected in err, err
    assert (tmp_path / "notes.ckpt").read_text() == "not a checkpoint"


def test_a_missing_or_foldered_config_is_one_line(tmp_path, monkeypatch, capsys):
    for config, expected in (
        (tmp_path / "nosuch.yaml", "File does not exist"),
        (tmp_path, "Path is not a file"),
    ):
        code, err = run(["fit", f"--config={config}"], monkeypatch, capsys)
        assert code == 2 and "Traceback" not in err and expected in err, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "cuda"], "--device cuda: no CUDA GPU is available here"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--data-only", "--data-repeats", "0"], "--data-repeats must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size, --steps and --repeats must be at least 1"),
        (["--scale", "-1", "--epoch"], "--scale must be in (0, 1], got -1.0"),
        (["--save", "{file}/x.json"], "--save {file}/x.json: {file} is a file, not a folder"),
        (["--report", "{file}.nosuch"], "{file}.nosuch: no such file"),
        (["--arch", "nosuch"], "unknown architecture(s) nosuch"),
    ],
    ids=[
        "cuda",
        "threads-0",
        "data-repeats-0",
        "batch-0",
        "scale--1",
        "save-under-a-file",
        "report-missing",
        "arch",
    ],
)
def test_bench_with_a_bad_path_number_or_device_is_one_line(argv, expected, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a GPU machine
    file = tmp_path / "a-file"
    file.write_text("mine")
    code, err = run(["bench", *(a.format(file=file) for a in argv)], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("musictag bench: error:") and expected.format(file=file) in err, (
        err
    )
    assert file.read_text() == "mine"
