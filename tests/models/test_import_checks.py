"""`musictag import-weights` checks what its inputs say they are, and never writes over them.

Issue 27's second wave: a musicnn folder of another model imported under the asked model's tags, a
corrupted ``.data`` imported as other weights (the CRC-32C never checked), ``--out`` overwriting the
published weights, and tracebacks where one line belongs. Every checkpoint is copied into ``tmp_path``
before it is changed; the originals are only read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers.cli import run_musictag
from helpers.reference import musicnn_wheel
from musictag.convert.tf_checkpoint import TFCheckpoint


def wheel() -> Path:
    return Path(musicnn_wheel())


def run(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    return run_musictag(["import-weights", *argv], capsys)


def one_error(err: str) -> str:
    """The one error line of a refused import (no traceback, nothing else)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("musictag import-weights: error: "), err
    return lines[0]


def musicnn(model: str, weights: Path, out: Path, *extra: str) -> list[str]:
    return ["--source", "musicnn", "--model", model, "--weights", str(weights), "--out", str(out), *extra]


def sota(weights: Path | str, out: Path | str, *extra: str, arch: str = "fcn") -> list[str]:
    return ["--arch", arch, "--dataset", "mtat", "--weights", str(weights), "--out", str(out), *extra]


def copy_model(model: str, into: Path) -> Path:
    folder = into / model
    shutil.copytree(wheel() / model, folder)
    return folder


@pytest.fixture
def pth(reference, tmp_path) -> Path:
    """A copy of the published MTAT FCN weights, free to be (attempted to be) overwritten."""
    path = tmp_path / "w.pth"
    shutil.copy(reference("sota/models/mtat/fcn/best_model.pth"), path)
    return path


# --- 2: the folder says which model it is ---------------------------------------------------------
@pytest.mark.parametrize(
    ("asked", "given"),
    [
        ("MTT_musicnn", "MSD_musicnn"),
        ("MSD_musicnn", "MTT_musicnn"),
        ("MTT_vgg", "MSD_vgg"),
        ("MSD_vgg", "MTT_vgg"),
        ("MTT_vgg", "MTT_musicnn"),
    ],
)
def test_another_models_folder_is_refused_naming_what_it_holds(asked, given, tmp_path, monkeypatch, capsys):
    code, _, err = run(musicnn(asked, wheel() / given, tmp_path / "x.ckpt"), monkeypatch, capsys)
    line = one_error(err)
    assert code == 2
    assert f"holds {given} (its tensors and config.json), not {asked}: give --model {given}" in line
    assert not list(tmp_path.iterdir())


