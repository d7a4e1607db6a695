"""The published recipes: a few lines each that compose the shared files of experiments/published/ by
path, and resolve, as `musictag fit` reads them, to the published training setup
(sota-music-tagging-models) and to what the generated recipes of main 2026-12-03 resolved to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from helpers.cli import musictag_process, run_musictag
from musictag.cli.lightning_cli import resolved_config
from musictag.models.presets import get_preset
from musictag.types import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
ARCHS = (
    "fcn", "musicnn", "crnn", "sample_cnn", "sample_cnn_se", "short_chunk", "short_chunk_res", "cnnsa",
    "harmonic_cnn", "transformer",
)  # fmt: skip
#: Each corpus's data section as the recipes set it: the class and the corpus's own arguments.
CORPUS_DATA = {
    "mtat": ("datamodules.MTATDataModule", {"audio_root": "data/mtat/audio", "split": "clean"}),
    "msd": (
        "datamodules.MSDDataModule",
        {
            "audio_root": "data/msd/7digital",
            "metadata_dir": "data/msd/metadata",
            "exclude_published_skips": True,
        },
    ),
    "jamendo": (
        "datamodules.JamendoDataModule",
        {
            "audio_root": "data/mtg-jamendo/audio",
            "splits_dir": "data/mtg-jamendo/data/splits",
            "split": 0,
            "subset": "top50tags",
        },
    ),
}
RECIPES = [f"{corpus}/{arch}" for corpus in CORPUS_DATA for arch in ARCHS]
#: Recipes as main 2026-12-03 generated them (export.recipe_yaml), kept as they were written.
GENERATED_BEFORE = Path(__file__).parent / "fixtures" / "recipes-2026-12-03"


def arch_of(recipe: str) -> str:
    """The preset a recipe trains: its file name, but for the MSD's wider MusiCNN."""
    return "musicnn_msd" if recipe == "msd/musicnn" else recipe.split("/")[1]


#: Recipes of a corpus folder that train no network preset (the classical floor; tests/test_codebook.py).
CLASSICAL = {"mtat": ("mfcc_codebook",)}


def test_every_corpus_folder_holds_the_ten_recipes():
    for corpus in CORPUS_DATA:
        expected = sorted((*ARCHS, *CLASSICAL.get(corpus, ())))
        assert sorted(p.stem for p in (EXPERIMENTS / corpus).glob("*.yaml")) == expected, corpus


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_resolves_to_the_published_training(recipe):
    corpus = recipe.split("/")[0]
    arch = arch_of(recipe)
    rate = 22050 if arch == "transformer" else 16000
    config = resolved_config(EXPERIMENTS / f"{recipe}.yaml")
    assert config["seed_everything"] == 0
    assert config["run"]["name"] == f"{corpus}-{arch}"
    model = config["model"]
    assert model["class_path"] == "musictag.TaggingModule" and model["init_args"]["arch"] == arch
    optimizer = model["init_args"]["optimizer"]
    assert optimizer["class_path"] == "torch.optim.Adam"
    assert (optimizer["init_args"]["lr"], optimizer["init_args"]["weight_decay"]) == (1e-4, 1e-4)
    trainer = config["trainer"]
    assert (trainer["max_epochs"], trainer["log_every_n_steps"]) == (200, 50)
    assert trainer["callbacks"] == [
        {
            "class_path": "musictag.training.schedules.ReferenceSchedule",
            "init_args": {
                "adam_epochs": 80,
                "sgd_lrs": [1e-3, 1e-4, 1e-5],
                "sgd_epochs": [20, 20],
                "momentum": 0.9,
                "weight_decay": 1e-4,
                "count": "epochs",
                "monitor": "val/loss",
            },
        }
    ]
    # the model tested is the best by validation loss, as the published evaluation loads it
    assert (config["checkpoint"]["monitor"], config["checkpoint"]["mode"]) == ("val/loss", "min")
    data_class, corpus_args = CORPUS_DATA[corpus]
    assert config["data"]["class_path"] == data_class
    expected = {
        **corpus_args,
        "cache_dir": f"data/{corpus}/cache-{rate // 1000}k",
        "batch_size": 16,
        "n_chunks": 16,
        "chunk_mode": "sota",
        "train_crop": "random",
        "num_workers": 4,
        "sample_rate": rate,
    }
    data = config["data"]["init_args"]
    assert {key: data[key] for key in expected} == expected
    assert rate == get_preset(arch).sample_rate  # the data at the model's rate


