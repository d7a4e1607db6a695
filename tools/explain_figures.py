"""The figures of docs/explain.md: faithfulness and cost of each saliency method.

    PYTHONPATH=. python tools/explain_figures.py                      # the demo span tagger
    PYTHONPATH=. python tools/explain_figures.py --ckpt x.ckpt FILES  # a checkpoint on real recordings

Demo: the span tagger of :mod:`musictag.testing.explain` (trained here, seconds), three span clips: the
share of saliency mass inside the span and the deletion check, per method. Checkpoint: per file and
method, the CPU seconds per 30 s of audio, and per top-3 tag the song score, the score with the most
salient 20 % silenced and the mean of 5 random 20 % silencings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from musictag.chunks import ChunkPlan
from musictag.inference.explain import deletion_check, explain_file


def _timed(model, path, plan, method):
    start = time.process_time()
    explained = explain_file(model, path, plan, method=method)
    return explained, time.process_time() - start


def demo(methods: list[str]) -> None:
    from musictag.testing import write_audio
    from musictag.testing.explain import SAMPLE_RATE, span_clip, train_span_tagger

    model = train_span_tagger("flute", steps=120, n_clips=12)
    plan = ChunkPlan.for_model(model, "sliding", hop=4000)
    with tempfile.TemporaryDirectory() as folder:
        for index in range(3):
            path = Path(folder) / f"span{index}.wav"
            write_audio(path, span_clip("flute", 2.5, 4.5, index=index), SAMPLE_RATE)
            for method in methods:
                explained, seconds = _timed(model, path, plan, method)
                inside = (explained.times_s >= 2.5) & (explained.times_s < 4.5)
                mass = explained.saliency[0][inside].sum() / explained.saliency[0].sum()
                (row,) = deletion_check(model, path, explained, plan=plan)
                print(
                    f"span clip {index} {method:>20}: mass in span {mass:.2f} (span = 29 % of the clip); "
                    f"score {row['score']:.3f}, salient 20 % silenced {row['salient']:.3f}, random "
                    f"{row['random']:.3f}; {seconds * 30 / 7:.2f} CPU s per 30 s"
                )


def published(ckpt: str, files: list[str], methods: list[str]) -> None:
    import musictag

    tagger = musictag.load(ckpt, device="cpu")
    for path in files:
        for method in methods:
            explained, seconds = _timed(tagger.model, path, tagger.plan, method)
            duration = float(explained.times_s[-1])
            rows = deletion_check(tagger.model, path, explained, plan=tagger.plan)
            wins = sum(row["faithful"] for row in rows)
            print(f"{Path(path).name} {explained.method}: {seconds * 30 / duration:.1f} CPU s per 30 s; {wins}/3")
            for row in rows:
                print(
                    f"    {row['tag']:>12}: score {row['score']:.3f}, salient 20 % silenced "
                    f"{row['salient']:.3f}, random {row['random']:.3f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--methods", default="gradcam,integrated_gradients")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = args.methods.split(",")
    if args.ckpt:
        published(args.ckpt, args.files, methods)
    else:
        demo(methods)


if __name__ == "__main__":
    main()
