"""musictag: a PyTorch Lightning experiment suite for music auto-tagging.

``musictag.TaggingModule`` and ``musictag.load`` (tagging from Python) are imported on first use, so that light tools (audio decoding in cache
workers) do not load Lightning.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["TaggingModule", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":  # musictag.load("X.ckpt").tag("song.mp3")
        from musictag.api import load

        return load
    if name == "TaggingModule":
        from musictag.module import TaggingModule

        return TaggingModule
    raise AttributeError(f"module 'musictag' has no attribute {name!r}")
