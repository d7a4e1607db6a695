"""The published recipes resolve to the published training setup (sota-music-tagging-models)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from musictag.cli import main
from musictag.models.export import CORPORA, RECIPE_ARCHS

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for corpus in CORPORA for p in (REPO / "experiments" / corpus).glob("*.yaml"))


def test_every_recipe_is_listed():
    assert len(RECIPES) == len(CORPORA) * len(RECIPE_ARCHS)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_print_config_shows_the_published_training(recipe, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["musictag"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={recipe}", "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    optimizer = config["model"]["init_args"]["optimizer"]
    assert optimizer["class_path"] == "torch.optim.Adam"
    assert optimizer["init_args"]["lr"] == 1e-4 and optimizer["init_args"]["weight_decay"] == 1e-4
    (schedule,) = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("ReferenceSchedule")]
    assert schedule["init_args"] == {
        "adam_epochs": 80,
        "sgd_lrs": [1e-3, 1e-4, 1e-5],
        "sgd_epochs": [20, 20],
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "count": "epochs",
        "monitor": "val/loss",
    }
    assert config["trainer"]["max_epochs"] == 200
    # the model tested is the best by validation loss, as the published evaluation loads it
    assert (config["checkpoint"]["monitor"], config["checkpoint"]["mode"]) == ("val/loss", "min")
    data = config["data"]["init_args"]
    assert (data["batch_size"], data["n_chunks"], data["chunk_mode"], data["train_crop"]) == (
        16,
        16,
        "sota",
        "random",
    )
    if recipe.parent.name == "msd":
        assert data["exclude_published_skips"] is True
    header = recipe.read_text().split("\nseed_everything")[0]
    assert "exactly 80 epochs" in header and "Deliberate differences:" in header


PROBES = sorted((REPO / "experiments" / "probe").glob("*/*.yaml"))


@pytest.mark.parametrize("recipe", PROBES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_probe_recipes_follow_marble(recipe, monkeypatch, capsys):
    """MARBLE's probe (its MTT and MTG configs, prober and split code): Adam 1e-3 without weight decay,
    ReduceLROnPlateau halving on val ROC-AUC after 3 epochs, early stopping after 10, 100 epochs, batch 64,
    an MLP of 512 with dropout 0.2 over the weighted transformer layers (not the input embedding)."""
    monkeypatch.setattr(sys, "argv", ["musictag"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={recipe}", "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    model = config["model"]["init_args"]
    assert model["optimizer"] == {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}} or (
        model["optimizer"]["init_args"]["lr"] == 1e-3
        and model["optimizer"]["init_args"].get("weight_decay", 0) == 0
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
