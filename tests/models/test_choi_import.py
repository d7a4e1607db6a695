"""Choi et al.'s published Keras 1 taggers: the import reproduces the published CRNN table, and each
Keras 1 semantic is checked on its own (getting it wrong breaks the table or the backends' agreement).

Reference data (``choi/`` of the reference folder): the Keras HDF5 weights, the four MP3s, their
melgrams by the original preprocessing, and the original README's top-10 per track.
"""

from __future__ import annotations

import copy
import functools
import json
import sys

import numpy as np
import pytest
import torch

from musictag.audio import resample
from musictag.convert.choi import CHOI_TAGS, convert_choi_weights, import_choi, read_keras_h5
from musictag.guards import InputError
from musictag.models import build
from musictag.models.presets import get_preset
from musictag.models.tagger import Tagger
from musictag.stages.backends import keras_gru
from musictag.types import ConfigError

NAMES = ("bensound-cute", "bensound-actionable", "bensound-dubstep", "bensound-thejazzpiano")


@pytest.fixture(scope="module")
def choi(reference):
    root = reference("choi")
    expected = json.loads((root / "expected_crnn_top10.json").read_text())
    mel = np.concatenate([np.load(root / "melgrams" / f"{n}.npy") for n in NAMES])
    return root, expected, torch.from_numpy(mel).float()


@functools.cache
def _prototype(model, frontend):
    """A built network of the preset (building one costs a second: its shape probe and orthogonal
    init), copied for each test that changes its weights."""
    stages = get_preset(f"choi_{model}_keras").stages()
    stages["frontend"].update(dict(frontend))
    return Tagger(n_tags=50, **stages)


@functools.cache
def _weights(path):
    return read_keras_h5(path)


def _net(root, model, backend, **frontend):
    net = copy.deepcopy(_prototype(model, tuple(sorted(frontend.items()))))
    layers, found = _weights(root / "weights" / f"music_tagger_{model}_weights_{backend}.h5")
    assert found == backend
    return net, layers, found


def _scores(net, mel):
    net.eval()
    with torch.no_grad():
        return torch.sigmoid(net.from_representation(mel)).double()


def _load(root, model, backend, flip_backend=None, **frontend):
    net, layers, found = _net(root, model, backend, **frontend)
    net.load_state_dict(convert_choi_weights(layers, flip_backend or found, model, net))
    return net


def _table_error(scores, expected):
    """(worst score difference over the published top-10s, every top-10 in the published order)."""
    tags, worst, ordered = expected["tags"], 0.0, True
    assert tuple(tags) == CHOI_TAGS
    for i, name in enumerate(NAMES[: len(scores)]):
        top = expected["top10"][name]
        worst = max(worst, max(abs(scores[i, tags.index(t)].item() - s) for t, s in top))
        ordered &= [tags[j] for j in scores[i].argsort(descending=True)[:10]] == [t for t, _ in top]
    return worst, ordered


@pytest.fixture(scope="module")
def crnn_scores(choi):
    root, _, mel = choi
    return {
        "theano": _scores(_load(root, "crnn", "theano"), mel),
        "tensorflow": _scores(_load(root, "crnn", "tensorflow"), mel[:1]),
    }


def test_presets_have_the_published_parameter_counts_and_features():
    """Trainable parameters as the README counts them; include_top=False gives 256-d (CNN, after
    Flatten) and 32-d (CRNN, after gru2) vectors: the output layer's input, `features`' penultimate."""
    cnn, crnn = build("choi_cnn_keras", n_tags=50), build("choi_crnn_keras", n_tags=50)
    assert (cnn.n_params(), crnn.n_params()) == (865_950, 396_786)
    # bn_0_freq normalises time, after ZeroPadding2D((0, 37)) in the CRNN: 1366 + 2 * 37 frames
    assert crnn.frontend.input_bn.weight.shape == (1440,)
    assert cnn.frontend.input_bn.weight.shape == (1366,)
    assert (cnn.shapes["backend"], crnn.shapes["backend"]) == ((256,), (32,))


