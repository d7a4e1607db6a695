"""The few names that both ``musictag`` and ``datamodules`` use: the path type and the configuration errors.

This module imports nothing from either package, so both can depend on it without a cycle.
"""

from __future__ import annotations

import os

#: A file system path as callers give it: a string or any ``os.PathLike`` (``pathlib.Path``).
Pathlike = str | os.PathLike[str]


class ConfigError(ValueError):
    """A model or data configuration that cannot be built; the message says what to change."""


class UnknownNameError(ConfigError):
    """A name that is not registered; the message lists the registered names."""
