"""Writing an embedding cache (:mod:`datamodules.embeddings`, ``musictag embed``): a frozen encoder's
float16 hidden states of every chunk of a corpus, shard by shard per split, resumable
(:mod:`datamodules.store`).

The chunks are the ones a DataModule's live training and evaluation take (its ``chunk_len``,
``n_chunks``, ``chunk_mode``, ``train_crop``), read from its audio cache. The encoder is any object with
the interface of :class:`~musictag.stages.frontends.hf_encoder.PretrainedEncoder` (``hidden_states``,
``layers``, ``frame_shape``, ...), given by the caller: the data layer imports no model.

Also here: what a run checks before it writes anything: its numbers, its ``--out`` folder (new, empty or
an embedding cache of its own: never a folder of the user's files nor an input), and the settings of a
cache already there (a finished one is used again only if made as asked).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datamodules.base import DATA_NAMES, data_paths
from datamodules.store import ShardWriter, plan_shards, write_shards
from musictag.chunks import ChunkPlan
from musictag.files import EMBEDDINGS_FORMAT, EMBEDDINGS_INDEX, EMBEDDINGS_MANIFEST, atomic_write_text
from musictag.guards import at_least, check_output_folder, pick_device
from musictag.types import ConfigError, Pathlike

if TYPE_CHECKING:
    import torch

#: The mark of a folder ``musictag embed`` writes (the first file it writes there).
MARK = ".musictag-embeddings"
SETTINGS = "settings.json"
SPLITS = ("train", "valid", "test")
#: Settings that decide what a finished cache holds; ``tracks_per_shard`` only decides how its rows are
#: split into files, so a finished cache is the same for any value of it.
CONTENT_SETTINGS = (
    "encoder",
    "encoder_sha256",  # a checkpoint encoder's file (musictag embed --ckpt): another file at that path
    "layers",
    "time_pool",
    "encoder_batch",
    "batch_size",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
    "audio_cache",
)
#: The ``index.json`` entries that record a setting (a finished cache whose settings.json is gone): the
#: content settings but those of the run that wrote it (the encoder, its batches, the audio cache read).
INDEX_SETTINGS = tuple(
    name
    for name in CONTENT_SETTINGS
    if name not in ("encoder", "encoder_sha256", "encoder_batch", "batch_size", "audio_cache")
)


def embed_corpus(
    encoder: Any,
    datamodule: Any,
    out: Pathlike,
    batch_size: int = 16,
    tracks_per_shard: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
    inputs: Sequence[Pathlike] = (),
) -> Path:
    """Write the embedding cache of ``datamodule``'s corpus through ``encoder`` (a
    :class:`~musictag.stages.frontends.hf_encoder.PretrainedEncoder`) into ``out``; resumable.

    ``out`` must be new, empty or an embedding cache: a folder of the user's files is refused, as are
    ``inputs`` (the data config, the encoder) and the DataModule's own files and folders. A finished
    cache is returned only if it was made with the settings asked for now; otherwise the message names
    each setting that differs. Everything is checked before the first file is written.
    """
    out = Path(out)
    device = check_request(encoder, datamodule, out, batch_size, tracks_per_shard, device, inputs)
    # no tagging model here: unset, the mode is `even` (a probe trained here tags so), and `patches`
    # (a model's spectrogram frames) is refused
    plan = ChunkPlan.for_model(
        None,
        datamodule.chunk_mode,
        datamodule.n_chunks,
        datamodule.chunk_hop,
        int(datamodule.chunk_len),
        names=DATA_NAMES,
        refuse_unused=False,
    )
    datamodule.chunk_mode = plan.mode
    manifest, cache = _load_audio(datamodule, encoder)
    settings = embedding_settings(encoder, datamodule, cache, batch_size, tracks_per_shard)
    if check_settings(out, settings):
        return out  # finished with the settings asked for
    manifest = _tracks_to_embed(datamodule, manifest, cache)
    # every check passed: only now is anything written
    writer = _claim(out, settings, encoder)
    tasks = [
        SplitShard(split, shard.name, shard.track_ids)
        for split in SPLITS
        for shard in plan_shards(manifest.split(split).ids, tracks_per_shard, prefix=f"{split}-")
    ]
    embedder = ShardEmbedder(encoder.to(device).eval(), cache, datamodule, plan, writer, batch_size, device)
    records = write_shards(writer, tasks, embedder, prog="musictag embed", desc="embed", progress=progress)
    _write_index(out, encoder, datamodule, cache, manifest, writer, tasks, records)
    return out


# --- the checks before anything is written ---------------------------------------------------------


def check_request(
    encoder: Any,
    datamodule: Any,
    out: Path,
    batch_size: int,
    tracks_per_shard: int,
    device: str | torch.device,
    inputs: Sequence[Pathlike],
) -> torch.device:
    """The numbers, the device (returned as it is used), the ``out`` folder and what the encoder and the
    DataModule must be for a cache."""
    check_embed_numbers(batch_size, tracks_per_shard)
    device = pick_device(device, "device")
    check_embedding_out(out, inputs, datamodule)
    if not encoder.float16:
        raise ConfigError("the embedding cache stores float16: build the encoder with float16: true")
    at_least("chunk_len", int(datamodule.chunk_len), 1)
    return device


def _load_audio(datamodule: Any, encoder: Any) -> tuple[Any, Any]:
    """The DataModule's manifest and audio cache (prepared first if missing), at the encoder's rate."""
    datamodule.prepare_data()
    manifest, cache = datamodule.load()
    if cache.sample_rate != encoder.sample_rate:
        raise ConfigError(
            f"the audio cache at {cache.root} holds {cache.sample_rate} Hz audio but the data config asks "
            f"for {encoder.sample_rate} Hz; set its sample_rate to the cache's"
        )
    return manifest, cache


def embedding_settings(
    encoder: Any, datamodule: Any, cache: Any, batch_size: int, tracks_per_shard: int
) -> dict[str, Any]:
    """What a cache is written with (``settings.json``): a resumed or reused one must match."""
    fingerprint = getattr(encoder, "sha256", None)  # the file of a checkpoint encoder
    return {
        "encoder": encoder_id(encoder.path),
        **({"encoder_sha256": fingerprint} if fingerprint else {}),
        "layers": encoder.layers,
        "time_pool": encoder.time_pool,
        "encoder_batch": encoder.encoder_batch,
        "batch_size": batch_size,  # float32 results may depend on it (see PretrainedEncoder)
        "chunk_len": int(datamodule.chunk_len),
        "n_chunks": datamodule.n_chunks,
        "chunk_mode": datamodule.chunk_mode,
        "chunk_hop": datamodule.chunk_hop,
        "train_crop": datamodule.train_crop,
        "sample_rate": cache.sample_rate,
        "audio_cache": os.path.realpath(cache.root),
        "tracks_per_shard": tracks_per_shard,
    }


def check_embedding_out(out: Pathlike, inputs: Sequence[Pathlike], datamodule: Any) -> None:
    """``--out`` is a new or empty folder or an embedding cache, and none of the inputs or the corpus's files."""
    check_output_folder(
        out,
        "--out",
        inputs=[*inputs, *data_paths(datamodule)],
        ours=is_embedding_dir,
        hint="give a new or empty folder for the embedding cache",
    )


