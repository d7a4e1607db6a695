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
