"""Backends that tag one file end to end, for ``musictag bench --inference``: ``prepare(ckpt, threads)``
loads what it needs once and returns ``tag_once(path)``. Another runtime (onnxruntime, say) is one more
function here and one more entry in :data:`BACKENDS`."""

from __future__ import annotations

from collections.abc import Callable

#: ``prepare(ckpt, threads)`` → ``tag_once(path)``: one file tagged end to end (decode included).
Backend = Callable[[str, int], Callable[[str], object]]


def torch_tagger(ckpt: str, threads: int) -> Callable[[str], object]:
    """``musictag.load(ckpt, device="cpu").tag(path)`` with ``threads`` torch threads."""
    import torch

    from musictag.inference.api import load

    torch.set_num_threads(threads)
    return load(ckpt, device="cpu").tag


def onnx_tagger(ckpt: str, threads: int) -> Callable[[str], object]:
    """``ckpt`` exported as ``musictag export`` writes it (into a temporary folder, removed when the
    returned function is dropped), tagged with onnxruntime on the CPU with ``threads`` threads."""
    import tempfile
    from pathlib import Path

    from musictag.inference.onnx_export import export_onnx
    from musictag.inference.onnx_runtime import OnnxTagger

    folder = tempfile.TemporaryDirectory(prefix="musictag-bench-onnx-")
    path = export_onnx(ckpt, Path(folder.name) / "model.onnx")
    tagger = OnnxTagger(path, threads=threads)

    def tag_once(audio: str) -> object:
        folder  # the exported file lives as long as this function  # noqa: B018
        return tagger.tag(audio)

    return tag_once


BACKENDS: dict[str, Backend] = {"torch": torch_tagger, "onnxruntime": onnx_tagger}