def test_crnn_theano_reproduces_the_published_top10(choi, crnn_scores):
    _, expected, _ = choi
    worst, ordered = _table_error(crnn_scores["theano"], expected)
    assert ordered and worst < 0.0005, worst


def test_theano_and_tensorflow_files_agree(choi, crnn_scores):
    root, _, mel = choi
    assert (crnn_scores["theano"][:1] - crnn_scores["tensorflow"]).abs().max() < 1e-5
    cnn = [_scores(_load(root, "cnn", b), mel[:1]) for b in ("theano", "tensorflow")]
    assert (cnn[0] - cnn[1]).abs().max() < 1e-5


def test_theano_kernels_must_be_flipped(choi, crnn_scores):
    """Theano convolves: its file's kernels read as cross-correlation kernels break the table."""
    root, expected, mel = choi
    net = _load(root, "crnn", "theano", flip_backend="tensorflow")
    worst, ordered = _table_error(_scores(net, mel[:1]), expected)
    assert not ordered and worst > 0.1


def test_crnn_running_std_holds_the_variance(choi, monkeypatch):
    """Keras 1.1-1.2 stored the variance in running_std; read as a standard deviation it fails."""
    import musictag.convert.choi as convert

    root, expected, mel = choi
    monkeypatch.setitem(convert.CHOI_MODELS, "crnn", ("choi_crnn_keras", "Keras 1.1-1.2", "std"))
    worst, _ = _table_error(_scores(_load(root, "crnn", "theano"), mel[:1]), expected)
    assert worst > 0.1


def test_crnn_uses_running_statistics_so_the_table_does_not_depend_on_the_batch(choi, crnn_scores):
    """The published table is reproduced per track; batch statistics (Keras' training mode) are far off."""
    root, expected, mel = choi
    alone = _scores(_load(root, "crnn", "theano"), mel[2:3])
    assert (alone - crnn_scores["theano"][2:3]).abs().max() < 1e-5
    worst, _ = _table_error(_scores(_load(root, "crnn", "theano", statistics="batch"), mel[:2]), expected)
    assert worst > 0.1


def test_gru_gates_are_hard_sigmoid(choi, monkeypatch):
    """Keras 1's GRU gates use hard_sigmoid; the logistic sigmoid moves the scores beyond rounding."""
    root, expected, mel = choi
    monkeypatch.setattr(keras_gru, "hard_sigmoid", torch.sigmoid)
    worst, _ = _table_error(_scores(_load(root, "crnn", "theano"), mel[:1]), expected)
    assert worst > 0.002


def test_cnn_batch_statistics_make_scores_depend_on_the_batch(choi):
    """Keras 1.0.6 normalised with the predicted batch's statistics: the named option reproduces
    that; the default (each track's own statistics) scores a track the same in any batch."""
    root, _, mel = choi
    default = _load(root, "cnn", "theano")
    assert default.frontend.statistics == "track"
    together = _scores(default, mel[:2])
    assert (_scores(default, mel[:1]) - together[:1]).abs().max() < 1e-5
    batch = _load(root, "cnn", "theano", statistics="batch")
    assert (_scores(batch, mel[:1]) - _scores(batch, mel[:2])[:1]).abs().max() > 0.01


