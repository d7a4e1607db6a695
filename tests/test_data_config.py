"""The one loader of a config's ``data:`` section (``embed --data``, ``prepare --config``): read by
jsonargparse as ``musictag fit`` reads it, composed by path from any working folder, and every bad
section one line naming the file, the key and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from datamodules.corpora import CorpusDataModule
from musictag.cli.data_config import data_config_of, read_data_config
from musictag.stages.registry import import_class
from musictag.types import ConfigError

REPO = Path(__file__).resolve().parents[1]
FOLDER = "datamodules.FolderDataModule"


def write(path: Path, config: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def section(**init_args: object) -> dict[str, object]:
    return {"class_path": FOLDER, "init_args": {"cache_dir": "cache", **init_args}}


def test_a_section_given_by_path_is_read_relative_to_the_file_that_names_it(tmp_path, monkeypatch):
    write(tmp_path / "corpora" / "folder.yaml", section(batch_size=4, n_chunks=3))
    recipe = write(
        tmp_path / "recipes" / "fit.yaml",
        {
            "seed_everything": 1,
            "trainer": {"max_epochs": 3},
            "model": "../models/x.yaml",
            "data": "../corpora/folder.yaml",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = read_data_config([Path("..") / "recipes" / "fit.yaml"])
    assert data.class_path == FOLDER
    assert (data.init_args["cache_dir"], data.init_args["batch_size"], data.init_args["n_chunks"]) == (
        "cache",
        4,
        3,
    )
    assert data.init_args["sample_rate"] == 16000  # the DataModule's defaults are filled in
    # the section file alone (class_path at its top) reads the same
    alone = read_data_config([tmp_path / "corpora" / "folder.yaml"])
    assert alone.init_args == data.init_args
    # messages name the recipe and the file that holds the section's keys
    assert data.source == f"{Path('..') / 'recipes' / 'fit.yaml'} (data: ../corpora/folder.yaml)"
    assert alone.source == str(tmp_path / "corpora" / "folder.yaml") and recipe.is_file()


def test_a_published_recipe_gives_its_data_section():
    data = read_data_config([REPO / "experiments" / "mtat" / "fcn.yaml"])
    assert data.class_path == "datamodules.MTATDataModule"
    init = data.init_args
    assert (init["cache_dir"], init["audio_root"], init["split"]) == (
        "data/mtat/cache-16k",
        "data/mtat/audio",
        "clean",
    )
    assert (init["batch_size"], init["n_chunks"], init["chunk_mode"], init["sample_rate"]) == (
        16,
        16,
        "sota",
        16000,
    )


def test_later_configs_overrides_and_interpolation_win_in_order(tmp_path):
    first = write(tmp_path / "a.yaml", {"data": section(batch_size=4, n_chunks=3)})
    second = write(
        tmp_path / "b.yaml", {"rate": 22050, "data": {"init_args": {"n_chunks": 5, "sample_rate": "${rate}"}}}
    )
    data = read_data_config([first, second], args=["--data.init_args.batch_size=8"])
    assert (data.init_args["batch_size"], data.init_args["n_chunks"], data.init_args["sample_rate"]) == (
        8,
        5,
        22050,
    )
    assert data.source == f"{first} + {second}"
    assert data.with_args(chunk_len=123).init_args["chunk_len"] == 123
    assert data.init_args["chunk_len"] is None  # with_args makes a new section


def test_build_gives_the_datamodule_and_its_own_errors_as_they_are(tmp_path):
    from datamodules.synthetic import SyntheticDataModule

    config = write(
        tmp_path / "s.yaml",
        {
            "data": {
                "class_path": "datamodules.SyntheticDataModule",
                "init_args": {"root": str(tmp_path / "s")},
            }
        },
    )
    datamodule = read_data_config([config]).with_args(n_clips=4).build()
    assert isinstance(datamodule, SyntheticDataModule) and datamodule.generator_args["n_clips"] == 4
    with pytest.raises(ConfigError, match=r"^n_chunks must be at least 1, got 0$"):
        read_data_config([config]).with_args(n_chunks=0).build()


@pytest.mark.parametrize(
    "config,message",
    [
        (
            {"data": {"class_path": "nowhere.DataModule"}},
            "{file}: cannot import data class_path 'nowhere.DataModule': No module named 'nowhere'",
        ),
        (
            {"data": {"class_path": "datamodules.NoSuchDataModule"}},
            "{file}: cannot import data class_path 'datamodules.NoSuchDataModule': module 'datamodules' has no "
            "attribute 'NoSuchDataModule'",
        ),
        (
            {"data": {"class_path": "musictag.TaggingModule"}},
            "{file}: data class_path 'musictag.TaggingModule' is not a musictag DataModule (e.g. "
            "datamodules.MTATDataModule, datamodules.FolderDataModule)",
        ),
        (
            {"data": {"class_path": "NoSuchDataModule"}},
            "{file}: data class_path 'NoSuchDataModule' names no known class; give a musictag DataModule",
        ),
        (
            {"data": section(n_chunkz=4)},
            "{file}: data.init_args of datamodules.FolderDataModule: no argument 'n_chunkz' (did you mean "
            "'n_chunks'?); it takes cache_dir, csv, audio_root, split_column,",
        ),
        (
            {"data": {"class_path": FOLDER, "init_args": {"csv": "tags.csv"}}},
            "{file}: data.init_args of datamodules.FolderDataModule: cache_dir must be set (it takes cache_dir,",
        ),
        (
            {"data": section(batch_size="many")},
            "{file}: data.init_args.batch_size: Expected a <class 'int'>. Got value: many "
            "(datamodules.FolderDataModule)",
        ),
        (
            {"trainer": {"max_epochs": 1}},
            "{file} has no data section with a class_path; give a config with a data section",
        ),
        ({"data": None}, "{file} has no data section with a class_path"),
        (
            {"data": "../nowhere/data.yaml"},
            "{file}: data: '../nowhere/data.yaml' is neither a config file (a path is read relative to the "
            "file that names it) nor a class path",
        ),
        (
            {"data": section(cache_dir="${nowhere}")},
            "{file}: data.init_args.cache_dir: Interpolation key 'nowhere' not found",
        ),
        ("data: {class_path: [unclosed\n", "--data {file} is not a readable YAML config: "),
        ("- data\n", "--data {file} is not a YAML mapping of sections"),
    ],
)
def test_a_bad_section_is_one_line_naming_the_file_and_the_key(tmp_path, config, message):
    path = write(tmp_path / "config" / "bad.yaml", config)
    with pytest.raises(ConfigError) as raised:
        read_data_config([path])
    text = str(raised.value)
    assert "\n" not in text and text.startswith(message.format(file=path)), text


def test_a_file_that_cannot_be_read_is_named_by_its_option(tmp_path):
    with pytest.raises(ConfigError, match=r"^--config .*missing\.yaml: no such file"):
        read_data_config([tmp_path / "missing.yaml"], "--config")


def test_a_subclass_can_be_required(tmp_path):
    config = write(
        tmp_path / "s.yaml",
        {"data": {"class_path": "datamodules.SyntheticDataModule", "init_args": {"root": "s"}}},
    )
    with pytest.raises(
        ConfigError,
        match=r"data class_path 'datamodules.SyntheticDataModule' is not a CorpusDataModule \(datamodules.MTATDataModule, ",
    ):
        read_data_config([config], base=CorpusDataModule)
    data = data_config_of(section(), "the flags", CorpusDataModule)
    assert data.source == "the flags" and data.init_args["cache_dir"] == "cache"


def test_stage_class_paths_are_imported_by_the_same_resolver():
    from torch import nn

    assert import_class("torch.nn.Linear", "back end class_path") is nn.Linear
    with pytest.raises(ConfigError, match=r"^cannot import back end class_path 'os.path.join': not a class$"):
        import_class("os.path.join", "back end class_path")
    with pytest.raises(
        ConfigError, match=r"^cannot import head class_path 'Linear': give the dotted import path"
    ):
        import_class("Linear", "head class_path")
    with pytest.raises(
        ConfigError, match=r"'musictag.TaggingModule': not a class derived from CorpusDataModule$"
    ):
        import_class("musictag.TaggingModule", "data class_path", CorpusDataModule)
