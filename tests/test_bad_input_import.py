"""`musictag import-weights` under bad input: one line, exit 2, nothing of the user's changed.

Both sources get the inputs nobody listed: a missing path, a folder for a file and a file for a
folder, empty and truncated files, a ``.pth`` that is no state dict or another architecture's or a
Lightning checkpoint, a named pipe (run in a child process with a timeout: a regression would hang), and
Ctrl-C midway (a real SIGINT to a child process). Every input file is checksummed before and after each
refused and each successful import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers.cli import run_musictag
from helpers.reference import musicnn_wheel

REPO = Path(__file__).resolve().parents[1]


def wheel() -> Path:
    return Path(musicnn_wheel())


def run(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    return run_musictag(["import-weights", *argv], capsys)


def sota(weights: Path, out: Path, arch: str = "fcn") -> list[str]:
    return ["--arch", arch, "--dataset", "mtat", "--weights", str(weights), "--out", str(out)]


def musicnn(weights: Path, out: Path, model: str = "MTT_vgg") -> list[str]:
    return ["--source", "musicnn", "--model", model, "--weights", str(weights), "--out", str(out)]


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (a file, or a folder's files), by relative path."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def inputs(reference, tmp_path) -> dict[str, Path]:
    """Copies of a published .pth and of a musicnn folder, and a folder for the outputs."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    pth = tmp_path / "in" / "w.pth"
    shutil.copy(reference("sota/models/mtat/fcn/best_model.pth"), pth)
    folder = tmp_path / "in" / "MTT_vgg"
    shutil.copytree(wheel() / "MTT_vgg", folder)
    return {
        "pth": pth,
        "folder": folder,
        "out": tmp_path / "out",
        "crnn": reference("sota/models/mtat/crnn/best_model.pth"),
    }


def refused(argv: list[str], monkeypatch, capsys, *expected: str) -> str:
    code, stdout, err = run(argv, monkeypatch, capsys)
    assert code == 2, (argv, err)
    assert "Traceback" not in err and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("musictag import-weights: error: "), err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# --- sota .pth ------------------------------------------------------------------------------------
def test_bad_pth_files_are_refused(inputs, monkeypatch, capsys):
    where, out = inputs["out"], inputs["out"] / "x.ckpt"
    refused(sota(where / "missing.pth", out), monkeypatch, capsys, "missing.pth: no such file")
    refused(sota(inputs["folder"], out), monkeypatch, capsys, "is a folder, not a file")
    (where / "empty.pth").write_bytes(b"")
    refused(sota(where / "empty.pth", out), monkeypatch, capsys, "is empty (0 bytes)")
    (where / "cut.pth").write_bytes(inputs["pth"].read_bytes()[:100_000])
    refused(sota(where / "cut.pth", out), monkeypatch, capsys, "is not a readable PyTorch weights")
    torch.save([1, 2, 3], where / "list.pth")
    refused(sota(where / "list.pth", out), monkeypatch, capsys, "does not hold a state_dict of tensors")
    torch.save({"epoch": 3, "note": "x"}, where / "dict.pth")
    refused(sota(where / "dict.pth", out), monkeypatch, capsys, "does not hold a state_dict of tensors")
    torch.save({"loss": torch.nn.MSELoss()}, where / "object.pth")
    refused(sota(where / "object.pth", out), monkeypatch, capsys, "holds Python objects besides tensors")
    refused(sota(inputs["crnn"], out), monkeypatch, capsys, "tensors but the network has")  # crnn's as fcn
    assert sorted(p.name for p in where.iterdir()) == [
        "cut.pth",
        "dict.pth",
        "empty.pth",
        "list.pth",
        "object.pth",
    ]


def test_pth_contents_that_would_import_differently_are_refused(inputs, monkeypatch, capsys):
    """Same tensor count and shapes, so the positional mapping alone would have taken them."""
    where, out = inputs["out"], inputs["out"] / "x.ckpt"
    state = torch.load(inputs["pth"], map_location="cpu", weights_only=True)
    keys = list(state)
    weight = next(
        k for k in keys if k.endswith("bn.weight") or (k.endswith(".weight") and state[k].ndim == 1)
    )
    bias = weight.removesuffix("weight") + "bias"
    i, j = keys.index(weight), keys.index(bias)
    keys[i], keys[j] = keys[j], keys[i]  # a batch norm's weight and bias stored in the other order
    torch.save({k: state[k] for k in keys}, where / "swapped.pth")
    refused(
        sota(where / "swapped.pth", out), monkeypatch, capsys, f"tensor {bias} stands where the network has"
    )
    broken = dict(state)
    broken["dense.weight"] = state["dense.weight"].clone()
    broken["dense.weight"][0, 0] = float("nan")
    torch.save(broken, where / "nan.pth")
    refused(sota(where / "nan.pth", out), monkeypatch, capsys, "dense.weight holds NaN or infinite values")
    torch.save({"state_dict": state, "pytorch-lightning_version": "2.6.0"}, where / "lightning.ckpt")
    refused(sota(where / "lightning.ckpt", out), monkeypatch, capsys, "is a Lightning checkpoint")
    assert not out.exists()


