from __future__ import annotations

import shutil

import pytest

from musictag.testing.wandb_offline import parse_offline_run, read_offline_run


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """A finished offline W&B run: a config record over two 32 KiB blocks, 300 history rows, a summary."""
    import wandb

    root = tmp_path_factory.mktemp("wandb")
    run = wandb.init(
        mode="offline",
        dir=root,
        project="p",
        name="reader",
        config={"text": "x" * 70_000, "nested": {"a": 1}},
        settings=wandb.Settings(console="off"),
    )
    for step in range(300):
        run.log({"train/loss": 1.0 / (step + 1), "step": step})
    run.summary["best"] = 0.5
    run.finish()
    (folder,) = (root / "wandb").glob("offline-run-*")
    return folder


def test_the_reader_gets_every_record_of_a_real_offline_run(offline_run):
    run = read_offline_run(offline_run)
    assert run.name == "reader" and run.exit_code == 0
    assert run.config["text"] == "x" * 70_000 and run.config["nested"] == {"a": 1}
    assert [row["step"] for row in run.history] == list(range(300))
    assert [row["train/loss"] for row in run.history] == pytest.approx([1.0 / (s + 1) for s in range(300)])
    assert run.summary["best"] == 0.5 and run.summary["train/loss"] == pytest.approx(1 / 300)


def test_a_record_not_yet_written_out_is_waited_for_then_named(offline_run, tmp_path):
    (whole,) = offline_run.glob("run-*.wandb")
    data = whole.read_bytes()
    cut = tmp_path / "offline-run-cut"
    cut.mkdir()
    (cut / whole.name).write_bytes(data[: len(data) // 2])  # as W&B leaves it before closing the run
    partial = parse_offline_run(cut / whole.name)
    assert 0 < len(partial.history) < 300 and partial.exit_code is None
    with pytest.raises(TimeoutError, match=rf"{whole.name}: no exit record after 0.2 s"):
        read_offline_run(cut, timeout=0.2)
    (cut / whole.name).write_bytes(data[:7])  # the header alone: nothing written out yet
    assert parse_offline_run(cut / whole.name).history == []
    shutil.copy(whole, cut / whole.name)  # written out: the wait ends
    assert len(read_offline_run(cut, timeout=0.2).history) == 300
