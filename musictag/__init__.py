"""musictag: a PyTorch Lightning experiment suite for music auto-tagging.

``musictag.TaggingModule`` is imported on first use, so that light tools (audio decoding in cache
workers) do not load Lightning.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["TaggingModule", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "TaggingModule":
        from musictag.module import TaggingModule

        return TaggingModule
    raise AttributeError(f"module 'musictag' has no attribute {name!r}")