def test_a_pth_of_another_tag_count_is_refused_by_the_command(inputs, monkeypatch, capsys):
    """The output width is what a weights-only .pth says of its corpus: checked against --dataset."""
    where, out = inputs["out"], inputs["out"] / "x.ckpt"
    state = torch.load(inputs["pth"], map_location="cpu", weights_only=True)
    narrow = dict(state)
    narrow["dense.weight"] = state["dense.weight"][:10].clone()
    narrow["dense.bias"] = state["dense.bias"][:10].clone()
    torch.save(narrow, where / "ten.pth")
    line = refused(sota(where / "ten.pth", out), monkeypatch, capsys)
    assert line == (
        f"musictag import-weights: error: --weights {where / 'ten.pth'} has 10 outputs but --dataset mtat "
        "has 50 tags: a model of another tag set; give the weights published for this dataset"
    )
    assert not out.exists()


def test_bad_names_and_numbers_are_refused_without_a_traceback(inputs, monkeypatch, capsys):
    out = inputs["out"] / "x.ckpt"
    refused(
        sota(inputs["pth"], out, arch="fcn_big"), monkeypatch, capsys, "unknown sota-music-tagging-models"
    )
    for argv in (
        ["--arch", "fcn", "--dataset", "gtzan", "--weights", str(inputs["pth"]), "--out", str(out)],
        musicnn(inputs["folder"], out, model="MTT_musicnn_2"),
        ["--source", "musicnn", "--weights", str(inputs["folder"]), "--out", str(out)],
    ):
        code, _, err = run(argv, monkeypatch, capsys)
        assert code == 2 and "Traceback" not in err and "error:" in err
    assert not out.exists()


# --- musicnn folders ------------------------------------------------------------------------------
def test_bad_musicnn_folders_are_refused(inputs, monkeypatch, capsys):
    folder, where = inputs["folder"], inputs["out"]
    out = where / "x.ckpt"
    refused(musicnn(where / "nothing", out), monkeypatch, capsys, "no such folder")
    refused(
        musicnn(inputs["pth"], out),
        monkeypatch,
        capsys,
        "is a file; --source musicnn takes the model's folder",
    )
    refused(
        musicnn(where, out), monkeypatch, capsys, "is not a TensorFlow checkpoint folder (no *.index file)"
    )
    data = folder / ".data-00000-of-00001"
    broken = where / "broken"
    for change, expected in (
        (lambda f: (f / ".data-00000-of-00001").unlink(), "data file"),
        (
            lambda f: (f / ".data-00000-of-00001").write_bytes(data.read_bytes()[:-1000]),
            "past the end of its data file",
        ),
        (lambda f: (f / ".data-00000-of-00001").write_bytes(b""), "past the end of its data file"),
        (lambda f: (f / ".index").unlink(), "no *.index file"),
        (lambda f: (f / ".index").write_bytes(b""), "is not a TensorFlow checkpoint index"),
        (
            lambda f: (f / ".index").write_bytes((folder / ".index").read_bytes()[:-10]),
            "is not a TensorFlow checkpoint index",
        ),
    ):
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(folder, broken)
        change(broken)
        refused(musicnn(broken, out), monkeypatch, capsys, expected)
    assert not out.exists()


def test_inputs_are_unchanged_by_refused_and_successful_imports(inputs, monkeypatch, capsys):
    """The .pth and every file of the musicnn folder, checksummed around every import; a refused one
    writes nothing, a successful one writes only its --out (a missing parent folder is created)."""
    pth, folder, where = inputs["pth"], inputs["folder"], inputs["out"]
    before = checksums(pth) | checksums(folder)
    attempts = [
        (sota(pth, pth), 2),
        (sota(pth, where), 2),
        (musicnn(folder, folder / ".index"), 2),
        (musicnn(folder, folder / "config.json"), 2),
        (musicnn(folder, where, model="MSD_vgg"), 2),
        (musicnn(folder, where / "x.ckpt", model="MSD_vgg"), 2),
        (sota(pth, where / "new" / "fcn.ckpt"), 0),
        (musicnn(folder, folder / "MTT_vgg.ckpt"), 0),  # a new file beside the inputs is harmless
        (musicnn(folder, where / "new" / "fcn.ckpt"), 2),  # exists now: no --force
    ]
    for argv, status in attempts:
        listing = sorted(p.relative_to(pth.parent.parent) for p in pth.parent.parent.rglob("*"))
        code, _, err = run(argv, monkeypatch, capsys)
        assert code == status, (argv, err)
        assert "Traceback" not in err
        after = checksums(pth) | {
            k: v for k, v in checksums(folder).items() if not k.endswith("MTT_vgg.ckpt")
        }
        assert after == before, argv
        if status == 2:
            assert sorted(p.relative_to(pth.parent.parent) for p in pth.parent.parent.rglob("*")) == listing
    assert (where / "new" / "fcn.ckpt").is_file() and (folder / "MTT_vgg.ckpt").is_file()
    assert torch.load(where / "new" / "fcn.ckpt", weights_only=True)["musictag_source"]["arch"] == "fcn"


