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
from pathlib import Path
from typing import Any

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


@torch.no_grad()
def tag_file(model: Any, path: Path, n_chunks: int, mode: str, hop: int | None = None) -> dict[str, Any]:
    """Song-level scores of one file, with the per-chunk scores and start times."""
    info_rate = _native_rate(path)
    audio, rate = load_audio(path, model.sample_rate)
    frames = spectrogram_frames(model.net) if mode == "patches" else None
    if frames is not None:  # patches of the whole file's spectrogram (the musicnn library's rule)
        hop, n_fft = frames
    starts = chunk_starts(len(audio), model.input_len, n_chunks, mode, hop, n_fft if frames else None)  # type: ignore[arg-type]
    chunks = torch.from_numpy(cut_chunks(audio, starts, model.input_len)).to(model.device)
    if frames is not None:  # a patch starts at its first frame's centre
        starts = starts + frames[1] // 2
    chunk_scores = model.probabilities(model.chunk_logits(chunks.unsqueeze(0)))[0]  # (n_chunks, n_tags)
    song = aggregate_chunks(chunk_scores.unsqueeze(0), model.aggregate)[0]
    tags = list(model.tag_names)
    return {
        "path": str(path),
        "sample_rate": info_rate,
        "duration_s": round(len(audio) / rate, 3),
        "scores": dict(zip(tags, song.tolist(), strict=True)),
        "timeline": [
            {"start_s": round(int(start) / rate, 3), "scores": dict(zip(tags, row.tolist(), strict=True))}
            for start, row in zip(starts, chunk_scores.cpu(), strict=True)
        ],
    }


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
