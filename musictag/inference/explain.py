"""Where in a file each tag comes from: tag-wise saliency over time (and frequency) for a whole file.

A file is decoded and cut into chunks exactly as ``musictag tag`` cuts it (the same
:class:`~musictag.chunks.ChunkPlan` and :func:`~musictag.inference.tagging.file_chunks`), so the song
scores are ``tag``'s. Each chunk's saliency (:mod:`musictag.inference.saliency`) lies on the
representation's frames; the chunks are stitched onto one frame grid of the whole file (frame ``j`` of
a chunk starting at sample ``s`` is file frame ``round(s / hop) + j``, ``hop`` the representation's
frame hop), and where chunks overlap the frames are averaged. ``times_s`` are the frames' centres.

:func:`deletion_check` measures faithfulness: silencing the most salient share of a file for a tag
should lower that tag's score more than silencing random parts of the same size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musictag.chunks import ChunkPlan, cut_chunks, spectrogram_frames
from musictag.files import atomic_write
from musictag.guards import InputError
from musictag.inference.saliency import check_method, chunk_saliency
from musictag.inference.tagging import FileChunks, file_chunks, file_result
from musictag.types import Pathlike


@dataclass
class Explanation:
    """One file's explanation; the arrays are those ``musictag explain`` writes to ``<file>.npz``.

    Attributes:
        path: the audio file.
        method: the saliency method used.
        tags: the explained tags, best song score first when chosen by ``top_k``.
        scores: ``(K,)`` their song-level scores (``musictag tag``'s).
        times_s: ``(N,)`` each frame's centre in seconds of the file.
        saliency: ``(K, N)`` ≥ 0, each tag's saliency per frame.
        frequency_saliency: ``(K, F, N)`` per representation bin, or None (the method gives none).
        spectrogram: ``(F, N)`` the representation (mean over channels) for drawing, or None for a
            waveform model.
        hop_s: seconds between frames.
    """

    path: str
    method: str
    tags: list[str]
    scores: np.ndarray
    times_s: np.ndarray
    saliency: np.ndarray
    frequency_saliency: np.ndarray | None
    spectrogram: np.ndarray | None
    hop_s: float

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the npz file (``frequency_saliency`` only where there is one)."""
        arrays = {
            "tags": np.array(self.tags),
            "scores": self.scores,
            "times_s": self.times_s,
            "saliency": self.saliency,
            "method": np.array(self.method),
        }
        if self.frequency_saliency is not None:
            arrays["frequency_saliency"] = self.frequency_saliency
        return arrays


def choose_tags(
    all_tags: Sequence[str], scores: np.ndarray | None, tags: Sequence[str] | None, top_k: int
) -> list[int]:
    """Indices of ``tags`` (each one of ``all_tags``, else one line listing them), or of the ``top_k``
    best-scored tags when ``tags`` is None."""
    if tags is None:
        assert scores is not None
        return [int(i) for i in np.argsort(-scores, kind="stable")[: max(1, top_k)]]
    if isinstance(tags, str):
        tags = [tag.strip() for tag in tags.split(",") if tag.strip()]
    unknown = [tag for tag in tags if tag not in all_tags]
    if unknown or not tags:
        given = f"unknown tag(s) {', '.join(map(repr, unknown))}" if unknown else "no tag given"
        raise InputError(f"tags: {given}; this model's tags are {', '.join(all_tags)}")
    return [list(all_tags).index(tag) for tag in dict.fromkeys(tags)]


def frame_grid(net: Any, frames: int) -> tuple[float, float]:
    """``(hop, offset)`` in samples of a chunk's ``frames`` representation frames: frame ``j``'s centre
    is ``offset + j * hop`` samples after the chunk's start (the spectrogram's hop, or the chunk spread
    evenly over the frames; the frames centred in the chunk)."""
    chunk_len = int(net.input_len)
    known = spectrogram_frames(net)
    hop = float(known[0]) if known else chunk_len / frames
    return hop, (chunk_len - (frames - 1) * hop) / 2


def stitch(values: np.ndarray, starts: np.ndarray, n_frames: int, hop: float) -> np.ndarray:
    """Chunk arrays ``(chunks, ..., R)`` → the file's ``(..., n_frames)``: chunk ``i``'s frame ``j`` is
    file frame ``round(starts[i] / hop) + j``; overlapping frames averaged; frames no chunk saw are 0."""
    total = np.zeros((*values.shape[1:-1], n_frames), dtype=np.float64)
    count = np.zeros(n_frames, dtype=np.float64)
    frames = values.shape[-1]
    for chunk, start in enumerate(starts):
        first = int(round(int(start) / hop))
        lo, hi = max(0, first), min(n_frames, first + frames)
        if hi <= lo:
            continue
        total[..., lo:hi] += values[chunk, ..., lo - first : hi - first]
        count[lo:hi] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def _song_scores(model: Any, item: FileChunks, audio: np.ndarray, batch_size: int) -> np.ndarray:
    """Song-level scores of all tags for ``item``'s chunks cut from ``audio`` (``tag``'s rule)."""
    logits = []
    with torch.inference_mode():
        for first in range(0, len(item), batch_size):
            chunks = cut_chunks(audio, item.cut_starts[first : first + batch_size], item.chunk_len)
            logits.append(model(torch.from_numpy(chunks).to(model.device)).float().cpu())
    result = file_result(model, item, model.probabilities(torch.cat(logits)))
    return np.array(list(result["scores"].values()), dtype=np.float64)


def explain_file(
    model: Any,
    path: Pathlike,
    plan: ChunkPlan | None = None,
    tags: Sequence[str] | None = None,
    top_k: int = 3,
    method: str | None = None,
    batch_size: int = 8,
    steps: int = 32,
) -> Explanation:
    """Explain one file with ``model`` (a ``TaggingModule`` in eval mode): see the module.

    Raises:
        InputError: an unknown tag or method, or a method the model cannot do.
        AudioError: the file cannot be read.
    """
    net = model.net
    method = check_method(net, method)
    plan = plan if plan is not None else ChunkPlan.for_model(model)
    item = file_chunks(model, Path(path), plan)
    scores = _song_scores(model, item, item.audio, batch_size)
    chosen = choose_tags(model.tag_names, scores, tags, top_k)
    times, freqs, specs = [], [], []
    for first in range(0, len(item), batch_size):
        wave = torch.from_numpy(
            cut_chunks(item.audio, item.cut_starts[first : first + batch_size], item.chunk_len)
        )
        wave = wave.to(model.device)
        found = chunk_saliency(net, wave, chosen, method, steps)
        times.append(found.time.cpu().numpy())
        if found.frequency is not None:
            freqs.append(found.frequency.cpu().numpy())
        with torch.no_grad():
            representation = net.representation(wave)
        if representation.ndim == 4:
            specs.append(representation.float().mean(dim=1).cpu().numpy())
    time = np.concatenate(times)
    hop, offset = frame_grid(net, time.shape[-1])
    n_frames = max(1, int(np.ceil(item.n_samples / hop)))
    return Explanation(
        path=str(path),
        method=method,
        tags=[model.tag_names[i] for i in chosen],
        scores=scores[chosen].astype(np.float32),
        times_s=((np.arange(n_frames) * hop + offset) / item.rate).astype(np.float64),
        saliency=stitch(time, item.cut_starts, n_frames, hop),
        frequency_saliency=stitch(np.concatenate(freqs), item.cut_starts, n_frames, hop) if freqs else None,
        spectrogram=stitch(np.concatenate(specs), item.cut_starts, n_frames, hop) if specs else None,
        hop_s=hop / item.rate,
    )


def deletion_check(
    model: Any,
    path: Pathlike,
    explanation: Explanation | None = None,
    fraction: float = 0.2,
    draws: int = 5,
    segment_s: float = 0.5,
    seed: int = 0,
    plan: ChunkPlan | None = None,
    batch_size: int = 8,
    **explain_args: Any,
) -> list[dict[str, Any]]:
    """For each explained tag: its song score, the score with the most salient ``fraction`` of the file
    silenced, and the mean score over ``draws`` random silencings of the same size.

    The file is cut into segments of ``segment_s`` seconds; the segments are ranked by their mean
    saliency for the tag and the top ``fraction`` of them (rounded, at least one) set to zero; the
    random draws zero as many segments chosen uniformly (``seed``). Scores are ``tag``'s, on the same
    chunks. ``explanation``: one from :func:`explain_file` (else made with ``explain_args``).

    Returns:
        one dict per tag: ``tag``, ``score``, ``salient`` (score after silencing the salient part),
        ``random`` (mean over draws), ``random_scores``, ``drop_salient``, ``drop_random``, ``faithful``
        (``salient < random``).
    """
    if not 0 < fraction < 1:
        raise InputError(f"fraction must be between 0 and 1, got {fraction}")
    plan = plan if plan is not None else ChunkPlan.for_model(model)
    if explanation is None:
        explanation = explain_file(model, path, plan, batch_size=batch_size, **explain_args)
    item = file_chunks(model, Path(path), plan)
    rate = item.rate
    seg = max(1, int(round(segment_s * rate)))
    n_segments = max(1, -(-item.n_samples // seg))
    n_silenced = max(1, int(round(fraction * n_segments)))
    centres = np.round(explanation.times_s * rate).astype(np.int64)
    segment_of_frame = np.clip(centres // seg, 0, n_segments - 1)
    rng = np.random.default_rng(seed)
    rows = []
    for k, tag in enumerate(explanation.tags):
        index = list(model.tag_names).index(tag)
        per_segment = np.bincount(segment_of_frame, explanation.saliency[k], n_segments) / np.maximum(
            np.bincount(segment_of_frame, minlength=n_segments), 1
        )
        salient = np.argsort(-per_segment, kind="stable")[:n_silenced]
        salient_score = _song_scores(model, item, _silenced(item.audio, salient, seg), batch_size)[index]
        random_scores = [
            _song_scores(
                model,
                item,
                _silenced(item.audio, rng.choice(n_segments, n_silenced, replace=False), seg),
                batch_size,
            )[index]
            for _ in range(draws)
        ]
        score = float(explanation.scores[k])
        random_mean = float(np.mean(random_scores))
        rows.append(
            {
                "tag": tag,
                "score": score,
                "salient": float(salient_score),
                "random": random_mean,
                "random_scores": [float(s) for s in random_scores],
                "drop_salient": score - float(salient_score),
                "drop_random": score - random_mean,
                "faithful": bool(salient_score < random_mean),
            }
        )
    return rows


def _silenced(audio: np.ndarray, segments: np.ndarray, seg: int) -> np.ndarray:
    out = audio.copy()
    for segment in segments:
        out[int(segment) * seg : (int(segment) + 1) * seg] = 0
    return out


def write_npz(explanation: Explanation, out: Pathlike) -> Path:
    """Write the explanation's arrays to ``out`` (complete or not at all: written beside, renamed)."""
    out = Path(out)
    with atomic_write(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **explanation.arrays())  # type: ignore[arg-type]
    return out


def plot_explanation(explanation: Explanation, out: Pathlike, title: str | None = None) -> Path:
    """Write the file's spectrogram with one heat row per tag under it (label: tag and song score) as a
    PNG at ``out``, time in seconds on a shared axis (matplotlib Agg; complete or not at all)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n_tags = len(explanation.tags)
    times = explanation.times_s
    half = explanation.hop_s / 2
    extent_t = (float(times[0] - half), float(times[-1] + half))
    spec_height = 2.2
    fig, axes = plt.subplots(
        n_tags + 1,
        1,
        figsize=(12.0, spec_height + 0.55 * n_tags + 0.9),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [spec_height / 0.55, *[1] * n_tags]},
    )
    spec_ax = axes[0]
    if explanation.spectrogram is not None:
        spec_ax.imshow(
            explanation.spectrogram,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            cmap="magma",
            extent=(*extent_t, 0, explanation.spectrogram.shape[0]),
        )
        spec_ax.set_ylabel("bin", fontsize=8)
    else:
        spec_ax.text(
            0.5, 0.5, "waveform model: no spectrogram", ha="center", va="center", transform=spec_ax.transAxes
        )
    spec_ax.set_title(
        f"{title or Path(explanation.path).name}: {explanation.method} saliency per tag", fontsize=10
    )
    spec_ax.tick_params(labelsize=7)
    for row, (tag, score) in enumerate(zip(explanation.tags, explanation.scores, strict=True)):
        ax = axes[row + 1]
        values = explanation.saliency[row]
        peak = float(values.max()) if values.size else 0.0
        ax.imshow(
            values[None, :] / (peak if peak > 0 else 1.0),
            aspect="auto",
            interpolation="nearest",
            cmap="inferno",
            vmin=0.0,
            vmax=1.0,
            extent=(*extent_t, 0, 1),
        )
        ax.set_yticks([0.5])
        ax.set_yticklabels([f"{tag} ({float(score):.2f})"], fontsize=8)
    axes[-1].set_xlabel("time (s)")
    axes[-1].tick_params(axis="x", labelsize=7)
    out = Path(out)
    try:
        with atomic_write(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return out


def explain_test_songs(model: Any, manifest: Any, cache: Any, n_songs: int, folder: Pathlike) -> list[Path]:
    """``folder/<track id>.png`` of the first ``n_songs`` test songs of a corpus (``manifest``, ``cache``
    of a DataModule's ``load()``), by the default method, cut as ``tag`` cuts files: ``musictag test
    --run.explain_songs N``. Each song is written to a temporary WAV at the model's rate first."""
    import tempfile

    from musictag.audio import write_audio

    ids = [track for track, split in zip(manifest.ids, manifest.splits, strict=True) if split == "test"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for track in ids[:n_songs]:
                name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(track))
                wav = Path(scratch) / f"{name}.wav"
                write_audio(wav, np.asarray(cache.read(track), dtype=np.float32), int(model.sample_rate))
                explanation = explain_file(model, wav)
                written.append(plot_explanation(explanation, folder / f"{name}.png", title=str(track)))
    finally:
        model.train(was_training)
    return written