# --- in a child process: what could hang, and a real Ctrl-C ---------------------------------------
def child(argv: list[str], **kwargs) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_without_being_opened(inputs, monkeypatch, capsys):
    """Opening a pipe nobody writes blocks forever: both sources refuse it by its type (an alarm
    turns a regression into a failure instead of a hang)."""
    pipe = inputs["out"] / "pipe.pth"
    os.mkfifo(pipe)
    broken = inputs["out"] / "broken"
    shutil.copytree(inputs["folder"], broken)
    (broken / ".data-00000-of-00001").unlink()
    os.mkfifo(broken / ".data-00000-of-00001")
    out = inputs["out"] / "x.ckpt"

    def hung(signum, frame):
        raise TimeoutError("the import opened the named pipe and waited for a writer")

    previous = signal.signal(signal.SIGALRM, hung)
    try:
        signal.alarm(20)
        refused(sota(pipe, out), monkeypatch, capsys, "pipe.pth: is a named pipe, not a file")
        refused(
            musicnn(broken, out),
            monkeypatch,
            capsys,
            f"data file {broken / '.data-00000-of-00001'}: is a named pipe, not a file",
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not out.exists()


def test_ctrl_c_while_writing_leaves_nothing_in_process(inputs, monkeypatch, capsys):
    """A SIGINT to this process while the checkpoint is half-written: exit 130, no --out, no temporary."""
    out = inputs["out"] / "x.ckpt"

    def interrupted_save(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        file.flush()
        assert any(p.name.startswith(".x.tmp-") for p in inputs["out"].iterdir())
        os.kill(os.getpid(), signal.SIGINT)  # Python's handler raises KeyboardInterrupt here
        raise AssertionError("SIGINT did not interrupt")

    monkeypatch.setattr(torch, "save", interrupted_save)
    code, _, err = run(sota(inputs["pth"], out), monkeypatch, capsys)
    assert code == 130 and err.strip() == "musictag import-weights: stopped by Ctrl-C"
    assert list(inputs["out"].iterdir()) == []


@pytest.mark.slow  # a child process that imports lightning: ~8 s of CPU
def test_ctrl_c_while_writing_leaves_nothing(inputs):
    """SIGINT to a child process while the checkpoint is half-written: exit 130, one line, no --out and
    no temporary."""
    out = inputs["out"] / "x.ckpt"
    script = textwrap.dedent(
        f"""
        import sys, time, torch
        def slow_save(obj, file, *args, **kwargs):
            file.write(b"half a checkpoint")
            file.flush()
            print("writing", flush=True)
            time.sleep(60)
        torch.save = slow_save
        from musictag.cli import main
        main(["import-weights", *{sota(inputs["pth"], out)!r}])
        """
    )
    proc = child(["-c", script])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.startswith(".x.tmp-") for p in inputs["out"].iterdir())  # half-written, for now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "stopped by Ctrl-C" in err and "Traceback" not in err, err
    assert list(inputs["out"].iterdir()) == []


def test_empty_paths_and_an_index_file_as_weights(inputs, monkeypatch, capsys):
    out = inputs["out"] / "x.ckpt"
    for weights, given in (("", str(out)), (str(inputs["pth"]), " ")):
        argv = ["--arch", "fcn", "--dataset", "mtat", "--weights", weights, "--out", given]
        code, _, err = run(argv, monkeypatch, capsys)
        option = "--weights" if not weights else "--out"
        assert code == 2 and f"argument {option}: an empty path; give a file or folder" in err, err
        assert "Traceback" not in err
    refused(
        sota(inputs["crnn"], out), monkeypatch, capsys, f"--weights {inputs['crnn']} does not fit --arch fcn"
    )
    code, stdout, err = run(musicnn(inputs["folder"] / ".index", out), monkeypatch, capsys)  # its folder
    assert (code, err) == (0, "") and out.is_file()
