"""``musictag bench --augment``: milliseconds per batch of each device augmentation and of the default set
and all of them together, beside the ``short_chunk`` training step (float32) on the same device.

Each figure is the median of ``repeats`` runs of ``steps`` calls on a fixed random batch (``batch_size``
× 59,049 samples, the Short-chunk CNN's chunk), after ``warmup`` calls; the device is synchronised
around each run. ``background`` is timed on a generated 10-second recording (a folder of one file).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musictag.audio import write_audio
from musictag.bench.throughput import _synchronize, _warmed_step
from musictag.training.augment import DEFAULT_SET, TRANSFORMS, DeviceAugment

CHUNK = 59049
SAMPLE_RATE = 16000


@dataclass
class AugmentFigure:
    """One row: ``what`` (a transform, ``default set``, ``all together`` or the training step), ms per
    batch (median, lowest, highest) and its share of the training step."""

    what: str
    device: str
    batch_size: int
    ms: float
    ms_low: float
    ms_high: float
    share_of_step: float | None = None


def _time(
    call: Callable[[], object], device: torch.device, steps: int, repeats: int, warmup: int
) -> list[float]:
    for _ in range(warmup):
        call()
    _synchronize(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            call()
        _synchronize(device)
        runs.append((time.perf_counter() - start) / steps * 1000)
    return runs


def augment_figures(
    device: torch.device, batch_size: int = 16, steps: int = 5, repeats: int = 3, warmup: int = 2
) -> list[AugmentFigure]:
    """Every figure of the table, the training step first."""
    torch.manual_seed(0)
    step, _ = _warmed_step("short_chunk", batch_size, device, "32", False, "preset", warmup)
    rows = [("short_chunk training step", _time(step, device, steps, repeats, 0))]
    audio = torch.randn(batch_size, CHUNK, device=device) * 0.1
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        write_audio(
            os.path.join(folder, "babble.wav"),
            (rng.standard_normal(10 * SAMPLE_RATE) * 0.1).astype(np.float32),
            SAMPLE_RATE,
        )
        every: dict[str, dict[str, Any]] = {name: {"p": 1.0} for name in TRANSFORMS}
        every["background"]["dir"] = folder
        configs: list[tuple[str, dict[str, Any]]] = [(name, {name: every[name]}) for name in TRANSFORMS]
        configs += [
            ("default set (p = 1)", {name: {"p": 1.0} for name in DEFAULT_SET}),
            ("all together (p = 1)", every),
        ]
        for what, config in configs:
            chain = DeviceAugment(config, SAMPLE_RATE)
            chain.prepare()

            def call(chain: DeviceAugment = chain) -> object:
                return chain(audio)

            with torch.no_grad():
                rows.append((what, _time(call, device, steps, repeats, warmup)))
    step_ms = statistics.median(rows[0][1])
    return [
        AugmentFigure(
            what,
            str(device),
            batch_size,
            round(statistics.median(ms), 3),
            round(min(ms), 3),
            round(max(ms), 3),
            None if i == 0 else round(statistics.median(ms) / step_ms, 4),
        )
        for i, (what, ms) in enumerate(rows)
    ]


def table(figures: list[AugmentFigure]) -> str:
    """The figures as a markdown table."""
    lines = [
        f"device {figures[0].device}, batch {figures[0].batch_size} × {CHUNK} samples",
        "",
        "| | ms per batch (lowest – highest) | share of the training step |",
        "|---|---:|---:|",
    ]
    for f in figures:
        share = "" if f.share_of_step is None else f"{100 * f.share_of_step:.1f} %"
        lines.append(f"| {f.what} | {f.ms:.1f} ({f.ms_low:.1f} – {f.ms_high:.1f}) | {share} |")
    return "\n".join(lines)
