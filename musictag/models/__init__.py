"""Models: the composed :class:`Tagger` and the named architecture presets.

>>> from musictag.models import build
>>> net = build("short_chunk", n_tags=50)
>>> net.n_params()
3687348
"""

from __future__ import annotations

from typing import Any

from musictag.models.presets import PRESETS, Preset, get_preset, register_preset
from musictag.models.tagger import Tagger
from musictag.registry import ConfigError


def resolve_architecture(arch: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full stage specs of ``arch`` with every non-``None`` override applied (a whole-stage replace)."""
    config = get_preset(arch).stages() if arch is not None else {}
    config.update({key: value for key, value in overrides.items() if value is not None})
    missing = [
        key for key in ("representation", "frontend", "backend", "head", "input_len") if key not in config
    ]
    if missing:
        raise ConfigError(
            f"no architecture named and {', '.join(missing)} not given: set `arch` to one of "
            f"{', '.join(sorted(PRESETS))} or give every stage"
        )
    return config


def build(arch: str, n_tags: int = 50, **overrides: Any) -> Tagger:
    """Build the named architecture; ``overrides`` replace whole stages or ``input_len``/``sample_rate``."""
    return Tagger(n_tags=n_tags, **resolve_architecture(arch, **overrides))


def available() -> list[str]:
    return sorted(PRESETS)


__all__ = [
    "PRESETS",
    "Preset",
    "Tagger",
    "available",
    "build",
    "get_preset",
    "register_preset",
    "resolve_architecture",
]
