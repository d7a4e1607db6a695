"""``musictag features AUDIO... --ckpt CKPT [--layers penultimate,backend] --out DIR``: a model's features.

Every file (folders are searched recursively) is cut into chunks as ``musictag tag`` cuts it, and the
outputs of the asked layers (:mod:`musictag.inference.features`: ``representation``, ``frontend``,
``backend``, ``head.<i>``, ``penultimate``) are written to ``DIR/<file name>.npz``, one array per layer
``(chunks, ...)`` in chunk order plus ``start_s``; the musicnn library's models also take its names
(``timbral``, ``cnn1``, ``pool1``, ...) in its extractor's layout. An existing file is never replaced;
a file that cannot be read is reported and skipped (exit status 1); a setting that is wrong is one line
before the model runs (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from musictag.audio import AudioError
from musictag.chunks import ChunkPlan
from musictag.cli.tag import FLAGS, audio_parser, audio_to_use, check_audio_numbers
from musictag.files import atomic_write
from musictag.guards import (
    check_output_file,
    check_output_folder,
    given_path,
    pick_device,
)
from musictag.inference.features import DEFAULT_LAYERS, check_layers, file_features
from musictag.inference.tagging import check_batch_memory, load_model
from musictag.inference.taggram import plot_path


def _parser() -> argparse.ArgumentParser:
    parser = audio_parser("musictag features", __doc__.splitlines()[0])
    parser.add_argument(
        "--layers",
        default=",".join(DEFAULT_LAYERS),
        help="comma-separated layer names (representation, frontend, backend, head.<i>, penultimate; the "
        "musicnn library's models also timbral, temporal, cnn1-cnn3, mean_pool, max_pool or pool1-pool5)",
    )
    parser.add_argument("--out", type=given_path, required=True, metavar="DIR", help="the folder to write")
    return parser


def targets(folder: str, files: list[Path], inputs: list[str]) -> dict[Path, Path]:
    """``DIR/<file stem>.npz`` of each file (numbered when stems repeat), checked before the model runs:
    the folder is (or can become) writable, and no target is an existing file or an input."""
    check_output_folder(folder, "--out", ours=lambda _: True)  # an existing folder: only new files in it
    taken: set[Path] = set()
    chosen = {path: plot_path(folder, path, taken).with_suffix(".npz") for path in files}
    for target in chosen.values():
        check_output_file(
            target, "--out", inputs=inputs, hint="give another --out folder, or move that file away"
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_audio_numbers(args)
    device = pick_device(args.device)
    found, files = audio_to_use(args.audio, "musictag features", "read")
    model = load_model(args.ckpt, device)
    layers = check_layers(
        model.net, [name.strip() for name in args.layers.split(",") if name.strip()], "--layers"
    )
    plan = ChunkPlan.for_model(model, args.chunk_mode, args.n_chunks, args.hop, names=FLAGS)
    batch_size = args.batch_size or model.eval_chunk_batch
    check_batch_memory(batch_size, model.input_len)
    outputs = targets(args.out, files, [*args.audio, args.ckpt])
    Path(args.out).mkdir(parents=True, exist_ok=True)  # checked writable above; made once all checks passed
    failed = 0
    for path in files:
        try:
            arrays = file_features(model, path, plan, layers, batch_size)
        except AudioError as err:
            failed += 1
            print(f"musictag features: skipped {err}", file=sys.stderr)
            continue
        with atomic_write(outputs[path]) as tmp:
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
        shapes = ", ".join(f"{name} {tuple(arrays[name].shape)}" for name in layers)
        print(f"{outputs[path]}: {shapes}")
    return exit_status("features", found, len(files), failed)


def exit_status(command: str, found: Any, n_files: int, failed: int) -> int:
    """A per-file command's end: how many files could not be read (to stderr), and exit status 1 when
    any could not, or a given folder held no audio; else 0."""
    skipped = len(found.skipped) + failed
    if skipped:
        total = n_files + len(found.skipped)
        print(f"musictag {command}: {skipped} of {total} file(s) could not be read", file=sys.stderr)
    return 1 if skipped or found.empty else 0
