"""The attention methods of ``musictag.inference.attention``: shapes on the zoo's attention presets,
equality with direct recomputations, a hand-built case with a known answer, and a trained span check."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from musictag.inference.attention import (
    attention_saliency,
    encoder_states,
    forced_attention_probabilities,
    has_attention,
)
from musictag.models import PRESETS, build
from musictag.models.tagger import Tagger
from musictag.stages.registry import spec_name

ATTENTION_PRESETS = sorted(name for name, p in PRESETS.items() if spec_name(p.backend) == "transformer")


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: faster than contending for the shared cores, and the training reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def frame_tagger(n_tags: int = 3, frames: int = 12, **backend) -> Tagger:
    """A Transformer tagger whose representation is its input frames: ``from_representation`` takes
    ``(B, 1, frames)`` (one feature per frame, projected to ``d_model``)."""
    spec = {"name": "transformer", "d_model": 8, "n_layers": 2, "n_heads": 2, "dim_feedforward": 16}
    spec.update({"dropout": 0.0, "max_len": frames, **backend})
    frontend = {"class_path": "torch.nn.Identity"}
    return Tagger(n_tags, "waveform", frontend, spec, "linear", input_len=frames)


def test_the_zoo_has_attention_presets():
    assert {"cnnsa", "transformer"} <= set(ATTENTION_PRESETS)


@pytest.mark.parametrize("name", ATTENTION_PRESETS)
def test_every_attention_preset_gives_nonnegative_frame_relevance_per_tag(name):
    torch.manual_seed(0)
    net = build(name, n_tags=5, input_len=PRESETS[name].sample_rate // 2)  # 0.5 s chunks
    assert has_attention(net)
    rep = net.representation(torch.randn(2, net.input_len) * 0.1)
    frames = net.shapes["frontend"][-1]  # the front end's time axis is the back end's sequence
    for method in ("attention", "rollout"):
        saliency = attention_saliency(net, rep, [4, 0], method)
        assert saliency.shape == (2, 2, frames)
        assert torch.isfinite(saliency).all() and (saliency >= 0).all()
    # rollout is tag-independent: the same [CLS] row for every tag; the contribution is not
    torch.testing.assert_close(saliency[:, 0], saliency[:, 1], rtol=0, atol=0)
    contribution = attention_saliency(net, rep, [4, 0], "attention")
    assert not torch.equal(contribution[:, 0], contribution[:, 1])


@pytest.mark.parametrize("name", ["short_chunk", "crnn"])
def test_models_without_attention_are_told_so(name):
    net = build(name, n_tags=3)
    assert not has_attention(net)
    with pytest.raises(ValueError, match="has no attention weights: use another method"):
        attention_saliency(net, torch.zeros(1, 1, 96, 10), [0], "attention")


def test_a_tagging_module_or_audio_tagger_is_read_through_its_network():
    holder = torch.nn.Module()
    holder.net = frame_tagger()  # as a TaggingModule holds its network
    loaded = SimpleNamespace(model=holder)  # as musictag.load's AudioTagger holds the module
    x = torch.randn(1, 1, 12)
    expected = attention_saliency(holder.net, x, [1], "attention")
    for tagger in (holder, loaded):
        assert has_attention(tagger)
        torch.testing.assert_close(attention_saliency(tagger, x, [1], "attention"), expected)
    with pytest.raises(TypeError, match="expected a tagger .* got str"):
        has_attention("model.ckpt")


def test_bad_method_and_tags_are_refused():
    net = frame_tagger()
    x = torch.randn(1, 1, 12)
    with pytest.raises(
        ValueError, match="unknown attention method 'gradcam'; choose one of: attention, rollout"
    ):
        attention_saliency(net, x, [0], "gradcam")
    with pytest.raises(ValueError, match=r"tags must be indices in 0\.\.2"):
        attention_saliency(net, x, [3], "attention")
    with pytest.raises(ValueError, match="at least one"):
        attention_saliency(net, x, [], "rollout")


def test_outputs_modes_and_hooks_are_left_as_they_were():
    torch.manual_seed(0)
    net = frame_tagger(dropout=0.1)
    x = torch.randn(3, 1, 12)
    net.eval()
    with torch.no_grad():
        before = net.from_representation(x)
    net.train()
    net.head.eval()  # a mixed state is restored as it was, module by module
    modes = {name: m.training for name, m in net.named_modules()}
    for method in ("attention", "rollout"):
        attention_saliency(net, x, [0, 1, 2], method)
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net.from_representation(x), before, rtol=0, atol=0)


def test_the_re_run_encoder_matches_the_model_and_its_weights_match_a_recomputation():
    torch.manual_seed(0)
    net = frame_tagger().eval()
    x = torch.randn(2, 1, 12)
    backend = net.backend
    with torch.no_grad():
        states, weights = encoder_states(backend, net.frontend(x))
        torch.testing.assert_close(net.head(backend.readout(states[-1][:, 0])), net.from_representation(x))
        for layer, state, attn in zip(backend.encoder.layers, states[:-1], weights, strict=True):
            heads, d_model = layer.self_attn.num_heads, state.shape[-1]
            q, k, _ = torch.nn.functional.linear(state, layer.self_attn.in_proj_weight).chunk(3, dim=-1)
            q = q + layer.self_attn.in_proj_bias[:d_model]
            k = k + layer.self_attn.in_proj_bias[d_model : 2 * d_model]
            q, k = (t.unflatten(-1, (heads, d_model // heads)).transpose(1, 2) for t in (q, k))
            expected = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d_model // heads), dim=-1)
            assert attn.shape == (2, heads, 13, 13)
            torch.testing.assert_close(attn, expected)


@pytest.mark.parametrize("norm_first", [False, True])
def test_forced_attention_equals_runs_with_the_cls_row_masked_to_one_frame(norm_first):
    torch.manual_seed(0)
    net = frame_tagger(frames=6, pooler=True).eval()  # with the cnnsa preset's tanh pooler
    for layer in net.backend.encoder.layers:
        layer.norm_first = norm_first
    x = torch.randn(2, 1, 6)
    with torch.no_grad():
        states, _ = encoder_states(net.backend, net.frontend(x))
        closed_form = forced_attention_probabilities(net.backend, net.head, states[-2])
        last = net.backend.encoder.layers[-1]
        for t in range(6):
            mask = torch.zeros(7, 7)
            mask[0] = -math.inf
            mask[0, t + 1] = 0.0  # [CLS] may look at frame t only; other rows are never read out
            out = last(states[-2], src_mask=mask)[:, 0]
            expected = torch.sigmoid(net.head(net.backend.readout(out)))
            torch.testing.assert_close(closed_form[:, t], expected)


def test_a_hand_built_layer_that_looks_at_one_frame_puts_all_relevance_there():
    """One layer, one head, d_model 4: a frame is ``value · e0``, [CLS] is ``e1``; [CLS]'s query meets
    only a loud frame's key (so its attention is one-hot there), and the head fires on ``e0``."""
    net = frame_tagger(n_tags=1, frames=8, d_model=4, n_layers=1, n_heads=1, max_len=0, dim_feedforward=4)
    backend, layer = net.backend, net.backend.encoder.layers[0]
    eye = torch.eye(4)
    with torch.no_grad():
        backend.projection.weight.copy_(eye[:, :1])
        backend.projection.bias.zero_()
        backend.cls.copy_(eye[1].reshape(1, 1, 4))
        wq, wk = torch.zeros(4, 4), torch.zeros(4, 4)
        wq[0, 1] = 10.0  # [CLS] (e1) asks for e0 ...
        wk[0, 0] = 10.0  # ... which a frame has in proportion to its value
        layer.self_attn.in_proj_weight.copy_(torch.cat([wq, wk, eye]))
        layer.self_attn.in_proj_bias.zero_()
        layer.self_attn.out_proj.weight.copy_(eye)
        layer.self_attn.out_proj.bias.zero_()
        layer.linear2.weight.zero_()  # no feed-forward: the output is the attended frame, normalised
        layer.linear2.bias.zero_()
        net.head.layers[-1].weight.copy_(5.0 * (eye[0] - eye[1]).reshape(1, 4))
        net.head.layers[-1].bias.zero_()
    net.eval()
    x = torch.zeros(2, 1, 8)
    x[0, 0, 5] = 10.0
    x[1, 0, 2] = 10.0
    attention = attention_saliency(net, x, [0], "attention")[:, 0]
    rollout = attention_saliency(net, x, [0], "rollout")[:, 0]
    for row, loud in enumerate((5, 2)):
        assert attention[row].argmax() == loud and attention[row, loud] > 0.99
        assert attention[row].sum() - attention[row, loud] < 1e-3  # every other frame: probability ~ 0
        # rollout: half of [CLS]'s flow stays with itself (the residual), the other half is the frame
        assert rollout[row, loud] == pytest.approx(0.5, abs=1e-3)
        assert rollout[row].sum() == pytest.approx(0.5, abs=1e-3)