def test_a_folder_without_its_config_is_refused(tmp_path, monkeypatch, capsys):
    """MTT and MSD weights have the same tensors: without config.json nothing says which they are."""
    folder = copy_model("MSD_musicnn", tmp_path)
    (folder / "config.json").unlink()
    code, _, err = run(musicnn("MTT_musicnn", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    assert code == 2 and "config.json: no such file" in one_error(err) and "MTT or MSD" in err
    (folder / "config.json").write_text('{"audio_rep": {"identifier": "gtzan"}, "num_classes_dataset": 10}')
    code, _, err = run(musicnn("MTT_musicnn", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    assert code == 2 and "corpus 'gtzan' with 10 tags" in one_error(err)
    (folder / "config.json").write_text("{not json")
    code, _, err = run(musicnn("MTT_musicnn", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    assert code == 2 and "is not a musicnn training config" in one_error(err)
    assert not (tmp_path / "x.ckpt").exists()


def test_every_wheel_folder_is_the_model_it_is_named_after():
    from musictag.convert.musicnn import MUSICNN_MODELS, identify_musicnn

    assert {model: identify_musicnn(TFCheckpoint(wheel() / model)) for model in MUSICNN_MODELS} == {
        model: model for model in MUSICNN_MODELS
    }


# --- 3: every tensor's checksum -------------------------------------------------------------------
def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("tensor", ["dense_1/kernel", "dense_1/kernel/Adam_1"])
def test_a_changed_byte_of_the_data_file_is_refused_naming_the_tensor(tensor, tmp_path, monkeypatch, capsys):
    """Size kept, one bit changed: before, it imported and tagged differently. Optimiser state is
    checked too: any changed byte means the copy is damaged."""
    folder = copy_model("MTT_musicnn", tmp_path)
    entry = TFCheckpoint(folder).entries[tensor]
    data = folder / ".data-00000-of-00001"
    size = data.stat().st_size
    flip_byte(data, entry.offset + entry.size // 2)
    assert data.stat().st_size == size
    code, _, err = run(musicnn("MTT_musicnn", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    line = one_error(err)
    assert code == 2
    assert f"tensor {tensor} in {data} does not match its checksum in {folder / '.index'}" in line
    assert not (tmp_path / "x.ckpt").exists()


def test_the_index_of_another_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    """MSD_musicnn's index with MTT_musicnn's data: same layout, other bytes; the checksums tell."""
    folder = copy_model("MTT_musicnn", tmp_path)
    shutil.copy(wheel() / "MSD_musicnn" / ".data-00000-of-00001", folder / ".data-00000-of-00001")
    code, _, err = run(musicnn("MTT_musicnn", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    assert code == 2 and "does not match its checksum" in one_error(err)


def test_a_changed_byte_of_the_index_is_refused(tmp_path, monkeypatch, capsys):
    folder = copy_model("MTT_vgg", tmp_path)
    flip_byte(folder / ".index", 100)
    code, _, err = run(musicnn("MTT_vgg", folder, tmp_path / "x.ckpt"), monkeypatch, capsys)
    line = one_error(err)
    assert (
        code == 2 and "is not a TensorFlow checkpoint index" in line and "does not match its checksum" in line
    )


# --- 9: the input is never the output -------------------------------------------------------------
def spellings(pth: Path) -> dict[str, Path]:
    link, hard = pth.with_name("link.pth"), pth.with_name("hard.pth")
    link.symlink_to(pth)
    os.link(pth, hard)
    return {"same": pth, "dot": pth.parent / "." / pth.name, "symlink": link, "hard link": hard}


@pytest.mark.parametrize("force", [False, True])
def test_the_weights_are_never_the_output(force, pth, tmp_path, monkeypatch, capsys):
    before = pth.read_bytes()
    for name, out in spellings(pth).items():
        code, _, err = run(sota(pth, out, *(["--force"] if force else [])), monkeypatch, capsys)
        assert code == 2, name
        assert f"is the input {pth}: it would be overwritten" in one_error(err), name
    monkeypatch.chdir(tmp_path)
    code, _, err = run(sota("w.pth", "./w.pth", "--force"), monkeypatch, capsys)
    assert code == 2 and "is the input" in one_error(err)
    assert pth.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.pth", "link.pth", "w.pth"]


@pytest.mark.parametrize("name", [".index", ".data-00000-of-00001", "config.json", "checkpoint", "new.index"])
def test_no_file_of_the_musicnn_folder_is_written(name, tmp_path, monkeypatch, capsys):
    folder = copy_model("MTT_vgg", tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run(musicnn("MTT_vgg", folder, folder / name, "--force"), monkeypatch, capsys)
    line = one_error(err)
    assert code == 2 and ("is the input" in line or "change what it holds" in line)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# --- tracebacks where one line belongs --------------------------------------------------------------
def test_out_an_existing_folder_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run(musicnn("MTT_vgg", wheel() / "MTT_vgg", tmp_path), monkeypatch, capsys)
    assert code == 2 and f"--out {tmp_path} is a folder" in one_error(err)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("source", ["sota", "musicnn"])
def test_out_unwritable_is_one_line(source, pth, tmp_path, monkeypatch, capsys):
    args = (
        (lambda out: sota(pth, out))
        if source == "sota"
        else (lambda out: musicnn("MTT_vgg", wheel() / "MTT_vgg", out))
    )
    code, _, err = run(args(pth / "x.ckpt"), monkeypatch, capsys)  # a file where a folder belongs
    assert code == 2 and "is a file, not a folder" in one_error(err)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(  # root may write anywhere: the folder is made unwritable for the guard
        "musictag.guards.os.access", lambda p, mode: False if Path(p) == locked else real_access(p, mode)
    )
    code, _, err = run(args(locked / "x.ckpt"), monkeypatch, capsys)
    assert code == 2 and f"cannot write in {locked} (permission denied)" in one_error(err)
    assert not list(locked.iterdir())


@pytest.mark.parametrize("source", ["sota", "musicnn"])
def test_a_failed_write_is_one_line_and_leaves_nothing(source, pth, tmp_path, monkeypatch, capsys):
    def full_disk(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "out" / "x.ckpt"
    args = sota(pth, out) if source == "sota" else musicnn("MTT_vgg", wheel() / "MTT_vgg", out)
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2
    assert one_error(err).endswith(
        f"--out {out}: could not write the checkpoint (No space left on device); nothing was written"
    )
    assert not list(out.parent.iterdir())


def test_a_folder_as_weights_says_what_to_give(tmp_path, monkeypatch, capsys):
    """It said "... is a folder, not a weights file file"."""
    code, _, err = run(sota(tmp_path, tmp_path / "x.ckpt"), monkeypatch, capsys)
    line = one_error(err)
    assert (
        code == 2
        and f"--weights {tmp_path}: is a folder, not a file; give the published best_model.pth" in line
        and "file file" not in line
    )


def test_an_existing_out_is_replaced_only_with_force(pth, tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.ckpt"
    out.write_bytes(b"the user's file")
    code, _, err = run(sota(pth, out), monkeypatch, capsys)
    assert code == 2 and "exists; pass --force to replace it" in one_error(err)
    assert out.read_bytes() == b"the user's file"
    code, stdout, err = run(sota(pth, out, "--force"), monkeypatch, capsys)
    assert (code, err) == (0, "") and stdout.strip() == f"musictag import-weights: wrote {out}"
    assert torch.load(out, weights_only=True)["musictag_source"]["arch"] == "fcn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth", "x.ckpt"]  # no temporary left
