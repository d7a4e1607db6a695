"""Registries of model stages: representations, front ends, back ends and heads.

A registry maps a short name (``"mel"``, ``"global_max"``) to a stage class. It is a layer of names over
the classes, never a second way to build them: :meth:`Registry.build` calls the class constructor with
the configured keyword arguments plus the shape context the composing model supplies.

A stage is configured by a *spec*, any of::

    "global_max"                                        # a registered name, default arguments
    {"name": "conv2d_stack", "channels": [64, 128]}     # a registered name with arguments
    {"class_path": "my_pkg.MyBackEnd", "init_args": {...}}  # any importable stage class
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

# the errors live in musictag.types (datamodules raise them too); imported here for the stages' use
from musictag.types import ConfigError, UnknownNameError

StageSpec = str | dict[str, Any]
T = TypeVar("T", bound=type)


class Registry:
    """Names → stage classes for one kind of stage (e.g. ``"back end"``)."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@BACKENDS.register("global_max")``."""

        def decorator(cls: T) -> T:
            if name in self._classes and self._classes[name] is not cls:
                raise ConfigError(f"{self.kind} name {name!r} is already registered to {self._classes[name]}")
            self._classes[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def alias(self, old: str, new: str) -> None:
        """Keep an earlier name of a registered stage resolving (configs written before a rename); it is
        not listed by :meth:`names`."""
        if new not in self._classes:
            raise ConfigError(f"{self.kind} {new!r} is not registered: cannot alias {old!r} to it")
        self._aliases[old] = new

    def lazy(self, name: str, path: str) -> None:
        """Name a stage whose class lives above the stages (it is imported by ``path``, a dotted class
        path, when first built): e.g. a front end that loads a whole checkpoint."""
        self._lazy[name] = path

    def names(self) -> list[str]:
        return sorted({*self._classes, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._aliases or name in self._lazy

    def get(self, name: str) -> type:
        if name in self._lazy and name not in self._classes:
            cls = import_class(self._lazy[name], f"{self.kind} {name!r}")
            self._classes[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
        try:
            return self._classes[self._aliases.get(name, name)]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered {self.plural}: {', '.join(self.names())}"
            ) from None

    def resolve(self, spec: StageSpec | Any) -> tuple[type, dict[str, Any], str]:
        """Split a spec into (class, keyword arguments, display name)."""
        if isinstance(spec, str):
            return self.get(spec), {}, spec
        if isinstance(spec, Mapping):
            spec = dict(spec)
            if "class_path" in spec:
                cls = import_class(spec.pop("class_path"), f"{self.kind} class_path")
                kwargs = dict(spec.pop("init_args", None) or {})
                if spec:
                    raise ConfigError(
                        f"{self.kind} spec has unexpected keys {sorted(spec)} next to class_path"
                    )
                return cls, kwargs, getattr(cls, "registry_name", cls.__name__)
            if "name" not in spec:
                raise ConfigError(
                    f"{self.kind} spec {spec!r} needs a 'name' (one of: {', '.join(self.names())}) "
                    "or a 'class_path'"
                )
            name = spec.pop("name")
            return self.get(name), spec, name
        raise ConfigError(
            f"{self.kind} spec must be a name or a mapping with 'name', got {type(spec).__name__}: {spec!r}"
        )

    def build(self, spec: StageSpec, **context: Any) -> Any:
        """Instantiate the stage of ``spec``; ``context`` (shapes, rates) is passed where the class takes it."""
        cls, kwargs, name = self.resolve(spec)
        # a stage without its own __init__ takes no arguments (nn.Module's own is *args, **kwargs)
        own_init = any(
            "__init__" in vars(k) for k in cls.__mro__[:-1] if not k.__module__.startswith("torch")
        )
        params = inspect.signature(cls).parameters if own_init else {}
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [k for k in kwargs if k not in params and not accepts_any]
        if unknown:
            allowed = [k for k, p in params.items() if k not in context and p.kind is not p.VAR_POSITIONAL]
            raise ConfigError(
                f"{self.kind} {name!r} got unknown argument(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(allowed) or 'no arguments'}"
            )
        clash = [k for k in kwargs if k in context]
        if clash:
            raise ConfigError(
                f"{self.kind} {name!r}: {', '.join(clash)} is derived from the model and cannot be set here"
            )
        ctx = {k: v for k, v in context.items() if k in params or accepts_any}
        return cls(**ctx, **kwargs)


def spec_name(spec: StageSpec) -> str:
    """The display name of a spec, for messages."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return str(spec.get("name") or spec.get("class_path") or spec)
    return type(spec).__name__


def import_class(path: str, what: str = "class_path", base: type = object) -> type:
    """The class (a subclass of ``base``) that the dotted ``path`` names, imported by jsonargparse as
    LightningCLI imports a config's ``class_path``: one resolver for configs and stage specs.

    jsonargparse exports no function that imports a dotted path (``jsonargparse.__all__``), so its public
    parser does it: an argument typed ``type[base]``. A path that does not import, or names no such class,
    is a :class:`ConfigError` naming ``what`` and the path.
    """
    from argparse import ArgumentError

    try:
        resolved = _class_parser(base).parse_object({"class_path": path}).class_path
    except (ImportError, AttributeError, ValueError) as err:  # the module, or the name in it, is not there
        raise ConfigError(f"cannot import {what} {path!r}: {err}") from None
    except ArgumentError as err:
        reason = " ".join(
            line.strip() for line in str(err).splitlines() if line.strip() and "Parser key" not in line
        )
        if reason.startswith("Expected a dot import path"):
            reason = "give the dotted import path of a class (package.module.Class)"
        elif reason.startswith("Expected an import path corresponding to"):
            reason = "not a class" + ("" if base is object else f" derived from {base.__name__}")
        raise ConfigError(f"cannot import {what} {path!r}: {reason}") from None
    return resolved


@cache
def _class_parser(base: type) -> Any:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--class_path", type=type if base is object else type[base], required=True)
    return parser


REPRESENTATIONS = Registry("representation")
FRONTENDS = Registry("front end")
BACKENDS = Registry("back end")
HEADS = Registry("head")
