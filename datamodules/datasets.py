"""Datasets over a manifest + cache: random training chunks and whole songs cut into chunks.

The loaders fetch whole batches (``dataset.__getitems__(keys)``): one pass over the memory-mapped
cache per batch, int16 samples straight from the shards, no per-item tensors. The module converts
the int16 batch to float32 on its device (``TaggingModule.on_after_batch_transfer``) and applies the
waveform augmentation there; ``dataset[key]`` gives one float32 item, for inspection and tests.

Batch schemas (``B`` items, int16 audio in ``[-32768, 32767]``, ``/ 32768`` is the float waveform):
    train: ``{"audio": (B, chunk_len) int16, "target": (B, n_tags), "index": (B,)}``, plus with
        augmentation ``"gain": (B,)`` (linear factor) and ``"noise_snr_db": (B,)`` (``inf``: no noise).
    evaluation: ``{"audio": (B, n_chunks, chunk_len) int16, "target": (B, n_tags), "index": (B,)}``,
        plus ``"chunk_mask": (B, n_chunks)`` when songs have different numbers of chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.cache import AudioCache
from datamodules.manifest import Manifest

# on-device waveform operations live in the core (the module uses them; it imports nothing from here)
from musictag.audio import apply_wave_augment, to_float  # noqa: F401
from musictag.chunks import ChunkPlan, cut_chunks

TrainKey = int | tuple[int, int]

# Independent uniform draws per training item, by purpose (the stream of random_uniforms).
_CROP, _SHIFT, _GAIN_ON, _GAIN, _NOISE_ON, _SNR = range(6)


_MASK64 = 2**64 - 1
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective scramble of uint64 values (wrapping arithmetic)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _mix64_int(x: int) -> int:
    """:func:`_mix64` of one Python integer."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def random_uniforms(seed: int, epoch: np.ndarray, index: np.ndarray, n_draws: int) -> np.ndarray:
    """``(B, n_draws)`` uniform floats in [0, 1), a pure function of (seed, epoch, index, draw).

    A counter-based generator (splitmix64 of the key): the crop and augmentation of an item depend on
    nothing but its key, so any number of workers, any batch composition and a resumed run give the
    same data, and a batch of keys is drawn in one vectorised step rather than one generator per item.
    """
    seed_key = np.uint64(_mix64_int(seed & _MASK64))
    key = _mix64(seed_key ^ np.asarray(epoch, dtype=np.int64).astype(np.uint64))
    key = _mix64(key ^ np.asarray(index, dtype=np.int64).astype(np.uint64))
    draws = (
        (np.arange(1, n_draws + 1, dtype=np.uint64) * np.uint64(_GOLDEN))
        if n_draws > 1
        else np.uint64(_GOLDEN)
    )
    bits = _mix64(key[:, None] + draws)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class WaveAugment:
    """Training-time waveform augmentation, each applied with probability ``p``.

    The per-item parameters (whether, which gain, which SNR) are drawn with the item's crop from
    (seed, epoch, index) and travel with the batch; the arithmetic runs on the model's device
    (:func:`apply_wave_augment`), where the noise comes from the device's generator, which the module
    seeds from (seed, epoch).

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

    def parameters(self, uniforms: np.ndarray) -> dict[str, torch.Tensor]:
        """Per-item ``gain`` (linear) and ``noise_snr_db`` (``inf``: none) from ``(B, 6)`` uniforms."""
        gain = np.ones(len(uniforms), dtype=np.float32)
        if self.gain_db > 0:
            db = (uniforms[:, _GAIN] * 2 - 1) * self.gain_db
            gain = np.where(uniforms[:, _GAIN_ON] < self.p, 10 ** (db / 20), 1.0).astype(np.float32)
        snr = np.full(len(uniforms), np.inf, dtype=np.float32)
        if self.noise_snr_db is not None:
            low, high = self.noise_snr_db
            drawn = low + (high - low) * uniforms[:, _SNR]
            snr = np.where(uniforms[:, _NOISE_ON] < self.p, drawn, np.inf).astype(np.float32)
        return {"gain": torch.from_numpy(gain), "noise_snr_db": torch.from_numpy(snr)}

    def __call__(self, audio: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment float audio ``(S,)`` or ``(B, S)`` with parameters drawn from torch's RNG."""
        batch = audio.reshape(-1, audio.shape[-1])
        uniforms = torch.rand(len(batch), 6, generator=generator, dtype=torch.float64).numpy()
        params = self.parameters(uniforms)
        noise = torch.randn(batch.shape, generator=generator)
        return apply_wave_augment(batch, params["gain"], params["noise_snr_db"], noise).reshape(audio.shape)


