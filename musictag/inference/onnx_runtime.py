"""Tagging with a model written by ``musictag export``, through onnxruntime, as ``musictag tag`` does.

:class:`OnnxTagger` reads the model's ``metadata_props`` (:data:`musictag.inference.onnx_export.METADATA_KEYS`)
and tags a file by the path of ``tag``: the same decoding and resampling
(:func:`musictag.audio.load_audio`), the same chunk plan capped at what the file holds
(:func:`musictag.inference.tagging.file_chunk_starts`) and the same song-level aggregation, so its
result is :func:`musictag.inference.tagging.file_result`'s, scores from onnxruntime.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musictag.chunks import ChunkPlan
from musictag.guards import InputError, check_input_file


class OnnxTagger:
    """An exported model in an onnxruntime session (CPU unless ``providers`` say otherwise).

    Attributes:
        tag_names, sample_rate, input_len, aggregate, task: from the model's metadata.
        plan: the chunk plan ``musictag tag`` uses by default for the checkpoint it was exported from.
    """

    def __init__(
        self, path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError(
                "tagging with an ONNX model needs onnxruntime: pip install 'musictag[export]'"
            ) from None
        check_input_file(path, "ONNX model")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                os.fspath(path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as err:  # noqa: BLE001  (onnxruntime's errors have no common public type)
            raise InputError(
                f"{path}: not an ONNX model onnxruntime can load ({str(err).splitlines()[0]})"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "chunk_len" not in meta or "tag_names" not in meta:
            raise InputError(
                f"{path}: no musictag metadata (chunk_len, tag_names): write it with musictag export"
            )
        self.metadata: dict[str, str] = dict(meta)
        self.tag_names: list[str] = json.loads(meta["tag_names"])
        self.sample_rate = int(meta["sample_rate"])
        self.input_len = int(meta["chunk_len"])
        self.aggregate = meta.get("aggregate", "mean")
        self.task = meta.get("task", "multilabel")
        self.mp3_decoder_delay = int(meta.get("mp3_decoder_delay") or 0)  # 0 in an export without it
        self.plan = ChunkPlan(
            self.input_len,
            int(meta.get("n_chunks") or 16),
            meta.get("chunk_mode", "even"),
            int(meta["chunk_hop"]) if meta.get("chunk_hop") else None,
            int(meta["n_fft"]) if meta.get("n_fft") else None,
        )

    def chunk_scores(self, chunks: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """``(n, chunk_len)`` float32 chunks → ``(n, n_tags)`` probabilities, ``batch_size`` at a time."""
        chunks = np.ascontiguousarray(chunks, dtype=np.float32)
        parts = [
            self.session.run(["scores"], {"waveform": chunks[i : i + batch_size]})[0]
            for i in range(0, len(chunks), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.tag_names)), np.float32)

    def tag(
        self, path: str | os.PathLike, plan: ChunkPlan | None = None, batch_size: int = 16
    ) -> dict[str, Any]:
        """``musictag tag --format json --timeline``'s object of one file (``top`` left out).

        Raises:
            AudioError: the file cannot be read, or the scores are not finite.
        """
        from musictag.inference.tagging import file_chunks, file_result

        plan = plan if plan is not None else self.plan
        item = file_chunks(self, Path(path), plan)
        scores = self.chunk_scores(item.chunks.numpy(), batch_size)
        return file_result(self, item, torch.from_numpy(scores))


def tag_file_onnx(
    model: str | os.PathLike, path: str | os.PathLike, threads: int | None = None
) -> dict[str, Any]:
    """Tag one file with an exported model (see :meth:`OnnxTagger.tag`)."""
    return OnnxTagger(model, threads).tag(path)
