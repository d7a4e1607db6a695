"""``musictag embed --encoder PATH --data CONFIG --out DIR [--layers all] [--device auto]``.

Runs a frozen pretrained encoder once over every chunk of a corpus and stores the chosen hidden layers
(float16) in an embedding cache (:mod:`datamodules.embeddings`) from which ``EmbeddingDataModule``
trains probes without the encoder. ``--data`` is a config whose ``data:`` section is read as ``musictag
fit`` reads it (:mod:`musictag.cli.data_config`: a fit recipe, a data-only file, or ``data:`` naming one
by path): its DataModule gives the corpus and the chunking (``chunk_len``, ``n_chunks``, ``chunk_mode``,
``train_crop``), so the cached chunks are those live training and evaluation take. Resumable: run it
again after an interruption and it continues with the first shard not committed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musictag.cli.data_config import data_paths, read_data_config
from musictag.cli.embed_checks import (
    MARK,
    SETTINGS,
    check_embed_numbers,
    check_settings,
    encoder_id,
    is_embedding_dir,
)
from musictag.guards import at_least, check_device, check_output_folder, given_path
from musictag.types import ConfigError, Pathlike


def train_starts(n_samples: int, chunk_len: int, datamodule: Any) -> np.ndarray:
    """Where the cached training chunks of a song start: the fixed excerpt of ``train_crop: start`` /
    ``center`` (as :class:`~datamodules.datasets.TrainChunks` cuts it), or every evaluation chunk for
    ``random`` (training then draws one per epoch)."""
    from musictag.chunks import chunk_starts

    room = max(0, n_samples - chunk_len)
    if datamodule.train_crop == "start":
        return np.array([0])
    if datamodule.train_crop == "center":
        return np.array([room // 2])
    return chunk_starts(
        n_samples, chunk_len, datamodule.n_chunks, datamodule.chunk_mode, datamodule.chunk_hop
    )


def embed_corpus(
    encoder: Any,
    datamodule: Any,
    out: Pathlike,
    batch_size: int = 16,
    tracks_per_shard: int = 64,
    device: str = "cpu",
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
    import torch
    from tqdm import tqdm

    from datamodules.embeddings import FORMAT, INDEX, MANIFEST
    from musictag.chunks import chunk_starts, cut_chunks
    from musictag.files import atomic_write, atomic_write_text, remove_stale_temporaries

    out = Path(out)
    check_embed_numbers(batch_size, tracks_per_shard)
    device = check_device(device, "device")
    check_output_folder(
        out,
        "--out",
        inputs=[*inputs, *data_paths(datamodule)],
        ours=is_embedding_dir,
        hint="give a new or empty folder for the embedding cache",
    )
    if not encoder.float16:
        raise ConfigError("the embedding cache stores float16: build the encoder with float16: true")
    chunk_len = int(datamodule.chunk_len)
    at_least("chunk_len", chunk_len, 1)
    # unset, a DataModule takes the model's tag_chunk_mode: `even` for a probe trained here
    datamodule.chunk_mode = datamodule.chunk_mode or "even"
    if datamodule.chunk_mode == "patches":
        raise ConfigError(
            "chunk_mode 'patches' cuts spectrogram frames; embed with even, sota or sliding chunks"
        )
    datamodule.prepare_data()
    manifest, cache = datamodule.load()
    if cache.sample_rate != encoder.sample_rate:
        raise ConfigError(
            f"the audio cache at {cache.root} holds {cache.sample_rate} Hz audio but the data config asks "
            f"for {encoder.sample_rate} Hz; set its sample_rate to the cache's"
        )
    settings = {
        "encoder": encoder_id(encoder.path),
        "layers": encoder.layers,
        "time_pool": encoder.time_pool,
        "encoder_batch": encoder.encoder_batch,
        "batch_size": batch_size,  # float32 results may depend on it (see PretrainedEncoder)
        "chunk_len": chunk_len,
        "n_chunks": datamodule.n_chunks,
        "chunk_mode": datamodule.chunk_mode,
        "chunk_hop": datamodule.chunk_hop,
        "train_crop": datamodule.train_crop,
        "sample_rate": cache.sample_rate,
        "audio_cache": os.path.realpath(cache.root),
        "tracks_per_shard": tracks_per_shard,
    }
    settings_path = out / SETTINGS
    if check_settings(out, settings):
        return out  # finished with the settings asked for
    if datamodule.augment is not None:
        print("musictag embed: the DataModule's augment is ignored (cached chunks are not augmented)")
    damaged = cache.damaged_tracks()
    if damaged:
        print(
            f"musictag embed: {len(damaged)} track(s) of the audio cache cannot be read and are left out "
            f"({next(iter(damaged.values()))}); prepare the cache again to restore them",
            file=sys.stderr,
        )
    manifest = manifest.take(
        [i for i, track in enumerate(manifest.ids) if track in cache and track not in damaged]
    )
    # every check passed: only now is anything written
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).touch()
    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    remove_stale_temporaries(shard_dir)  # a killed earlier run's shard in progress
    atomic_write_text(settings_path, json.dumps(settings))
    encoder = encoder.to(device).eval()
    tasks = []
    for split in ("train", "valid", "test"):
        ids = list(manifest.split(split).ids)
        for number, first in enumerate(range(0, len(ids), tracks_per_shard)):
            tasks.append((split, f"shards/{split}-{number:05d}", ids[first : first + tracks_per_shard]))
    bar = tqdm(total=len(manifest), unit="track", desc="embed", disable=not progress, file=sys.stderr)
    done, name = 0, ""
    track_ids: list[str] = []
    try:
        for split, name, track_ids in tasks:
            record_path = out / f"{name}.json"
            if record_path.is_file() and json.loads(record_path.read_text()).get("task_ids") == track_ids:
                bar.update(len(track_ids))
                done += 1
                continue
            entries, row = [], 0
            pending: list[torch.Tensor] = []  # chunks of several tracks fill one batch
            # the rows go to a temporary sibling that becomes the shard only once complete (Ctrl-C or a
            # kill leaves no half-written shard), and the JSON record commits it
            with atomic_write(out / f"{name}.f16") as tmp, open(tmp, "wb") as f:
                for track_id in track_ids:
                    audio = cache.read(track_id)
                    if split == "train":
                        starts = train_starts(len(audio), chunk_len, datamodule)
                    else:
                        starts = chunk_starts(
                            len(audio),
                            chunk_len,
                            datamodule.n_chunks,
                            datamodule.chunk_mode,
                            datamodule.chunk_hop,
                        )
                    chunks = torch.from_numpy(cut_chunks(audio, starts, chunk_len))
                    pending.extend(chunks)
                    _encode(encoder, pending, batch_size, device, f, keep=batch_size - 1)
                    entries.append([track_id, row, len(chunks)])
                    row += len(chunks)
                    bar.update(1)
                _encode(encoder, pending, batch_size, device, f, keep=0)
                f.flush()
            atomic_write_text(
                record_path, json.dumps({"split": split, "tracks": entries, "task_ids": track_ids})
            )
            done += 1
    except KeyboardInterrupt:
        bar.close()
        record_path = out / f"{name}.json"
        if name and not (
            record_path.is_file() and json.loads(record_path.read_text()).get("task_ids") == track_ids
        ):
            # interrupted between the shard's rows and its record: rows without a record are not done
            (out / f"{name}.f16").unlink(missing_ok=True)
        print(
            f"musictag embed: interrupted: {done} of {len(tasks)} shards of {out} are done (the shard in "
            "progress removed); run the same command again to resume from there",
            file=sys.stderr,
        )
        raise
    finally:
        bar.close()
    shards: list[Any] = []
    tracks: dict[str, dict[str, Any]] = {"train": {}, "valid": {}, "test": {}}
    for split, name, _ in tasks:
        record = json.loads((out / f"{name}.json").read_text())
        for track_id, first, count in record["tracks"]:
            tracks[split][track_id] = [len(shards), first, count]
        shards.append(f"{name}.f16")
    manifest.write_csv(out / MANIFEST)
    index = {
        "format": FORMAT,
        "encoder": {"path": encoder.path, "family": encoder.family, "sample_rate": encoder.encoder_rate},
        "time_pool": encoder.time_pool,
        "layers": encoder.layers,
        "frame_shape": list(encoder.frame_shape),
        "dtype": "float16",
        "chunk_len": chunk_len,
        "sample_rate": cache.sample_rate,
        "n_chunks": datamodule.n_chunks,
        "chunk_mode": datamodule.chunk_mode,
        "chunk_hop": datamodule.chunk_hop,
        "train_crop": datamodule.train_crop,
        "tag_names": list(manifest.tag_names),
        "shards": shards,
        "tracks": tracks,
    }
    atomic_write_text(out / INDEX, json.dumps(index))
    return out


def _encode(encoder: Any, pending: list, batch_size: int, device: str, f: Any, keep: int) -> None:
    """Encode and write (float16, in order) all but the last ``keep`` pending chunks, ``batch_size`` at a time."""
    import torch

    while len(pending) > keep:
        batch = torch.stack(pending[:batch_size])
        del pending[: len(batch)]
        with torch.inference_mode():
            hidden = encoder.hidden_states(batch.to(device))
        f.write(hidden.to(torch.float16).cpu().numpy().astype("<f2").tobytes())


def parse_layers(text: str) -> int | list[int] | str:
    """``all``, ``-1`` or ``0,4,8`` → what :class:`PretrainedEncoder` takes."""
    if text == "all":
        return text
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"layers must be 'all', an index or a comma list, got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musictag embed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoder", type=given_path, required=True, help="a Hugging Face model folder or a cached Hub id"
    )
    parser.add_argument(
        "--data", type=given_path, required=True, help="a YAML config with a data: section (a fit config)"
    )
    parser.add_argument("--out", type=given_path, required=True, help="the embedding cache folder to write")
    parser.add_argument(
        "--layers", type=parse_layers, default="all", help="all (default), an index, or 0,4,8"
    )
    parser.add_argument(
        "--chunk-len", type=int, help="samples per chunk (default: the data config's chunk_len)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="chunks (of one or more tracks) per batch")
    parser.add_argument(
        "--encoder-batch",
        type=int,
        help="chunks per encoder forward (default: --batch-size); 1 gives features bit-identical to a "
        "live front end with encoder_batch: 1",
    )
    parser.add_argument(
        "--time-pool", choices=["none", "mean"], default="none", help="mean: one frame per chunk"
    )
    parser.add_argument("--tracks-per-shard", type=int, default=64, help="the unit a resumed run redoes")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    parser.add_argument("--trust-remote-code", action="store_true", help="run the folder's model code (MERT)")
    parser.add_argument("--download", action="store_true", help="let transformers download a Hub id")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # every number and the device first: a bad one costs nothing and leaves nothing behind
    check_embed_numbers(args.batch_size, args.tracks_per_shard, ("--batch-size", "--tracks-per-shard"))
    at_least("--encoder-batch", args.encoder_batch, 1)
    at_least("--chunk-len", args.chunk_len, 1)
    device = check_device(args.device)
    from musictag.stages.frontends.hf_encoder import PretrainedEncoder

    data = read_data_config([args.data], "--data")
    datamodule = (data.with_args(chunk_len=args.chunk_len) if args.chunk_len else data).build()
    if datamodule.chunk_len is None:
        raise ConfigError(f"{args.data} sets no chunk_len: give --chunk-len (samples per chunk)")
    inputs = [args.data, *([args.encoder] if os.path.exists(args.encoder) else [])]
    # the folder before the encoder is loaded (slow): a refused --out is refused at once
    check_output_folder(
        args.out,
        "--out",
        inputs=[*inputs, *data_paths(datamodule)],
        ours=is_embedding_dir,
        hint="give a new or empty folder for the embedding cache",
    )
    encoder = PretrainedEncoder(
        (1, int(datamodule.chunk_len)),
        datamodule.sample_rate,
        args.encoder,
        layers=args.layers,
        time_pool=args.time_pool,
        encoder_batch=args.encoder_batch,
        trust_remote_code=args.trust_remote_code,
        download=args.download,
    )
    out = embed_corpus(
        encoder,
        datamodule,
        args.out,
        args.batch_size,
        args.tracks_per_shard,
        device,
        not args.quiet,
        inputs=inputs,
    )
    from datamodules.embeddings import read_index

    index = read_index(out)
    counts = ", ".join(f"{len(t)} {split}" for split, t in index["tracks"].items())
    print(
        f"musictag embed: {counts} tracks in {out}: layers {index['layers']}, "
        f"{index['frame_shape'][0]} frames x {index['frame_shape'][1]} per chunk"
    )
    return 0


if __name__ == "__main__":
    from musictag.guards import run_command

    sys.exit(run_command("musictag embed", main))
