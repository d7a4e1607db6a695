"""An embedding cache (hidden states of a frozen encoder, per chunk) and the DataModule that trains probes
from it, so that a probing sweep runs the encoder once (``musictag embed``; the writer is
:mod:`datamodules.embedding_writer`).

Layout of a cache folder::

    .musictag-embeddings  the mark of a folder ``musictag embed`` owns (written first)
    index.json          written last: format, encoder, layers, frame_shape (T, D), chunking, tag_names,
                        shards, and per split {track id: [shard, first row, n_chunks]}
    manifest.csv        the corpus manifest of the embedded tracks
    settings.json       what the folder is being written with (a resumed run must match it)
    shards/<split>-00000.f16   float16 rows of shape (L, T, D), one per chunk, tracks back to back
    shards/<split>-00000.json  the shard's commit record (written after the .f16)

The chunks are the ones live training and evaluation take: each evaluation song's ``n_chunks`` chunks
placed by ``chunk_mode``; for training, the fixed excerpt of ``train_crop: start|center``, or with
``train_crop: random`` the song's evaluation chunks, of which training draws one per epoch — or, with
``EmbeddingDataModule(train_chunks="all")``, all of which are training examples every epoch (MARBLE's
probes train on every 30-s window of an MTG-Jamendo track).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import TaggingDataModule
from datamodules.manifest import Manifest
from datamodules.store import ShardFiles

# the cache format lives in musictag.files, below both the stage that reads it and this module
from musictag.files import EMBEDDINGS_FORMAT as FORMAT  # noqa: F401
from musictag.files import EMBEDDINGS_INDEX as INDEX
from musictag.files import EMBEDDINGS_MANIFEST as MANIFEST
from musictag.files import read_embeddings_index as read_index
from musictag.types import ConfigError, Pathlike


class EmbeddingStore:
    """Read side of an embedding cache; memmaps open lazily (safe to pickle into workers)."""

    def __init__(self, root: Pathlike) -> None:
        self.root = Path(root)
        self.index = read_index(root)
        self.row_shape = (len(self.index["layers"]), *self.index["frame_shape"])
        self.files = ShardFiles(self.root, self.index["shards"], "<f2", self.row_shape)
        check_shards(self.files, self.index)

    def tracks(self, split: str) -> dict[str, list[int]]:
        return self.index["tracks"].get(split, {})

    def rows(self, split: str, track_id: str) -> np.ndarray:
        """The float16 hidden states of a track's chunks: ``(n_chunks, L, T, D)``."""
        shard, first, count = self.tracks(split)[track_id]
        return self.files.rows(shard)[first : first + count]


def check_shards(files: ShardFiles, index: dict[str, Any]) -> None:
    """Refuse a cache whose shard files do not hold the rows its index lists (a missing, truncated or
    damaged ``.f16``), when the cache is opened: not mid-epoch, as a memmap of the wrong size would.

    The message names the shard and how to redo it exactly (remove its commit record and the index:
    ``musictag embed`` then redoes that shard alone).
    """
    root = files.root
    rows = [0] * len(files)
    for tracks in index["tracks"].values():
        for shard, first, count in tracks.values():
            rows[shard] = max(rows[shard], int(first) + int(count))
    for number, size in enumerate(files.sizes()):
        path = root / files.names[number]
        expected = rows[number] * files.row_bytes
        if size != expected:
            what = "is missing" if size is None else f"holds {size} bytes"
            record = path.with_suffix(".json")
            raise ConfigError(
                f"embedding cache {root}: shard {path} {what}, its index lists {expected} bytes "
                f"({rows[number]} rows); remove {record} and {root / INDEX} and run the same "
                "`musictag embed` again to redo that shard"
            )


class EmbeddingTrainChunks(Dataset):
    """One cached chunk per song per epoch: ``{"audio": (L·T·D,), "target", "index"}`` (float32).

    A song with one cached training chunk (fixed crops) gives it every epoch; with several, the chunk is
    drawn from (seed, epoch, index) like :class:`~datamodules.datasets.TrainChunks`' random crops."""

    def __init__(self, manifest: Manifest, store: EmbeddingStore, seed: int = 0) -> None:
        self.manifest, self.store, self.seed = manifest, store, seed
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, None)
        rows = self.store.rows("train", self.manifest.ids[index])
        pick = 0
        if len(rows) > 1:
            generator = (
                torch.Generator().manual_seed(hash((self.seed, epoch, index)) % 2**63)
                if epoch is not None
                else None
            )
            pick = int(torch.randint(0, len(rows), (), generator=generator))
        audio = torch.from_numpy(np.asarray(rows[pick], dtype=np.float32).reshape(-1))
        return {"audio": audio, "target": self.targets[index], "index": torch.tensor(index)}


