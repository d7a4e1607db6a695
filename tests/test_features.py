"""``musictag features`` and ``musictag.load(ckpt).features``: the outputs of a checkpoint's layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import musictag
from helpers.cli import run_musictag
from musictag.chunks import cut_chunks
from musictag.guards import InputError
from musictag.inference.features import layer_names, network_features
from musictag.testing import sine, write_audio

TINY_LAYERS = ["representation", "frontend", "backend", "head.0", "head.1", "head.2", "head.3", "penultimate"]


@pytest.fixture
def songs(tmp_path) -> list[Path]:
    write_audio(tmp_path / "a.wav", sine(440, 6.0), 16000)
    write_audio(tmp_path / "b.wav", sine(220, 4.5) * 0.5, 16000)
    return [tmp_path / "a.wav", tmp_path / "b.wav"]


def test_every_stage_and_head_layer_is_named_in_network_order(tiny_model):
    assert layer_names(tiny_model.net) == TINY_LAYERS


def test_features_are_the_stage_outputs_and_the_logits_are_read_from_the_penultimate(tiny_model):
    net = tiny_model.net
    torch.manual_seed(1)
    wave = torch.randn(3, net.input_len) * 0.1
    features = network_features(net, wave, TINY_LAYERS)
    for stage in ("representation", "frontend", "backend"):
        assert tuple(features[stage].shape) == (3, *net.shapes[stage])
    with torch.inference_mode():
        logits = net(wave)
        by_hand = net.head.layers[0](net.backend(net.frontend(net.representation(wave))))
    last = net.head.layers[3]
    torch.testing.assert_close(features["head.3"], logits)
    torch.testing.assert_close(features["penultimate"] @ last.weight.T + last.bias, logits)
    torch.testing.assert_close(features["head.0"], by_hand)
    # the hooks are gone afterwards: a later forward pass is not caught
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in net.modules())


def test_an_unknown_layer_is_one_line_listing_the_model_s_layers(tiny_model):
    with pytest.raises(
        InputError, match=r"^layers: unknown layer\(s\) 'cnn9'; this model has representation, "
    ):
        network_features(tiny_model.net, torch.zeros(1, tiny_model.net.input_len), ["backend", "cnn9"])


def test_the_command_writes_each_file_s_layers_per_chunk(tiny_model, tiny_ckpt, songs, tmp_path, capsys):
    out = tmp_path / "features"
    argv = ["features", *map(str, songs), "--ckpt", str(tiny_ckpt), "--out", str(out)]
    code, printed, _ = run_musictag([*argv, "--layers", "backend,penultimate", "--n-chunks", "4"], capsys)
    assert code == 0, printed
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "b.npz"]
    saved = np.load(out / "a.npz")
    assert sorted(saved.files) == ["backend", "penultimate", "start_s"]
    assert saved["backend"].shape == (4, 8) and saved["penultimate"].shape == (4, 8)
    # the chunks are those tag scores: the same start times as `tag --timeline`
    code, printed, _ = run_musictag(
        ["tag", str(songs[0]), "--ckpt", str(tiny_ckpt), "--n-chunks", "4", "--format", "json", "--timeline"],
        capsys,
    )
    timeline = [chunk["start_s"] for chunk in json.loads(printed)["timeline"]]
    np.testing.assert_allclose(saved["start_s"], timeline, atol=5e-4)
    # and each row is the network's output on that chunk
    audio, _ = musictag.audio.load_audio(songs[0], 16000)
    starts = np.rint(saved["start_s"] * 16000).astype(np.int64)
    chunks = torch.from_numpy(cut_chunks(audio, starts, tiny_model.net.input_len))
    direct = network_features(tiny_model.net, chunks, ["backend"])["backend"].numpy()
    np.testing.assert_allclose(saved["backend"], direct, rtol=1e-5, atol=1e-6)
    # Python gives the same arrays
    arrays = musictag.load(tiny_ckpt, device="cpu", n_chunks=4).features(songs[0], ["backend", "penultimate"])
    for name in ("backend", "penultimate", "start_s"):
        np.testing.assert_array_equal(arrays[name], saved[name])


def test_an_existing_file_is_never_replaced_and_nothing_is_written(tiny_ckpt, songs, tmp_path, capsys):
    out = tmp_path / "features"
    out.mkdir()
    (out / "b.npz").write_bytes(b"mine")
    argv = ["features", *map(str, songs), "--ckpt", str(tiny_ckpt), "--out", str(out)]
    code, _, err = run_musictag(argv, capsys)
    assert code == 2 and f"--out {out / 'b.npz'} exists" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.npz"] and (out / "b.npz").read_bytes() == b"mine"


def test_an_unreadable_file_is_skipped_and_named(tiny_ckpt, songs, tmp_path, capsys):
    (tmp_path / "c.wav").write_bytes(b"not audio")
    out = tmp_path / "features"
    argv = ["features", str(tmp_path), "--ckpt", str(tiny_ckpt), "--out", str(out)]
    code, printed, err = run_musictag(argv, capsys)
    assert code == 1
    assert "skipped" in err and "c.wav" in err and "1 of 3 file(s) could not be read" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "b.npz"]
    assert printed.splitlines()[0] == f"{out / 'a.npz'}: penultimate (16, 8)"


def test_python_refuses_a_folder_and_an_unknown_layer(tiny_ckpt, tmp_path):
    tagger = musictag.load(tiny_ckpt, device="cpu")
    with pytest.raises(InputError, match="features takes the path of one audio file"):
        tagger.features(tmp_path)
    write_audio(tmp_path / "a.wav", sine(440, 2.0), 16000)
    with pytest.raises(InputError, match=r"unknown layer\(s\) 'pool9'"):
        tagger.features(tmp_path / "a.wav", ["pool9"])


LIBRARY_NAMES = {
    "musicnn_tf": ["timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool"],
    "musicnn_vgg": ["pool1", "pool2", "pool3", "pool4", "pool5"],
}


@pytest.mark.parametrize("arch", ["musicnn_tf", "musicnn_vgg", "musicnn", "fcn"])
def test_the_musicnn_librarys_names_come_with_its_architectures_alone(arch):
    """Built as the library builds them (conv → ReLU → BN), trained here or imported: its names after
    the generic ones; Won et al.'s MusiCNN port and the FCN (the same stage classes): none."""
    from musictag.models import build

    names = layer_names(build(arch, n_tags=5))
    assert names[names.index("penultimate") + 1 :] == LIBRARY_NAMES.get(arch, [])
