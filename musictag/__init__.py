"""musictag: a PyTorch Lightning experiment suite for music auto-tagging."""

from musictag.module import TaggingModule

__version__ = "0.1.0"
__all__ = ["TaggingModule", "__version__"]
