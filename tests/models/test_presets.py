from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from musictag.models import PRESETS, build

MODELS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "models"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_has_an_equal_yaml(name):
    config = yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text())
    init_args = config["model"]["init_args"]
    assert init_args.pop("arch") == name
    assert init_args == PRESETS[name].stages(), "run `make presets` after changing a preset"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_documents_itself_and_builds(name):
    preset = PRESETS[name]
    assert (
        preset.reference
        and preset.description
        and str(preset.input_len) in preset.description.replace(",", "")
    )
    if preset.params_at_50_tags is not None:
        assert build(name, n_tags=50).n_params() == preset.params_at_50_tags
    if preset.published_params is not None:
        n_outputs, count = preset.published_params
        assert build(name, n_tags=n_outputs).n_params() == count
