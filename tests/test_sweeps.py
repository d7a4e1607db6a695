"""Every sweep in experiments/sweeps is a valid W&B sweep whose parameters the CLI parser accepts."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import yaml

from musictag.cli import main

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "sweeps").glob("*.yaml"))


def sampled_values(spec: dict) -> list:
    """Values a W&B agent may give a parameter: each listed value, or the ends and middle of a range."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    low, high = spec["min"], spec["max"]
    if spec.get("distribution", "").startswith("log"):
        return [low, math.sqrt(low * high), high]
    return [low, (low + high) / 2, high] if isinstance(low, float) else [low, high]


def test_there_are_sweeps():
    assert len(SWEEPS) >= 2


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_parameters_parse(path, monkeypatch, capsys):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["program"] == "musictag" and sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"]["name"].startswith("val/")
    command = sweep["command"]
    assert command[:2] == ["${env}", "musictag"] and command[2] in ("fit", "cv") and command[-1] == "${args}"
    fixed = command[3:-1]
    if command[2] == "cv":  # a cross-validation's folds: each run is the fit (and test) of one fold
        at = fixed.index("--folds")
        fixed = [*fixed[:at], f"--data.init_args.folds={fixed[at + 1]}", *fixed[at + 2 :]]
    samples = {name: sampled_values(spec) for name, spec in sweep["parameters"].items()}
    # one parse per sampled value of each parameter, the others at their first value (as `--key=value`)
    combos = [{name: values[0] for name, values in samples.items()}]
    for name, values in samples.items():
        combos += [{**combos[0], name: value} for value in values[1:]]
    monkeypatch.setattr(sys, "argv", ["musictag"])
    for combo in combos:
        args = [*fixed, *(f"--{name}={value}" for name, value in combo.items()), "--print_config"]
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", *args])
        assert exit_info.value.code == 0, args
        printed = yaml.safe_load(capsys.readouterr().out)
        for name, value in combo.items():
            node = printed
            for key in name.split("."):
                node = node[key]
            assert node == value, (name, node, value)


CHOI_SWEEP = Path(__file__).resolve().parents[1] / "experiments" / "sweeps" / "choi_budgets.yaml"


def _choi_sweep_model(monkeypatch, capsys) -> tuple[dict, list[tuple[str, int]]]:
    """The sweep's printed config (one parse: the fixed parameters and the first combination) and its
    grid's combinations (design, budget)."""
    import itertools

    from musictag.models.choi import BUDGETS, DESIGNS

    sweep = yaml.safe_load(CHOI_SWEEP.read_text())
    assert sweep["method"] == "grid"
    params = sweep["parameters"]
    designs = params["model.init_args.arch"]["values"]
    budgets = params["model.init_args.arch_args.param_budget"]["values"]
    grid = [(n, s) for n, s in params.items() if "values" in s]
    assert math.prod(len(s["values"]) for _, s in grid) == 15  # the grid W&B runs: 3 designs x 5 budgets
    assert sorted(designs) == sorted(DESIGNS) and tuple(budgets) == BUDGETS
    fixed = {n: s["value"] for n, s in params.items() if "value" in s}
    first = {
        **fixed,
        "model.init_args.arch": designs[0],
        "model.init_args.arch_args.param_budget": budgets[0],
    }
    args = [*sweep["command"][3:-1], *(f"--{k}={v}" for k, v in first.items()), "--print_config"]
    monkeypatch.setattr(sys, "argv", ["musictag"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    return printed, list(itertools.product(designs, budgets))


def _resolved_params(model_args: dict, design: str, budget: int, n_tags: int) -> int:
    """Parameters of the model the printed config builds with the combination (design, budget)."""
    import torch

    from musictag.models import STAGE_KEYS, Tagger, resolve_architecture

    overrides = {k: model_args.get(k) for k in STAGE_KEYS}
    spec = resolve_architecture(
        design, {**(model_args.get("arch_args") or {}), "param_budget": budget}, **overrides
    )
    with torch.device("meta"):
        return Tagger(n_tags=n_tags, **spec).n_params()


def test_choi_budgets_sweep_leaves_the_model_to_the_design_and_budget(monkeypatch, capsys):
    """The fixed config names no stage (each run's network is the design at its budget), the data is the
    MSD top-50 at the designs' 12 kHz, and a combination's model is within 1% of its budget."""
    from musictag.models.choi import CHOI_INPUT

    printed, combinations = _choi_sweep_model(monkeypatch, capsys)
    model_args = printed["model"]["init_args"]
    assert {k: model_args.get(k) for k in ("representation", "frontend", "backend", "head")} == dict.fromkeys(
        ("representation", "frontend", "backend", "head")
    )
    assert printed["data"]["class_path"] == "datamodules.MSDDataModule"  # the last.fm top-50: 50 tags
    assert printed["data"]["init_args"]["sample_rate"] == CHOI_INPUT["sample_rate"]
    design, budget = "choi_conv2d", 100_000
    assert (design, budget) in combinations
    assert abs(_resolved_params(model_args, design, budget, 50) - budget) <= 0.01 * budget


@pytest.mark.slow  # scales 15 networks (a bisection over widths each)
def test_every_choi_budgets_combination_lands_within_one_percent(monkeypatch, capsys):
    printed, combinations = _choi_sweep_model(monkeypatch, capsys)
    for design, budget in combinations:
        count = _resolved_params(printed["model"]["init_args"], design, budget, 50)
        assert abs(count - budget) <= 0.01 * budget, (design, budget, count)
