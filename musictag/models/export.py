"""Write every preset as ``experiments/models/<name>.yaml`` (``make presets``); a test keeps them equal."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from musictag.models.presets import FACTORIES, Preset, get_preset, preset_names


def _flow(value: object) -> str:
    """A stage spec as one line of YAML flow style (JSON is valid YAML)."""
    return json.dumps(value).replace('"', "")


def preset_yaml(preset: Preset) -> str:
    comment = [f"{preset.name} — {preset.reference}", "", preset.description]
    if preset.notes:
        comment += ["", f"Note: {preset.notes}"]
    if preset.params_at_50_tags:
        comment += [f"Parameters at 50 tags: {preset.params_at_50_tags:,}."]
    if preset.published_params:
        comment += [f"Parameters at {preset.published_params[0]} outputs: {preset.published_params[1]:,}."]
    comment += ["Compose with a corpus config: musictag fit --config <this file> --config <data config>"]
    lines = []
    for paragraph in comment:
        lines += ["#"] if not paragraph else ["# " + line for line in textwrap.wrap(paragraph, 100)]
    lines += ["model:", "  class_path: musictag.TaggingModule", "  init_args:", f"    arch: {preset.name}"]
    if preset.name in FACTORIES:
        lines.append("    arch_args: {param_budget: 1000000}  # the stages below are this budget's")
    for key, value in preset.stages().items():
        lines.append(f"    {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def main(directory: str = "experiments/models") -> None:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = preset_names()
    for name in names:
        (out / f"{name}.yaml").write_text(preset_yaml(get_preset(name)))
    print(f"wrote {len(names)} presets to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
