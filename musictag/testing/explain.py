"""A demo tagger trained in seconds, and clips whose deciding sound plays only in a known span: the
faithfulness checks of :mod:`musictag.inference.explain` (tests and the figures in ``docs/explain.md``).

The tagger has one tag, a lead instrument of the demo synthesizer (:mod:`datamodules.synthetic`,
default ``flute``), trained on 1-second chunks of the synthesizer's lead-less clips (drums, bass, pad,
noise) with a clip of that lead alone added (positive) or not (negative). A span clip is a lead-less
clip with the lead added inside ``[start_s, end_s)`` only: only there does the tag's sound play.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from datamodules.synthetic import LEADS, synthesize_clip

SAMPLE_RATE = 16000
CHUNK_LEN = 16000
#: A small log-mel CNN on 1-second chunks.
SPAN_TAGGER: dict[str, Any] = {
    "representation": {"name": "mel", "n_mels": 48},
    "frontend": {"name": "conv2d_stack", "channels": [8, 16, 16], "pools": [[2, 1], [2, 1], [2, 1]]},
    "backend": {"name": "global_max"},
    "head": {"name": "mlp", "hidden": [], "dropout": 0.0},
    "input_len": CHUNK_LEN,
    "sample_rate": SAMPLE_RATE,
}


def lead_only_clips(tag: str, count: int, seconds: float = 4.0, start: int = 0) -> list[np.ndarray]:
    """The first ``count`` synthesizer clips (seed 0, from index ``start``) whose only part is the lead
    ``tag`` (no drums, bass, pad or noise)."""
    return _clips(
        lambda tags: tag in tags and not {"drums", "bass", "pad", "noisy"} & set(tags), count, seconds, start
    )


def backgrounds(count: int, seconds: float = 4.0, start: int = 0) -> list[np.ndarray]:
    """The first ``count`` synthesizer clips (seed 0, from index ``start``) without a lead instrument."""
    return _clips(lambda tags: not set(LEADS) & set(tags), count, seconds, start)


def _clips(keep: Any, count: int, seconds: float, start: int) -> list[np.ndarray]:
    found: list[np.ndarray] = []
    index = start
    while len(found) < count:
        # the parts of a clip are drawn before its audio: a 10 ms clip tells them cheaply
        _, parts = synthesize_clip(index, seed=0, sample_rate=SAMPLE_RATE, seconds=0.01)
        if keep([tag for tag in parts if tag != "noisy"]):
            audio, tags = synthesize_clip(index, seed=0, sample_rate=SAMPLE_RATE, seconds=seconds)
            if keep(tags):
                found.append(audio)
        index += 1
    return found


#: :data:`SPAN_TAGGER` with a small transformer back end (for the attention methods).
SPAN_TRANSFORMER: dict[str, Any] = SPAN_TAGGER | {
    "backend": {"name": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 2, "dropout": 0.0}
}


def train_span_tagger(
    tag: str = "flute",
    steps: int = 120,
    n_clips: int = 12,
    seed: int = 0,
    architecture: dict[str, Any] | None = None,
) -> Any:
    """A one-tag ``TaggingModule`` (eval mode) that detects the lead ``tag`` in 1-second chunks: trained
    on chunks of a lead-less clip with (positive) or without (negative) a lead-only clip added."""
    from musictag.training.module import TaggingModule

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    leads = lead_only_clips(tag, n_clips)
    beds = backgrounds(n_clips)
    module = TaggingModule(n_tags=1, tag_names=[tag], **(architecture or SPAN_TAGGER))
    optimizer = torch.optim.Adam(module.net.parameters(), lr=3e-3)
    module.train()
    batch = 16
    for _ in range(steps):
        waves, labels = [], []
        for row in range(batch):
            first = int(rng.integers(0, 4 * SAMPLE_RATE - CHUNK_LEN))
            wave = beds[int(rng.integers(len(beds)))][first : first + CHUNK_LEN].copy()
            if row % 2 == 0:
                wave += (
                    rng.uniform(0.3, 1.0) * leads[int(rng.integers(len(leads)))][first : first + CHUNK_LEN]
                )
            waves.append(wave)
            labels.append([1.0 - row % 2])
        logits = module.net(torch.from_numpy(np.stack(waves)))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return module.eval()


def span_clip(
    tag: str = "flute", start_s: float = 2.5, end_s: float = 4.5, seconds: float = 7.0, index: int = 0
) -> np.ndarray:
    """A lead-less clip with a lead-only clip of ``tag`` added inside ``[start_s, end_s)`` only (clips
    not used in training)."""
    mixed = backgrounds(1, seconds, start=1000 + 50 * index)[0].copy()
    lead = lead_only_clips(tag, 1, seconds, start=1000 + 50 * index)[0]
    lo, hi = int(start_s * SAMPLE_RATE), int(end_s * SAMPLE_RATE)
    mixed[lo:hi] += 0.6 * lead[lo:hi]
    return mixed