def check_embed_numbers(
    batch_size: int, tracks_per_shard: int, names: tuple[str, str] = ("batch_size", "tracks_per_shard")
) -> None:
    """Refuse a batch or shard size below 1 before anything is loaded or written."""
    at_least(names[0], batch_size, 1)
    at_least(names[1], tracks_per_shard, 1)


def is_embedding_dir(folder: Path) -> bool:
    """Whether ``folder`` is an embedding cache (finished or not) that ``musictag embed`` wrote."""
    if (folder / MARK).is_file():
        return True
    for name, keys in (
        (EMBEDDINGS_INDEX, ("format",)),
        (SETTINGS, ("encoder", "tracks_per_shard", "layers")),
    ):
        try:  # caches from before the mark: their index, or the settings.json of an unfinished one
            record = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and all(k in record for k in keys):
            if name == SETTINGS or record.get("format") == EMBEDDINGS_FORMAT:
                return True
    return False


def encoder_id(path: str) -> str:
    """The encoder as recorded: a local folder absolute with symlinks resolved (``./enc`` is ``enc``)."""
    expanded = os.path.expanduser(path)
    return os.path.realpath(expanded) if os.path.exists(expanded) else path


def _differences(old: dict[str, Any], new: dict[str, Any], keys: Any) -> list[str]:
    """``"layers [0, 2] → [0, 1, 2]"`` for each of ``keys`` recorded in both that differs."""
    return [f"{k} {old[k]!r} → {new[k]!r}" for k in keys if k in old and k in new and old[k] != new[k]]


