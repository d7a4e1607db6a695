"""``musictag prepare --config CONFIG [--data.init_args.X=V ...]``: decode a corpus into its audio cache.

Decodes every track of a corpus once (downmix, resample) into the packed int16 cache its DataModule
reads, and reports every file it could not use. The DataModule is the config's ``data:`` section, read
as ``musictag fit`` reads it (:mod:`musictag.cli.data_config`; a fit recipe or a data-only YAML): the
cache folder (``cache_dir``), the audio (``audio_root``), the metadata, ``workers``, ``sample_rate`` and
the rest are its init args, so its messages name them as the config does. Resumable: run it again after
an interruption and it continues where it stopped.

``musictag prepare CORPUS --root AUDIO --out CACHE [--metadata M] ...``, the earlier spelling, still
runs: its flags are translated (:data:`FLAGS`) into such a section, and the same code runs from there.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from musictag.guards import given_path
from musictag.types import ConfigError

#: Left-out files listed per kind of problem; report.json lists them all.
SHOWN_PER_PROBLEM = 20

#: The lowest sample rate prepare takes (Hz): the published models read 16 kHz, some 22.05 kHz.
MIN_SAMPLE_RATE = 1000

#: The flags of ``musictag prepare CORPUS ...`` → the DataModule init arg each one sets (``None``: the
#: corpus's metadata argument, e.g. ``annotations`` for mtat). A flag not given leaves the DataModule's
#: default; one whose init arg the corpus's DataModule does not take is refused.
FLAGS: dict[str, str | None] = {
    "--root": "audio_root",
    "--out": "cache_dir",
    "--metadata": None,
    "--workers": "workers",
    "--tracks-per-shard": "tracks_per_shard",
    "--sample-rate": "sample_rate",
    "--min-seconds": "min_seconds",
    "--split": "split",
    "--published-dir": "published_dir",
    "--subset": "subset",
    "--quality": "quality",
    "--split-column": "split_column",
    "--artist-column": "artist_column",
}


def check_arguments(init_args: dict[str, Any], name: Callable[[str], str]) -> None:
    """Every number, the audio root and the cache folder, before any metadata is read or audio decoded:
    a sample rate of 0 must not cost a decoding of the whole corpus, nor a folder of the user's files be
    written into. ``name`` gives what a message calls an init arg (a flag, or the config's key)."""
    from datamodules.base import data_paths
    from datamodules.cache import is_cache_dir
    from musictag.guards import InputError, at_least, at_most_per_core, check_output_folder

    workers = init_args["workers"]
    at_least(name("workers"), workers, 1)
    at_most_per_core(name("workers"), workers, per_core=4)  # decoding waits on reads: a few per core help
    at_least(name("tracks_per_shard"), init_args["tracks_per_shard"], 1)
    # 16 for 16000 would decode every track to a few samples a second: no model reads below 8 kHz
    at_least(name("sample_rate"), init_args["sample_rate"], MIN_SAMPLE_RATE)
    at_least(name("min_seconds"), init_args.get("min_seconds"), 0)
    for arg in ("audio_root", "cache_dir"):  # "" would be the working folder
        if init_args.get(arg) is not None and not os.fspath(init_args[arg]).strip():
            raise InputError(f"{name(arg)}: an empty path; give a folder")
    root = init_args.get("audio_root")
    if root is not None and not os.path.isdir(root):
        what = "is a file" if os.path.exists(root) else "does not exist"
        raise InputError(f"{name('audio_root')} {root} {what}; give the folder that holds the corpus audio")
    check_output_folder(
        init_args["cache_dir"],
        name("cache_dir"),
        inputs=data_paths({k: v for k, v in init_args.items() if k != "cache_dir"}),
        ours=is_cache_dir,
        hint="give a new or empty folder for the cache",
    )


def from_flags(argv: Sequence[str]) -> tuple[Any, dict[str, str]]:
    """The data section that ``musictag prepare CORPUS --root ... --out ...`` stands for, and the flag
    that names each init arg in its messages."""
    from datamodules.corpora import DATAMODULES, CorpusDataModule
    from musictag.cli.data_config import data_config_of, init_arg_names

    parser = argparse.ArgumentParser(
        prog="musictag prepare", description="the earlier spelling of `musictag prepare --config CONFIG`"
    )
    parser.add_argument("corpus", choices=sorted(DATAMODULES))
    parser.add_argument("--root", type=given_path, required=True, help="the corpus audio folder")
    parser.add_argument("--out", type=given_path, required=True, help="the cache folder to write")
    parser.add_argument(
        "--metadata",
        type=given_path,
        help="mtat: annotations_final.csv (default: ROOT/annotations_final.csv); msd: the metadata folder; "
        "jamendo: data/splits; folder: the CSV of path,tags; gtzan: the folder of the filtered split files "
        "(default: the shipped copies); ballroom: none (ROOT is its metadata)",
    )
    parser.add_argument("--workers", type=int, help="decoding processes (default 1)")
    parser.add_argument("--tracks-per-shard", type=int, help="the unit a resumed run redoes (default 128)")
    parser.add_argument("--sample-rate", type=int, help="default 16000")
    parser.add_argument("--min-seconds", type=float, help="leave out shorter tracks (mtat clean: 29.1)")
    parser.add_argument("--split", help="mtat: clean|all|published; jamendo: 0-4; gtzan: filtered|random")
    parser.add_argument(
        "--published-dir",
        type=given_path,
        help="mtat --split published: folder of valid.npy, test.npy, train_list_pub.cP",
    )
    parser.add_argument("--subset", help="jamendo: top50tags|genre|instrument|moodtheme|all")
    parser.add_argument("--quality", help="jamendo: full|low")
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
    cls: type[CorpusDataModule] = DATAMODULES[args.corpus]
    takes = init_arg_names(cls)
    init_args: dict[str, Any] = {}
    flag_of: dict[str, str] = {}
    for flag, arg in FLAGS.items():
        if arg is None and cls.metadata_arg in FLAGS.values():  # ballroom: the audio is its metadata
            if args.metadata is not None:
                raise ConfigError(f"--metadata is not a setting of {args.corpus}: --root is all it reads")
            continue
        arg = arg or cls.metadata_arg
        flag_of[arg] = flag
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if arg not in takes:
            others = ", ".join(c for c, k in sorted(DATAMODULES.items()) if arg in init_arg_names(k))
            raise ConfigError(f"{flag} is not a setting of {args.corpus}; only {others} take it")
        init_args[arg] = value
    section = {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": init_args}
    try:
        return data_config_of(section, f"musictag prepare {args.corpus}", CorpusDataModule), flag_of
    except ConfigError as err:  # e.g. a --split that is not one of the corpus's
        raise ConfigError(in_words_of(str(err), flag_of)) from None


def from_config(argv: Sequence[str]) -> Any:
    """The data section of ``--config CONFIG`` (repeatable) and ``--data.init_args.X=V`` overrides."""
    from datamodules.corpora import CorpusDataModule
    from musictag.cli.data_config import read_data_config

    parser = argparse.ArgumentParser(
        prog="musictag prepare",
        usage="musictag prepare --config CONFIG [--config CONFIG ...] [--data.init_args.X=VALUE ...]",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog="The DataModule's init args (cache_dir, audio_root, the metadata, workers, sample_rate, ...) "
        "come from the config; --data.init_args.X=VALUE overrides one, as on `musictag fit`. The earlier "
        "spelling `musictag prepare CORPUS --root AUDIO --out CACHE [--metadata M] ...` still runs "
        "(`musictag prepare CORPUS --help`).",
    )
    parser.add_argument(
        "--config",
        type=given_path,
        action="append",
        required=True,
        help="a config with a data: section (a fit recipe or a data-only YAML); repeatable, later ones win",
    )
    args, rest = parser.parse_known_args(argv)
    for token in rest:
        if token.startswith("-") and not token.startswith("--data"):
            flag = token.split("=", 1)[0]
            arg = FLAGS.get(flag) or "annotations|metadata_dir|splits_dir|csv"  # --metadata: the corpus's
            hint = (
                f"; with --config, set data.init_args.{arg} in the config or as --data.init_args.{arg}=VALUE"
                if flag in FLAGS
                else "; it takes --config CONFIG and --data.init_args.X=VALUE overrides"
            )
            raise ConfigError(f"{flag} is not an option of `musictag prepare --config`{hint}")
    return read_data_config(args.config, "--config", rest, CorpusDataModule)


def main(argv: list[str] | None = None) -> int:
    from datamodules.cache import REPORT, AudioCache
    from datamodules.corpora import DATAMODULES
    from datamodules.prepare import PrepareInterrupted

    argv = list(sys.argv[1:] if argv is None else argv)
    flags: dict[str, str] = {}  # init arg → the flag that set it (the earlier spelling)
    if argv and argv[0] in DATAMODULES:
        data, flags = from_flags(argv)
    elif argv and not argv[0].startswith("-"):
        raise ConfigError(
            f"{argv[0]!r} is not a corpus ({', '.join(sorted(DATAMODULES))}); give --config CONFIG (a fit "
            "recipe or a data-only YAML), or a corpus and its flags: musictag prepare CORPUS --root AUDIO "
            "--out CACHE"
        )
    else:
        data = from_config(argv)
    init_args = data.init_args
    check_arguments(init_args, lambda arg: flags.get(arg) or f"{data.source}: data.init_args.{arg}")
    stopped_by = signal.SIGINT

    def terminated(signum: int, frame: object) -> None:
        # SIGTERM stops like Ctrl-C: the decoding workers are ended and their half-written shards
        # removed (the default action would leave the workers running with no parent)
        nonlocal stopped_by
        stopped_by = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        datamodule = data.build()
        datamodule.prepare_data()
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"musictag prepare: error: {in_words_of(str(err), flags)}", file=sys.stderr)
        return 2
    except PrepareInterrupted:  # the finished shards are kept; the message says how to resume
        return 128 + stopped_by
    finally:
        signal.signal(signal.SIGTERM, previous)
    cache = AudioCache(init_args["cache_dir"])
    problems = cache.report()
    print(f"musictag prepare: {len(cache)} tracks in {init_args['cache_dir']} at {cache.sample_rate} Hz")
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


def in_words_of(message: str, flags: dict[str, str]) -> str:
    """A DataModule's message (``set data.init_args.csv``) with each init arg that a flag set named by
    that flag (the earlier spelling); with ``--config`` (no flags) it is unchanged."""
    return re.sub(r"data\.init_args\.(\w+)", lambda m: flags.get(m.group(1), m.group(0)), message)


if __name__ == "__main__":
    from musictag.guards import run_command

    sys.exit(run_command("musictag prepare", main))