@pytest.mark.parametrize("before", sorted(GENERATED_BEFORE.glob("*.yaml")), ids=lambda p: p.stem)
def test_a_recipe_resolves_as_its_generated_file_did(before):
    """Nothing a user runs changed: the composed recipe and the file main generated before resolve to the
    same config, every default included."""
    recipe = EXPERIMENTS / before.stem.replace("-", "/", 1)
    assert resolved_config(recipe.with_suffix(".yaml")) == resolved_config(before)


def test_the_22k_data_of_a_corpus_is_its_16k_data_at_another_rate():
    for corpus in CORPUS_DATA:
        at_16k = resolved_config(EXPERIMENTS / corpus / "fcn.yaml")["data"]
        at_22k = resolved_config(EXPERIMENTS / corpus / "transformer.yaml")["data"]
        assert at_22k["class_path"] == at_16k["class_path"]
        changed = {k for k in at_16k["init_args"] if at_16k["init_args"][k] != at_22k["init_args"][k]}
        assert changed == {"cache_dir", "sample_rate"}, corpus


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_says_only_what_differs(recipe):
    text = (EXPERIMENTS / f"{recipe}.yaml").read_text()
    settings = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(settings) <= 15, settings
    top = yaml.safe_load(text)
    # the published parts are named by path (relative to the recipe), not copied
    assert top["trainer"] == "../published/trainer.yaml"
    assert top["checkpoint"] == "../published/checkpoint.yaml"
    assert top["model"]["init_args"]["optimizer"] == "../published/adam.yaml"
    assert top["data"].startswith("../published/corpora/")
    header = text.split("\nseed_everything")[0]
    preset = get_preset(arch_of(recipe))
    assert f"../models/{preset.name}.yaml" in header and f"{preset.input_len:,} samples" in header
    assert f"musictag fit  --config experiments/{recipe}.yaml" in header
    assert top["data"][len("../") :] in header  # where to set the corpus paths


def test_every_shared_file_is_used_and_says_what_it_reproduces():
    named = set()
    for recipe in RECIPES:
        top = yaml.safe_load((EXPERIMENTS / f"{recipe}.yaml").read_text())
        paths = [top["trainer"], top["checkpoint"], top["model"]["init_args"]["optimizer"], top["data"]]
        named |= {(EXPERIMENTS / recipe).parent.joinpath(p).resolve() for p in paths}
    shared = {p.resolve() for p in (EXPERIMENTS / "published").rglob("*.yaml")}
    assert named == shared
    for path in shared:
        assert path.read_text().startswith("# "), f"{path}: the header says what it reproduces"
    schedule = (EXPERIMENTS / "published" / "trainer.yaml").read_text()
    assert "exactly 80 epochs" in schedule and "Deliberate differences:" in schedule


