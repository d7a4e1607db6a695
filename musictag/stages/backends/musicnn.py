"""MusiCNN's back end: dense 1-D convolutions with residuals, then temporal max and mean pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.stages.frontends.conv1d import ConvBlock1d
from musictag.stages.registry import BACKENDS


@BACKENDS.register("musicnn_1d")
class MusicnnBackEnd(nn.Module):
    """``(B, C, T)`` → ``(B, 2·(C + n_layers·channels))``.

    ``n_layers`` conv1d blocks of ``kernel_size`` (the 2nd and later with a residual connection); the
    input and every block's output are concatenated over channels and pooled over time by max and
    mean. Defaults: the MTAT MusiCNN (64 channels; the MSD model uses 512). ``bn_after_relu``: each conv
    block is conv → ReLU → BN (the musicnn library's order).

    References: J. Pons et al., "End-to-end learning for music audio tagging at scale", ISMIR 2018.
    """

    input_ndim = 2

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: int = 64,
        kernel_size: int = 7,
        n_layers: int = 3,
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        widths = [in_shape[0]] + [channels] * n_layers
        self.layers = nn.ModuleList(
            ConvBlock1d(widths[i], widths[i + 1], kernel_size, pool=1, bn_after_relu=bn_after_relu)
            for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        out = x
        for i, layer in enumerate(self.layers):
            out = layer(out) + out if i > 0 else layer(out)
            features.append(out)
        stacked = torch.cat(features, dim=1)
        return torch.cat([stacked.amax(dim=-1), stacked.mean(dim=-1)], dim=1)