def test_representation_is_the_original_preprocessing(choi):
    """From the MP3, the checkpoint's log-mel matches the shipped melgram (80 dB range) once the 529
    samples of MP3 decoder delay at 44.1 kHz that the decoder here gives and the original's did not are
    dropped with the length kept; dropped without keeping the length, the centre moves half as far."""
    from musictag.audio import load_audio
    from musictag.convert.choi import MP3_DECODER_DELAY

    root, _, mel = choi
    net = _prototype("crnn", ())
    path = root / "audio" / "bensound-dubstep.mp3"
    moved, _ = load_audio(path, 12_000, mp3_decoder_delay=MP3_DECODER_DELAY)
    trimmed, _ = load_audio(path)
    trimmed = resample(trimmed[MP3_DECODER_DELAY:], 44_100, 12_000)
    ref = mel[2, 0].double()
    errors = []
    for audio in (moved, trimmed):
        start = (len(audio) - 349_440) // 2
        with torch.no_grad():
            ours = net.representation(torch.from_numpy(audio[start : start + 349_440])[None])[0, 0].double()
        errors.append((ours - ref).abs()[:, 5:-5].median().item())
    assert ours.max() - ours.min() == pytest.approx(80.0, abs=1e-3)
    assert errors[0] < 0.05 and errors[1] > 0.5, errors  # dB, median over the frames


@pytest.fixture(scope="module")
def crnn_ckpt(choi, tmp_path_factory):
    """The CRNN as ``import-weights`` writes it (in-process: no child interpreter)."""
    from musictag.cli.import_weights import main

    root, _, _ = choi
    out = tmp_path_factory.mktemp("choi") / "crnn.ckpt"
    weights = root / "weights" / "music_tagger_crnn_weights_tensorflow.h5"
    assert main(["--source", "choi", "--model", "crnn", "--weights", str(weights), "--out", str(out)]) == 0
    return out


def test_import_command_and_precomputed_melgram(choi, crnn_ckpt):
    from musictag.inference.api import load

    _, expected, mel = choi
    tagger = load(crnn_ckpt, device="cpu")
    assert tagger.tags == list(CHOI_TAGS) and tagger.chunk_mode == "centre"
    with torch.no_grad():
        scores = torch.sigmoid(tagger.model.net.from_representation(mel[:1])).double()
    top = expected["top10"]["bensound-cute"]
    assert max(abs(scores[0, CHOI_TAGS.index(t)].item() - s) for t, s in top) < 0.0005


def test_wrong_file_for_the_model_and_missing_h5py(choi, tmp_path, monkeypatch):
    root, _, _ = choi
    weights = root / "weights" / "music_tagger_crnn_weights_theano.h5"
    with pytest.raises(ConfigError, match="does not fit --model cnn"):
        import_choi("cnn", weights, tmp_path / "x.ckpt")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(InputError, match=r"pip install 'musictag\[choi\]'"):
        import_choi("crnn", weights, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_mp3s_through_tag_give_the_published_top5(choi, crnn_ckpt):
    """``musictag.load(ckpt).tag_many`` on the four MP3s (the tag command's path: decoded here, the MP3
    decoder delay the checkpoint names dropped, 12 kHz, the centre 29.12 s): each track's top-5 is the
    published one in the published order, every published top-10 score within 0.02 (0.019 measured)."""
    from musictag.inference.api import load

    root, expected, _ = choi
    results = load(crnn_ckpt, device="cpu").tag_many([root / "audio" / f"{n}.mp3" for n in NAMES])
    worst = 0.0
    for name, result in zip(NAMES, results, strict=True):
        scores, top = result["scores"], expected["top10"][name]
        ranked = sorted(scores, key=lambda tag: -scores[tag])
        assert ranked[:5] == [t for t, _ in top[:5]], name
        worst = max(worst, max(abs(scores[t] - s) for t, s in top))
    assert worst < 0.02, worst


def test_mp3_decoder_delay_is_the_imports_and_checked(crnn_ckpt):
    """The import sets the checkpoint's delay; a module is built with 0 by default; below 0 is refused."""
    from musictag.inference.api import load
    from musictag.training.module import TaggingModule

    assert load(crnn_ckpt, device="cpu").model.mp3_decoder_delay == 529
    with pytest.raises(ConfigError, match="mp3_decoder_delay must be at least 0 samples, got -1"):
        TaggingModule(arch="choi_crnn_keras", mp3_decoder_delay=-1)
