"""Pons et al. 2016's input and evaluation: the Blackman-Harris window, bands standardised with the
training set's statistics, and the majority vote of a multiclass model's excerpts."""

from __future__ import annotations

import pytest
import torch
from scipy.signal import windows

from musictag.stages.representations.mel import MelSpectrogram
from musictag.training.metrics import aggregate_chunks
from musictag.training.standardize import band_statistics, fit_band_statistics
from musictag.types import ConfigError


def test_the_blackman_harris_window_is_the_periodic_four_term_one():
    mel = MelSpectrogram(sample_rate=44100, n_fft=2048, hop_length=1024, window="blackman_harris")
    assert torch.allclose(
        mel.window.double(), torch.from_numpy(windows.blackmanharris(2048, sym=False)), atol=1e-7
    )
    with pytest.raises(ConfigError, match="mel: unknown window 'kaiser'; use 'hann' or 'blackman_harris'"):
        MelSpectrogram(window="kaiser")


def test_standardised_bands_have_the_training_statistics_removed():
    torch.manual_seed(0)
    mel = MelSpectrogram(n_mels=40, power=1.0, compression="log1p", input_bn=False, standardize=True)
    wave = torch.randn(3, 16000) * torch.linspace(0.01, 1, 16000)
    raw = mel.compressed(wave)
    assert torch.equal(mel(wave)[:, 0], raw)  # the identity until the statistics are set
    mean, std = raw.mean(dim=(0, 2)), raw.std(dim=(0, 2), unbiased=False)
    mel.set_band_statistics(mean, std)
    out = mel(wave)[:, 0]
    assert torch.allclose(out.mean(dim=(0, 2)), torch.zeros(40), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2), unbiased=False), torch.ones(40), atol=1e-4)
    # kept in the state dict, so checkpoints carry them; a plain mel has none
    assert {"band_mean", "band_std", "statistics_fitted"} <= set(mel.state_dict())
    assert "band_mean" not in MelSpectrogram().state_dict()


class _Trainer:
    """What :func:`fit_band_statistics` reads of a trainer: its DataModule and a one-process reduce."""

    class strategy:  # noqa: N801
        @staticmethod
        def reduce(tensor, reduce_op):
            return tensor

    def __init__(self, batches):
        self.datamodule = type("DM", (), {"train_dataloader": lambda self: batches})()


def test_fit_band_statistics_pools_every_frame_of_the_training_loader():
    torch.manual_seed(1)
    batches = [{"audio": (torch.randn(2, 8000) * 8000).to(torch.int16)} for _ in range(3)]
    mel = MelSpectrogram(n_mels=16, power=1.0, compression="log1p", input_bn=False, standardize=True)
    module = torch.nn.Module()
    module.net = torch.nn.Sequential(mel)
    module.trainer = _Trainer(batches)
    module.device = torch.device("cpu")
    fit_band_statistics(module)
    frames = torch.cat([mel.compressed(b["audio"].float() / 32768) for b in batches]).double()  # (6, 16, T)
    expected_mean = frames.mean(dim=(0, 2))
    expected_std = frames.std(dim=(0, 2), unbiased=False)
    assert torch.allclose(mel.band_mean[:, 0].double(), expected_mean, atol=1e-5)
    assert torch.allclose(mel.band_std[:, 0].double(), expected_std, atol=1e-4)
    count, _, _ = band_statistics(mel, batches, torch.device("cpu"))
    assert int(count) == frames.shape[0] * frames.shape[2]
    # set once: a resumed run (or a checkpoint's weights) keeps its statistics
    module.trainer = _Trainer([{"audio": torch.zeros(1, 8000, dtype=torch.int16)}])
    before = mel.band_mean.clone()
    fit_band_statistics(module)
    assert torch.equal(mel.band_mean, before)


def test_fit_band_statistics_needs_a_datamodule():
    module = torch.nn.Module()
    module.net = torch.nn.Sequential(MelSpectrogram(standardize=True))
    module.trainer = type("T", (), {"datamodule": None})()
    with pytest.raises(ConfigError, match="standardize: true takes its statistics from the training set"):
        fit_band_statistics(module)


def test_multiclass_vote_is_the_majority_of_the_excerpts_top_classes():
    # 2 songs x 3 excerpts x 3 classes of softmax outputs; no probability of song 0 exceeds 0.5, and in
    # song 1 one confident excerpt outweighs two others in the mean but not in the vote
    chunks = torch.tensor(
        [
            [[0.40, 0.35, 0.25], [0.30, 0.45, 0.25], [0.20, 0.45, 0.35]],
            [[0.98, 0.01, 0.01], [0.30, 0.40, 0.30], [0.30, 0.40, 0.30]],
        ]
    )
    votes = aggregate_chunks(chunks, "vote", single_label=True)
    assert torch.allclose(votes, torch.tensor([[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.0]]))
    assert aggregate_chunks(chunks, "mean")[1].argmax() == 0
    # the multilabel vote (probability > 0.5) gives song 0 no class at all
    assert aggregate_chunks(chunks, "vote")[0].sum() == 0
    # a masked excerpt does not vote
    mask = torch.tensor([[True, True, False], [True, False, False]])
    masked = aggregate_chunks(chunks, "vote", mask, single_label=True)
    assert torch.allclose(masked, torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]))


def test_tagging_a_file_with_a_multiclass_model_votes_too():
    from types import SimpleNamespace

    from musictag.inference.tagging import file_result

    chunks = torch.tensor([[0.98, 0.01, 0.01], [0.30, 0.40, 0.30], [0.30, 0.40, 0.30]])
    item = SimpleNamespace(
        path="song.wav", native_rate=44100, n_samples=3 * 100, rate=100, starts=[0, 100, 200]
    )
    tags = ["Jive", "Samba", "Tango"]
    multiclass = SimpleNamespace(aggregate="vote", task="multiclass", tag_names=tags)
    assert file_result(multiclass, item, chunks)["scores"] == pytest.approx(
        {"Jive": 1 / 3, "Samba": 2 / 3, "Tango": 0}
    )
    multilabel = SimpleNamespace(aggregate="vote", task="multilabel", tag_names=tags)
    assert file_result(multilabel, item, chunks)["scores"] == pytest.approx(
        {"Jive": 1 / 3, "Samba": 0, "Tango": 0}
    )
