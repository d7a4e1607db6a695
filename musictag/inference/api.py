"""Tagging from Python (notebooks): ``musictag.load(ckpt).tag("song.mp3")``.

The dictionaries are those of ``musictag tag --format json --timeline``: ``path``, ``sample_rate`` (the
file's), ``duration_s``, ``scores`` (tag → song-level probability, in the model's tag order), ``top``
(``[tag, score]`` pairs, best first) and ``timeline`` (each chunk's ``start_s`` and ``scores``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from musictag.audio import AUDIO_EXTENSIONS, AudioError
from musictag.chunks import ChunkPlan
from musictag.guards import InputError, at_least, pick_device
from musictag.inference.features import DEFAULT_LAYERS
from musictag.inference.search import find_audio
from musictag.inference.tagging import _top, check_batch_memory, load_model, tag_many
from musictag.types import Pathlike


class AudioTagger:
    """A loaded checkpoint that tags audio files; see :func:`load`.

    Attributes:
        model: the ``TaggingModule`` (in eval mode, on ``device``).
        tags: the model's tags, in output order.
        plan: how files are cut (:class:`~musictag.chunks.ChunkPlan`: the checkpoint's setting, with
            the ``n_chunks`` and ``chunk_mode`` given to :func:`load`).
        n_chunks, chunk_mode: the plan's.
    """

    def __init__(self, model: Any, n_chunks: int | None = None, chunk_mode: str | None = None) -> None:
        self.model = model
        self.tags: list[str] = list(model.tag_names)
        self.plan = ChunkPlan.for_model(model, chunk_mode, n_chunks)  # 0 is refused, not "the checkpoint's"

    @property
    def chunk_mode(self) -> str:
        return self.plan.mode

    @property
    def n_chunks(self) -> int:
        return self.plan.n_chunks

    def tag(self, path: Pathlike, top_k: int = 5) -> dict[str, Any]:
        """One file's tags.

        Raises:
            InputError: ``path`` is a folder (use :meth:`tag_many`, which searches it) or a list.
            AudioError: the file cannot be read (missing, not a regular file, not audio).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"tag takes one path, got {type(path).__name__}; use tag_many for several")
        if os.path.isdir(path):
            raise InputError(
                f"{os.fspath(path)} is a folder: tag() tags one file; use tag_many([{os.fspath(path)!r}]) "
                "to tag the audio files under it"
            )
        return self.tag_many([path], top_k=top_k, on_error="raise")[0]

    def tag_many(
        self, paths: Iterable[Pathlike], top_k: int = 5, batch_chunks: int = 64, on_error: str = "skip"
    ) -> list[dict[str, Any]]:
        """Tag files (folders are searched recursively), sending the chunks of several files through the
        network together, up to ``batch_chunks`` at a time (:func:`musictag.inference.tagging.tag_many`).

        ``paths``: a list of files and folders, or one path (a string is one path, never its
        characters). ``on_error``: ``skip`` (a warning names each file or folder entry that could not
        be tagged, and each folder without audio; it is left out of the results) or ``raise``.
        """
        if on_error not in ("skip", "raise"):
            raise InputError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        at_least("top_k", top_k)
        at_least("batch_chunks", batch_chunks)
        check_batch_memory(batch_chunks, self.model.input_len, "batch_chunks")
        given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        found = find_audio([os.fspath(p) for p in given])
        for path, reason in found.skipped:
            if on_error == "raise":
                raise AudioError(path, reason, "missing" if "no such" in reason else "unreadable")
            warnings.warn(f"musictag: skipped {path}: {reason}", stacklevel=2)
        for folder in found.empty:
            warnings.warn(
                f"musictag: no audio files under {folder} ({', '.join(AUDIO_EXTENSIONS)})", stacklevel=2
            )
        files = found.files

        notes: list[str] = []  # files cut into fewer chunks than asked, warned from here (the caller's frame)
        results: list[dict[str, Any]] = []
        for result in tag_many(self.model, files, self.plan, batch_size=batch_chunks, note=notes.append):
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

    def features(
        self, path: Pathlike, layers: Sequence[str] = DEFAULT_LAYERS, batch_chunks: int = 64
    ) -> dict[str, Any]:
        """One file's features, as ``musictag features`` writes them: each of ``layers``
        (:func:`~musictag.inference.features.layer_names`) as ``(chunks, ...)`` float32 in chunk order
        (a musicnn library name in its extractor's layout), and ``start_s``, the chunks cut as
        :meth:`tag` cuts them.

        Raises:
            InputError: an unknown layer, or ``path`` is a folder.
            AudioError: the file cannot be read.
        """
        from musictag.inference.features import check_layers, file_features

        if not isinstance(path, (str, os.PathLike)) or os.path.isdir(path):
            raise InputError(f"features takes the path of one audio file, got {path!r}")
        at_least("batch_chunks", batch_chunks)
        check_batch_memory(batch_chunks, self.model.input_len, "batch_chunks")
        chosen = check_layers(self.model.net, layers)
        return file_features(self.model, Path(path), self.plan, chosen, batch_chunks)

    def explain(
        self,
        path: Pathlike,
        tags: Sequence[str] | None = None,
        top_k: int = 3,
        method: str | None = None,
        steps: int = 32,
        batch_chunks: int = 8,
    ) -> Any:
        """One file's tag-wise saliency, as ``musictag explain`` writes it: an
        :class:`~musictag.inference.explain.Explanation` (``tags``, ``scores`` = :meth:`tag`'s song
        scores, ``times_s``, ``saliency`` (tags, frames), ``frequency_saliency`` or None; ``.arrays()``
        is the npz's content). ``tags``: names to explain (default: the ``top_k`` best-scored);
        ``method``: ``gradcam``, ``integrated_gradients``, ``attention``, ``rollout`` (default:
        ``attention`` where the back end has it, else ``gradcam``).

        Raises:
            InputError: an unknown tag or method, a method this model cannot do, or a folder.
            AudioError: the file cannot be read.
        """
        from musictag.inference.explain import explain_file

        if not isinstance(path, (str, os.PathLike)) or os.path.isdir(path):
            raise InputError(f"explain takes the path of one audio file, got {path!r}")
        at_least("top_k", top_k)
        at_least("steps", steps)
        at_least("batch_chunks", batch_chunks)
        return explain_file(self.model, Path(path), self.plan, tags, top_k, method, batch_chunks, steps)

    def __repr__(self) -> str:
        return f"AudioTagger({len(self.tags)} tags, chunks: {self.chunk_mode}, device: {self.model.device})"


def load(
    ckpt: Pathlike, device: str = "auto", n_chunks: int | None = None, chunk_mode: str | None = None
) -> AudioTagger:
    """A musictag checkpoint (``fit`` or ``import-weights``) ready to tag files.

    ``device``: ``auto`` (a CUDA GPU, else Apple's MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N``,
    ``mps`` (:func:`~musictag.guards.pick_device`). A probe trained from an
    embedding cache is rebuilt with its encoder (:mod:`musictag.inference.loading`). Bad settings raise
    :class:`~musictag.guards.InputError` before the checkpoint is read.
    """
    at_least("n_chunks", n_chunks)
    return AudioTagger(load_model(os.fspath(ckpt), pick_device(device, "device")), n_chunks, chunk_mode)
