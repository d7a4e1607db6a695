"""``musictag bench --inference``: the rows' parsing and printing with a tiny model and a short file, the
musicnn library's child (a stand-in library here: no TensorFlow in tests), and the MusiCNN front end's
inference path (max over frequency before BN/ReLU) against the training order."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from musictag.bench import inference
from musictag.bench.report import markdown
from musictag.cli import main
from musictag.inference.backends import BACKENDS
from musictag.stages.frontends.musicnn import MusicnnFrontEnd, TimbralFilter


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    rng = np.random.default_rng(0)
    sf.write(path, rng.uniform(-0.5, 0.5, (16000 * 4, 2)).astype(np.float32), 16000)
    return path


@pytest.fixture(scope="module")
def fake_library(tmp_path_factory):
    """A Python that "has the musicnn library": stand-ins of tensorflow and musicnn.extractor."""
    root = tmp_path_factory.mktemp("fake_library")
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import types
            threading = types.SimpleNamespace(
                set_intra_op_parallelism_threads=lambda n: None, set_inter_op_parallelism_threads=lambda n: None
            )
            config = types.SimpleNamespace(threading=threading)
            """
        )
    )
    (root / "musicnn").mkdir()
    (root / "musicnn" / "__init__.py").write_text("")
    (root / "musicnn" / "extractor.py").write_text(
        textwrap.dedent(
            """
            import os, time
            def extractor(path, model, input_length, input_overlap, extract_features):
                print("Computing spectrogram (w/ librosa) and tags (w/ tensorflow)..")  # as the library does
                assert os.path.isfile(path) and model == "MTT_musicnn" and os.environ["OMP_NUM_THREADS"] == "1"
                time.sleep(0.05)
            """
        )
    )
    python = root / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return python


def test_inference_rows_print_and_save(tiny_ckpt, short_wav, tmp_path, capsys):
    saved = tmp_path / "figures.json"
    args = ["bench", "--inference", str(tiny_ckpt), "--audio", str(short_wav), "--repeats", "2"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--threads", "1", "--save", str(saved)])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == (
        "# musictag bench --inference: seconds per tag of short.wav (4.0 s, decode included), 1 threads, "
        "median of 2 (lowest – highest)"
    )
    assert lines[1].split() == ["model", "backend", "seconds", "spread", "speed-up"]
    name, backend, seconds, low, _, high = lines[2].split()
    assert (name, backend) == ("tiny.ckpt", "torch")
    assert 0 < float(low) <= float(seconds) <= float(high)
    assert lines[3].startswith("(no musicnn library row: give --musicnn-python")
    (row,) = json.loads(saved.read_text())
    assert row["model"] == "tiny.ckpt" and row["repeats"] == 2 and row["speedup"] is None
    table = markdown([row])
    assert "| `tiny.ckpt` | torch | short.wav (4 s) | 1 |" in table and table.rstrip().endswith("| — |")


def test_the_onnxruntime_row_tags_what_torch_tags(tiny_ckpt, short_wav, capsys):
    """The onnxruntime backend tags the file with the checkpoint exported as ``musictag export`` does,
    to the same song scores as the PyTorch backend, and prints its row beside it."""
    torch_scores = BACKENDS["torch"](str(tiny_ckpt), 1)(str(short_wav))
    onnx_scores = BACKENDS["onnxruntime"](str(tiny_ckpt), 1)(str(short_wav))
    ours, exported = torch_scores["scores"], onnx_scores["scores"]  # type: ignore[index]
    assert ours.keys() == exported.keys() and len(ours) == 3
    for tag, value in ours.items():
        assert exported[tag] == pytest.approx(value, abs=1e-4)
    args = ["bench", "--inference", str(tiny_ckpt), "--audio", str(short_wav), "--repeats", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--threads", "1", "--backend", "torch", "onnxruntime"])
    assert exit_info.value.code == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.strip().splitlines()[2:4]]
    assert rows == [["tiny.ckpt", "torch"], ["tiny.ckpt", "onnxruntime"]]


