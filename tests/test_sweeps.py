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
