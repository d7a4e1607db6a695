"""Models: the composed :class:`Tagger` and the named architecture presets.

>>> from musictag.models import build
>>> net = build("short_chunk", n_tags=50)
>>> net.n_params()
3687348
"""

from __future__ import annotations

from typing import Any

from musictag.models import choi as _choi  # noqa: F401  (registers the budgeted designs)
from musictag.models.presets import FACTORIES, PRESETS, Preset, get_preset, preset_names, register_preset
from musictag.models.tagger import Tagger
from musictag.stages.registry import ConfigError


def resolve_architecture(
    arch: str | None = None, arch_args: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """The full stage specs of ``arch`` (with its ``arch_args``, e.g. a parameter budget) with every
    non-``None`` override applied (a whole-stage replace)."""
    if arch is None and arch_args:
        raise ConfigError("arch_args given without an arch")
    config = get_preset(arch, **(arch_args or {})).stages() if arch is not None else {}
    config.update({key: value for key, value in overrides.items() if value is not None})
    # input_len may be left to a representation that fixes it (cached embeddings; Tagger checks)
    config.setdefault("input_len", None)
    missing = [key for key in ("representation", "frontend", "backend", "head") if key not in config]
    if missing:
        raise ConfigError(
            f"no architecture named and {', '.join(missing)} not given: set `arch` to one of "
            f"{', '.join(preset_names())} or give every stage"
        )
    return config


STAGE_KEYS = ("representation", "frontend", "backend", "head", "input_len", "sample_rate")


def build(arch: str, n_tags: int = 50, **kwargs: Any) -> Tagger:
    """Build the named architecture. Keyword arguments named like a stage (or ``input_len``,
    ``sample_rate``) replace it; any other is an argument of the preset (``param_budget=250_000``)."""
    overrides = {k: v for k, v in kwargs.items() if k in STAGE_KEYS}
    arch_args = {k: v for k, v in kwargs.items() if k not in STAGE_KEYS}
    return Tagger(n_tags=n_tags, **resolve_architecture(arch, arch_args, **overrides))


def available() -> list[str]:
    """Every architecture name ``build`` and ``arch`` accept."""
    return preset_names()


__all__ = [
    "FACTORIES",
    "PRESETS",
    "STAGE_KEYS",
    "Preset",
    "Tagger",
    "available",
    "build",
    "get_preset",
    "register_preset",
    "resolve_architecture",
]
