"""Tagging from Python (notebooks): ``musictag.load(ckpt).tag("song.mp3")``.

The dictionaries are those of ``musictag tag --format json --timeline``: ``path``, ``sample_rate`` (the
file's), ``duration_s``, ``scores`` (tag → song-level probability, in the model's tag order), ``top``
(``[tag, score]`` pairs, best first) and ``timeline`` (each chunk's ``start_s`` and ``scores``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from musictag.audio import AudioError
from musictag.inference import FileChunks, _top, audio_files, file_chunks, file_result, load_model
from musictag.types import Pathlike


class AudioTagger:
    """A loaded checkpoint that tags audio files; see :func:`load`.

    Attributes:
        model: the ``TaggingModule`` (in eval mode, on ``device``).
        tags: the model's tags, in output order.
        n_chunks, chunk_mode: how files are cut (the checkpoint's setting unless given to :func:`load`).
    """

    def __init__(self, model: Any, n_chunks: int | None = None, chunk_mode: str | None = None) -> None:
        self.model = model
        self.tags: list[str] = list(model.tag_names)
        self.n_chunks = n_chunks or model.tag_chunks
        self.chunk_mode = chunk_mode or model.tag_chunk_mode

    def tag(self, path: Pathlike, top_k: int = 5) -> dict[str, Any]:
        """One file's tags (raises :class:`~musictag.audio.AudioError` for a file that cannot be read)."""
        return self.tag_many([path], top_k=top_k, on_error="raise")[0]

    def tag_many(
        self, paths: Iterable[Pathlike], top_k: int = 5, batch_chunks: int = 64, on_error: str = "skip"
    ) -> list[dict[str, Any]]:
        """Tag files (folders are searched recursively), sending the chunks of several files through the
        network together, up to ``batch_chunks`` at a time.

        ``on_error``: ``skip`` (a warning names each unreadable file; it is left out of the results) or
        ``raise``.
        """
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        results: list[dict[str, Any]] = []
        pending: list[FileChunks] = []
        for path in audio_files([os.fspath(p) for p in paths]):
            try:
                item = file_chunks(self.model, Path(path), self.n_chunks, self.chunk_mode)
            except AudioError as err:
                if on_error == "raise":
                    raise
                warnings.warn(f"musictag: skipped {err}", stacklevel=2)
                continue
            pending.append(item)
            if sum(len(p.chunks) for p in pending) >= batch_chunks:
                results += self._score(pending, top_k, batch_chunks)
                pending = []
        if pending:
            results += self._score(pending, top_k, batch_chunks)
        return results

    @torch.no_grad()
    def _score(self, items: list[FileChunks], top_k: int, batch_chunks: int) -> list[dict[str, Any]]:
        chunks = torch.cat([item.chunks for item in items]).to(self.model.device)
        logits = torch.cat([self.model(part) for part in chunks.split(batch_chunks)])
        scores = self.model.probabilities(logits).split([len(item.chunks) for item in items])
        results = []
        for item, chunk_scores in zip(items, scores, strict=True):
            result = file_result(self.model, item, chunk_scores)
            timeline = result.pop("timeline")
            result["top"] = _top(result["scores"], top_k)
            result["timeline"] = timeline  # key order as --format json --timeline
            results.append(result)
        return results

    def __repr__(self) -> str:
        return f"AudioTagger({len(self.tags)} tags, chunks: {self.chunk_mode}, device: {self.model.device})"


def load(
    ckpt: Pathlike, device: str = "auto", n_chunks: int | None = None, chunk_mode: str | None = None
) -> AudioTagger:
    """A musictag checkpoint (``fit`` or ``import-pretrained``) ready to tag files.

    ``device``: ``auto`` (a GPU if there is one), ``cpu``, ``cuda``, …
    """
    where = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    return AudioTagger(load_model(os.fspath(ckpt), where), n_chunks, chunk_mode)
