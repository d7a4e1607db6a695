"""DataModules: corpora on disk → manifests → a packed audio cache → chunked batches."""

from datamodules.base import TaggingDataModule
from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from datamodules.synthetic import SyntheticDataModule

__all__ = ["AudioCache", "Manifest", "SyntheticDataModule", "TaggingDataModule"]
