"""``musictag embed --encoder PATH --data CONFIG --out DIR [--layers all] [--device auto]``.

Runs a frozen pretrained encoder once over every chunk of a corpus and stores the chosen hidden layers
(float16) in an embedding cache (:mod:`datamodules.embeddings`) from which ``EmbeddingDataModule``
trains probes without the encoder. ``--data`` is a config whose ``data:`` section is read as ``musictag
fit`` reads it (:mod:`musictag.cli.data_config`: a fit recipe, a data-only file, or ``data:`` naming one
by path): its DataModule gives the corpus and the chunking (``chunk_len``, ``n_chunks``, ``chunk_mode``,
``train_crop``), so the cached chunks are those live training and evaluation take. Resumable: run it
again after an interruption and it continues with the first shard not committed. The writing is
:func:`datamodules.embedding_writer.embed_corpus`; this module parses, calls and prints.
"""

from __future__ import annotations

import argparse
import os
import sys

from datamodules.base import data_paths
from datamodules.embedding_writer import check_embed_numbers, embed_corpus, is_embedding_dir
from musictag.cli.data_config import read_data_config
from musictag.guards import DEVICE_HELP, at_least, check_output_folder, given_path, pick_device
from musictag.types import ConfigError


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
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--trust-remote-code", action="store_true", help="run the folder's model code (MERT)")
    parser.add_argument("--download", action="store_true", help="let transformers download a Hub id")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # every number and the device first: a bad one costs nothing and leaves nothing behind
    check_embed_numbers(args.batch_size, args.tracks_per_shard, ("--batch-size", "--tracks-per-shard"))
    at_least("--encoder-batch", args.encoder_batch, 1)
    at_least("--chunk-len", args.chunk_len, 1)
    device = pick_device(args.device)
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
