"""A vector-quantisation codebook as a front end: each frame becomes its nearest codeword (one-hot)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.guards import at_least
from musictag.stages.registry import FRONTENDS, ConfigError


@FRONTENDS.register("codebook")
class Codebook(nn.Module):
    """Frames → one-hot codeword assignments: ``(B, 1, D, T)`` → ``(B, size, T)``.

    Each frame is standardised (``(x - frame_mean) / frame_scale``, per dimension) and assigned to the
    codeword at the smallest Euclidean distance (the first one on a tie). A ``global_mean`` back end
    then turns the assignments into the chunk's normalised codeword histogram (it sums to 1).

    Nothing here is learned by gradient: the codewords and the standardisation are fitted on training
    frames (k-means, :mod:`musictag.training.codebook`) and set with :meth:`set_codebook`. They are
    persistent buffers, so a checkpoint holds them as tensors; ``fitted`` records that they were set.

    References: the lecture's classical baseline "MFCC + K-means (VQ) + codebook histogram".
    """

    input_ndim = 3

    codewords: torch.Tensor  # (size, D), the buffers, typed for the type checker
    frame_mean: torch.Tensor  # (D,)
    frame_scale: torch.Tensor  # (D,)
    fitted: torch.Tensor  # () int: 1 once set_codebook was called

    def __init__(self, in_shape: Sequence[int], size: int = 128) -> None:
        super().__init__()
        at_least("codebook: size", size, 2)
        if len(in_shape) != 3 or in_shape[0] != 1:
            raise ConfigError(f"codebook: takes frames (1, D, T), got shape {tuple(in_shape)}")
        dim = int(in_shape[1])
        self.size, self.dim = size, dim
        self.register_buffer("codewords", torch.zeros(size, dim))
        self.register_buffer("frame_mean", torch.zeros(dim))
        self.register_buffer("frame_scale", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.long))

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, T)`` → standardised frames ``(B, T, D)``."""
        return (x.squeeze(1).transpose(1, 2).float() - self.frame_mean) / self.frame_scale

    def assign(self, frames: torch.Tensor) -> torch.Tensor:
        """Standardised frames ``(..., D)`` → index of the nearest codeword ``(...)``."""
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every codeword of a frame
        words = self.codewords.float()
        distance = (words * words).sum(dim=1) - 2.0 * torch.matmul(frames, words.T)
        return distance.argmin(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device_type = "cpu" if x.is_meta else x.device.type
        with torch.autocast(device_type, enabled=False):  # distances in float32 under mixed precision too
            index = self.assign(self.frames(x))  # (B, T)
        one_hot = torch.nn.functional.one_hot(index, self.size).to(
            x.dtype if x.is_floating_point() else torch.float32
        )
        return one_hot.transpose(1, 2)  # (B, size, T)

    def set_codebook(
        self, codewords: torch.Tensor, frame_mean: torch.Tensor, frame_scale: torch.Tensor
    ) -> None:
        """Set the fitted codewords ``(size, D)`` (in standardised units) and the standardisation ``(D,)``."""
        if tuple(codewords.shape) != (self.size, self.dim):
            raise ConfigError(
                f"codebook: codewords of shape {tuple(codewords.shape)}, expected ({self.size}, {self.dim})"
            )
        if (frame_scale <= 0).any():
            raise ConfigError("codebook: frame_scale must be positive in every dimension")
        self.codewords.copy_(codewords)
        self.frame_mean.copy_(frame_mean)
        self.frame_scale.copy_(frame_scale)
        self.fitted.fill_(1)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, fitted={bool(self.fitted)}"
