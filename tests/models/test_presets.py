from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from musictag.models import FACTORIES, available, build, get_preset

MODELS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "models"


def test_every_yaml_is_a_preset_or_the_custom_example():
    names = {p.stem for p in MODELS_DIR.glob("*.yaml")}
    assert names == set(available()) | {"custom_example"}


@pytest.mark.parametrize("name", available())
def test_every_preset_has_an_equal_yaml(name):
    config = yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text())
    init_args = config["model"]["init_args"]
    assert init_args.pop("arch") == name
    arch_args = init_args.pop("arch_args", {})
    assert (name in FACTORIES) == bool(arch_args)
    assert init_args == get_preset(name, **arch_args).stages(), "run `make presets` after changing a preset"


@pytest.mark.parametrize("name", available())
def test_every_preset_documents_itself_and_builds(name):
    preset = get_preset(name)
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


def test_a_composition_that_is_no_preset_builds_from_yaml(tiny_corpus, tmp_path, monkeypatch):
    """experiments/models/custom_example.yaml composes stages of three presets; it trains a step."""
    import sys

    from musictag.cli import main
    from musictag.testing import tiny_synthetic_args

    monkeypatch.setattr(sys, "argv", ["musictag"])
    data_args = [f"--data.init_args.{k}={v}" for k, v in tiny_synthetic_args(str(tiny_corpus)).items()]
    main(
        [
            "fit",
            f"--config={MODELS_DIR / 'custom_example.yaml'}",
            "--data=datamodules.SyntheticDataModule",
            *data_args,
            "--trainer.fast_dev_run=true",
            "--trainer.accelerator=cpu",
            f"--run.save_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert not (Path.cwd() / "checkpoints").exists()


def test_only_the_model_files_are_generated():
    """What `make presets` writes says so in its first line; nothing else in experiments/ does (the
    recipes are hand-written compositions, tests/test_recipes.py)."""
    from musictag.models.export import GENERATED

    generated = {p for p in MODELS_DIR.parent.rglob("*.yaml") if p.read_text().startswith(GENERATED + "\n")}
    assert generated == {MODELS_DIR / f"{name}.yaml" for name in available()}


def test_model_files_are_generated_from_the_presets():
    from musictag.models.export import GENERATED, preset_yaml
    from musictag.models.presets import get_preset, preset_names

    for name in preset_names():
        path = MODELS_DIR / f"{name}.yaml"
        assert path.read_text() == preset_yaml(get_preset(name)), f"{path}: run `make presets`"
        assert path.read_text().startswith(GENERATED + "\n")
        init_args = yaml.safe_load(path.read_text())["model"]["init_args"]
        assert {k: init_args[k] for k in get_preset(name).stages()} == get_preset(name).stages()


def test_config_files_quote_what_yaml_would_misread():
    """Values that hand-built YAML breaks (a colon, a leading '#', 'yes', a number-like string) survive."""
    from musictag.models.export import GENERATED, config_yaml

    tricky = {
        "a": "key: value",
        "b": "# not a comment",
        "c": "yes",
        "d": "1e-4",
        "e": "",
        "f": ["x, y", "[z]"],
    }
    text = config_yaml(
        ["a comment: with a colon"], {"model": {"init_args": tricky, "pools": [[2, 4], [3, 5]]}}
    )
    assert text.startswith(GENERATED + "\n#\n# a comment: with a colon\n")
    assert yaml.safe_load(text) == {"model": {"init_args": tricky, "pools": [[2, 4], [3, 5]]}}
