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


BACKENDS: dict[str, Backend] = {"torch": torch_tagger}
