"""What ``musictag embed`` checks before it writes anything: its data config, its ``--out`` folder
(new, empty or an embedding cache of its own: never a folder of the user's files nor an input), its
numbers, and the settings of a cache already there (a finished one is used again only if made as asked).
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

from musictag.guards import at_least, check_input_file
from musictag.types import ConfigError


def load_datamodule(config_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """The DataModule of a YAML config's ``data:`` section (or of a file that is only that section).

    A key the DataModule does not take (a typo in ``init_args``) is a one-line error naming the key and
    the file, not a ``TypeError`` traceback from the constructor.
    """
    from omegaconf import OmegaConf

    check_input_file(config_path, "--data")
    try:
        config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
    except Exception as err:  # noqa: BLE001  (yaml and omegaconf raise many kinds for a bad file)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--data {config_path} is not a readable YAML config: {first}") from None
    section = config.get("data", config) if isinstance(config, dict) else None
    if not isinstance(section, dict) or "class_path" not in section:
        raise ConfigError(
            f"{config_path} has no data section with a class_path (e.g. datamodules.MTATDataModule)"
        )
    module_name, _, name = section["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{config_path}: cannot import {section['class_path']!r}: {err}") from None
    from datamodules.base import TaggingDataModule

    if not (isinstance(cls, type) and issubclass(cls, TaggingDataModule)):
        raise ConfigError(
            f"{config_path}: data class_path {section['class_path']!r} is not a musictag DataModule "
            "(e.g. datamodules.FolderDataModule)"
        )
    init_args = section.get("init_args") or {}
    if not isinstance(init_args, dict):
        raise ConfigError(f"{config_path}: data.init_args must be a mapping of argument: value")
    try:
        return cls(**{**init_args, **(overrides or {})})
    except TypeError as err:
        if "argument" not in str(err):  # not a call mismatch: a bug, keep its traceback
            raise
        accepted = _accepted_arguments(cls)
        reason = re.sub(r"^[\w.]*__init__[(][)] ", "", str(err))  # "FolderDataModule.__init__() got ..."
        raise ConfigError(
            f"{config_path}: data.init_args of {section['class_path']}: "
            f"{reason}" + (f"; it takes {', '.join(accepted)}" if accepted else "")
        ) from None


def _accepted_arguments(cls: type) -> list[str]:
    """The keyword arguments of ``cls`` and of the bases its ``**kwargs`` reach (for the message)."""
    import inspect

    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        names += [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


#: The mark of a folder ``musictag embed`` writes (the first file it writes there).
MARK = ".musictag-embeddings"
SETTINGS = "settings.json"
#: Settings that decide what a finished cache holds; ``tracks_per_shard`` only decides how its rows are
#: split into files, so a finished cache is the same for any value of it.
CONTENT_SETTINGS = (
    "encoder",
    "layers",
    "time_pool",
    "encoder_batch",
    "batch_size",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
    "audio_cache",
)
#: The ``index.json`` entries that record a setting (a finished cache whose settings.json is gone).
INDEX_SETTINGS = (
    "layers",
    "time_pool",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
)


def is_embedding_dir(folder: Path) -> bool:
    """Whether ``folder`` is an embedding cache (finished or not) that ``musictag embed`` wrote."""
    from datamodules.embeddings import FORMAT, INDEX

    if (folder / MARK).is_file():
        return True
    for name, keys in ((INDEX, ("format",)), (SETTINGS, ("encoder", "tracks_per_shard", "layers"))):
        try:  # caches from before the mark: their index, or the settings.json of an unfinished one
            record = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and all(k in record for k in keys):
            if name == SETTINGS or record.get("format") == FORMAT:
                return True
    return False


def encoder_id(path: str) -> str:
    """The encoder as recorded: a local folder absolute with symlinks resolved (``./enc`` is ``enc``)."""
    expanded = os.path.expanduser(path)
    return os.path.realpath(expanded) if os.path.exists(expanded) else path


def data_paths(datamodule: Any) -> list[str]:
    """The files and folders a DataModule reads (its cache, audio and metadata): never an output."""
    names = (
        "cache_dir",
        "root",
        "audio_root",
        "csv",
        "annotations",
        "metadata_dir",
        "splits_dir",
        "published_dir",
    )
    return [
        os.fspath(v)
        for v in (getattr(datamodule, n, None) for n in names)
        if isinstance(v, (str, os.PathLike))
    ]


def _differences(old: dict[str, Any], new: dict[str, Any], keys: Any) -> list[str]:
    """``"layers [0, 2] → [0, 1, 2]"`` for each of ``keys`` recorded in both that differs."""
    return [f"{k} {old[k]!r} → {new[k]!r}" for k in keys if k in old and k in new and old[k] != new[k]]


def check_embed_numbers(
    batch_size: int, tracks_per_shard: int, names: tuple[str, str] = ("batch_size", "tracks_per_shard")
) -> None:
    """Refuse a batch or shard size below 1 before anything is loaded or written."""
    at_least(names[0], batch_size, 1)
    at_least(names[1], tracks_per_shard, 1)


def check_settings(out: Path, settings: dict[str, Any]) -> bool:
    """Whether ``out`` holds a finished cache of ``settings`` (``False``: none, or one to resume).

    A finished cache made otherwise, or an unfinished one with other settings, is refused naming each
    setting that differs (old → new), so a rerun never returns a cache of another encoder, layers or
    chunking as if it were the one asked for.
    """
    from datamodules.embeddings import INDEX

    settings_path = out / SETTINGS
    earlier = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    if (out / INDEX).is_file():
        index = json.loads((out / INDEX).read_text())
        recorded = dict(earlier or {k: index[k] for k in INDEX_SETTINGS if k in index})
        if isinstance(recorded.get("encoder"), str):  # recorded as given before paths were resolved
            recorded["encoder"] = encoder_id(recorded["encoder"])
        differ = _differences(recorded, settings, CONTENT_SETTINGS)
        if differ:
            raise ConfigError(
                f"--out {out} holds a finished embedding cache made with other settings: {', '.join(differ)}; "
                f"remove {out} to embed it again with the new settings, or give another --out"
            )
        return True
    if earlier is not None:
        differ = _differences(earlier, settings, settings)
        if differ:
            raise ConfigError(
                f"{out} holds an unfinished embedding cache with other settings ({settings_path}: "
                f"{', '.join(differ)}); remove it or use another folder, or resume with its settings"
            )
    return False
