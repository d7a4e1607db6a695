"""Data-pipeline benchmarks: cache preparation and chunk loading, next to the published loader's pattern.

- prepare: 30 s stereo 44.1 kHz MP3 → 16 kHz mono int16 cache, tracks/s with 1 and 2 workers;
- loader: random 59,049-sample chunks per second from a warm cache (memmap slices) with 0 and 2
  DataLoader workers, and the same from per-track float32 ``.npy`` files read whole with ``np.load``
  and cropped, as sota-music-tagging-models' loader does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.cache import AudioCache, prepare_cache
from datamodules.datasets import TrainChunks
from datamodules.manifest import Manifest

CHUNK = 59049


class NpyCrop(Dataset):
    """The published pattern: ``np.load`` a whole float32 track, then crop a random chunk."""

    def __init__(self, paths: list[Path], chunk_len: int) -> None:
        self.paths, self.chunk_len = paths, chunk_len

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        audio = np.load(self.paths[index])
        start = int(torch.randint(0, len(audio) - self.chunk_len + 1, ()))
        return torch.from_numpy(audio[start : start + self.chunk_len].copy())


def _chunks_per_second(dataset: Dataset, workers: int, batches: int, batch_size: int = 16) -> float:
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    iterator = iter(loader)
    next(iterator)  # warm: workers started, files in the page cache
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        seen += len(batch["audio"] if isinstance(batch, dict) else batch)
    return seen / (time.perf_counter() - start)


def run(n_mp3: int = 8, n_tracks: int = 256, batches: int = 40) -> list[tuple[str, str, float]]:
    from musictag.testing import write_audio

    rows: list[tuple[str, str, float]] = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="musictag-bench-") as tmp:
        tmp_path = Path(tmp)
        seconds, rate = 30.0, 44100
        t = np.arange(int(seconds * rate)) / rate
        tracks = []
        for i in range(n_mp3):
            left = 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t) + 0.05 * rng.standard_normal(len(t))
            stereo = np.stack([left, 0.8 * left], axis=1).astype(np.float32)
            path = tmp_path / "mp3" / f"{i}.mp3"
            write_audio(path, stereo, rate)
            tracks.append((str(i), str(path)))
        for workers in (1, 2):
            start = time.perf_counter()
            prepare_cache(
                tmp_path / f"prep{workers}",
                tracks,
                16000,
                workers=workers,
                tracks_per_shard=1,
                progress=False,
            )
            rate_total = n_mp3 / (time.perf_counter() - start)
            rows.append(
                (
                    "prepare",
                    f"30 s 44.1 kHz stereo MP3 → 16 kHz, {workers} worker(s): tracks/s per worker",
                    rate_total / workers,
                )
            )

        audio = [(0.1 * rng.standard_normal(480_000)).astype(np.float32) for _ in range(8)]
        ids = [f"t{i}" for i in range(n_tracks)]
        cache = AudioCache.write(
            tmp_path / "cache", ((tid, audio[i % 8]) for i, tid in enumerate(ids)), 16000
        )
        manifest = Manifest(
            tuple(ids), ("train",) * n_tracks, np.zeros((n_tracks, 1), np.uint8), ("t",), ("",) * n_tracks
        )
        npy = []
        for i, tid in enumerate(ids):
            npy.append(tmp_path / "npy" / f"{tid}.npy")
            npy[-1].parent.mkdir(exist_ok=True)
            np.save(npy[-1], audio[i % 8])
        for workers in (0, 2):
            rows.append(
                (
                    "loader",
                    f"musictag cache (memmap slice), {workers} workers: chunks/s",
                    _chunks_per_second(TrainChunks(manifest, cache, CHUNK), workers, batches),
                )
            )
            rows.append(
                (
                    "loader",
                    f"published pattern (np.load whole .npy + crop), {workers} workers: chunks/s",
                    _chunks_per_second(NpyCrop(npy, CHUNK), workers, batches),
                )
            )
    return rows


def main() -> None:
    print("# musictag bench --data: cache preparation and chunk loading")
    for kind, what, value in run():
        print(f"{kind:<8} {what:<78} {value:>10.1f}", flush=True)