def check_settings(out: Path, settings: dict[str, Any]) -> bool:
    """Whether ``out`` holds a finished cache of ``settings`` (``False``: none, or one to resume).

    A finished cache made otherwise, or an unfinished one with other settings, is refused naming each
    setting that differs (old → new), so a rerun never returns a cache of another encoder, layers or
    chunking as if it were the one asked for.
    """
    settings_path = out / SETTINGS
    earlier = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    if (out / EMBEDDINGS_INDEX).is_file():
        index = json.loads((out / EMBEDDINGS_INDEX).read_text())
        recorded = dict(earlier or {k: index[k] for k in INDEX_SETTINGS if k in index})
        if isinstance(recorded.get("encoder"), str):  # recorded as given before paths were resolved
            recorded["encoder"] = encoder_id(recorded["encoder"])
        differ = _differences(recorded, settings, CONTENT_SETTINGS)
        if differ:
            raise ConfigError(
                f"--out {out} holds a finished embedding cache made with other settings: {', '.join(differ)}; "
                f"remove {out} to embed it again with the new settings, or give another --out"
            )
        return True
    if earlier is not None:
        differ = _differences(earlier, settings, settings)
        if differ:
            raise ConfigError(
                f"{out} holds an unfinished embedding cache with other settings ({settings_path}: "
                f"{', '.join(differ)}); remove it or use another folder, or resume with its settings"
            )
    return False


def _tracks_to_embed(datamodule: Any, manifest: Any, cache: Any) -> Any:
    """The manifest's tracks that the audio cache holds, less those of a damaged shard (with a warning)."""
    if datamodule.augment is not None:
        print("musictag embed: the DataModule's augment is ignored (cached chunks are not augmented)")
    damaged = cache.damaged_tracks()
    if damaged:
        print(
            f"musictag embed: {len(damaged)} track(s) of the audio cache cannot be read and are left out "
            f"({next(iter(damaged.values()))}); prepare the cache again to restore them",
            file=sys.stderr,
        )
    return manifest.take(
        [i for i, track in enumerate(manifest.ids) if track in cache and track not in damaged]
    )


# --- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitShard:
    """One shard of a split's tracks (a :class:`~datamodules.store.ShardTask`)."""

    split: str
    name: str
    track_ids: list[str]


