"""What ``musictag embed`` checks of its data config: the DataModule of its ``data:`` section. (Its
``--out`` folder, numbers and the settings of a cache already there are checked where the cache is
written, :mod:`datamodules.embedding_writer`.)
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from musictag.guards import check_input_file
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
