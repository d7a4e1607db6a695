"""The convolutional part of Choi et al.'s published Keras 1 taggers (MusicTaggerCNN, MusicTaggerCRNN).

What Keras 1 computed that the plain :class:`~musictag.stages.frontends.conv2d.Conv2dStack` does not:

- an input BatchNormalization over the *time* axis (Keras' ``bn_0_freq``, ``axis=time_axis``): one
  mean, variance, scale and shift per frame, the statistics taken over the batch and the 96 bands, so
  the network takes exactly its number of frames (1,366; the CRNN first zero-pads 37 frames on either
  side, ``ZeroPadding2D((0, 37))``, hence its 1,440 = 1,366 + 2·37 parameters of each kind);
- where its batch normalisation takes its statistics from at inference (``statistics``): Keras 1.1–1.2
  (the CRNN) used the stored running averages; Keras 1.0.6 (the CNN) used the statistics of the batch
  being predicted even at test time, so a track's scores depend on the tracks predicted with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from musictag.stages.frontends.conv2d import _pair
from musictag.stages.registry import FRONTENDS, ConfigError

Statistics = Literal["running", "track", "batch"]
STATISTICS = ("running", "track", "batch")


def _normalise(x: torch.Tensor, bn: nn.Module, statistics: str) -> torch.Tensor:
    """``bn`` on ``x`` (channels on axis 1) with the statistics ``statistics`` names (training: as always)."""
    if bn.training or statistics == "running":
        return bn(x)
    assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
    weight, bias, eps = bn.weight, bn.bias, bn.eps
    if statistics == "batch":  # the batch's own statistics; nothing stored is changed
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    # each example alone (what a batch of one gives): independent of the others, with no loop over the
    # batch, so an exported graph keeps its batch dynamic
    dims = tuple(range(2, x.dim()))
    var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
    out = (x - mean) * torch.rsqrt(var + eps)
    shape = (1, -1) + (1,) * len(dims)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


@FRONTENDS.register("choi_keras")
class ChoiKerasFrontEnd(nn.Module):
    """Time-axis input BN → [3x3 conv ("same") → BN → ELU → max-pool → dropout] per block.

    ``(B, 1, F, T)`` → ``(B, channels[-1], F', T')``. The parameters are those of the Keras model
    (the convolutions, each BN's scale and shift, the input BN's per frame), so the published
    parameter counts are met exactly; running means and variances are buffers.

    Args:
        channels: output channels of each block.
        pools: one ``[freq, time]`` (or square int) max-pool per block (Keras ``valid``: floor).
        pad_frames: zero frames added on either side of time before the input BN (the CRNN: 37).
        dropout: after each block (training only; the published weights' rates are not in the files).
        statistics: where every BN takes its statistics at inference: ``running`` (the stored
            averages), ``track`` (each example's own, as Keras 1.0.6 predicting one track at a time) or
            ``batch`` (the whole batch's, as Keras 1.0.6 predicting the batch: scores then depend on the
            batch; for checking published numbers only).
        eps: the BN epsilon (the stored variances are converted for it at import).
    """

    input_ndim = 3
    fixed_input_length = True

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (64, 128, 128, 128),
        pools: Sequence[Any] = ((2, 2), (3, 3), (4, 4), (4, 4)),
        pad_frames: int = 0,
        dropout: float = 0.0,
        statistics: Statistics = "running",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if statistics not in STATISTICS:
            raise ConfigError(f"choi_keras: unknown statistics {statistics!r}; use {', '.join(STATISTICS)}")
        if len(pools) != len(channels):
            raise ConfigError(f"choi_keras: {len(channels)} channels but {len(pools)} pools")
        self.statistics = statistics
        self.pad_frames = pad_frames
        self.n_frames = int(in_shape[-1]) + 2 * pad_frames
        self.input_bn = nn.BatchNorm1d(self.n_frames, eps=eps)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        width = int(in_shape[0])
        for out in channels:
            self.convs.append(nn.Conv2d(width, out, 3, padding=1))
            self.bns.append(nn.BatchNorm2d(out, eps=eps))
            width = out
        self.pools = [_pair(p) for p in pools]
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_frames:
            x = F.pad(x, (self.pad_frames, self.pad_frames))
        if x.shape[-1] != self.n_frames:
            raise ValueError(
                f"choi_keras takes exactly {self.n_frames - 2 * self.pad_frames} frames, got {x.shape[-1]}"
            )
        b, c, f, t = x.shape
        # frames as BN channels: (B, C, F, T) -> (B, T, C*F), normalised per frame, and back
        per_frame = x.permute(0, 3, 1, 2).reshape(b, t, c * f)
        x = _normalise(per_frame, self.input_bn, self.statistics).reshape(b, t, c, f).permute(0, 2, 3, 1)
        for conv, bn, pool in zip(self.convs, self.bns, self.pools, strict=True):
            x = F.max_pool2d(F.elu(_normalise(conv(x), bn, self.statistics)), pool)
            x = self.drop(x)
        return x
