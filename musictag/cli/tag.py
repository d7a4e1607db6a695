"""``musictag tag AUDIO... --ckpt CKPT``: what a model hears in audio files.

Every file (folders are searched recursively) is decoded, downmixed and resampled to the model's rate,
cut into chunks (the checkpoint's setting unless overridden; never more than the file holds), scored in
batches of chunks across files on the best available device (a progress bar on stderr), and
aggregated to song-level tag probabilities. A file that cannot be read (or holds NaN/Inf samples), and
a folder entry that is not a regular file or cannot be looked at, is reported on stderr and skipped; the
exit status is 1 if any was, or if a folder held no audio, and 2 when there is nothing to tag at all or
a setting is wrong (checked before the model runs: nothing is written then).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from musictag.audio import AUDIO_EXTENSIONS, AudioError
from musictag.chunks import CHUNK_MODES, ChunkPlan, SettingNames
from musictag.guards import (
    DEVICE_HELP,
    InputError,
    at_least,
    check_output_file,
    check_output_folder,
    given_path,
    pick_device,
)
from musictag.inference.search import find_audio
from musictag.inference.tagging import _top, check_batch_memory, load_model, tag_many


def audio_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments of every command that runs a checkpoint over audio files (``tag``, ``features``):
    the audio, ``--ckpt``, how files are cut, the batch and the device."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "audio", type=given_path, nargs="+", help="audio files and folders (searched recursively)"
    )
    parser.add_argument(
        "--ckpt", type=given_path, required=True, help="a musictag checkpoint (fit, or import-weights)"
    )
    parser.add_argument(
        "--n-chunks",
        type=int,
        default=None,
        help="chunks per file, even/sota modes (default: the checkpoint's)",
    )
    parser.add_argument("--chunk-mode", choices=CHUNK_MODES, default=None)
    parser.add_argument("--hop", type=int, default=None, help="sliding windows: hop in samples")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="chunks per forward pass (default: the checkpoint's)"
    )
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    return parser


def check_audio_numbers(args: argparse.Namespace) -> None:
    """The numbers of :func:`audio_parser`'s arguments: each at least 1 when given."""
    for flag in ("--n-chunks", "--hop", "--batch-size"):
        at_least(flag, getattr(args, flag[2:].replace("-", "_")))


def _parser() -> argparse.ArgumentParser:
    parser = audio_parser("musictag tag", __doc__.splitlines()[0])
    parser.add_argument("--top-k", type=int, default=5, help="tags shown per file (at least 1)")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also the scores of every chunk with its start time (csv: one row per chunk, start_s set)",
    )
    parser.add_argument(
        "--plot",
        type=given_path,
        metavar="DIR",
        default=None,
        help="also draw each file's taggram (chunk scores over time beside the song scores) as "
        "DIR/<name>.png; an existing PNG is never replaced",
    )
    return parser


def plot_targets(folder: str, files: list[Path], inputs: list[str]) -> dict[Path, Path]:
    """The PNG of each file under ``--plot DIR``, checked before the model runs: ``DIR`` is (or can
    become) a writable folder, and no PNG would replace an existing file (or an input)."""
    from musictag.inference.taggram import plot_path

    check_output_folder(folder, "--plot", ours=lambda _: True)  # an existing folder: only new files in it
    taken: set[Path] = set()
    targets = {path: plot_path(folder, path, taken) for path in files}
    for target in targets.values():
        check_output_file(
            target, "--plot", inputs=inputs, hint="give another --plot folder, or move that file away"
        )
    return targets