def test_the_library_runs_alternating_beside_ours(tiny_ckpt, short_wav, fake_library, monkeypatch):
    order: list[str] = []
    run = inference.LibraryChild.run
    monkeypatch.setattr(inference.LibraryChild, "run", lambda self: order.append("library") or run(self))
    figures = inference.measure(
        [str(tiny_ckpt)],
        str(short_wav),
        {"torch": lambda ckpt, threads: lambda path: order.append("ours")},
        repeats=3,
        threads=1,
        musicnn_python=str(fake_library),
    )
    assert order == ["ours", "library"] * 4  # a warm-up round, then the timed ones
    ours, library = figures
    assert library.backend == "musicnn library" and library.model == "MTT_musicnn"
    assert 0.05 <= library.seconds < 1 and library.speedup is None
    assert ours.speedup == pytest.approx(library.seconds / ours.seconds)
    assert inference.format_rows(figures)[2].split()[-1] == f"{ours.speedup:.2f}×"


def test_a_library_python_that_fails_is_one_line(tiny_ckpt, short_wav, capsys):
    args = ["bench", "--inference", str(tiny_ckpt), "--audio", str(short_wav), "--repeats", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--musicnn-python", sys.executable])  # this Python has no TensorFlow
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "musictag bench: inference failed: RuntimeError: the musicnn library's child stopped: "
        "ModuleNotFoundError: No module named 'tensorflow'"
    ]


def test_bad_inference_arguments_are_one_line(tiny_ckpt, tmp_path, capsys):
    for args, message in [
        (["--inference", str(tmp_path / "no.ckpt")], f"--inference {tmp_path / 'no.ckpt'}: no such file"),
        (
            ["--inference", str(tiny_ckpt), "--backend", "tflite"],
            "--backend tflite: unknown; choose from torch, onnxruntime",
        ),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("bn_after_relu", [False, True])
@pytest.mark.parametrize("height, width", [(5, 3), (1, 4)])
def test_timbral_inference_path_equals_the_training_order(bn_after_relu, height, width):
    torch.manual_seed(0)
    layer = TimbralFilter(1, 6, height, width, bn_after_relu)
    with torch.no_grad():  # running statistics and scales of both signs, one scale zero
        layer.bn.weight.copy_(torch.tensor([1.5, -0.7, 0.0, 2.0, -1.2, 0.3]))
        layer.bn.bias.normal_()
        layer.bn.running_mean.normal_()
        layer.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 1, 12, 20, requires_grad=True)

    def training_order(x):
        pad = F_pad(x, layer.time_pad)
        out = layer.conv(pad)
        out = layer.bn(layer.relu(out)) if bn_after_relu else layer.relu(layer.bn(out))
        return out.amax(dim=2)

    layer.eval()
    assert layer.pools_first()
    fast = layer(x)
    reference = training_order(x)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(fast)
    grad_fast = torch.autograd.grad((fast * weights).sum(), [x, layer.conv.weight])
    grad_reference = torch.autograd.grad((reference * weights).sum(), [x, layer.conv.weight])
    for a, b in zip(grad_fast, grad_reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    layer.train()  # training keeps the training order (batch statistics): gradients as before
    assert not layer.pools_first()
    out = layer(x)
    torch.testing.assert_close(out, training_order(x), atol=1e-6, rtol=1e-6)


def F_pad(x, pad):
    return torch.nn.functional.pad(x, pad) if pad != (0, 0) else x


def test_musicnn_front_end_in_eval_equals_its_training_order_with_running_statistics():
    torch.manual_seed(0)
    front = MusicnnFrontEnd(
        (1, 16, 30), timbral_channels=4, temporal_channels=3, temporal_lengths=(9, 4),
        temporal_pooling="max", bn_after_relu=True,
    )  # fmt: skip
    for module in front.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.weight.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 1, 16, 30)
    front.eval()
    fast = front(x)
    for layer in front.layers:
        layer.pools_first = lambda: False  # the training order, still with the running statistics
    torch.testing.assert_close(fast, front(x), atol=1e-5, rtol=1e-5)
    assert fast.shape == (2, 4 * 2 + 3 * 2, 30)