def span_batch(n: int, generator: torch.Generator, frames: int = 16, span: range = range(4, 8)):
    """Noise frames, each clip with a loud event inside ``span`` (tag 0) or not, and independently one
    outside it (tag 1) or not: only the span's frames decide tag 0."""
    x = torch.randn(n, 1, frames, generator=generator) * 0.3
    tags = torch.rand(n, 2, generator=generator) < 0.5
    outside = torch.tensor([f for f in range(frames) if f not in span])
    inside_at = torch.randint(span.start, span.stop, (n,), generator=generator)
    outside_at = outside[torch.randint(0, len(outside), (n,), generator=generator)]
    rows = torch.arange(n)
    x[rows, 0, inside_at] += 2.0 * tags[:, 0]
    x[rows, 0, outside_at] += 2.0 * tags[:, 1]
    return x, tags.float()


def test_a_trained_tagger_puts_most_attention_relevance_in_the_span_that_decides_the_tag():
    torch.manual_seed(0)
    net = frame_tagger(n_tags=2, frames=16, d_model=16, n_layers=1, dim_feedforward=32)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(300):
        x, y = span_batch(32, generator)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net.from_representation(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y = span_batch(128, torch.Generator().manual_seed(2))
    net.eval()
    with torch.no_grad():
        assert ((net.from_representation(x) > 0).float() == y).float().mean() > 0.95
    positive = x[y[:, 0] > 0]
    shares = {}
    for method in ("attention", "rollout"):
        saliency = attention_saliency(net, positive, [0], method)[:, 0]
        shares[method] = (saliency[:, 4:8].sum(dim=1) / saliency.sum(dim=1)).mean().item()
    # the span is 4 of 16 frames: 0.25 if the relevance were spread evenly (measured: 0.88 and 0.56)
    assert shares["attention"] > 0.7, shares
    assert shares["rollout"] > 0.4, shares
