"""Data-pipeline benchmarks: cache preparation and chunk loading, next to the published loader's pattern.

- prepare: 30 s stereo 44.1 kHz MP3 → 16 kHz mono int16 cache, tracks/s per worker with 1 and 2 workers;
- loader: random 59,049-sample training chunks per second, batch 16, from a warm cache: ``fit``'s
  default loader (a DataModule's ``train_dataloader()`` as ``fit`` builds it: whole batches read by
  threads), the same read in the loop (0 workers) and by torch worker processes, and per-track float32
  ``.npy`` files read whole with ``np.load`` and cropped, as sota-music-tagging-models' loader does.

Every figure is the median of ``repeats`` timed runs after a warm-up, printed with its spread (lowest and
highest run): other processes on a shared machine move single runs a lot. The loaders run in turns (run 1
of each, then run 2 of each, ...), from a cache whose pages are all mapped first.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.base import TaggingDataModule
from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from datamodules.prepare import prepare_cache

CHUNK = 59049
BATCH = 16


@dataclass
class Figure:
    """One benchmark row: the median of ``runs`` and its spread."""

    kind: str
    what: str
    unit: str
    median: float
    low: float
    high: float
    runs: list[float]

    @classmethod
    def of(cls, kind: str, what: str, unit: str, runs: list[float]) -> Figure:
        return cls(kind, what, unit, statistics.median(runs), min(runs), max(runs), runs)

    def row(self) -> str:
        spread = f"({self.low:,.0f} – {self.high:,.0f})"
        return f"{self.kind:<8} {self.what:<84} {self.median:>10,.0f} {spread:>21} {self.unit}"


class CacheDataModule(TaggingDataModule):
    """A DataModule over a given manifest and cache (benchmarks): ``fit``'s loaders, nothing to prepare."""

    def __init__(self, manifest: Manifest, cache: AudioCache, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag_names = list(manifest.tag_names)
        self._data = (manifest, cache)

    def load(self) -> tuple[Manifest, AudioCache]:
        return self._data


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


class ChunkCounter:
    """Times runs of ``batches`` batches of a loader, restarting its epoch when it runs out."""

    def __init__(self, loader: Iterable[Any], warmup: int = 5) -> None:
        self.loader, self.iterator = loader, iter(loader)
        for _ in range(warmup):  # workers started, files in the page cache
            self.take()

    def take(self) -> int:
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.loader)
            batch = next(self.iterator)
        return len(batch["audio"] if isinstance(batch, dict) else batch)

    def rate(self, batches: int) -> float:
        """Chunks/s of one run of ``batches`` batches."""
        start, seen = time.perf_counter(), 0
        for _ in range(batches):
            seen += self.take()
        return seen / (time.perf_counter() - start)


def chunk_rates(loader: Iterable[Any], batches: int, repeats: int, warmup: int = 5) -> list[float]:
    """Chunks/s of ``repeats`` runs of ``batches`` batches each, after ``warmup`` batches."""
    counter = ChunkCounter(loader, warmup)
    return [counter.rate(batches) for _ in range(repeats)]


def synthetic_cache(root: Path, n_tracks: int, seconds: float = 30.0, n_distinct: int = 8) -> Manifest:
    """A cache of ``n_tracks`` noise tracks (``n_distinct`` different ones, repeated) and its manifest."""
    rng = np.random.default_rng(0)
    length = int(seconds * 16000)
    audio = [(0.1 * rng.standard_normal(length)).astype(np.float32) for _ in range(n_distinct)]
    ids = [f"t{i:05d}" for i in range(n_tracks)]
    AudioCache.write(root, ((tid, audio[i % n_distinct]) for i, tid in enumerate(ids)), 16000)
    return Manifest(
        tuple(ids), ("train",) * n_tracks, np.zeros((n_tracks, 1), np.uint8), ("t",), ("",) * n_tracks
    )


def default_loader(manifest: Manifest, cache: AudioCache, **settings: Any) -> Any:
    """``fit``'s training loader for this cache (the DataModule's defaults unless ``settings`` say otherwise)."""
    data = CacheDataModule(manifest, cache, batch_size=BATCH, chunk_len=CHUNK, **settings)
    data.setup("fit")
    return data, data.train_dataloader()