def audio_to_use(paths: list[Any], prog: str, verb: str) -> tuple[Any, list[Path]]:
    """The audio files given and under the given folders (:func:`find_audio`), each entry that was
    left out and each folder without audio said on stderr; one line when nothing is left to ``verb``
    (the one thing given, with what is wrong with it)."""
    found = find_audio(paths)
    problems = [f"{path}: {reason}" for path, reason in found.skipped] + [
        f"no audio files under {folder} ({', '.join(AUDIO_EXTENSIONS)})" for folder in found.empty
    ]
    if not found.files and len(problems) == 1:
        raise InputError(f"nothing to {verb}: {problems[0]}")
    for path, reason in found.skipped:
        print(f"{prog}: skipped {path}: {reason}", file=sys.stderr)
    for folder in found.empty:
        print(f"{prog}: no audio files under {folder} ({', '.join(AUDIO_EXTENSIONS)})", file=sys.stderr)
    if not found.files:
        raise InputError(f"nothing to {verb}: no audio files in the given paths (what was wrong is above)")
    return found, found.files


#: The chunking flags, as :class:`ChunkPlan`'s refusals name them.
FLAGS = SettingNames("--chunk-mode", "--n-chunks", "--hop")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    at_least("--top-k", args.top_k)
    check_audio_numbers(args)
    device = pick_device(args.device)
    found, files = audio_to_use(args.audio, "musictag tag", "tag")
    targets = plot_targets(args.plot, files, [*args.audio, args.ckpt]) if args.plot else {}
    model = load_model(args.ckpt, device)
    # settings the plan does not use are refused, not silently ignored; checked before the model runs
    plan = ChunkPlan.for_model(model, args.chunk_mode, args.n_chunks, args.hop, names=FLAGS)
    check_batch_memory(args.batch_size or model.eval_chunk_batch, model.input_len)
    return _tag(args, model, plan, files, targets, len(found.skipped), bool(found.empty))


def _tag(
    args: argparse.Namespace,
    model: Any,
    plan: ChunkPlan,
    files: list[Path],
    targets: dict[Path, Path],
    skipped: int,
    empty: bool,
) -> int:
    """Tag ``files`` and print them in ``args.format``; the exit status."""
    failed, notes = 0, 0
    writer = None

    def note(text: str) -> None:
        nonlocal notes
        notes += 1
        if notes <= 5:
            print(f"musictag tag: note: {text}", file=sys.stderr)

    results = tag_many(model, files, plan, args.batch_size, len(files) > 1, note)
    for result in results:
        if isinstance(result, AudioError):
            failed += 1
            print(f"musictag tag: skipped {result}", file=sys.stderr)
            continue
        result["top"] = _top(result["scores"], args.top_k)
        if args.plot:
            from musictag.inference.taggram import plot_taggram

            plot_taggram(result, targets[Path(result["path"])])
        timeline = result.pop("timeline")
        if args.format == "json":
            if args.timeline:
                result["timeline"] = timeline
            print(json.dumps(result, allow_nan=False), flush=True)  # scores are finite: valid JSON
        elif args.format == "csv":
            if writer is None:
                writer = csv.writer(sys.stdout)
                start = ["start_s"] if args.timeline else []
                writer.writerow(["path", "duration_s", *start, *result["scores"]])
            song = [""] if args.timeline else []  # the song's row has no start; its chunks' rows follow
            writer.writerow(
                [
                    result["path"],
                    result["duration_s"],
                    *song,
                    *(f"{s:.6f}" for s in result["scores"].values()),
                ]
            )
            for chunk in timeline if args.timeline else []:
                writer.writerow(
                    [
                        result["path"],
                        result["duration_s"],
                        chunk["start_s"],
                        *(f"{s:.6f}" for s in chunk["scores"].values()),
                    ]
                )
        else:
            print(f"{result['path']}  ({result['duration_s']:.1f} s)")
            for tag, score in result["top"]:
                print(f"  {score:6.3f}  {tag}")
            if args.timeline:
                for chunk in timeline:
                    best = _top(chunk["scores"], min(3, args.top_k))
                    print(f"    {chunk['start_s']:8.2f} s  " + ", ".join(f"{t} {s:.2f}" for t, s in best))
    if notes > 5:
        print(f"musictag tag: note: {notes - 5} more file(s) had their chunks cut down", file=sys.stderr)
    if failed or skipped:
        total = len(files) + skipped
        print(f"musictag tag: {failed + skipped} of {total} file(s) could not be tagged", file=sys.stderr)
    return 1 if failed or skipped or empty else 0
