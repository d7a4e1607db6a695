"""Datasets over a manifest + cache: random training chunks and whole songs cut into chunks."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from musictag.chunks import ChunkMode, chunk_starts, cut_chunks


class TrainChunks(Dataset):
    """One chunk per song per epoch: ``{"audio": (chunk_len,), "target": (n_tags,), "index": ()}``.

    ``crop="random"`` draws a new start each time (instance-level training; torch's RNG, so
    ``seed_everything(workers=True)`` makes it reproducible); ``"center"`` and ``"start"`` take a fixed
    excerpt (song-level training). Songs shorter than a chunk are zero-padded at the end.
    """

    def __init__(self, manifest: Manifest, cache: AudioCache, chunk_len: int, crop: str = "random") -> None:
        if crop not in ("random", "center", "start"):
            raise ValueError(f"unknown crop {crop!r}; use 'random', 'center' or 'start'")
        self.manifest, self.cache, self.chunk_len, self.crop = manifest, cache, chunk_len, crop
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        track_id = self.manifest.ids[index]
        room = max(0, self.cache.length(track_id) - self.chunk_len)
        if self.crop == "random":
            start = int(torch.randint(0, room + 1, ()))
        else:
            start = room // 2 if self.crop == "center" else 0
        audio = self.cache.read(track_id, start, self.chunk_len)
        return {"audio": torch.from_numpy(audio), "target": self.targets[index], "index": torch.tensor(index)}


class SongChunks(Dataset):
    """Whole songs for evaluation: ``{"audio": (n_chunks, chunk_len), "target": (n_tags,), "index": ()}``."""

    def __init__(
        self, manifest: Manifest, cache: AudioCache, chunk_len: int, n_chunks: int, mode: ChunkMode = "even"
    ) -> None:
        self.manifest, self.cache = manifest, cache
        self.chunk_len, self.n_chunks, self.mode = chunk_len, n_chunks, mode
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        track_id = self.manifest.ids[index]
        audio = self.cache.read(track_id)
        chunks = cut_chunks(
            audio, chunk_starts(len(audio), self.chunk_len, self.n_chunks, self.mode), self.chunk_len
        )
        return {
            "audio": torch.from_numpy(chunks),
            "target": self.targets[index],
            "index": torch.tensor(index),
        }
