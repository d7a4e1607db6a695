"""Tagging from Python (notebooks): ``musictag.load(ckpt).tag("song.mp3")``.

The dictionaries are those of ``musictag tag --format json --timeline``: ``path``, ``sample_rate`` (the
file's), ``duration_s``, ``scores`` (tag → song-level probability, in the model's tag order), ``top``
(``[tag, score]`` pairs, best first) and ``timeline`` (each chunk's ``start_s`` and ``scores``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any, cast

from musictag.audio import AudioError
from musictag.chunks import ChunkMode
from musictag.inference import _top, audio_files, load_model, pick_device, tag_many
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
        network together, up to ``batch_chunks`` at a time (:func:`musictag.inference.tag_many`).

        ``on_error``: ``skip`` (a warning names each file that could not be tagged; it is left out of
        the results) or ``raise``.
        """
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        files = list(audio_files([os.fspath(p) for p in paths]))

        notes: list[str] = []  # files cut into fewer chunks than asked, warned from here (the caller's frame)
        results: list[dict[str, Any]] = []
        for result in tag_many(
            self.model,
            files,
            self.n_chunks,
            cast(ChunkMode, self.chunk_mode),
            batch_size=batch_chunks,
            note=notes.append,
        ):
            while notes:
                warnings.warn(f"musictag: {notes.pop(0)}", stacklevel=2)
            if isinstance(result, AudioError):
                if on_error == "raise":
                    raise result
                warnings.warn(f"musictag: skipped {result}", stacklevel=2)
                continue
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
    return AudioTagger(load_model(os.fspath(ckpt), pick_device(device)), n_chunks, chunk_mode)