def prepare_rates(tmp: Path, n_mp3: int, repeats: int) -> list[Figure]:
    from musictag.audio import write_audio

    rng = np.random.default_rng(0)
    seconds, rate = 30.0, 44100
    t = np.arange(int(seconds * rate)) / rate
    tracks = []
    for i in range(n_mp3):
        left = 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t) + 0.05 * rng.standard_normal(len(t))
        stereo = np.stack([left, 0.8 * left], axis=1).astype(np.float32)
        path = tmp / "mp3" / f"{i}.mp3"
        write_audio(path, stereo, rate)
        tracks.append((str(i), str(path)))
    figures = []
    for workers in (1, 2):
        runs = []
        for repeat in range(repeats):
            start = time.perf_counter()
            out = tmp / f"prep{workers}-{repeat}"
            prepare_cache(out, tracks, 16000, workers=workers, tracks_per_shard=1, progress=False)
            runs.append(n_mp3 / (time.perf_counter() - start) / workers)
        what = f"30 s 44.1 kHz stereo MP3 → 16 kHz, {workers} worker(s), per worker"
        figures.append(Figure.of("prepare", what, "tracks/s", runs))
    return figures


def describe(num_workers: int) -> str:
    """A thread loader's setting in words."""
    if num_workers == 0:
        return "num_workers 0: read in the loop"
    return f"num_workers {num_workers}: {num_workers} reader thread{'s' if num_workers > 1 else ''}"


def loader_rates(tmp: Path, n_tracks: int, batches: int, repeats: int) -> list[Figure]:
    manifest = synthetic_cache(tmp / "cache", n_tracks)
    cache = AudioCache(tmp / "cache")
    npy = []
    for i, track in enumerate(manifest.ids):
        npy.append(tmp / "npy" / f"{track}.npy")
        npy[-1].parent.mkdir(exist_ok=True)
        np.save(npy[-1], cache.read(manifest.ids[i % 8]))
    data, fit_default = default_loader(manifest, cache)
    cases: list[tuple[str, Callable[[], Any]]] = [
        (f"musictag cache, fit's default loader ({describe(data.num_workers)})", lambda: fit_default),
        *(
            (f"musictag cache, {describe(n)}", lambda n=n: default_loader(manifest, cache, num_workers=n)[1])
            for n in (0, 2)
            if n != data.num_workers
        ),
        (
            "musictag cache, 2 torch worker processes (worker_type process)",
            lambda: default_loader(manifest, cache, num_workers=2, worker_type="process")[1],
        ),
    ]
    for workers in (0, 2):
        cases.append(
            (
                f"published pattern (np.load whole .npy + crop), {workers} workers",
                lambda workers=workers: DataLoader(  # type: ignore[misc]
                    NpyCrop(npy, CHUNK),
                    batch_size=BATCH,
                    shuffle=True,
                    num_workers=workers,
                    persistent_workers=workers > 0,
                ),
            )
        )
    # Every page of the cache mapped once (a warm cache, whichever loader comes first), then the
    # loaders take turns, run by run, so that a busy moment of the machine falls on all of them alike.
    for shard in range(len(cache.shards)):
        int(cache._shard(shard).sum())
    counters = [ChunkCounter(make()) for _, make in cases]
    runs: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for case, counter in enumerate(counters):
            runs[case].append(counter.rate(batches))
    return [
        Figure.of("loader", f"{what}, batch {BATCH}", "chunks/s", case_runs)
        for (what, _), case_runs in zip(cases, runs, strict=True)
    ]


def run(
    n_mp3: int = 8, n_tracks: int = 256, batches: int = 100, repeats: int = 5, prepare: bool = True
) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="musictag-bench-") as tmp:
        figures = prepare_rates(Path(tmp), n_mp3, repeats=3) if prepare else []
        return figures + loader_rates(Path(tmp), n_tracks, batches, repeats)


def report(figures: list[Figure], as_json: bool = False) -> None:
    if as_json:
        import json

        print(json.dumps([asdict(f) for f in figures], indent=1))
        return
    print("# musictag bench --data: median of the runs (lowest – highest)")
    for figure in figures:
        print(figure.row(), flush=True)


def main(as_json: bool = False, repeats: int = 5, prepare: bool = True) -> list[Figure]:
    figures = run(repeats=repeats, prepare=prepare)
    report(figures, as_json)
    return figures
