"""The classical floor (MFCC + k-means codebook histogram + a logistic regression per tag): its stages
against numpy and torchaudio, its fit (deterministic, sklearn's regression folded in exactly), and a run
through ``musictag fit`` / ``test`` / ``musictag.load`` on the tiny synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

import musictag
from datamodules.synthetic import SyntheticDataModule
from helpers.cli import run_musictag
from musictag.stages.backends.pooling import GlobalMean
from musictag.stages.frontends.codebook import Codebook
from musictag.stages.representations.mfcc import MFCC
from musictag.testing import last_logged, sine, tiny_synthetic_args
from musictag.training.codebook import CodebookTaggingModule, fit_logistic
from musictag.types import ConfigError

CLIP = 64000  # the tiny corpus's 4 s clips at 16 kHz: one chunk is a whole clip
TINY = {"codebook_size": 8, "frame_sample": 512, "input_len": CLIP}


def test_the_histogram_sums_to_one_and_is_the_nearest_codeword_count():
    generator = torch.Generator().manual_seed(0)
    codebook = Codebook((1, 6, 50), size=5)
    codewords = torch.randn(5, 6, generator=generator)
    mean, scale = torch.randn(6, generator=generator), torch.rand(6, generator=generator) + 0.5
    codebook.set_codebook(codewords, mean, scale)
    frames = torch.randn(3, 1, 6, 50, generator=generator) * 2
    histogram = GlobalMean()(codebook(frames))
    assert histogram.shape == (3, 5)
    np.testing.assert_allclose(histogram.sum(dim=1).numpy(), 1.0, atol=1e-6)
    standard = (
        frames.squeeze(1).transpose(1, 2).double().numpy() - mean.double().numpy()
    ) / scale.double().numpy()
    distance = ((standard[:, :, None, :] - codewords.double().numpy()[None, None]) ** 2).sum(-1)
    expected = np.stack([np.bincount(song, minlength=5) / 50 for song in distance.argmin(-1)])
    np.testing.assert_allclose(histogram.numpy(), expected, atol=1e-7)
    assert int(codebook.fitted) == 1 and set(codebook.state_dict()) == {
        "codewords", "frame_mean", "frame_scale", "fitted"
    }  # fmt: skip


def test_mfccs_are_torchaudio_s_with_their_deltas():
    wave = torch.from_numpy(sine(440.0, 1.0) + 0.1 * sine(1234.0, 1.0)).unsqueeze(0)
    out = MFCC()(wave)
    assert out.shape == (1, 1, 60, 16000 // 256 + 1)
    reference = torchaudio.transforms.MFCC(
        16000, n_mfcc=20, melkwargs={"n_fft": 512, "hop_length": 256, "n_mels": 40, "f_max": 8000.0}
    )(wave)
    np.testing.assert_allclose(out[0, 0, :20].numpy(), reference[0].numpy(), rtol=1e-4, atol=1e-3)
    delta = torchaudio.functional.compute_deltas(reference, 9)
    np.testing.assert_allclose(out[0, 0, 20:40].numpy(), delta[0].numpy(), rtol=1e-4, atol=1e-3)


def test_the_fitted_head_is_sklearn_s_regression_on_standardised_histograms():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.dirichlet(np.ones(6), size=40)
    labels = np.stack([features[:, 0] > 0.2, np.zeros(40, bool), np.ones(40, bool)], axis=1).astype(float)
    weight, bias = fit_logistic(features, labels, C=0.5)
    standard = (features - features.mean(0)) / features.std(0)
    expected = (
        LogisticRegression(C=0.5, max_iter=1000).fit(standard, labels[:, 0]).decision_function(standard)
    )
    np.testing.assert_allclose(features @ weight[0] + bias[0], expected, atol=1e-8)
    # a tag without positives (or negatives) in training: no weights, the smoothed prior as its bias
    assert not weight[1:].any() and bias[1] == pytest.approx(np.log(0.5 / 40.5)) and bias[2] == -bias[1]


def _fitted(root: Path) -> CodebookTaggingModule:
    data = SyntheticDataModule(**tiny_synthetic_args(str(root), chunk_len=CLIP, train_crop="start"))
    data.setup("fit")
    module = CodebookTaggingModule(n_tags=data.n_tags, **TINY)
    module.fit(data.datasets["train"], batch_size=4)
    return module


def test_the_fit_is_deterministic(tiny_corpus):
    first, second = _fitted(tiny_corpus), _fitted(tiny_corpus)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert first.codebook.codewords.abs().sum() > 0 and int(first.codebook.fitted) == 1
    # a song's score from several chunks is the regression of its mean chunk histogram (linear head)
    chunks = torch.from_numpy(np.stack([sine(300.0 * (k + 1), CLIP / 16000) for k in range(3)])).unsqueeze(0)
    with torch.no_grad():
        net = first.eval().net
        histograms = net.backend(net.frontend(net.representation(chunks[0])))  # (3, size)
        expected = torch.sigmoid(net.head(histograms.mean(dim=0, keepdim=True)))
        np.testing.assert_allclose(first.song_scores(chunks).numpy(), expected.numpy(), atol=1e-6)


def _cli_args(corpus: Path, runs: Path) -> list[str]:
    """A ``musictag`` run of the codebook model on the tiny corpus, one chunk a clip."""
    return [
        "--model=musictag.training.codebook.CodebookTaggingModule",
        *(f"--model.init_args.{key}={value}" for key, value in TINY.items()),
        "--data=datamodules.SyntheticDataModule",
        *(f"--data.init_args.{key}={value}" for key, value in tiny_synthetic_args(str(corpus)).items()),
        "--data.init_args.train_crop=start",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run.save_dir={runs}",
        "--run.name=codebook",
        "--seed_everything=0",
    ]


def test_fit_then_test_writes_the_usual_outputs_and_the_checkpoint_tags(tiny_corpus, tmp_path, capsys):
    runs = tmp_path / "runs"
    common = _cli_args(tiny_corpus, runs)
    code, _, err = run_musictag(
        ["fit", *common, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1"], capsys
    )
    assert code == 0, err
    fit_dir = runs / "codebook" / "version_0"
    best = fit_dir / "checkpoints" / "best.ckpt"
    fit_log = last_logged(fit_dir / "metrics.csv")
    assert 0 < fit_log["val/roc_auc"] <= 1 and fit_log["train/loss"] > 0  # the fit's BCE on training songs
    code, _, err = run_musictag(["test", *common, "--ckpt_path=best"], capsys)
    assert code == 0, err
    test_dir = runs / "codebook" / "version_1"
    saved = np.load(test_dir / "test_predictions.npz")
    assert saved["scores"].shape == (8, 12) and (test_dir / "test_per_tag.csv").is_file()
    assert 0 < last_logged(test_dir / "metrics.csv")["test/pr_auc"] <= 1

    checkpoint = torch.load(best, weights_only=True, map_location="cpu")  # tensors and plain data only
    assert int(checkpoint["state_dict"]["net.frontend.fitted"]) == 1
    wave = 0.5 * sine(330.0, CLIP / 16000) + 0.2 * sine(2000.0, CLIP / 16000)
    sf.write(tmp_path / "song.wav", wave, 16000)
    with pytest.warns(UserWarning, match="tagged once"):  # one chunk: the whole file
        result = musictag.load(best, device="cpu").tag(tmp_path / "song.wav", top_k=12)
    module = musictag.TaggingModule.load_from_checkpoint(best, map_location="cpu", weights_only=True).eval()
    assert (module.aggregate, module.hparams["arch"]) == ("logit_mean", None)  # the song score of test
    with torch.no_grad():
        expected = torch.sigmoid(module(torch.from_numpy(wave).float().unsqueeze(0)))[0]
    np.testing.assert_allclose(list(result["scores"].values()), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"codebook_size": 1}, "model.init_args.codebook_size must be at least 2, got 1"),
        ({"frame_sample": 4}, "model.init_args.frame_sample must be at least 8, got 4"),
        ({"C": 0.0}, "model.init_args.C must be a number > 0, got 0.0"),
        ({"input_len": None}, "model.init_args.input_len is not set"),
        ({"aggregate": "max"}, "model.init_args.aggregate 'max': the codebook model scores a song"),
        ({"n_mels": 10}, "model.init_args.n_mels must be at least 20, got 10"),
        ({"head": "mlp"}, "model.init_args.head: the codebook model's head is 'linear'; leave it unset"),
    ],
)
def test_bad_settings_are_one_line(args, message):
    with pytest.raises(ConfigError) as error:
        CodebookTaggingModule(n_tags=3, **{**TINY, **args})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_bad_setting_on_the_command_line_is_one_error_line_and_writes_nothing(
    tiny_corpus, tmp_path, capsys
):
    args = ["fit", *_cli_args(tiny_corpus, tmp_path / "runs"), "--model.init_args.codebook_size=1"]
    code, _, err = run_musictag(args, capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        "musictag: error: model.init_args.codebook_size must be at least 2, got 1"
    )
    assert not (tmp_path / "runs").exists()


def test_an_unfitted_model_is_not_evaluated():
    with pytest.raises(ConfigError, match=r"^test: the codebook model is not fitted"):
        CodebookTaggingModule(n_tags=3, **TINY).check_trained("test")


#: The demo Short-chunk CNN's test PR-AUC (`make demo` on main, CPU; README.md and docs/development.md).
DEMO_CNN_PR_AUC = 0.9772


@pytest.mark.slow  # the demo corpus (480 clips) and a fit and test of it: ~2.5 min on 2 busy cores
def test_the_demo_baseline_lands_below_the_demo_cnn(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUSICTAG_DATA", str(tmp_path / "data"))
    recipe = Path(__file__).resolve().parents[1] / "experiments" / "demo_mfcc_codebook.yaml"
    common = [
        f"--config={recipe}",
        f"--run.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
    ]
    assert run_musictag(["fit", *common], capsys)[0] == 0
    assert run_musictag(["test", *common, "--ckpt_path=best"], capsys)[0] == 0
    tested = last_logged(tmp_path / "runs" / "demo-mfcc-codebook" / "version_1" / "metrics.csv")
    assert tested["test/roc_auc"] == pytest.approx(0.9620, abs=5e-4)  # the figures of docs/models.md
    assert (
        tested["test/pr_auc"] == pytest.approx(0.9230, abs=5e-4) and tested["test/pr_auc"] < DEMO_CNN_PR_AUC
    )
