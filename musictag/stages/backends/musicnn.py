"""MusiCNN's back end: dense 1-D convolutions with residuals, then temporal max and mean pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.stages.frontends.conv1d import ConvBlock1d
from musictag.stages.library_layers import LibraryLayer
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
        self.n_features = in_shape[0] + n_layers * channels
        self.bn_after_relu = bn_after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        out = x
        for i, layer in enumerate(self.layers):
            out = layer(out) + out if i > 0 else layer(out)
            features.append(out)
        stacked = torch.cat(features, dim=1)
        return torch.cat([stacked.amax(dim=-1), stacked.mean(dim=-1)], dim=1)

    def library_layers(self) -> dict[str, LibraryLayer]:
        """The musicnn library's mid-end features, when built as the library builds it (conv → ReLU →
        BN): ``cnn1`` … (each block's output with its residual, each patch ``(T, channels)``) and
        ``max_pool`` / ``mean_pool`` (front end and blocks over time, ``(n_features,)`` a patch)."""
        if not self.bn_after_relu:
            return {}
        layers: dict[str, LibraryLayer] = {
            f"cnn{i + 1}": LibraryLayer(
                (f"layers.{i}",),
                f"conv block {i + 1} of the mid-end" + (" + its input (residual)" if i else ""),
                residual=i > 0,
                permute=(0, 2, 1),
            )
            for i in range(len(self.layers))
        }
        n = self.n_features  # the output is [the maxima of all features, then their means]
        layers["mean_pool"] = LibraryLayer(
            ("",), "mean over time of front end and mid-end", channels=(n, 2 * n), frames=False
        )
        layers["max_pool"] = LibraryLayer(
            ("",), "max over time of front end and mid-end", channels=(0, n), frames=False
        )
        return layers
