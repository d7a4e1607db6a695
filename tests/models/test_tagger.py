from __future__ import annotations

import pytest
import torch

from musictag.models import available, build, get_preset
from musictag.models.tagger import Tagger
from musictag.stages.registry import ConfigError, UnknownNameError


def test_short_chunk_has_the_published_parameter_count():
    net = build("short_chunk", n_tags=50)
    assert net.n_params() == 3_687_348 == get_preset("short_chunk").params_at_50_tags


def test_short_chunk_stage_shapes():
    net = build("short_chunk", n_tags=50)
    assert net.shapes == {
        "input": (59049,),
        "representation": (1, 128, 231),
        "frontend": (512, 1, 1),
        "backend": (512,),
        "head": (50,),
    }
    out = net(torch.randn(3, 59049))
    assert out.shape == (3, 50)


def test_global_max_back_end_takes_longer_input():
    net = build("short_chunk", n_tags=5).eval()
    assert net(torch.randn(2, 2 * 59049)).shape == (2, 5)


def test_unknown_architecture_lists_presets():
    with pytest.raises(UnknownNameError, match="registered architectures: .*short_chunk"):
        build("nosuch")
    assert "short_chunk" in available()


def test_shape_mismatch_names_both_stages_and_the_shape():
    # a 2-D CNN cannot read the raw waveform (1, S)
    with pytest.raises(ConfigError) as err:
        build("short_chunk", representation="waveform")
    message = str(err.value)
    assert "front end 'conv2d_stack'" in message
    assert "representation 'waveform'" in message
    assert "(1, 59049)" in message


def test_too_short_input_fails_at_build_time():
    with pytest.raises(
        ConfigError,
        match=r"front end 'conv2d_stack' cannot take the output of representation 'mel', shape \(1, 128, 32\)",
    ):
        build("short_chunk", input_len=8000)


def test_head_without_flat_input_is_refused():
    with pytest.raises(ConfigError) as err:
        Tagger(
            n_tags=3,
            representation="mel",
            frontend={"name": "conv2d_stack", "channels": [4]},
            backend={"class_path": "torch.nn.Identity"},
            head="mlp",
            input_len=16000,
        )
    assert str(err.value) == (
        "head 'mlp' cannot take the output of back end 'torch.nn.Identity', shape (4, 64, 31) "
        "(channels, ...; batch axis left out): it takes 1-D input"
    )


def test_state_dict_round_trip_gives_identical_outputs():
    torch.manual_seed(0)
    net = build(
        "short_chunk", n_tags=7, frontend={"name": "conv2d_stack", "channels": [4, 4, 4, 4, 4, 4, 8]}
    ).eval()
    again = build(
        "short_chunk", n_tags=7, frontend={"name": "conv2d_stack", "channels": [4, 4, 4, 4, 4, 4, 8]}
    ).eval()
    again.load_state_dict(net.state_dict())
    wave = torch.randn(2, 59049)
    torch.testing.assert_close(net(wave), again(wave), rtol=0, atol=0)


def test_mel_buffers_are_not_in_the_state_dict():
    keys = build("short_chunk").state_dict().keys()
    assert not any(k.endswith(("window", "fb")) for k in keys)
    assert "representation.bn.weight" in keys


def test_per_block_values_repeat_a_scalar_and_take_one_list_entry_per_block():
    from musictag.stages.frontends.conv2d import _per_block

    assert _per_block(2, 3, "pools") == [2, 2, 2]
    assert _per_block([[2, 4], [2, 4], [3, 5]], 3, "pools") == [[2, 4], [2, 4], [3, 5]]
    # a [freq, time] pair given once is not repeated: it must be one entry per block
    with pytest.raises(ConfigError, match=r"^3 channels but 2 pools; give one, or one per block$"):
        _per_block([2, 4], 3, "pools")


class _FlattenTime(torch.nn.Module):
    """A user's own back end that flattens time into features, and says so."""

    fixed_input_length = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_a_stage_declares_that_it_fixes_the_input_length():
    def tagger(backend: str) -> Tagger:
        return Tagger(
            n_tags=2,
            representation="mel",
            frontend={"name": "conv2d_stack", "channels": [4, 4], "pools": 4},
            backend={"class_path": backend},
            head="linear",
            input_len=16000,
        )

    assert tagger("musictag.stages.backends.GlobalMax").variable_length
    net = tagger(f"{__name__}._FlattenTime")
    assert not net.variable_length
    with pytest.raises(ValueError, match="takes exactly input_len=16000"):
        net(torch.randn(1, 17000))
