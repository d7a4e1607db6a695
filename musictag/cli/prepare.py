"""``musictag prepare CORPUS --root AUDIO --out CACHE [--metadata ...] [--workers N]``.

Reads the corpus metadata exactly as published, decodes every track once (downmix, resample) into a
packed int16 cache, and reports every file it could not use. Resumable: run it again after an
interruption and it continues where it stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections import Counter

from musictag.stages.registry import ConfigError

#: Left-out files listed per kind of problem; report.json lists them all.
SHOWN_PER_PROBLEM = 20


#: The lowest ``--sample-rate`` prepare takes (Hz): the published models read 16 kHz, some 22.05 kHz.
MIN_SAMPLE_RATE = 1000


def as_flags(message: str, corpus: str) -> str:
    """A DataModule's message with its argument names (``data.init_args.csv``) as this command's flags."""
    from datamodules.corpora import DATAMODULES

    flags = {
        "audio_root": "--root",
        "cache_dir": "--out",
        DATAMODULES[corpus].metadata_arg: "--metadata",
        "split_column": "--split-column",
        "artist_column": "--artist-column",
    }
    for name, flag in flags.items():
        message = message.replace(f"data.init_args.{name}", flag)
    return message.replace(" or audio_root)", " or --root)")


def check_arguments(args: argparse.Namespace) -> None:
    """Every number, the audio root and the cache folder, before any metadata is read or audio decoded:
    a ``--sample-rate 0`` must not cost a decoding of the whole corpus, nor a folder of the user's files
    be written into."""
    from datamodules.cache import is_cache_dir
    from musictag.guards import InputError, at_least, at_most_per_core, check_output_folder

    at_least("--workers", args.workers, 1)
    at_most_per_core("--workers", args.workers, per_core=4)  # decoding waits on reads: a few per core help
    at_least("--tracks-per-shard", args.tracks_per_shard, 1)
    # 16 for 16000 would decode every track to a few samples a second: no model reads below 8 kHz
    at_least("--sample-rate", args.sample_rate, MIN_SAMPLE_RATE)
    at_least("--min-seconds", args.min_seconds, 0)
    if not os.path.isdir(args.root):
        what = "is a file" if os.path.exists(args.root) else "does not exist"
        raise InputError(f"--root {args.root} {what}; give the folder that holds the corpus audio")
    check_output_folder(
        args.out,
        "--out",
        inputs=[args.root, *([args.metadata] if args.metadata else [])],
        ours=is_cache_dir,
        hint="give a new or empty folder for the cache",
    )


def main(argv: list[str] | None = None) -> int:
    from datamodules.cache import REPORT, AudioCache
    from datamodules.corpora import DATAMODULES
    from datamodules.prepare import PrepareInterrupted
    from musictag.guards import given_path

    parser = argparse.ArgumentParser(prog="musictag prepare", description=__doc__.splitlines()[0])
    parser.add_argument("corpus", choices=sorted(DATAMODULES))
    parser.add_argument("--root", type=given_path, required=True, help="the corpus audio folder")
    parser.add_argument("--out", type=given_path, required=True, help="the cache folder to write")
    parser.add_argument(
        "--metadata",
        type=given_path,
        help="mtat: annotations_final.csv (default: ROOT/annotations_final.csv); msd: the metadata folder; "
        "jamendo: data/splits; folder: the CSV of path,tags",
    )
    parser.add_argument("--workers", type=int, default=1, help="decoding processes")
    parser.add_argument("--tracks-per-shard", type=int, default=128, help="the unit a resumed run redoes")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--min-seconds", type=float, default=None, help="leave out shorter tracks (mtat clean: 29.1)"
    )
    parser.add_argument("--split", default=None, help="mtat: clean|all|published; jamendo: 0-4")
    parser.add_argument(
        "--published-dir",
        type=given_path,
        help="mtat --split published: folder of valid.npy, test.npy, train_list_pub.cP",
    )
    parser.add_argument(
        "--subset", default="top50tags", help="jamendo: top50tags|genre|instrument|moodtheme|all"
    )
    parser.add_argument("--quality", default="full", help="jamendo: full|low")
    parser.add_argument(
        "--split-column", help="folder: the CSV column with train/valid/test (default: 'split' if present)"
    )
    parser.add_argument(
        "--artist-column",
        help="folder: the column grouping a random split by artist (default: 'artist' if present)",
    )
    args = parser.parse_args(argv)
    if args.corpus == "jamendo" and not (args.split or "0").isdigit():
        parser.error(f"jamendo: --split is the number of an official split (0-4), not {args.split!r}")
    check_arguments(args)

    common = {
        "cache_dir": args.out,
        "audio_root": args.root,
        "workers": args.workers,
        "sample_rate": args.sample_rate,
        "tracks_per_shard": args.tracks_per_shard,
    }
    if args.min_seconds is not None:
        common["min_seconds"] = args.min_seconds
    specific = {
        "mtat": {
            "annotations": args.metadata,
            "split": args.split or "clean",
            "published_dir": args.published_dir,
        },
        "msd": {"metadata_dir": args.metadata},
        "jamendo": {
            "splits_dir": args.metadata,
            "split": int(args.split or 0) if args.corpus == "jamendo" else 0,  # mtat's are names
            "subset": args.subset,
            "quality": args.quality,
        },
        "folder": {
            "csv": args.metadata,
            "split_column": args.split_column,
            "artist_column": args.artist_column,
        },
    }[args.corpus]
    stopped_by = signal.SIGINT

    def terminated(signum: int, frame: object) -> None:
        # SIGTERM stops like Ctrl-C: the decoding workers are ended and their half-written shards
        # removed (the default action would leave the workers running with no parent)
        nonlocal stopped_by
        stopped_by = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        datamodule = DATAMODULES[args.corpus](**common, **specific)
        datamodule.prepare_data()
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"musictag prepare: error: {as_flags(str(err), args.corpus)}", file=sys.stderr)
        return 2
    except PrepareInterrupted:  # the finished shards are kept; the message says how to resume
        return 128 + stopped_by
    finally:
        signal.signal(signal.SIGTERM, previous)
    cache = AudioCache(args.out)
    problems = cache.report()
    print(f"musictag prepare: {len(cache)} tracks in {args.out} at {cache.sample_rate} Hz")
    if problems:
        counts = Counter(p["problem"] for p in problems)
        print(
            f"musictag prepare: {len(problems)} left out ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}):"
        )
        shown: Counter[str] = Counter()
        for problem in problems:  # a partial download misses thousands: a few of each kind are enough
            shown[problem["problem"]] += 1
            if shown[problem["problem"]] <= SHOWN_PER_PROBLEM:
                print(f"  {problem['problem']:<10} {problem['detail']}")
        for kind, n in sorted(counts.items()):
            if n > SHOWN_PER_PROBLEM:
                print(f"  {kind:<10} ... and {n - SHOWN_PER_PROBLEM} more, all in {cache.root / REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
