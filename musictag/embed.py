"""``musictag embed --encoder PATH --data CONFIG --out DIR [--layers all] [--device auto]``.

Runs a frozen pretrained encoder once over every chunk of a corpus and stores the chosen hidden layers
(float16) in an embedding cache (:mod:`datamodules.embeddings`) from which ``EmbeddingDataModule``
trains probes without the encoder. ``--data`` is a YAML file with a ``data:`` section (a fit config
does): its DataModule gives the corpus and the chunking (``chunk_len``, ``n_chunks``, ``chunk_mode``,
``train_crop``), so the cached chunks are those live training and evaluation take. Resumable: run it
again after an interruption and it continues with the first shard not committed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musictag.guards import at_least, check_device, check_input_file, check_output_folder
from musictag.types import ConfigError, Pathlike


def load_datamodule(config_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """The DataModule of a YAML config's ``data:`` section (or of a file that is only that section).

    A key the DataModule does not take (a typo in ``init_args``) is a one-line error naming the key and
    the file, not a ``TypeError`` traceback from the constructor.
    """
    from omegaconf import OmegaConf

    check_input_file(config_path, "--data")
    try:
        config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
    except Exception as err:  # noqa: BLE001  (yaml and omegaconf raise many kinds for a bad file)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--data {config_path} is not a readable YAML config: {first}") from None
    section = config.get("data", config) if isinstance(config, dict) else None
    if not isinstance(section, dict) or "class_path" not in section:
        raise ConfigError(
            f"{config_path} has no data section with a class_path (e.g. datamodules.MTATDataModule)"
        )
    module_name, _, name = section["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{config_path}: cannot import {section['class_path']!r}: {err}") from None
    from datamodules.base import TaggingDataModule

    if not (isinstance(cls, type) and issubclass(cls, TaggingDataModule)):
        raise ConfigError(
            f"{config_path}: data class_path {section['class_path']!r} is not a musictag DataModule "
            "(e.g. datamodules.FolderDataModule)"
        )
    init_args = section.get("init_args") or {}
    if not isinstance(init_args, dict):
        raise ConfigError(f"{config_path}: data.init_args must be a mapping of argument: value")
    try:
        return cls(**{**init_args, **(overrides or {})})
    except TypeError as err:
        if "argument" not in str(err):  # not a call mismatch: a bug, keep its traceback
            raise
        accepted = _accepted_arguments(cls)
        reason = re.sub(r"^[\w.]*__init__[(][)] ", "", str(err))  # "FolderDataModule.__init__() got ..."
        raise ConfigError(
            f"{config_path}: data.init_args of {section['class_path']}: "
            f"{reason}" + (f"; it takes {', '.join(accepted)}" if accepted else "")
        ) from None


def _accepted_arguments(cls: type) -> list[str]:
    """The keyword arguments of ``cls`` and of the bases its ``**kwargs`` reach (for the message)."""
    import inspect

    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        names += [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


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


#: The mark of a folder ``musictag embed`` writes (the first file it writes there).
MARK = ".musictag-embeddings"
SETTINGS = "settings.json"
#: Settings that decide what a finished cache holds; ``tracks_per_shard`` only decides how its rows are
#: split into files, so a finished cache is the same for any value of it.
CONTENT_SETTINGS = (
    "encoder",
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
#: The ``index.json`` entries that record a setting (a finished cache whose settings.json is gone).
INDEX_SETTINGS = (
    "layers",
    "time_pool",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
)


def is_embedding_dir(folder: Path) -> bool:
    """Whether ``folder`` is an embedding cache (finished or not) that ``musictag embed`` wrote."""
    from datamodules.embeddings import FORMAT, INDEX

    if (folder / MARK).is_file():
        return True
    for name, keys in ((INDEX, ("format",)), (SETTINGS, ("encoder", "tracks_per_shard", "layers"))):
        try:  # caches from before the mark: their index, or the settings.json of an unfinished one
            record = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and all(k in record for k in keys):
            if name == SETTINGS or record.get("format") == FORMAT:
                return True
    return False


def _encoder_id(path: str) -> str:
    """The encoder as recorded: a local folder absolute with symlinks resolved (``./enc`` is ``enc``)."""
    expanded = os.path.expanduser(path)
    return os.path.realpath(expanded) if os.path.exists(expanded) else path


def _data_paths(datamodule: Any) -> list[str]:
    """The files and folders a DataModule reads (its cache, audio and metadata): never an output."""
    names = (
        "cache_dir",
        "root",
        "audio_root",
        "csv",
        "annotations",
        "metadata_dir",
        "splits_dir",
        "published_dir",
    )
    return [
        os.fspath(v)
        for v in (getattr(datamodule, n, None) for n in names)
        if isinstance(v, (str, os.PathLike))
    ]


def _differences(old: dict[str, Any], new: dict[str, Any], keys: Any) -> list[str]:
    """``"layers [0, 2] → [0, 1, 2]"`` for each of ``keys`` recorded in both that differs."""
    return [f"{k} {old[k]!r} → {new[k]!r}" for k in keys if k in old and k in new and old[k] != new[k]]


def check_embed_numbers(
    batch_size: int, tracks_per_shard: int, names: tuple[str, str] = ("batch_size", "tracks_per_shard")
) -> None:
    """Refuse a batch or shard size below 1 before anything is loaded or written."""
    at_least(names[0], batch_size, 1)
    at_least(names[1], tracks_per_shard, 1)


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
    :class:`~musictag.frontends.pretrained.PretrainedEncoder`) into ``out``; resumable.

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
        inputs=[*inputs, *_data_paths(datamodule)],
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
        "encoder": _encoder_id(encoder.path),
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
    earlier = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    if (out / INDEX).is_file():
        index = json.loads((out / INDEX).read_text())
        recorded = dict(earlier or {k: index[k] for k in INDEX_SETTINGS if k in index})
        if isinstance(recorded.get("encoder"), str):  # recorded as given before paths were resolved
            recorded["encoder"] = _encoder_id(recorded["encoder"])
        differ = _differences(recorded, settings, CONTENT_SETTINGS)
        if differ:
            raise ConfigError(
                f"--out {out} holds a finished embedding cache made with other settings: {', '.join(differ)}; "
                f"remove {out} to embed it again with the new settings, or give another --out"
            )
        return out
    if earlier is not None:
        differ = _differences(earlier, settings, settings)
        if differ:
            raise ConfigError(
                f"{out} holds an unfinished embedding cache with other settings ({settings_path}: "
                f"{', '.join(differ)}); remove it or use another folder, or resume with its settings"
            )
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
    done = 0
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
    parser.add_argument("--encoder", required=True, help="a Hugging Face model folder or a cached Hub id")
    parser.add_argument("--data", required=True, help="a YAML config with a data: section (a fit config)")
    parser.add_argument("--out", required=True, help="the embedding cache folder to write")
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
    from musictag.frontends.pretrained import PretrainedEncoder

    datamodule = load_datamodule(args.data, {"chunk_len": args.chunk_len} if args.chunk_len else None)
    if datamodule.chunk_len is None:
        raise ConfigError(f"{args.data} sets no chunk_len: give --chunk-len (samples per chunk)")
    inputs = [args.data, *([args.encoder] if os.path.exists(args.encoder) else [])]
    # the folder before the encoder is loaded (slow): a refused --out is refused at once
    check_output_folder(
        args.out,
        "--out",
        inputs=[*inputs, *_data_paths(datamodule)],
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
