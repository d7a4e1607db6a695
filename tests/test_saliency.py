"""Saliency methods (:mod:`musictag.inference.saliency`): shapes and finiteness on every preset of the
zoo, the mapping of coarse maps to representation frames, and the choice of method."""

from __future__ import annotations

import pytest
import torch

from musictag.inference import saliency
from musictag.inference.saliency import check_method, default_method, gradcam, integrated_gradients, spread
from musictag.models import available, build
from musictag.types import ConfigError

FAST_PRESETS = ["short_chunk", "waveform_musicnn", "dieleman_1d", "pons_time"]


def _check_preset(name: str) -> None:
    torch.manual_seed(0)
    net = build(name, n_tags=3).eval()
    wave = torch.randn(1, net.input_len) * 0.1
    with torch.no_grad():
        representation = net.representation(wave)
    frames = representation.shape[-1]
    for found in (gradcam(net, wave, [0, 2]), integrated_gradients(net, wave, [1, 2], steps=2)):
        assert tuple(found.time.shape) == (1, 2, frames), name
        assert torch.isfinite(found.time).all() and (found.time >= 0).all(), name
        if found.frequency is not None:
            assert tuple(found.frequency.shape) == (1, 2, representation.shape[2], frames), name
            assert torch.isfinite(found.frequency).all(), name
    assert not any(module._forward_hooks for module in net.modules())  # the hooks are gone


@pytest.mark.parametrize("name", FAST_PRESETS)
def test_both_methods_give_finite_maps_on_the_representation_frames(name):
    _check_preset(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in available() if name not in FAST_PRESETS])
def test_both_methods_work_for_every_preset_of_the_zoo(name):
    _check_preset(name)


def test_a_coarse_map_spreads_frame_i_over_its_share_of_the_frames():
    values = torch.tensor([[1.0, 2.0, 3.0]])
    assert spread(values, 6).tolist() == [[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]]
    # 3 frames onto 7: frame i covers [i*7/3, (i+1)*7/3)
    assert spread(values, 7).tolist() == [[1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]]
    assert spread(values.T, 4, dim=0).flatten().tolist() == [1.0, 1.0, 2.0, 3.0]


def test_integrated_gradients_of_a_linear_model_is_weight_times_input(tiny_model, monkeypatch):
    # completeness: for a linear function of the representation IG is exactly (x - baseline) * w
    net = tiny_model.net
    torch.manual_seed(0)
    weight = torch.rand(*net.shapes["representation"])

    wave = torch.randn(1, net.input_len) * 0.1
    with torch.no_grad():
        x = net.representation(wave)
        silent = net.representation(torch.zeros(1, net.input_len))
    expected = ((x - silent) * weight).sum(dim=1).clamp(min=0)  # (1, F, R)
    monkeypatch.setattr(
        net, "from_representation", lambda r: (r * weight).flatten(1).sum(dim=1, keepdim=True)
    )
    found = integrated_gradients(net, wave, [0], steps=3)
    torch.testing.assert_close(found.frequency[0], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(found.time[0, 0], expected[0].sum(dim=0).clamp(min=0), rtol=1e-4, atol=1e-4)


def test_the_default_is_attention_where_the_back_end_has_it_else_gradcam(tiny_model, monkeypatch):
    assert default_method(tiny_model.net) == "gradcam"
    monkeypatch.setattr(saliency, "has_attention", lambda net: True)
    assert default_method(tiny_model.net) == "attention"
    assert check_method(tiny_model.net, None) == "attention"


def test_an_unknown_method_and_attention_on_a_cnn_are_one_line(tiny_model):
    with pytest.raises(ConfigError, match=r"^method: unknown method 'lime'; use one of attention, rollout, "):
        check_method(tiny_model.net, "lime")
    with pytest.raises(
        ConfigError, match=r"^--method attention: .*(no attention weights|no attention methods)"
    ):
        check_method(tiny_model.net, "attention", "--method")
