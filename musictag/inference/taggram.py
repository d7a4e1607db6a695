"""Taggram pictures: what a model hears in a file over time, as the musicnn library draws it.

A taggram is the chunk (patch) probabilities of a file, ``(n_chunks, n_tags)``: here a heat map of tags
(rows, in the model's order) × time (columns, one per chunk, labelled with its start), beside a bar
chart of the song-level scores on the same rows. Drawn with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from musictag.files import atomic_write
from musictag.types import Pathlike


def taggram_array(result: dict[str, Any]) -> tuple[np.ndarray, list[str], list[float]]:
    """``(n_chunks, n_tags)`` probabilities, the tags and the chunk start times of a ``tag`` result."""
    timeline = result["timeline"]
    tags = list(result["scores"])
    matrix = np.array([[chunk["scores"][tag] for tag in tags] for chunk in timeline], dtype=np.float32)
    return matrix.reshape(len(timeline), len(tags)), tags, [float(c["start_s"]) for c in timeline]


def plot_taggram(result: dict[str, Any], out: Pathlike, title: str | None = None) -> Path:
    """Write the taggram of one ``tag`` result (with its ``timeline``) as a PNG at ``out``.

    The file appears complete or not at all (written beside, then renamed).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matrix, tags, starts = taggram_array(result)
    song = np.array([result["scores"][tag] for tag in tags])
    n_chunks, n_tags = matrix.shape
    height = max(3.0, 0.18 * n_tags + 1.4)
    width = min(24.0, 5.0 + 0.35 * max(n_chunks, 8))
    fig, (heat, bars) = plt.subplots(
        1,
        2,
        figsize=(width, height),
        sharey=True,
        layout="constrained",
        gridspec_kw={"width_ratios": [4, 1.3]},
    )
    image = heat.imshow(
        matrix.T,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        vmin=0.0,
        vmax=max(1e-6, float(matrix.max())),
    )
    heat.set_yticks(range(n_tags))
    heat.set_yticklabels(tags, fontsize=7)
    step = max(1, n_chunks // 12)
    heat.set_xticks(range(0, n_chunks, step))
    heat.set_xticklabels([f"{starts[i]:.1f}" for i in range(0, n_chunks, step)], fontsize=7)
    heat.set_xlabel("chunk start (s)")
    heat.set_title("taggram", fontsize=9)
    colorbar = fig.colorbar(image, ax=heat, location="bottom", fraction=0.03, aspect=40, pad=0.01)
    colorbar.set_label("probability", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    top = set(np.argsort(song)[::-1][:5])
    bars.barh(range(n_tags), song, color=["tab:orange" if i in top else "tab:blue" for i in range(n_tags)])
    bars.set_xlim(0, max(1e-6, float(song.max())) * 1.1)
    bars.set_xlabel("song score (mean)", fontsize=8)
    bars.tick_params(axis="x", labelsize=7)
    bars.set_title("song level (top 5 in orange)", fontsize=9)
    fig.suptitle(title or Path(result["path"]).name, fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(out) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out


def plot_path(folder: Pathlike, audio_path: Pathlike, taken: set[Path]) -> Path:
    """``<folder>/<audio file stem>.png``, numbered (``_2``, ``_3`` …) when another file of this run
    has the same stem."""
    stem = Path(audio_path).stem
    candidate = Path(folder) / f"{stem}.png"
    n = 1
    while candidate in taken:
        n += 1
        candidate = Path(folder) / f"{stem}_{n}.png"
    taken.add(candidate)
    return candidate
