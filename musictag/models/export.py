"""Write every preset as ``experiments/models/<name>.yaml`` and the published recipes as
``experiments/<corpus>/<arch>.yaml`` (``make presets``); tests keep them equal to this code."""

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


#: The architectures of the published benchmark (Won et al. 2020) and the Music Tagging Transformer.
RECIPE_ARCHS = (
    "fcn", "musicnn", "crnn", "sample_cnn", "sample_cnn_se", "short_chunk", "short_chunk_res", "cnnsa",
    "harmonic_cnn", "transformer",
)  # fmt: skip
CORPORA = {
    "mtat": (
        "MagnaTagATune (clean split, top-50 tags)",
        "datamodules.MTATDataModule",
        {"audio_root": "data/mtat/audio", "split": "clean"},
    ),
    "msd": (
        "Million Song Dataset, last.fm top-50",
        "datamodules.MSDDataModule",
        {"audio_root": "data/msd/7digital", "metadata_dir": "data/msd/metadata"},
    ),
    "jamendo": (
        "MTG-Jamendo, split-0, top-50 tags",
        "datamodules.JamendoDataModule",
        {
            "audio_root": "data/mtg-jamendo/audio",
            "splits_dir": "data/mtg-jamendo/data/splits",
            "split": 0,
            "subset": "top50tags",
        },
    ),
}


def recipe_yaml(corpus: str, arch: str) -> str:
    """The published training recipe of ``arch`` on ``corpus`` as a LightningCLI config."""
    title, data_class, data_args = CORPORA[corpus]
    if arch == "musicnn" and corpus == "msd":
        arch = "musicnn_msd"
    preset = get_preset(arch)
    rate = preset.sample_rate
    lines = [
        f"# {arch} on {title}: the published recipe (Won et al. 2020): {rate / 1000:g} kHz audio, chunks of",
        f"# {preset.input_len:,} samples, batch 16, Adam lr 1e-4 then the reference SGD schedule; song-level evaluation of 16 chunks per song",
        "# placed as sota-music-tagging-models does, mean of the chunk probabilities.",
        "# Set the data paths, then:",
        f"#   musictag fit  --config experiments/{corpus}/{arch}.yaml",
        f"#   musictag test --config experiments/{corpus}/{arch}.yaml --ckpt_path best",
        "seed_everything: 0",
        f"run: {{name: {corpus}-{arch}}}",
        "trainer:",
        "  max_epochs: 200",
        "  log_every_n_steps: 50",
        "  callbacks:  # Adam until 80 epochs without a better val/loss, then SGD 1e-3 / 1e-4 / 1e-5",
        "    - class_path: musictag.schedules.ReferenceSchedule",
        "model:",
        "  class_path: musictag.TaggingModule",
        "  init_args:",
        f"    arch: {arch}",
        "    optimizer: {class_path: torch.optim.Adam, init_args: {lr: 1.0e-4}}",
        "data:",
        f"  class_path: {data_class}",
        "  init_args:",
        f"    cache_dir: data/{corpus}/cache-{rate // 1000}k",
    ]
    lines += [f"    {key}: {value}" for key, value in data_args.items()]
    lines += [
        "    batch_size: 16",
        "    n_chunks: 16",
        "    chunk_mode: sota",
        "    num_workers: 4",
        f"    sample_rate: {rate}",
    ]
    return "\n".join(lines) + "\n"


def main(directory: str = "experiments/models") -> None:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = preset_names()
    for name in names:
        (out / f"{name}.yaml").write_text(preset_yaml(get_preset(name)))
    print(f"wrote {len(names)} presets to {out}")
    for corpus in CORPORA:
        folder = out.parent / corpus
        folder.mkdir(exist_ok=True)
        for arch in RECIPE_ARCHS:
            (folder / f"{arch}.yaml").write_text(recipe_yaml(corpus, arch))
        print(f"wrote {len(RECIPE_ARCHS)} recipes to {folder}")


if __name__ == "__main__":
    main(*sys.argv[1:])