class TrainChunks(Dataset):
    """One chunk per song per epoch (schema in the module docstring).

    ``crop="random"`` draws a new start each epoch (instance-level training); ``"center"`` and
    ``"start"`` take a fixed excerpt (song-level training). Songs shorter than a chunk are zero-padded
    at the end. A key is ``(index, epoch)`` from :class:`~datamodules.samplers.EpochSampler` (crop and
    augmentation from (seed, epoch, index)), or a plain index (then drawn from torch's RNG, so
    ``seed_everything`` makes it reproducible).
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
        self.locations = cache.locations(manifest.ids)
        augmented = augment is not None and (augment.gain_db > 0 or augment.noise_snr_db is not None)
        shifted = augment is not None and augment.max_shift > 0
        # only the draws this dataset uses (each purpose keeps its position in the stream)
        self.n_draws = _SNR + 1 if augmented else _SHIFT + 1 if shifted else _CROP + 1

    def __len__(self) -> int:
        return len(self.manifest)

    def _keys(self, keys: Sequence[TrainKey]) -> tuple[np.ndarray, np.ndarray]:
        if keys and isinstance(keys[0], tuple):
            index, epoch = np.array(keys, dtype=np.int64).reshape(-1, 2).T
        else:
            index = np.asarray(keys, dtype=np.int64)
            # no epoch: a fresh draw from torch's RNG stands in for it
            epoch = np.full(len(index), int(torch.randint(0, 2**62, ())), dtype=np.int64)
        return index, epoch

    def __getitems__(self, keys: Sequence[TrainKey]) -> dict[str, torch.Tensor]:
        """A whole batch: int16 ``audio (B, chunk_len)``, ``target``, ``index`` (and augmentation)."""
        index, epoch = self._keys(keys)
        uniforms = random_uniforms(self.seed, epoch, index, self.n_draws)
        locations = self.locations[index]
        room = np.maximum(0, locations[:, 2] - self.chunk_len)
        if self.crop == "random":
            starts = np.minimum((uniforms[:, _CROP] * (room + 1)).astype(np.int64), room)
        else:
            starts = room // 2 if self.crop == "center" else np.zeros_like(room)
            if self.augment is not None and self.augment.max_shift > 0:
                width = 2 * self.augment.max_shift + 1
                shift = (uniforms[:, _SHIFT] * width).astype(np.int64) - self.augment.max_shift
                starts = np.clip(starts + shift, 0, room)
        audio = self.cache.read_chunks(locations, starts, self.chunk_len)
        batch = {
            "audio": torch.from_numpy(audio),
            "target": self.targets[torch.from_numpy(index)],
            "index": torch.from_numpy(index),
        }
        if self.augment is not None and (self.augment.gain_db > 0 or self.augment.noise_snr_db is not None):
            batch.update(self.augment.parameters(uniforms))
        return batch

    def __getitem__(self, key: TrainKey) -> dict[str, torch.Tensor]:
        """One item as float32: ``{"audio": (chunk_len,), "target": (n_tags,), "index": ()}``."""
        batch = self.__getitems__([key])
        audio = to_float(batch["audio"])
        if "gain" in batch:
            audio = apply_wave_augment(audio, batch["gain"], batch["noise_snr_db"])
        return {"audio": audio[0], "target": batch["target"][0], "index": batch["index"][0]}


class SongChunks(Dataset):
    """Whole songs for evaluation, each cut into chunks (schema in the module docstring)."""

    def __init__(self, manifest: Manifest, cache: AudioCache, plan: ChunkPlan) -> None:
        self.manifest, self.cache, self.plan = manifest, cache, plan
        self.chunk_len = plan.chunk_len
        self.targets = torch.from_numpy(manifest.targets.astype(np.float32))
        self.locations = cache.locations(manifest.ids)

    def __len__(self) -> int:
        return len(self.manifest)

    def starts(self, index: int) -> np.ndarray:
        """Chunk starts of song ``index``."""
        return self.plan.starts(int(self.locations[index, 2]))

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Songs ``indices`` as one batch: every chunk of every song read in one pass over the cache."""
        index = np.asarray(indices, dtype=np.int64)
        starts = [self.starts(i) for i in index.tolist()]
        counts = [len(s) for s in starts]
        rows = np.repeat(index, counts)
        audio = self.cache.read_chunks(self.locations[rows], np.concatenate(starts), self.chunk_len)
        batch = {"target": self.targets[torch.from_numpy(index)], "index": torch.from_numpy(index)}
        longest = max(counts)
        if all(count == longest for count in counts):
            batch["audio"] = torch.from_numpy(audio).reshape(len(index), longest, self.chunk_len)
            return batch
        padded = np.zeros((len(index), longest, self.chunk_len), dtype=np.int16)
        mask = np.zeros((len(index), longest), dtype=bool)
        for row, (first, count) in enumerate(zip(np.cumsum([0, *counts[:-1]]), counts, strict=True)):
            padded[row, :count] = audio[first : first + count]
            mask[row, :count] = True
        batch["audio"], batch["chunk_mask"] = torch.from_numpy(padded), torch.from_numpy(mask)
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One song as float32: ``{"audio": (n_chunks, chunk_len), "target": (n_tags,), "index": ()}``."""
        audio = self.cache.read(self.manifest.ids[index])
        chunks = cut_chunks(audio, self.starts(index), self.chunk_len)
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
    batch["audio"] = torch.zeros(len(items), longest, chunk_len, dtype=items[0]["audio"].dtype)
    batch["chunk_mask"] = torch.zeros(len(items), longest, dtype=torch.bool)
    for row, (item, count) in enumerate(zip(items, counts, strict=True)):
        batch["audio"][row, :count] = item["audio"]
        batch["chunk_mask"][row, :count] = True
    return batch
