"""The ``data:`` section of a config, read as ``musictag fit`` reads it: the one loader of ``embed --data``
and ``prepare --config``.

jsonargparse (the parser under LightningCLI) reads the files, so a section means here what it means to
``fit``: jsonargparse resolves its ``class_path`` (a dotted path, or the name of a DataModule class), reads
a section given as a path (``data: ../mtat/data.yaml``) relative to the file that names it, resolves
``${...}`` as OmegaConf does, and lets later configs override earlier ones. A config's other sections
(``trainer:``, ``model:``, ...) are carried, not read; a file that is only a data section (``class_path:``
at its top) is read as one. A bad section is one line naming the files, the key and what to do.
"""

from __future__ import annotations

import difflib
import os
import re
from argparse import ArgumentError
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from musictag.guards import check_input_file
from musictag.types import ConfigError, Pathlike


def _data_module() -> type:
    from datamodules.base import TaggingDataModule  # lightning: imported when a config is read

    return TaggingDataModule


class DataConfig:
    """A read ``data:`` section, not yet built: its class path and every init arg (defaults filled in).

    ``source`` names where it came from in messages (the config files, or the flags that stand for one).
    """

    def __init__(self, parser: Any, namespace: Any, source: str, base: type) -> None:
        self._parser, self._namespace, self.source, self._base = parser, namespace, source, base

    @property
    def class_path(self) -> str:
        return str(self._namespace.data.class_path)

    @property
    def init_args(self) -> dict[str, Any]:
        return dict(self._namespace.data.init_args.as_dict())

    def with_args(self, **init_args: Any) -> DataConfig:
        """This section with ``init_args`` set (e.g. a command's ``--chunk-len``), checked as the files were."""
        namespace = _parsed(
            lambda: self._parser.parse_object({"data": {"init_args": init_args}}, cfg_base=self._namespace),
            self.source,
            self._base,
        )
        return DataConfig(self._parser, namespace, self.source, self._base)

    def build(self) -> Any:
        """The DataModule (its constructor may read the corpus metadata). A :class:`ConfigError` or an
        ``OSError`` of the constructor is raised as it is, not in jsonargparse's wrapping."""
        instantiate = getattr(self._parser, "instantiate", None) or self._parser.instantiate_classes
        try:
            return instantiate(self._namespace).data
        except Exception as err:
            cause = _user_error_in(err)
            if cause is None:  # a bug: keep its traceback
                raise
            raise cause from None


def read_data_config(
    configs: Sequence[Pathlike],
    what: str = "--data",
    args: Sequence[str] = (),
    base: type | None = None,
) -> DataConfig:
    """The ``data:`` section of ``configs`` (fit configs or data-only files; later ones win), then of
    ``args`` (``--data.init_args.X=V`` as on ``fit``'s command line), of a subclass of ``base`` (default:
    any musictag DataModule).

    ``what`` is the option that named the files (for messages about a file that cannot be read).
    """
    base = base or _data_module()
    argv: list[str] = []
    others: set[str] = set()
    for path in configs:
        check_input_file(path, what)
        top = _top_level(path, what)
        if "class_path" in top and "data" not in top:
            argv.append(f"--data={os.fspath(path)}")  # a file that is only the section
        else:
            argv.append(f"--config={os.fspath(path)}")
            others |= set(top) - {"data"}
    source = " + ".join(os.fspath(p) for p in configs) or "the command line"
    parser = _parser(base, others)
    namespace = _parsed(lambda: parser.parse_args([*argv, *args]), source, base)
    nested = namespace.data.get("__path__")  # the file of a section given by path: where its keys are
    if nested is not None and os.path.realpath(nested.absolute) not in map(os.path.realpath, configs):
        source = f"{source} (data: {nested.relative})"
    return DataConfig(parser, namespace, source, base)


def data_config_of(section: Mapping[str, Any], source: str, base: type | None = None) -> DataConfig:
    """A ``data:`` section given as a mapping (``{"class_path": ..., "init_args": {...}}``), read as a
    config's is; ``source`` names it in messages."""
    base = base or _data_module()
    parser = _parser(base, set())
    namespace = _parsed(lambda: parser.parse_object({"data": dict(section)}), source, base)
    return DataConfig(parser, namespace, source, base)


def _top_level(path: Pathlike, what: str) -> dict[str, Any]:
    """The top-level keys of a YAML config (to carry the sections that are not ``data:``)."""
    import yaml

    try:
        with open(path) as f:
            top = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{what} {path} is not a readable YAML config: {first}") from None
    if not isinstance(top, dict):
        raise ConfigError(f"{what} {path} is not a YAML mapping of sections; {_NO_DATA_HINT}")
    return top


