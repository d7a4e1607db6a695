"""Write every preset as ``experiments/models/<name>.yaml`` and the published recipes as
``experiments/<corpus>/<arch>.yaml`` (``make presets``); tests keep them equal to this code."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from musictag.models.presets import FACTORIES, Preset, get_preset, preset_names


class _ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper (plain data only, quoting what needs it, floats with a dot: ``1.0e-05``),
    with lists of plain values on one line (``channels: [32, 64]``) and mappings in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in data) or all(
        isinstance(item, list) and all(not isinstance(x, (dict, list)) for x in item) for item in data
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ConfigDumper.add_representer(list, _represent_list)


def config_yaml(comment: list[str], config: dict[str, Any]) -> str:
    """A config file: ``comment`` lines as ``#`` comments, then ``config`` written by PyYAML's safe dumper
    in the given key order."""
    lines = [f"# {line}".rstrip() for line in comment]
    body = yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False, width=110)
    return "\n".join(lines) + "\n" + body


def preset_yaml(preset: Preset) -> str:
    comment = [f"{preset.name} — {preset.reference}", "", preset.description]
    if preset.notes:
        comment += ["", f"Note: {preset.notes}"]
    if preset.params_at_50_tags:
        comment += [f"Parameters at 50 tags: {preset.params_at_50_tags:,}."]
    if preset.published_params:
        comment += [f"Parameters at {preset.published_params[0]} outputs: {preset.published_params[1]:,}."]
    if preset.name in FACTORIES:
        comment += ["The stages below are those of arch_args' budget (param_budget: 1000000)."]
    comment += ["Compose with a corpus config: musictag fit --config <this file> --config <data config>"]
    lines: list[str] = []
    for paragraph in comment:
        lines += [""] if not paragraph else textwrap.wrap(paragraph, 100)
    init_args: dict[str, Any] = {"arch": preset.name}
    if preset.name in FACTORIES:
        init_args["arch_args"] = {"param_budget": 1_000_000}
    init_args.update(preset.stages())
    return config_yaml(lines, {"model": {"class_path": "musictag.TaggingModule", "init_args": init_args}})


#: The architectures of the published benchmark (Won et al. 2020) and the Music Tagging Transformer.
RECIPE_ARCHS = (
    "fcn", "musicnn", "crnn", "sample_cnn", "sample_cnn_se", "short_chunk", "short_chunk_res", "cnnsa",
    "harmonic_cnn", "transformer",
)  # fmt: skip
CORPORA: dict[str, tuple[str, str, dict[str, Any]]] = {
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


#: What the published training code (sota-music-tagging-models, ``training/``) does, as a recipe sets it.
PUBLISHED_SCHEDULE = {
    "adam_epochs": 80,
    "sgd_lrs": [1.0e-3, 1.0e-4, 1.0e-5],
    "sgd_epochs": [20, 20],
    "momentum": 0.9,
    "weight_decay": 1.0e-4,
    "count": "epochs",
    "monitor": "val/loss",
}
PUBLISHED_ADAM = {"lr": 1.0e-4, "weight_decay": 1.0e-4}
PUBLISHED_EPOCHS = 200
PUBLISHED_BATCH = 16

#: Per-corpus lines of a recipe's header: what of the published data handling it reproduces.
CORPUS_NOTES = {
    "mtat": [
        "data: the clean split of the published lists (15,244 train / 1,529 valid / 4,332 test clips).",
    ],
    "msd": [
        "data: train = the first 201,680 ids of filtered_list_train.cP, valid = the other 11,774, test =",
        "  filtered_list_test.cP; the 55 ids the published code leaves out (broken previews) are left out",
        "  of every split (exclude_published_skips), so the test split has 28,434 songs as published.",
    ],
    "jamendo": [
        "data: split-0 of the top-50 subset (32,136 / 10,888 / 11,356 tracks); tags in alphabetical",
        "  order as the published code's LabelBinarizer.",
    ],
}

#: Architectures whose recipe is this suite's, not the published benchmark code's.
NOT_IN_PUBLISHED_CODE = {
    "transformer": "the Music Tagging Transformer (Won et al. 2021) is not in the published benchmark code;"
    " this recipe applies the benchmark's training to it at its own 22.05 kHz, 10 s input.",
}


def recipe_yaml(corpus: str, arch: str) -> str:
    """The published training recipe of ``arch`` on ``corpus`` as a LightningCLI config.

    The header lists the published settings the recipe reproduces and the deliberate differences.
    """
    title, data_class, data_args = CORPORA[corpus]
    if arch == "musicnn" and corpus == "msd":
        arch = "musicnn_msd"
    preset = get_preset(arch)
    rate = preset.sample_rate
    seconds = preset.input_len / rate
    data_args = {**data_args, **({"exclude_published_skips": True} if corpus == "msd" else {})}
    header = [
        f"{arch} on {title}: "
        + ("the published recipe" if arch not in NOT_IN_PUBLISHED_CODE else "the published training")
        + " (Won et al. 2020, sota-music-tagging-models).",
        "Published settings reproduced here:",
        f"- input: {rate / 1000:g} kHz mono, chunks of {preset.input_len:,} samples ({seconds:.2f} s);"
        " training takes one random chunk",
        "  per song per epoch, shuffled, batch 16; loss binary cross-entropy on the sigmoid outputs.",
        "- optimizer: Adam lr 1e-4, weight decay 1e-4, for exactly 80 epochs; then, each time reloading the",
        "  best model so far by validation loss, SGD (Nesterov momentum 0.9, weight decay 1e-4) at 1e-3 for",
        "  20 epochs, 1e-4 for 20 epochs, 1e-5 to epoch 200. The stage counter counts epochs (count: epochs),",
        "  not epochs since the last improvement.",
        "- validation every epoch: 16 chunks per song at hop (length - chunk) // 16 (chunk_mode: sota), the",
        "  loss of every chunk against its song's tags, song score = mean of the chunk probabilities,",
        "  ROC-AUC / PR-AUC macro over tags.",
        "- the model tested (best.ckpt) is the one with the lowest validation loss (checkpoint.monitor).",
        *(f"- {line}" if not line.startswith("  ") else line for line in CORPUS_NOTES[corpus]),
        "Deliberate differences:",
        "- the last incomplete training batch of an epoch is dropped (at most 15 songs of a shuffled epoch),",
        "  which keeps BatchNorm away from tiny batches; the published loader keeps it.",
        "- training chunks start anywhere in the decoded song (the published MTAT loader draws them within",
        "  the first 29 s; clips are 29.1 s).",
    ]
    if arch in NOT_IN_PUBLISHED_CODE:
        header += textwrap.wrap("- " + NOT_IN_PUBLISHED_CODE[arch], 100, subsequent_indent="  ")
    header += [
        "Set the data paths, then:",
        f"  musictag fit  --config experiments/{corpus}/{arch}.yaml",
        f"  musictag test --config experiments/{corpus}/{arch}.yaml --ckpt_path best",
    ]
    config: dict[str, Any] = {
        "seed_everything": 0,
        "run": {"name": f"{corpus}-{arch}"},
        "trainer": {
            "max_epochs": PUBLISHED_EPOCHS,
            "log_every_n_steps": 50,
            "callbacks": [
                {
                    "class_path": "musictag.training.schedules.ReferenceSchedule",
                    "init_args": dict(PUBLISHED_SCHEDULE),
                }
            ],
        },
        "checkpoint": {"monitor": "val/loss", "mode": "min"},
        "model": {
            "class_path": "musictag.TaggingModule",
            "init_args": {
                "arch": arch,
                "optimizer": {"class_path": "torch.optim.Adam", "init_args": dict(PUBLISHED_ADAM)},
            },
        },
        "data": {
            "class_path": data_class,
            "init_args": {
                "cache_dir": f"data/{corpus}/cache-{rate // 1000}k",
                **data_args,
                "batch_size": PUBLISHED_BATCH,
                "n_chunks": 16,
                "chunk_mode": "sota",
                "train_crop": "random",
                "num_workers": 4,
                "sample_rate": rate,
            },
        },
    }
    return config_yaml(header, config)


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
