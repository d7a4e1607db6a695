"""``musictag embed --encoder PATH | --ckpt CKPT --data CONFIG --out DIR [--layers all] [--device auto]``.

Runs a frozen pretrained encoder (or a musictag checkpoint: ``--ckpt``, its layers by name, e.g.
``penultimate``, on chunks of its own length at its own sample rate) once over every chunk of a corpus and stores the chosen hidden layers
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
from typing import Any

from datamodules.base import DATA_NAMES
from datamodules.embedding_writer import check_embed_numbers, check_embedding_out, embed_corpus
from musictag.chunks import ChunkPlan
from musictag.cli.data_config import read_data_config
from musictag.guards import (
    DEVICE_HELP,
    InputError,
    at_least,
    check_input_file,
    given_path,
    pick_device,
)
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
    parser.add_argument("--encoder", type=given_path, help="a Hugging Face model folder or a cached Hub id")
    parser.add_argument(
        "--ckpt",
        type=given_path,
        help="a musictag checkpoint as the encoder (in place of --encoder): its layers by name",
    )
    parser.add_argument(
        "--data", type=given_path, required=True, help="a YAML config with a data: section (a fit config)"
    )
    parser.add_argument("--out", type=given_path, required=True, help="the embedding cache folder to write")
    parser.add_argument(
        "--layers",
        help="--encoder: all (default), an index, or 0,4,8; --ckpt: layer names, e.g. penultimate "
        "(default) or mean_pool,max_pool",
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
    if (args.encoder is None) == (args.ckpt is None):
        both = "not both" if args.encoder else "one of them"
        raise InputError(f"give --encoder (a Hugging Face encoder) or --ckpt (a musictag checkpoint), {both}")
    if args.ckpt is not None:
        for flag, value in (("--trust-remote-code", args.trust_remote_code), ("--download", args.download)):
            if value:
                raise InputError(f"{flag} is for --encoder (a Hugging Face model); --ckpt takes none")
        check_input_file(args.ckpt, "--ckpt")
        layers: Any = [v for v in (args.layers or "penultimate").split(",") if v]
    else:
        try:
            layers = parse_layers(args.layers or "all")
        except argparse.ArgumentTypeError as err:
            parser.error(f"argument --layers: {err}")
    # every number and the device first: a bad one costs nothing and leaves nothing behind
    check_embed_numbers(args.batch_size, args.tracks_per_shard, ("--batch-size", "--tracks-per-shard"))
    at_least("--encoder-batch", args.encoder_batch, 1)
    at_least("--chunk-len", args.chunk_len, 1)
    device = pick_device(args.device)
    data = read_data_config([args.data], "--data")
    if args.ckpt is not None:
        if args.chunk_len:
            raise InputError("--chunk-len is for --encoder: --ckpt takes the checkpoint's own chunk length")
        return embed_checkpoint(args, data, layers, device)
    from musictag.stages.frontends.hf_encoder import PretrainedEncoder

    datamodule = (data.with_args(chunk_len=args.chunk_len) if args.chunk_len else data).build()
    if datamodule.chunk_len is None:
        raise ConfigError(f"{args.data} sets no chunk_len: give --chunk-len (samples per chunk)")
    inputs = [args.data, *([args.encoder] if os.path.exists(args.encoder) else [])]
    # the folder before the encoder is loaded (slow): a refused --out is refused at once
    check_embedding_out(args.out, inputs, datamodule)
    encoder = PretrainedEncoder(
        (1, int(datamodule.chunk_len)),
        datamodule.sample_rate,
        args.encoder,
        layers=layers,
        time_pool=args.time_pool,
        encoder_batch=args.encoder_batch,
        trust_remote_code=args.trust_remote_code,
        download=args.download,
    )
    return write_and_report(encoder, datamodule, args, device, inputs)


def embed_checkpoint(args: argparse.Namespace, data: Any, layers: list[str], device: Any) -> int:
    """``--ckpt``: the checkpoint's layers over chunks of its own length, at its own sample rate."""
    from musictag.inference.encoder import CheckpointEncoder, load_network
    from musictag.inference.features import check_layers

    module = load_network(args.ckpt)  # refuses a file that is no checkpoint, in one line
    check_layers(module.net, layers, "--layers")
    datamodule = data.build()
    if int(datamodule.sample_rate) != int(module.sample_rate):
        raise InputError(
            f"--data {args.data} is at {datamodule.sample_rate} Hz but --ckpt {args.ckpt} takes "
            f"{module.sample_rate} Hz: give a data config at {module.sample_rate} Hz (its sample_rate)"
        )
    # the checkpoint's own chunk length; where the data config's chunks sit, its chunking says
    plan = ChunkPlan.for_model(
        module,
        datamodule.chunk_mode or "even",
        datamodule.n_chunks,
        datamodule.chunk_hop,
        names=DATA_NAMES,
        refuse_unused=False,
    )
    if datamodule.chunk_len is not None and int(datamodule.chunk_len) != plan.chunk_len:
        print(
            f"musictag embed: chunks of {plan.chunk_len} samples, the input_len of {args.ckpt} "
            f"(--data sets chunk_len {datamodule.chunk_len})"
        )
    datamodule.chunk_len = plan.chunk_len
    inputs = [args.data, args.ckpt]
    ckpt = os.path.abspath(os.path.expanduser(args.ckpt))  # index.json records it for musictag tag
    check_embedding_out(args.out, inputs, datamodule)
    encoder = CheckpointEncoder(
        (1, plan.chunk_len),
        datamodule.sample_rate,
        ckpt,
        layers=layers,
        time_pool=args.time_pool,
        encoder_batch=args.encoder_batch,
    )
    return write_and_report(encoder, datamodule, args, device, inputs)


def write_and_report(
    encoder: Any, datamodule: Any, args: argparse.Namespace, device: Any, inputs: list
) -> int:
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
