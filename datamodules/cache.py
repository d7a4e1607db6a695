"""A packed, memory-mappable int16 audio cache: decode once, then slice chunks without decoding.

Layout of a cache folder::

    index.json       {"format", "sample_rate", "source", "shards": [...], "tracks": {id: [shard, offset, length]}}
    audio-00000.i16  raw little-endian int16 samples of many tracks back to back

A cache is written into a temporary sibling folder and renamed into place at the end, so a folder with
an ``index.json`` is always complete; an interrupted write leaves nothing that a later run trusts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

Pathlike = str | os.PathLike

FORMAT = "musictag-cache/1"
INDEX = "index.json"
INT16_SCALE = 32768.0


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] → int16 (clipped)."""
    return np.clip(np.round(audio * INT16_SCALE), -32768, 32767).astype("<i2")


class AudioCache:
    """Read side of a cache folder. Safe to pickle into DataLoader workers: memmaps open lazily per process."""

    def __init__(self, root: Pathlike) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"no audio cache at {self.root} (missing {INDEX}); prepare the corpus first"
            )
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(
                f"{index_path}: unknown cache format {index.get('format')!r}, expected {FORMAT!r}"
            )
        self.sample_rate: int = int(index["sample_rate"])
        self.source: Any = index.get("source")
        self.shards: list[str] = list(index["shards"])
        self.tracks: dict[str, tuple[int, int, int]] = {k: tuple(v) for k, v in index["tracks"].items()}
        self._maps: dict[int, np.memmap] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def __contains__(self, track_id: str) -> bool:
        return track_id in self.tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def length(self, track_id: str) -> int:
        return self.tracks[track_id][2]

    def _shard(self, shard: int) -> np.memmap:
        if shard not in self._maps:
            self._maps[shard] = np.memmap(self.root / self.shards[shard], dtype="<i2", mode="r")
        return self._maps[shard]

    def read(self, track_id: str, start: int = 0, length: int | None = None) -> np.ndarray:
        """Float32 samples ``[start, start + length)`` of a track, zero-padded past its end."""
        shard, offset, n = self.tracks[track_id]
        length = n - start if length is None else length
        out = np.zeros(length, dtype=np.float32)
        stop = min(n, start + length)
        if stop > start:
            out[: stop - start] = self._shard(shard)[offset + start : offset + stop]
            out /= INT16_SCALE
        return out

    @staticmethod
    def exists(root: Pathlike) -> bool:
        return (Path(root) / INDEX).is_file()

    @staticmethod
    def write(
        root: Pathlike, tracks: Iterable[tuple[str, np.ndarray]], sample_rate: int, source: Any = None
    ) -> AudioCache:
        """Write ``(track_id, float audio)`` pairs into a new cache at ``root`` (atomically)."""
        root = Path(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            shard_name = "audio-00000.i16"
            index: dict[str, list[int]] = {}
            offset = 0
            with open(tmp / shard_name, "wb") as f:
                for track_id, audio in tracks:
                    samples = to_int16(np.asarray(audio, dtype=np.float32))
                    f.write(samples.tobytes())
                    index[track_id] = [0, offset, len(samples)]
                    offset += len(samples)
                f.flush()
                os.fsync(f.fileno())
            meta = {
                "format": FORMAT,
                "sample_rate": sample_rate,
                "source": source,
                "shards": [shard_name],
                "tracks": index,
            }
            (tmp / INDEX).write_text(json.dumps(meta))
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return AudioCache(root)