class EmbeddingAllTrainChunks(Dataset):
    """Every cached training chunk of every song, each an example every epoch (``train_chunks="all"``):
    ``{"audio": (L·T·D,), "target" (its song's tags), "index" (the example's)}``."""

    def __init__(self, manifest: Manifest, store: EmbeddingStore) -> None:
        self.manifest, self.store = manifest, store
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))
        counts = [int(store.tracks("train")[track][2]) for track in manifest.ids]
        self.song = np.repeat(np.arange(len(counts)), counts)  # example → song
        self.chunk = np.concatenate([np.arange(n) for n in counts]) if counts else np.zeros(0, dtype=int)

    def __len__(self) -> int:
        return len(self.song)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else key
        song, chunk = int(self.song[index]), int(self.chunk[index])
        row = self.store.rows("train", self.manifest.ids[song])[chunk]
        audio = torch.from_numpy(np.asarray(row, dtype=np.float32).reshape(-1))
        return {"audio": audio, "target": self.targets[song], "index": torch.tensor(index)}


class EmbeddingSongChunks(Dataset):
    """Every cached chunk of an evaluation song: ``{"audio": (n_chunks, L·T·D), "target", "index"}``."""

    def __init__(self, manifest: Manifest, store: EmbeddingStore, split: str) -> None:
        self.manifest, self.store, self.split = manifest, store, split
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rows = self.store.rows(self.split, self.manifest.ids[index])
        audio = torch.from_numpy(np.asarray(rows, dtype=np.float32).reshape(len(rows), -1))
        return {"audio": audio, "target": self.targets[index], "index": torch.tensor(index)}


class EmbeddingDataModule(TaggingDataModule):
    """Trains and evaluates probes from an embedding cache written by ``musictag embed``.

    The model reads the cached hidden states with the ``embedding`` representation (same ``cache``
    folder) in place of the encoder; batches have the shapes of the audio DataModules with each chunk's
    waveform replaced by its flattened hidden states ``(L·T·D,)``. Chunking was fixed when the cache was
    written (see the module docstring).

    Args:
        embeddings: the cache folder.
        batch_size, eval_batch_size, num_workers, predict_split: as :class:`TaggingDataModule`.
        train_chunks: ``one`` (default): one cached chunk per training song per epoch, as live training
            takes them; ``all``: every cached chunk of a training song is an example every epoch (MARBLE's
            MTG-Jamendo probes: each 30-s window, with its track's tags).
    """

    def __init__(
        self,
        embeddings: str,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        predict_split: str = "test",
        train_chunks: Literal["one", "all"] = "one",
    ) -> None:
        if train_chunks not in ("one", "all"):
            raise ConfigError(f"train_chunks must be 'one' or 'all', got {train_chunks!r}")
        self.train_chunks = train_chunks
        self.embeddings = Path(embeddings)
        index = read_index(self.embeddings)
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            chunk_len=int(index["chunk_len"]),
            n_chunks=int(index["n_chunks"]),
            # the cache's chunking is the probe's: a checkpoint tags files as its cache was cut
            chunk_mode=index.get("chunk_mode"),
            chunk_hop=index.get("chunk_hop"),
            sample_rate=int(index["sample_rate"]),
            predict_split=predict_split,
        )
        self.tag_names = list(index["tag_names"])

    def load(self) -> tuple[Manifest, Any]:
        return Manifest.read_csv(self.embeddings / MANIFEST), EmbeddingStore(self.embeddings)

    def setup(self, stage: str | None = None) -> None:
        from datamodules.base import _global_seed

        manifest, store = self.load()
        self.manifest = manifest
        self.datasets = {
            "train": (
                EmbeddingAllTrainChunks(manifest.split("train"), store)
                if self.train_chunks == "all"
                else EmbeddingTrainChunks(manifest.split("train"), store, seed=_global_seed())
            ),
            "valid": EmbeddingSongChunks(manifest.split("valid"), store, "valid"),
            "test": EmbeddingSongChunks(manifest.split("test"), store, "test"),
        }
        if self.predict_split not in self.datasets:
            raise ConfigError(f"predict_split must be train, valid or test, got {self.predict_split!r}")