_NO_DATA_HINT = (
    "give a config with a data section (data: {class_path: datamodules.MTATDataModule, init_args: ...}, "
    "or data: a file that holds one)"
)


def _parser(base: type, others: set[str]) -> Any:
    from jsonargparse import SUPPRESS, ArgumentParser

    parser = ArgumentParser(exit_on_error=False, parser_mode="omegaconf")  # as MusictagCLI's
    parser.add_argument("--config", action="config")
    parser.add_subclass_arguments(base, "data", required=True)
    for key in sorted(others):
        if key.isidentifier() and key != "config":
            parser.add_argument(f"--{key}", type=Any, help=SUPPRESS)  # carried, not read
    return parser


def _parsed(parse: Callable[[], Any], source: str, base: type) -> Any:
    try:
        return parse()
    except ArgumentError as err:
        raise ConfigError(data_error(str(err), source, base)) from None
    except Exception as err:
        if not type(err).__module__.startswith("omegaconf"):
            raise
        # an interpolation that cannot be resolved: "Interpolation key 'x' not found ... full_key: data..."
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None)
        raise ConfigError(
            f"{source}: {f'{key}: ' if key else ''}{lines[0] if lines else type(err).__name__}"
        ) from None


def data_error(message: str, source: str, base: type) -> str:
    """jsonargparse's report of a bad ``data:`` section as one line naming ``source``, the key and what
    to do."""
    class_path = _found(r"Problem with given class_path '([^']+)'", message)
    if re.search(r"the following arguments are required: .*\bdata\b", message) and not class_path:
        return f"{source} has no data section with a class_path; {_NO_DATA_HINT}"
    unknown = _found(r"Option '([^']+)' is not accepted", message)
    required = _found(r"the following arguments are required: (.+)", message)
    if class_path and (unknown or required):
        takes = _arguments_of(class_path, base)
        where = f"{source}: data.init_args of {class_path}"
        if required:
            return f"{where}: {required} must be set (it takes {', '.join(takes)})"
        assert unknown is not None
        unknown = unknown.removeprefix("init_args.")
        close = difflib.get_close_matches(unknown, takes, n=1)
        return (
            f"{where}: no argument {unknown!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; it takes {', '.join(takes)}"
        )
    wrong_class = _found(r"Import path (\S+) does not correspond to a subclass of", message)
    if wrong_class:
        return f"{source}: data class_path {wrong_class!r} is not {_kind(base)}"
    not_found = _found(r"Expected a path but (.+?) either not accessible or invalid", message)
    if not_found:
        return (
            f"{source}: data: {not_found!r} is neither a config file (a path is read relative to the file "
            f"that names it) nor a class path; give a file that exists, or {_kind(base)}"
        )
    unknown_name = _found(r"Expected a dot import path string: (\S+)", message)
    if unknown_name:
        return f"{source}: data class_path {unknown_name!r} names no known class; give {_kind(base)}"
    if class_path:
        tail = message.split(f"Problem with given class_path '{class_path}':", 1)[1]
        if "Parser key" in tail:  # a value of the wrong type: the key, the class and jsonargparse's reason
            tail = tail.split("- Expected a <class 'NoneType'>")[0]  # the section may be null: not the point
            return f"{source}: data.init_args.{_one_line(tail)} ({class_path})"
        reason = next(line.strip() for line in tail.splitlines() if line.strip())
        # the class itself
        return f"{source}: cannot import data class_path {class_path!r}: {reason}; give {_kind(base)}"
    return f"{source}: {re.sub(r'^data[.](?!init_args[.])', 'data.init_args.', _one_line(message))}"


def _one_line(message: str) -> str:
    from musictag.cli.lightning_cli import one_line_parse_error  # fit's own wording of the same reports

    return one_line_parse_error(message)


def _found(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1).strip() if match else None


def _kind(base: type) -> str:
    """What a class path must name, with examples."""
    if base is _data_module():
        return "a musictag DataModule (e.g. datamodules.MTATDataModule, datamodules.FolderDataModule)"
    from datamodules.corpora import DATAMODULES

    examples = ", ".join(f"datamodules.{cls.__name__}" for cls in DATAMODULES.values())
    return f"a {base.__name__} ({examples})"


def _arguments_of(class_path: str, base: type) -> list[str]:
    from musictag.stages.registry import import_class

    return init_arg_names(import_class(class_path, "data class_path", base))


def init_arg_names(cls: type) -> list[str]:
    """The init args jsonargparse takes for ``cls`` (its own and those its ``**kwargs`` reach)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls)
    return list(parser.get_defaults().keys())


def _user_error_in(err: BaseException) -> BaseException | None:
    """The :class:`ConfigError` or ``OSError`` behind ``err`` (jsonargparse wraps what a constructor raised)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, (ConfigError, OSError)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
