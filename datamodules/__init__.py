"""DataModules: corpora on disk → manifests → a packed audio cache → chunked batches.

Names are imported on first use, so that cache-preparation workers load no deep-learning stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AudioCache": "datamodules.cache",
    "Manifest": "datamodules.manifest",
    "TaggingDataModule": "datamodules.base",
    "SyntheticDataModule": "datamodules.synthetic",
    "CorpusDataModule": "datamodules.corpora",
    "MTATDataModule": "datamodules.corpora",
    "MSDDataModule": "datamodules.corpora",
    "JamendoDataModule": "datamodules.corpora",
    "FolderDataModule": "datamodules.corpora",
    "GTZANDataModule": "datamodules.corpora",
    "BallroomDataModule": "datamodules.corpora",
    "EmbeddingDataModule": "datamodules.embeddings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
