"""The guards of bad input: file types by stat alone, output places, numbers, and the command net."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musictag.guards import (
    InputError,
    at_least,
    check_input_file,
    check_output_file,
    check_output_folder,
    run_command,
)


def test_input_file_names_the_kind_of_thing_and_opens_nothing(tmp_path):
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    assert check_input_file(tmp_path / "song.wav") == tmp_path / "song.wav"
    os.mkfifo(tmp_path / "pipe")  # opening it would block for ever: the check must not
    with pytest.raises(InputError, match=r"audio file .*pipe: is a named pipe, not a file"):
        check_input_file(tmp_path / "pipe", "audio file")
    with pytest.raises(InputError, match=r"--weights .*: is a folder, not a file"):
        check_input_file(tmp_path, "--weights")
    with pytest.raises(InputError, match=r"nosuch.pth: no such file"):
        check_input_file(tmp_path / "nosuch.pth")
    with pytest.raises(InputError, match="no such file"):
        check_input_file(tmp_path / "song.wav" / "below")


def test_output_file_is_never_an_input_under_another_spelling(tmp_path, monkeypatch):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    for spelling in ("w.pth", "./w.pth", str(weights), "sub/../w.pth"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(InputError, match="is the input"):
            check_output_file(spelling, inputs=[weights], overwrite=True)
    os.symlink(weights, tmp_path / "link.pth")
    with pytest.raises(InputError, match="is the input"):
        check_output_file("link.pth", inputs=[weights], overwrite=True)
    os.link(weights, tmp_path / "hard.pth")
    with pytest.raises(InputError, match="is the input"):
        check_output_file("hard.pth", inputs=[weights], overwrite=True)
    assert weights.read_bytes() == b"weights"


def test_output_file_refuses_folders_existing_files_and_unwritable_places(tmp_path, monkeypatch):
    (tmp_path / "old.ckpt").write_bytes(b"x")
    with pytest.raises(InputError, match=r"old.ckpt exists; pass --force"):
        check_output_file(tmp_path / "old.ckpt", hint="pass --force to replace it")
    assert check_output_file(tmp_path / "old.ckpt", overwrite=True) == tmp_path / "old.ckpt"
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_file(tmp_path / "old.ckpt" / "new.ckpt")
    assert check_output_file(tmp_path / "a" / "b" / "new.ckpt") == tmp_path / "a" / "b" / "new.ckpt"
    locked = tmp_path / "locked"
    locked.mkdir()
    # root may write anywhere: the folder is made unwritable by what os.access answers for it
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(InputError, match=r"cannot write in .*locked \(permission denied\)"):
        check_output_file(locked / "new.ckpt")


def test_output_folder_accepts_new_empty_or_its_own_and_refuses_the_users(tmp_path):
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty") == tmp_path / "empty"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("my own")
    with pytest.raises(
        InputError, match=r"mine is not empty and was not written by this command \(manifest.csv\)"
    ):
        check_output_folder(mine)
    assert check_output_folder(mine, ours=lambda folder: (folder / "manifest.csv").is_file()) == mine
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(InputError, match="holds the input"):
        check_output_folder(mine, inputs=[mine / "manifest.csv"], ours=lambda folder: True)


@pytest.mark.parametrize("value", [0, -1, float("nan")])
def test_at_least_refuses_zero_negative_and_nan(value):
    with pytest.raises(InputError, match=f"--batch-size must be at least 1, got {value}"):
        at_least("--batch-size", value)
    at_least("--batch-size", 1)
    at_least("--batch-size", None)  # not given: the default applies


def test_run_command_turns_bad_input_into_one_line(capsys):
    def missing() -> int:
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/x.wav")

    def config() -> int:
        raise InputError("--top-k must be at least 1, got -2")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command("musictag tag", missing) == 2
    assert capsys.readouterr().err == "musictag tag: error: /nowhere/x.wav: no such file or folder\n"
    assert run_command("musictag tag", config) == 2
    assert capsys.readouterr().err == "musictag tag: error: --top-k must be at least 1, got -2\n"
    assert run_command("musictag embed", interrupted) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert run_command("musictag tag", lambda: 0) == 0
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_command("musictag tag", lambda: 1 // 0)


def test_pick_device_refuses_what_this_machine_cannot_run_on(monkeypatch):
    import torch

    from musictag.guards import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == pick_device() == torch.device("cpu")
    with pytest.raises(
        InputError, match=r"--device cuda: no CUDA GPU is available here; use --device auto or cpu"
    ):
        pick_device("cuda")
    with pytest.raises(InputError, match=r"^device mps: MPS is not available here; use device auto or cpu$"):
        pick_device("mps", "device")
    with pytest.raises(InputError, match=r"unknown device 'gpu'; use auto, cpu, cuda, cuda:N or mps"):
        pick_device("gpu")
    with pytest.raises(InputError, match=r"device meta: meta devices are not supported"):
        pick_device("meta", "device")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("mps")  # no CUDA GPU: Apple's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("auto") == torch.device("cuda")  # a CUDA GPU first
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(
        InputError, match=r"--device cuda:2: this machine has 2 CUDA GPU\(s\), cuda:0 … cuda:1"
    ):
        pick_device("cuda:2")


def test_every_command_and_the_api_resolve_devices_with_one_function():
    """tag, embed, bench and ``musictag.load`` use ``guards.pick_device`` itself, not a copy of it."""
    import musictag.cli.bench
    import musictag.cli.embed
    import musictag.cli.tag
    import musictag.inference.api
    import musictag.inference.tagging
    from musictag.guards import pick_device

    for module in (musictag.cli.bench, musictag.cli.embed, musictag.cli.tag, musictag.inference.api):
        assert module.pick_device is pick_device, module.__name__
    assert musictag.inference.tagging.pick_device is pick_device  # the name it had before


def test_a_test_blocked_on_its_named_pipe_fails_instead_of_hanging(tmp_path, monkeypatch):
    """The suite's net under every named-pipe test (conftest.named_pipes_cannot_hang)."""
    import conftest

    monkeypatch.setattr(conftest, "PIPE_DEADLINE_S", 1)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(conftest.NamedPipeHang, match="ran past 1 s"):
        (tmp_path / "pipe").read_bytes()  # blocks until a writer comes: none will
