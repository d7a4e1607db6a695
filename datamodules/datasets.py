"""Datasets over a manifest + cache: random training chunks and whole songs cut into chunks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from musictag.chunks import ChunkMode, chunk_starts, cut_chunks


@dataclass(frozen=True)
class WaveAugment:
    """Training-time waveform augmentation, each applied with probability ``p`` (torch's RNG).

    Args:
        gain_db: a random gain in ``[-gain_db, gain_db]`` dB.
        noise_snr_db: white noise at a random SNR in ``[low, high]`` dB.
        max_shift: for fixed crops (``center``/``start``), a random time shift of up to this many
            samples either way (a random crop already moves every epoch).
    """

    gain_db: float = 0.0
    noise_snr_db: tuple[float, float] | None = None
    max_shift: int = 0
    p: float = 0.5

    def __call__(self, audio: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        def rand() -> torch.Tensor:
            return torch.rand((), generator=generator)

        if self.gain_db > 0 and rand() < self.p:
            audio = audio * 10 ** ((rand() * 2 - 1) * self.gain_db / 20)
        if self.noise_snr_db is not None and rand() < self.p:
            low, high = self.noise_snr_db
            snr = low + (high - low) * rand()
            power = audio.pow(2).mean().clamp(min=1e-10)
            noise = torch.randn(audio.shape, generator=generator)
            audio = audio + noise * (power / 10 ** (snr / 10)).sqrt()
        return audio


class TrainChunks(Dataset):
    """One chunk per song per epoch: ``{"audio": (chunk_len,), "target": (n_tags,), "index": ()}``.

    ``crop="random"`` draws a new start each time (instance-level training; torch's RNG, so
    ``seed_everything(workers=True)`` makes it reproducible); ``"center"`` and ``"start"`` take a fixed
    excerpt (song-level training). Songs shorter than a chunk are zero-padded at the end.
    """

    def __init__(
        self,
        manifest: Manifest,
        cache: AudioCache,
        chunk_len: int,
        crop: str = "random",
        augment: WaveAugment | None = None,
        seed: int = 0,
    ) -> None:
        if crop not in ("random", "center", "start"):
            raise ValueError(f"unknown crop {crop!r}; use 'random', 'center' or 'start'")
        self.manifest, self.cache, self.chunk_len, self.crop = manifest, cache, chunk_len, crop
        self.augment = augment
        self.seed = seed
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """``key``: an index (randomness from torch's RNG) or ``(index, epoch)`` from
        :class:`~datamodules.samplers.EpochSampler` (randomness from (seed, epoch, index))."""
        generator = None
        if isinstance(key, tuple):
            index, epoch = key
            generator = torch.Generator().manual_seed(hash((self.seed, epoch, index)) % 2**63)
        else:
            index = key
        track_id = self.manifest.ids[index]
        room = max(0, self.cache.length(track_id) - self.chunk_len)
        if self.crop == "random":
            start = int(torch.randint(0, room + 1, (), generator=generator))
        else:
            start = room // 2 if self.crop == "center" else 0
            if self.augment is not None and self.augment.max_shift > 0 and room > 0:
                shift = int(
                    torch.randint(
                        -self.augment.max_shift, self.augment.max_shift + 1, (), generator=generator
                    )
                )
                start = min(max(0, start + shift), room)
        audio = torch.from_numpy(self.cache.read(track_id, start, self.chunk_len))
        if self.augment is not None:
            audio = self.augment(audio, generator)
        return {"audio": audio, "target": self.targets[index], "index": torch.tensor(index)}


class SongChunks(Dataset):
    """Whole songs for evaluation: ``{"audio": (n_chunks, chunk_len), "target": (n_tags,), "index": ()}``."""

    def __init__(
        self,
        manifest: Manifest,
        cache: AudioCache,
        chunk_len: int,
        n_chunks: int,
        mode: ChunkMode = "even",
        hop: int | None = None,
        n_fft: int | None = None,
    ) -> None:
        self.manifest, self.cache = manifest, cache
        self.chunk_len, self.n_chunks, self.mode, self.hop = chunk_len, n_chunks, mode, hop
        self.n_fft = n_fft  # mode "patches": the spectrogram's frame length (``hop`` is its frame hop)
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        track_id = self.manifest.ids[index]
        audio = self.cache.read(track_id)
        starts = chunk_starts(len(audio), self.chunk_len, self.n_chunks, self.mode, self.hop, self.n_fft)
        chunks = cut_chunks(audio, starts, self.chunk_len)
        return {
            "audio": torch.from_numpy(chunks),
            "target": self.targets[index],
            "index": torch.tensor(index),
        }


def collate_songs(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack songs; when their chunk counts differ (sliding windows), zero-pad and add ``chunk_mask``."""
    counts = [len(item["audio"]) for item in items]
    batch = {key: torch.stack([item[key] for item in items]) for key in ("target", "index")}
    if len(set(counts)) == 1:
        batch["audio"] = torch.stack([item["audio"] for item in items])
        return batch
    longest, chunk_len = max(counts), items[0]["audio"].shape[1]
    batch["audio"] = torch.zeros(len(items), longest, chunk_len)
    batch["chunk_mask"] = torch.zeros(len(items), longest, dtype=torch.bool)
    for row, (item, count) in enumerate(zip(items, counts, strict=True)):
        batch["audio"][row, :count] = item["audio"]
        batch["chunk_mask"][row, :count] = True
    return batch