def test_print_config_from_another_folder_shows_the_composed_recipe(tmp_path):
    """`musictag fit --config experiments/mtat/fcn.yaml --print_config`, with the path given relative to
    another working folder: the shared files are found relative to the recipe, not to that folder."""
    recipe = os.path.relpath(EXPERIMENTS / "mtat" / "fcn.yaml", tmp_path)
    result = musictag_process(["fit", f"--config={recipe}", "--print_config"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == resolved_config(GENERATED_BEFORE / "mtat-fcn.yaml")


def test_later_configs_and_flags_override_the_shared_files():
    config = resolved_config(
        EXPERIMENTS / "msd" / "fcn.yaml",
        EXPERIMENTS / "presets" / "ddp.yaml",
        args=["--data.init_args.audio_root=/corpora/msd", "--trainer.max_epochs=3"],
    )
    assert config["data"]["init_args"]["audio_root"] == "/corpora/msd"
    assert config["data"]["init_args"]["metadata_dir"] == "data/msd/metadata"  # the rest of the file
    assert config["trainer"]["max_epochs"] == 3 and config["trainer"]["strategy"] == "ddp"
    assert config["trainer"]["callbacks"][0]["init_args"]["adam_epochs"] == 80


def test_a_shared_file_that_is_not_there_is_one_line(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "trainer: ../published/trainer.yaml\nmodel: {class_path: musictag.TaggingModule, init_args: {arch: fcn}}\n"
    )
    code, out, err = run_musictag(["fit", f"--config={recipe}"], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "musictag: error: trainer: no config file '../published/trainer.yaml' (a path in a config is read "
        "relative to the file that names it) (`musictag fit --help` lists the options)"
    ]
    recipe.write_text("data: ../published/corpora/mtat-16k.yaml\n")
    with pytest.raises(ConfigError, match=r"^data: no config file '../published/corpora/mtat-16k.yaml'"):
        resolved_config(recipe)


def test_a_bad_value_in_a_shared_file_names_the_file(tmp_path):
    (tmp_path / "trainer.yaml").write_text("max_epochs: many\n")
    (tmp_path / "recipe.yaml").write_text("trainer: trainer.yaml\n")
    with pytest.raises(ConfigError) as error:
        resolved_config(tmp_path / "recipe.yaml")
    assert str(error.value) == "trainer.max_epochs: in trainer.yaml: Expected a <class 'int'>; got 'many'"


MARBLE = EXPERIMENTS / "probe" / "marble"  # the training every probe shares, named by path
PROBES = sorted(p for p in (EXPERIMENTS / "probe").glob("*/*.yaml") if p.parent != MARBLE)


def test_probes_name_marble_s_shared_files_and_every_one_is_used():
    named = set()
    for probe in PROBES:
        top = yaml.safe_load(probe.read_text())
        model = top["model"]["init_args"]
        paths = [top["trainer"], top["checkpoint"], model["optimizer"], model["lr_scheduler"]]
        assert paths == [f"../marble/{name}.yaml" for name in ("trainer", "checkpoint", "adam", "plateau")]
        named |= {probe.parent.joinpath(path).resolve() for path in paths}
    shared = {p.resolve() for p in MARBLE.glob("*.yaml")}
    assert named == shared
    for path in shared:
        assert path.read_text().startswith("# "), f"{path}: the header says what it reproduces"


@pytest.mark.parametrize("recipe", PROBES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_probe_recipes_follow_marble(recipe):
    """MARBLE's probe (its MTT and MTG configs, prober and split code): Adam 1e-3 without weight decay,
    ReduceLROnPlateau halving on val ROC-AUC after 3 epochs, early stopping after 10, 100 epochs, batch 64,
    an MLP of 512 with dropout 0.2 over the weighted transformer layers (not the input embedding)."""
    config = resolved_config(recipe)
    model = config["model"]["init_args"]
    assert model["optimizer"]["class_path"] == "torch.optim.Adam"
    assert (
        model["optimizer"]["init_args"]["lr"] == 1e-3 and model["optimizer"]["init_args"]["weight_decay"] == 0
    )
    schedule = model["lr_scheduler"]
    assert schedule["class_path"].endswith("ReduceLROnPlateau")
    assert {k: schedule["init_args"][k] for k in ("mode", "factor", "patience")} == {
        "mode": "max",
        "factor": 0.5,
        "patience": 3,
    }
    assert model["lr_scheduler_monitor"] == "val/roc_auc"
    (stop,) = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("EarlyStopping")]
    assert (stop["init_args"]["monitor"], stop["init_args"]["mode"], stop["init_args"]["patience"]) == (
        "val/roc_auc",
        "max",
        10,
    )
    assert (config["checkpoint"]["monitor"], config["checkpoint"]["mode"]) == ("val/roc_auc", "max")
    assert config["trainer"]["max_epochs"] == 100 and config["data"]["init_args"]["batch_size"] == 64
    assert model["head"] == {"name": "mlp", "hidden": [512], "batch_norm": False, "dropout": 0.2}
    stage = model["frontend"] if model["representation"] == "waveform" else model["representation"]
    mix = model["frontend"].get("mix")
    if mix == "weighted":  # MARBLE's `layer: all` is the transformer layers: hidden state 0 is left out
        assert stage["layers"][0] == 1 and stage["layers"] == list(range(1, len(stage["layers"]) + 1))
    data = config["data"]["init_args"]
    if recipe.parent.name == "mtat" and recipe.stem.startswith("live"):
        assert data["split"] == "all"  # every clip by its folder, untagged clips kept
    if recipe.parent.name == "jamendo":
        assert model["aggregate"] == "logit_mean"
        if not recipe.stem.startswith("live"):
            assert data["train_chunks"] == "all"


def test_the_recipe_shown_in_the_training_docs_is_the_file():
    page = (REPO / "docs" / "training.md").read_text()
    recipe = (EXPERIMENTS / "mtat" / "fcn.yaml").read_text()
    settings = "\n".join(line for line in recipe.splitlines() if not line.startswith("#"))
    assert f"```yaml\n{settings}\n```" in page
