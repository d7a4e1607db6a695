"""``musictag tag AUDIO... --ckpt CKPT``: what a model hears in audio files.

Every file (folders are searched recursively) is decoded, downmixed and resampled to the model's rate,
cut into chunks (the checkpoint's setting unless overridden), scored chunk by chunk on the best
available device, and aggregated to song-level tag probabilities. A file that cannot be read is
reported on stderr and skipped; the exit status is 1 if any was.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musictag.audio import AUDIO_EXTENSIONS, AudioError, load_audio
from musictag.chunks import chunk_starts, cut_chunks, spectrogram_frames
from musictag.metrics import aggregate_chunks


def audio_files(paths: list[str]) -> Iterator[Path]:
    """The given files, and the audio files under the given folders (sorted)."""
    for item in map(Path, paths):
        if item.is_dir():
            yield from sorted(
                p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
        else:
            yield item


def load_model(ckpt: str, device: torch.device) -> Any:
    from musictag.module import TaggingModule, load_checkpoint

    load_checkpoint(ckpt)  # a clear error for a missing or foreign file
    return TaggingModule.load_from_checkpoint(ckpt, map_location=device, weights_only=True).eval()


@dataclass
class FileChunks:
    """One file cut into the model's chunks: ``chunks`` ``(n_chunks, input_len)`` and where they start."""

    path: Path
    native_rate: int
    rate: int
    n_samples: int
    chunks: torch.Tensor
    starts: np.ndarray  # in samples at ``rate``: where each chunk's audio (a patch's first frame) starts


def file_chunks(model: Any, path: Path, n_chunks: int, mode: str, hop: int | None = None) -> FileChunks:
    """Decode, downmix and resample a file to the model's rate and cut it as the checkpoint says."""
    info_rate = _native_rate(path)
    audio, rate = load_audio(path, model.sample_rate)
    n_fft = None
    if mode == "patches":  # patches of the whole file's spectrogram (the musicnn library's rule)
        frames = spectrogram_frames(model.net)
        if frames is None:
            raise ValueError("chunk mode 'patches' needs a model whose representation is a spectrogram")
        hop, n_fft = frames
    starts = chunk_starts(len(audio), model.input_len, n_chunks, mode, hop, n_fft)  # type: ignore[arg-type]
    chunks = torch.from_numpy(cut_chunks(audio, starts, model.input_len))
    if n_fft is not None:  # a patch starts at its first frame's centre
        starts = starts + n_fft // 2
    return FileChunks(path, info_rate, rate, len(audio), chunks, starts)


def file_result(model: Any, item: FileChunks, chunk_scores: torch.Tensor) -> dict[str, Any]:
    """The ``--format json`` object of a file (``top`` left out) from its chunk probabilities
    ``(n_chunks, n_tags)``."""
    song = aggregate_chunks(chunk_scores.unsqueeze(0), model.aggregate)[0]
    tags = list(model.tag_names)
    return {
        "path": str(item.path),
        "sample_rate": item.native_rate,
        "duration_s": round(item.n_samples / item.rate, 3),
        "scores": dict(zip(tags, song.tolist(), strict=True)),
        "timeline": [
            {
                "start_s": round(int(start) / item.rate, 3),
                "scores": dict(zip(tags, row.tolist(), strict=True)),
            }
            for start, row in zip(item.starts, chunk_scores.cpu(), strict=True)
        ],
    }


@torch.no_grad()
def tag_file(model: Any, path: Path, n_chunks: int, mode: str, hop: int | None = None) -> dict[str, Any]:
    """Song-level scores of one file, with the per-chunk scores and start times."""
    item = file_chunks(model, path, n_chunks, mode, hop)
    chunks = item.chunks.to(model.device)
    chunk_scores = model.probabilities(model.chunk_logits(chunks.unsqueeze(0)))[0]  # (n_chunks, n_tags)
    return file_result(model, item, chunk_scores)


def _native_rate(path: Path) -> int:
    import soundfile as sf

    try:
        return int(sf.info(os.fspath(path)).samplerate)
    except Exception:  # noqa: BLE001  (load_audio reports the file properly)
        return 0


def _top(scores: dict[str, float], k: int) -> list[list[Any]]:
    return [[tag, round(score, 6)] for tag, score in sorted(scores.items(), key=lambda kv: -kv[1])[:k]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musictag tag", description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="+", help="audio files and folders (searched recursively)")
    parser.add_argument("--ckpt", required=True, help="a musictag checkpoint (fit, or import-pretrained)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.add_argument(
        "--timeline", action="store_true", help="also the scores of every chunk with its start time"
    )
    parser.add_argument(
        "--n-chunks", type=int, default=None, help="chunks per file (default: the checkpoint's)"
    )
    parser.add_argument("--chunk-mode", choices=["even", "sota", "sliding", "patches"], default=None)
    parser.add_argument("--hop", type=int, default=None, help="sliding windows: hop in samples")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, ...")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        default=None,
        help="also draw each file's taggram (chunk scores over time beside the song scores) as DIR/<name>.png",
    )
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from musictag.registry import ConfigError

    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    try:
        model = load_model(args.ckpt, device)
    except ConfigError as err:
        print(f"musictag tag: error: {err}", file=sys.stderr)
        return 2
    n_chunks = args.n_chunks or model.tag_chunks
    mode = args.chunk_mode or model.tag_chunk_mode
    if mode == "patches" and spectrogram_frames(model.net) is None:
        print("musictag tag: error: --chunk-mode patches needs a spectrogram model", file=sys.stderr)
        return 2
    plotted: set[Path] = set()
    files = list(audio_files(args.audio))
    failed = 0
    writer = None
    for path in tqdm(files, unit="file", desc="tag", file=sys.stderr, disable=len(files) < 2 or None):
        try:
            result = tag_file(model, path, n_chunks, mode, args.hop)
        except AudioError as err:
            failed += 1
            print(f"musictag tag: skipped {err}", file=sys.stderr)
            continue
        result["top"] = _top(result["scores"], args.top_k)
        if args.plot:
            from musictag.taggram import plot_path, plot_taggram

            plot_taggram(result, plot_path(args.plot, path, plotted))
        timeline = result.pop("timeline")
        if args.format == "json":
            if args.timeline:
                result["timeline"] = timeline
            print(json.dumps(result), flush=True)
        elif args.format == "csv":
            if writer is None:
                writer = csv.writer(sys.stdout)
                writer.writerow(["path", "duration_s", *result["scores"]])
            writer.writerow(
                [result["path"], result["duration_s"], *(f"{s:.6f}" for s in result["scores"].values())]
            )
        else:
            print(f"{result['path']}  ({result['duration_s']:.1f} s)")
            for tag, score in result["top"]:
                print(f"  {score:6.3f}  {tag}")
            if args.timeline:
                for chunk in timeline:
                    best = _top(chunk["scores"], min(3, args.top_k))
                    print(f"    {chunk['start_s']:8.2f} s  " + ", ".join(f"{t} {s:.2f}" for t, s in best))
    if failed:
        print(f"musictag tag: {failed} of {len(files)} file(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
