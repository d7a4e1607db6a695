"""MusiCNN's musically motivated front end: timbral (vertical) and temporal (horizontal) filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from musictag.stages.library_layers import LibraryLayer
from musictag.stages.ops import conv2d_fast_input_grad, conv2d_max_over_height
from musictag.stages.registry import FRONTENDS, ConfigError


class TimbralFilter(nn.Module):
    """Conv2d of ``(height, width)`` ("same" in time, valid in frequency) → BN → ReLU → max over frequency:
    ``(B, 1, F, T)`` → ``(B, C, T)`` (Won 2020: ``Conv_V``).

    An even ``width`` is padded as TensorFlow's "same": one frame more after than before.
    ``bn_after_relu`` applies ReLU before the BatchNorm (conv → ReLU → BN, the musicnn library's order).
    """

    def __init__(
        self, in_channels: int, channels: int, height: int, width: int, bn_after_relu: bool = False
    ) -> None:
        super().__init__()
        # odd widths pad inside the conv (its fast input-gradient path); even ones before it, asymmetrically
        self.time_pad = (0, 0) if width % 2 else ((width - 1) // 2, width // 2)
        self.conv = nn.Conv2d(
            in_channels, channels, (height, width), padding=(0, width // 2 if width % 2 else 0)
        )
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.bn_after_relu = bn_after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad != (0, 0):
            x = F.pad(x, self.time_pad)
        if self.pools_first():
            return self.pooled_first(x)
        out = conv2d_fast_input_grad(x, self.conv)
        out = self.bn(self.relu(out)) if self.bn_after_relu else self.relu(self.bn(out))
        return out.amax(dim=2)

    def pools_first(self) -> bool:
        """Whether the max over frequency may come before BN and ReLU: inference, BN of running statistics."""
        return not self.bn.training and self.bn.running_var is not None

    def pooled_first(self, x: torch.Tensor) -> torch.Tensor:
        """The same values as conv → BN/ReLU → max over frequency, with BN and ReLU on a tensor ``F'`` times
        smaller (inference only: BN of running statistics).

        BN is then ``a·z + b`` per channel and ReLU is monotone, so the maximum over frequency of the
        activation is the activation of the largest conv output where ``a ≥ 0`` and of the smallest where
        ``a < 0``. The smallest is taken as minus the largest of the negated filter (negation is exact).
        """
        bn = self.bn
        assert bn.running_mean is not None and bn.running_var is not None
        weight, bias = self.conv.weight, self.conv.bias
        sign = None if bn.weight is None else torch.where(bn.weight >= 0, 1.0, -1.0).to(weight.dtype)
        if sign is not None:
            weight = weight * sign[:, None, None, None]
            bias = None if bias is None else bias * sign
        out = conv2d_max_over_height(x, weight, bias, tuple(self.conv.padding))  # type: ignore[arg-type]
        if sign is not None:
            out = out * sign[:, None]
        norm = lambda z: F.batch_norm(  # noqa: E731 - BatchNorm2d's inference, on (B, C, T)
            z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
        )
        return norm(self.relu(out)) if self.bn_after_relu else self.relu(norm(out))


class TemporalFilter(nn.Module):
    """Mean over frequency → Conv1d of ``length`` ("same") → BN → ReLU: ``(B, 1, F, T)`` → ``(B, C, T)``
    (Won 2020: ``Conv_H``)."""

    def __init__(self, in_channels: int, channels: int, length: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, channels, length, padding=length // 2)
        self.bn = nn.BatchNorm1d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x.mean(dim=2))))


@FRONTENDS.register("musicnn")
class MusicnnFrontEnd(nn.Module):
    """Timbral + temporal filters, concatenated over channels: ``(B, 1, F, T)`` → ``(B, C, T)``.

    Defaults are the published MusiCNN: 204 timbral filters of ``0.7·F × 7`` and ``0.4·F × 7`` mel bins x
    frames, 51 temporal filters of 129, 65 and 33 frames: 561 channels. The timbral heights are
    fractions of the number of mel bands (``int(fraction · F)``), as in both reference implementations.

    Args:
        temporal_pooling: ``mean`` averages the bands and convolves the result (Won et al. 2020's port);
            ``max`` convolves every band with a ``1 × length`` filter and keeps the maximum over bands (the
            musicnn library, Pons et al.).
        bn_after_relu: conv → ReLU → BN in every filter (the musicnn library) instead of conv → BN → ReLU.

    References: J. Pons, O. Nieto, M. Prockup, E. Schmidt, A. Ehmann, X. Serra, "End-to-end learning
    for music audio tagging at scale", ISMIR 2018.
    """

    input_ndim = 3

    def __init__(
        self,
        in_shape: Sequence[int],
        timbral_channels: int = 204,
        timbral_heights: Sequence[float] = (0.7, 0.4),
        timbral_width: int = 7,
        temporal_channels: int = 51,
        temporal_lengths: Sequence[int] = (129, 65, 33),
        temporal_pooling: Literal["mean", "max"] = "mean",
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        in_channels, n_bands = in_shape[0], in_shape[1]
        layers: list[nn.Module] = [
            TimbralFilter(
                in_channels, timbral_channels, int(fraction * n_bands), timbral_width, bn_after_relu
            )
            for fraction in timbral_heights
        ]
        if temporal_pooling == "mean":
            if bn_after_relu:
                raise ConfigError("musicnn: bn_after_relu needs temporal_pooling 'max'")
            layers += [TemporalFilter(in_channels, temporal_channels, length) for length in temporal_lengths]
        elif temporal_pooling == "max":
            layers += [
                TimbralFilter(in_channels, temporal_channels, 1, length, bn_after_relu)
                for length in temporal_lengths
            ]
        else:
            raise ConfigError(f"musicnn: unknown temporal_pooling {temporal_pooling!r}; use 'mean' or 'max'")
        self.layers = nn.ModuleList(layers)
        self.n_timbral = len(timbral_heights)
        self.bn_after_relu = bn_after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([layer(x) for layer in self.layers], dim=1)

    def library_layers(self) -> dict[str, LibraryLayer]:
        """The musicnn library's front-end features (``extractor(..., extract_features=True)``), when
        built as the library builds it (conv → ReLU → BN): ``timbral`` and ``temporal``, each patch
        ``(T, C)``."""
        if not self.bn_after_relu:
            return {}
        paths = [f"layers.{i}" for i in range(len(self.layers))]
        return {
            "timbral": LibraryLayer(
                tuple(paths[: self.n_timbral]), "the timbral filters, max over frequency", permute=(0, 2, 1)
            ),
            "temporal": LibraryLayer(
                tuple(paths[self.n_timbral :]), "the temporal filters, max over frequency", permute=(0, 2, 1)
            ),
        }