def _claim(out: Path, settings: dict[str, Any], encoder: Any) -> ShardWriter:
    """Mark ``out`` as an embedding cache, clear what a killed run left and record the settings."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).touch()
    writer = ShardWriter(out, ".f16", "<f2", (len(encoder.layers), *encoder.frame_shape))
    writer.start()
    atomic_write_text(out / SETTINGS, json.dumps(settings))
    return writer


def train_starts(n_samples: int, plan: ChunkPlan, train_crop: str) -> np.ndarray:
    """Where the cached training chunks of a song start: the fixed excerpt of ``train_crop: start`` /
    ``center`` (as :class:`~datamodules.datasets.TrainChunks` cuts it), or every evaluation chunk for
    ``random`` (training then draws one per epoch)."""
    room = max(0, n_samples - plan.chunk_len)
    if train_crop == "start":
        return np.array([0])
    if train_crop == "center":
        return np.array([room // 2])
    return plan.starts(n_samples)


@dataclass
class ShardEmbedder:
    """Writes one shard (called by :func:`~datamodules.store.write_shards`): each track's chunks through
    the encoder, ``batch_size`` chunks (of one or more tracks) a forward, rows in track order."""

    encoder: Any
    cache: Any
    datamodule: Any
    plan: ChunkPlan
    writer: ShardWriter
    batch_size: int
    device: torch.device

    def chunks(self, track_id: str, split: str) -> Any:
        """The track's chunks as this split caches them: ``(n_chunks, chunk_len)`` float32."""
        import torch

        from musictag.chunks import cut_chunks

        audio = self.cache.read(track_id)
        if split == "train":
            starts = train_starts(len(audio), self.plan, self.datamodule.train_crop)
        else:
            starts = self.plan.starts(len(audio))
        return torch.from_numpy(cut_chunks(audio, starts, self.plan.chunk_len))

    def __call__(self, task: SplitShard, advance: Callable[[int], object]) -> None:
        entries, row = [], 0
        pending: list[Any] = []  # chunks of several tracks fill one batch
        with self.writer.write(task.name, task.track_ids) as shard:
            for track_id in task.track_ids:
                chunks = self.chunks(track_id, task.split)
                pending.extend(chunks)
                _encode(self.encoder, pending, self.batch_size, self.device, shard, keep=self.batch_size - 1)
                entries.append([track_id, row, len(chunks)])
                row += len(chunks)
                advance(1)
            _encode(self.encoder, pending, self.batch_size, self.device, shard, keep=0)
            shard.record.update(split=task.split, tracks=entries)


def _encode(
    encoder: Any, pending: list, batch_size: int, device: torch.device, shard: Any, keep: int
) -> None:
    """Encode and write (float16, in order) all but the last ``keep`` pending chunks, ``batch_size`` at
    a time, to ``shard`` (a :class:`~datamodules.store.ShardRows`)."""
    import torch

    while len(pending) > keep:
        batch = torch.stack(pending[:batch_size])
        del pending[: len(batch)]
        with torch.inference_mode():
            hidden = encoder.hidden_states(batch.to(device))
        shard.write(hidden.to(torch.float16).cpu().numpy())


def _write_index(
    out: Path,
    encoder: Any,
    datamodule: Any,
    cache: Any,
    manifest: Any,
    writer: ShardWriter,
    tasks: Sequence[SplitShard],
    records: Sequence[dict[str, Any]],
) -> None:
    """``manifest.csv`` and then ``index.json``, the mark of a complete cache."""
    shards: list[str] = []
    tracks: dict[str, dict[str, Any]] = {split: {} for split in SPLITS}
    for task, record in zip(tasks, records, strict=True):
        for track_id, first, count in record["tracks"]:
            tracks[task.split][track_id] = [len(shards), first, count]
        shards.append(writer.relative(task.name))
    manifest.write_csv(out / EMBEDDINGS_MANIFEST)
    index = {
        "format": EMBEDDINGS_FORMAT,
        "encoder": {"path": encoder.path, "family": encoder.family, "sample_rate": encoder.encoder_rate},
        "time_pool": encoder.time_pool,
        "layers": encoder.layers,
        "frame_shape": list(encoder.frame_shape),
        "dtype": "float16",
        "chunk_len": int(datamodule.chunk_len),
        "sample_rate": cache.sample_rate,
        "n_chunks": datamodule.n_chunks,
        "chunk_mode": datamodule.chunk_mode,
        "chunk_hop": datamodule.chunk_hop,
        "train_crop": datamodule.train_crop,
        "tag_names": list(manifest.tag_names),
        "shards": shards,
        "tracks": tracks,
    }
    atomic_write_text(out / EMBEDDINGS_INDEX, json.dumps(index))
