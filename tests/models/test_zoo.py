"""Every architecture: builds, trains a step at its published input length, survives a checkpoint."""

from __future__ import annotations

import re

import pytest
import torch

from helpers.trainer import quiet_trainer
from musictag import TaggingModule
from musictag.models import available, build, get_preset
from musictag.models.choi import BUDGETS, scaled_preset

TABLE = {
    "fcn", "fcn4", "short_chunk", "short_chunk_res", "harmonic_cnn", "musicnn", "sample_cnn", "sample_cnn_se",
    "crnn", "cnnsa", "transformer", "waveform_musicnn", "choi_conv1d", "choi_conv2d", "choi_crnn",
    "pons_blackbox", "pons_time", "pons_frequency", "pons_timefreq", "dieleman_1d",
}  # fmt: skip


def test_every_architecture_of_the_table_is_registered():
    assert TABLE <= set(available())


@pytest.mark.parametrize("name", available())
def test_forward_backward_and_checkpoint_round_trip(name, tmp_path):
    torch.manual_seed(0)
    module = TaggingModule(n_tags=10, arch=name, tag_names=[f"t{i}" for i in range(10)])
    net = module.net
    assert re.search(r"(19|20)\d\d", get_preset(name).reference), "the preset cites its paper"
    wave = torch.randn(2, net.input_len) * 0.1
    logits = module(wave)
    assert logits.shape == (2, 10)
    logits.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    # a checkpoint written by Lightning's Trainer rebuilds the same network
    path = tmp_path / "model.ckpt"
    trainer = quiet_trainer(default_root_dir=tmp_path)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    assert {"state_dict", "hyper_parameters", "loops", "pytorch-lightning_version"} <= set(
        torch.load(path, weights_only=True)
    )
    reloaded = TaggingModule.load_from_checkpoint(path, weights_only=True).eval()
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(wave[:1]), module(wave[:1]), rtol=0, atol=0)
    assert reloaded.tag_names == module.tag_names


@pytest.mark.parametrize("name", ["short_chunk", "musicnn", "crnn", "cnnsa", "harmonic_cnn", "sample_cnn_se"])
def test_pooling_and_sequence_back_ends_take_other_lengths(name):
    net = build(name, n_tags=3).eval()
    assert net.variable_length
    with torch.no_grad():
        assert net(torch.randn(1, net.input_len * 3 // 2)).shape == (1, 3)


@pytest.mark.parametrize("name", ["fcn", "pons_time"])
def test_flattening_models_refuse_other_lengths(name):
    net = build(name, n_tags=3).eval()
    assert not net.variable_length
    with pytest.raises(ValueError, match=f"takes exactly input_len={net.input_len}"):
        net(torch.randn(1, net.input_len + 100))


@pytest.mark.parametrize("design", ["choi_conv1d", "choi_conv2d", "choi_crnn"])
def test_choi_designs_land_within_one_percent_of_every_budget(design):
    """As documented (README, musictag.models.choi): 0.1M-3M parameters, each within 1%, counted on the
    network that is built."""
    for budget in BUDGETS:
        preset = scaled_preset(design, budget)
        count = Tagger_params(preset)
        assert abs(count - budget) <= 0.01 * budget, (design, budget, count)
        assert f"Scaled to {count:,} parameters" in preset.description
    small, large = scaled_preset(design, BUDGETS[0]), scaled_preset(design, BUDGETS[-1])
    assert small.frontend["channels"][0] < large.frontend["channels"][0]


def Tagger_params(preset) -> int:  # noqa: N802
    from musictag.models.tagger import Tagger

    return Tagger(n_tags=50, **preset.stages()).n_params()


def test_budget_reaches_the_module_through_arch_args():
    module = TaggingModule(n_tags=50, arch="choi_crnn", arch_args={"param_budget": 250_000})
    assert abs(module.net.n_params() - 250_000) <= 2_500
    assert module.hparams["frontend"] == scaled_preset("choi_crnn", 250_000).frontend


def test_single_label_mode():
    torch.manual_seed(0)
    module = TaggingModule(n_tags=8, arch="pons_timefreq", task="multiclass")
    wave = torch.randn(4, module.input_len) * 0.1
    target = torch.nn.functional.one_hot(torch.tensor([0, 3, 7, 3]), 8).float()
    logits = module(wave)
    torch.testing.assert_close(
        module.loss(logits, target), torch.nn.functional.cross_entropy(logits, target.argmax(1))
    )
    module.eval()
    with torch.no_grad():
        scores = module.song_scores(wave.reshape(2, 2, -1))
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(2))
    with pytest.raises(Exception, match="unknown task"):
        TaggingModule(n_tags=8, arch="pons_time", task="regression")  # type: ignore[arg-type]
