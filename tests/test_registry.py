from __future__ import annotations

import pytest
from torch import nn

from musictag.models.tagger import Tagger  # noqa: F401  (registers every stage)
from musictag.stages.registry import (
    BACKENDS,
    FRONTENDS,
    HEADS,
    REPRESENTATIONS,
    ConfigError,
    Registry,
    UnknownNameError,
)


def test_unknown_name_lists_registered_names():
    with pytest.raises(UnknownNameError) as err:
        BACKENDS.get("nosuch")
    message = str(err.value)
    assert message.startswith("unknown back end 'nosuch'; registered back ends: ")
    for name in ("flatten", "global_max", "global_mean_max"):
        assert name in message


def test_every_registry_lists_the_stages_of_the_presets():
    # (at least these: other stages may join)
    assert {"harmonic", "mel", "waveform"} <= set(REPRESENTATIONS.names())
    assert {
        "conv1d_stack", "conv2d_stack", "musicnn", "pons_filters", "res2d_stack", "sample_level",
    } <= set(FRONTENDS.names())  # fmt: skip
    assert {
        "flatten", "global_max", "global_mean_max", "global_mean_max_l2", "gru", "musicnn_1d", "transformer",
    } <= set(BACKENDS.names())  # fmt: skip
    assert {"linear", "mlp"} <= set(HEADS.names())


def test_names_lists_what_was_registered_in_alphabetical_order():
    registry = Registry("widget")
    for name in ("zeta", "alpha", "mid"):
        registry.register(name)(type(name, (nn.Module,), {}))
    assert registry.names() == ["alpha", "mid", "zeta"]
    assert "mid" in registry and "other" not in registry


def test_the_foundation_stages_are_registered():
    assert "mel" in REPRESENTATIONS and "waveform" in REPRESENTATIONS
    assert "conv2d_stack" in FRONTENDS
    assert "global_max" in BACKENDS
    assert {"linear", "mlp"} <= set(HEADS.names())


def test_spec_forms_resolve_to_the_same_class():
    by_name = BACKENDS.resolve("global_max")
    by_mapping = BACKENDS.resolve({"name": "global_max"})
    by_path = BACKENDS.resolve({"class_path": "musictag.stages.backends.GlobalMax"})
    assert by_name[0] is by_mapping[0] is by_path[0]
    assert by_path[2] == "global_max"


def test_unknown_argument_names_the_stage_and_its_arguments():
    with pytest.raises(ConfigError, match=r"head 'mlp' got unknown argument\(s\) hiden; it takes: hidden"):
        HEADS.build({"name": "mlp", "hiden": [3]}, in_shape=(8,), n_tags=2)


def test_derived_arguments_cannot_be_set():
    with pytest.raises(ConfigError, match="derived from the model"):
        HEADS.build({"name": "mlp", "n_tags": 3}, in_shape=(8,), n_tags=2)


def test_spec_without_name_is_refused():
    with pytest.raises(ConfigError, match="needs a 'name'"):
        BACKENDS.resolve({"channels": 3})


def test_bad_class_path_is_reported():
    with pytest.raises(ConfigError, match="cannot import back end class_path 'nowhere.Thing'"):
        BACKENDS.resolve({"class_path": "nowhere.Thing"})


def test_register_refuses_a_second_class_under_one_name():
    registry = Registry("widget")

    @registry.register("a")
    class A(nn.Module):
        pass

    with pytest.raises(ConfigError, match="already registered"):

        @registry.register("a")
        class B(nn.Module):
            pass


def test_an_earlier_stage_name_resolves_to_the_renamed_stage_and_is_not_listed():
    assert FRONTENDS.get("pretrained") is FRONTENDS.get("hf_encoder")
    assert "pretrained" in FRONTENDS and "pretrained" not in FRONTENDS.names()
    cls, kwargs, _ = FRONTENDS.resolve({"name": "pretrained", "path": "x"})
    assert cls is FRONTENDS.get("hf_encoder") and kwargs == {"path": "x"}
    with pytest.raises(ConfigError, match="'nosuch' is not registered: cannot alias 'old' to it"):
        Registry("thing").alias("old", "nosuch")


def test_a_lazy_name_imports_its_class_when_first_built(tmp_path, monkeypatch):
    (tmp_path / "lazy_widget.py").write_text("from torch import nn\n\nclass Widget(nn.Identity):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("widget")
    registry.lazy("later", "lazy_widget.Widget")
    assert "later" in registry and registry.names() == ["later"]
    import sys

    assert "lazy_widget" not in sys.modules  # not imported until asked for
    cls = registry.get("later")
    assert cls.__name__ == "Widget" and cls.registry_name == "later"
    # the checkpoint encoder (in musictag.inference, above the stages) is named so
    assert "checkpoint_encoder" in FRONTENDS.names()
    assert FRONTENDS.get("checkpoint_encoder").__module__ == "musictag.inference.encoder"
