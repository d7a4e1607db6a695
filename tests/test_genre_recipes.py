"""The genre recipes: experiments/ballroom/pons_*.yaml resolve (as `musictag fit --print_config` does) to
Pons et al. 2016's setup with the published parameter counts; experiments/gtzan/ trains a classifier."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from musictag.cli.lightning_cli import resolved_config
from musictag.models import Tagger, resolve_architecture
from musictag.models.presets import get_preset

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PONS = ("pons_blackbox", "pons_time", "pons_frequency", "pons_timefreq")
#: Table 1 of the paper: parameters at the 8 Ballroom classes.
PUBLISHED_COUNTS = {
    "pons_blackbox": 3_275_312,
    "pons_time": 7_336,
    "pons_frequency": 3_368,
    "pons_timefreq": 196_816,
}


def test_the_ballroom_folder_holds_the_four_designs():
    assert sorted(p.stem for p in (EXPERIMENTS / "ballroom").glob("*.yaml")) == sorted(PONS)


@pytest.mark.parametrize("arch", PONS)
def test_a_pons_recipe_resolves_to_the_paper_s_setup(arch):
    recipe = EXPERIMENTS / "ballroom" / f"{arch}.yaml"
    config = resolved_config(recipe)
    model = config["model"]["init_args"]
    assert (model["arch"], model["task"], model["aggregate"]) == (arch, "multiclass", "vote")
    rep = model["representation"]
    assert model["sample_rate"] == 44100 and rep["window"] == "blackman_harris"
    assert (rep["n_fft"], rep["hop_length"]) == (2048, 1024)  # 50 % overlap
    assert (rep["n_mels"], rep["power"], rep["compression"], rep["log1p_scale"]) == (
        40,
        1.0,
        "log1p",
        10000.0,
    )
    assert rep["standardize"] is True and rep["input_bn"] is False
    assert model["optimizer"] == {
        "class_path": "torch.optim.SGD",
        "init_args": {**model["optimizer"]["init_args"], "lr": 0.01, "momentum": 0.0, "weight_decay": 0.0},
    }
    scheduler = model["lr_scheduler"]
    assert scheduler["class_path"] == "torch.optim.lr_scheduler.ReduceLROnPlateau"
    assert (scheduler["init_args"]["factor"], scheduler["init_args"]["mode"]) == (0.5, "min")
    assert model["lr_scheduler_monitor"] == "train/loss"
    assert (config["checkpoint"]["monitor"], config["checkpoint"]["mode"]) == ("val/accuracy", "max")
    data = config["data"]
    assert data["class_path"] == "datamodules.BallroomDataModule"
    assert {k: data["init_args"][k] for k in ("batch_size", "sample_rate", "chunk_mode")} == {
        "batch_size": 10,
        "sample_rate": 44100,
        "chunk_mode": "sliding",
    }
    # built as fit builds it: 80 frames of 40 bands, and the paper's parameter count
    stages = {k: model[k] for k in ("representation", "input_len", "sample_rate")}
    net = Tagger(n_tags=8, **resolve_architecture(arch, None, **stages))
    assert net.representation.n_frames(model["input_len"]) == 80
    assert (
        sum(p.numel() for p in net.parameters())
        == PUBLISHED_COUNTS[arch]
        == get_preset(arch).published_params[1]
    )
    header = recipe.read_text().split("\nseed_everything")[0]
    assert (
        "Differs from the paper, and why:" in header
        and f"musictag cv   --config experiments/ballroom/{arch}.yaml" in header
    )


def test_the_shared_pons_files_are_used_and_say_what_they_reproduce():
    shared = {p.resolve() for p in (EXPERIMENTS / "ballroom" / "published").glob("*.yaml")}
    named = set()
    for arch in PONS:
        top = yaml.safe_load((EXPERIMENTS / "ballroom" / f"{arch}.yaml").read_text())
        init = top["model"]["init_args"]
        paths = [top["trainer"], top["checkpoint"], top["data"], init["optimizer"], init["lr_scheduler"]]
        named |= {(EXPERIMENTS / "ballroom" / p).resolve() for p in paths}
    assert named == shared
    for path in shared:
        assert path.read_text().startswith("# "), path


def test_the_gtzan_recipe_is_a_multiclass_run_on_the_filtered_split():
    config = resolved_config(EXPERIMENTS / "gtzan" / "short_chunk.yaml")
    model, data = config["model"]["init_args"], config["data"]
    assert (model["arch"], model["task"]) == ("short_chunk", "multiclass")
    assert data["class_path"] == "datamodules.GTZANDataModule" and data["init_args"]["split"] == "filtered"
    assert data["init_args"]["sample_rate"] == get_preset("short_chunk").sample_rate
    assert (config["checkpoint"]["monitor"], config["checkpoint"]["mode"]) == ("val/accuracy", "max")
