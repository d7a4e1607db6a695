"""A published library's feature names as taps on a stage: which submodules' outputs make each layer of
the library's extractor, and how to lay them out as the library does.

A stage that is built as a published library builds its model offers ``library_layers()`` → ``{name:
LibraryLayer}`` (paths relative to the stage); :mod:`musictag.inference.features` reads them off the
composed network with forward hooks. The musicnn library's MusiCNN (:class:`~musictag.stages.frontends.
musicnn.MusicnnFrontEnd`, :class:`~musictag.stages.backends.musicnn.MusicnnBackEnd`) and VGG
(:class:`~musictag.stages.frontends.conv2d.Conv2dStack`) declare theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LibraryLayer:
    """One layer of a library's extractor, read off a stage's submodules.

    Attributes:
        sources: submodules of the stage (dotted paths; ``""`` the stage itself) whose outputs,
            concatenated along the channel axis (1), make the layer.
        about: what the layer is, in a few words (the docs' table).
        residual: add each source's input to its output (a residual sum the stage computes after it).
        channels: ``(start, stop)`` of the channel axis kept, or all.
        permute: axis order of the library's tensor from musictag's ``(B, C, ...)``, batch first.
        frames: the library's extractor ``np.squeeze``-s each patch's array and concatenates the patches
            along their first axis (time), so a file's array is ``(patches·T, ...)``; else one row per
            patch, ``(patches, ...)``.
    """

    sources: tuple[str, ...]
    about: str
    residual: bool = False
    channels: tuple[int, int] | None = None
    permute: tuple[int, ...] | None = None
    frames: bool = True

    def value(self, caught: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The layer per chunk, ``(B, ...)`` in the library's axis order (a one-patch file's array as
        the library's extractor returns it, for each of the ``B`` chunks), from ``(input, output)`` of
        each source."""
        parts = [output + given if self.residual else output for given, output in caught]
        out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if self.channels is not None:
            out = out[:, self.channels[0] : self.channels[1]]
        if self.permute is not None:
            out = out.permute(*self.permute)
        if self.frames:  # np.squeeze of one patch: every axis of size 1 but the chunks' goes
            out = out.reshape(out.shape[0], *[size for size in out.shape[1:] if size != 1])
        return out.contiguous()
