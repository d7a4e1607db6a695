"""1-D convolution front ends: sample-level CNNs on the waveform, and 1-D CNNs over time on spectrograms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from musictag.stages.registry import FRONTENDS, ConfigError


def _pool1d(pool: int) -> nn.Module:
    return nn.MaxPool1d(pool) if pool > 1 else nn.Identity()


class ConvBlock1d(nn.Module):
    """Conv1d ("same" padding, optional stride) → BatchNorm1d → ReLU → MaxPool1d (Won 2020: ``Conv_1d``).

    ``bn_after_relu``: conv → ReLU → BN instead (the musicnn library's order).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        pool: int = 3,
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU()
        self.pool = _pool1d(pool)
        self.bn_after_relu = bn_after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        out = self.bn(self.relu(out)) if self.bn_after_relu else self.relu(self.bn(out))
        return self.pool(out)


class ResSEBlock1d(nn.Module):
    """Residual block with squeeze-and-excitation (Kim et al. 2018; Won 2020: ``ResSE_1d``).

    conv(stride)+BN+ReLU+conv+BN, rescaled channel-wise by ``sigmoid(W2·relu(W1·mean_t))``, plus the input
    (through a strided conv+BN when the shape changes), ReLU, max-pool.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, pool: int = 3
    ) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2
        )
        self.bn_1 = nn.BatchNorm1d(out_channels)
        self.conv_2 = nn.Conv1d(out_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn_2 = nn.BatchNorm1d(out_channels)
        self.dense1 = nn.Linear(out_channels, out_channels)
        self.dense2 = nn.Linear(out_channels, out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
                nn.BatchNorm1d(out_channels),
            )
        self.relu = nn.ReLU()
        self.pool = _pool1d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        excitation = torch.sigmoid(self.dense2(self.relu(self.dense1(out.mean(dim=-1))))).unsqueeze(-1)
        return self.pool(self.relu(self.shortcut(x) + out * excitation))


@FRONTENDS.register("sample_level")
class SampleLevel1d(nn.Module):
    """Sample-level 1-D CNN on the waveform: ``(B, 1, S)`` → ``(B, C, S / (first_stride · pool^(n-1)))``.

    The first block is a conv of ``kernel_size`` with stride ``first_stride`` and no pooling; each further
    block is a "same" conv followed by max-pool ``pool``; ``pointwise`` adds a final 1x1 block.

    Args:
        channels: channels of each block (the first is the strided one).
        block: ``basic`` (conv+BN+ReLU+pool, Lee et al. 2017) or ``se`` (residual squeeze-excitation
            blocks, Kim et al. 2018).

    References: J. Lee, J. Park, K. L. Kim, J. Nam, "Sample-level deep convolutional neural networks for
    music auto-tagging using raw waveforms", SMC 2017; T. Kim, J. Lee, J. Nam, "Sample-level CNN
    architectures for music auto-tagging using raw waveforms", ICASSP 2018.
    """

    input_ndim = 2

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512),
        kernel_size: int = 3,
        first_stride: int = 3,
        pool: int = 3,
        pointwise: int | None = 512,
        block: Literal["basic", "se"] = "basic",
    ) -> None:
        super().__init__()
        if block not in ("basic", "se"):
            raise ConfigError(f"sample_level: unknown block {block!r}; use 'basic' or 'se'")
        make = ConvBlock1d if block == "basic" else ResSEBlock1d
        layers = [make(in_shape[0], channels[0], kernel_size, stride=first_stride, pool=1)]
        layers += [
            make(channels[i - 1], channels[i], kernel_size, pool=pool) for i in range(1, len(channels))
        ]
        if pointwise:
            layers.append(make(channels[-1], pointwise, kernel_size=1, pool=1))
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


@FRONTENDS.register("conv1d_stack")
class Conv1dStack(nn.Module):
    """1-D convolutions over time on a spectrogram: ``(B, C, F, T)`` or ``(B, C, T)`` → ``(B, channels[-1], T')``.

    Frequency is folded into channels (``C·F``), so the first filter spans every band (Dieleman and
    Schrauwen 2014). Each block: Conv1d of ``kernel_size`` ("valid" or "same" padding) → [BatchNorm1d] →
    ReLU → max-pool.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (256, 256, 256, 512),
        kernel_size: int = 4,
        pools: int | Sequence[int] = (4, 2, 2, 1),
        padding: Literal["valid", "same"] = "valid",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if len(in_shape) not in (2, 3):
            raise ConfigError(f"conv1d_stack takes (C, T) or (C, F, T) input, got {tuple(in_shape)}")
        pool_list = [pools] * len(channels) if isinstance(pools, int) else list(pools)
        if len(pool_list) != len(channels):
            raise ConfigError(f"conv1d_stack: {len(channels)} channels but {len(pool_list)} pools")
        width = in_shape[0] * (in_shape[1] if len(in_shape) == 3 else 1)
        layers: list[nn.Module] = []
        for out, pool in zip(channels, pool_list, strict=True):
            if padding == "same":  # explicit (asymmetric for even kernels): no padded copy inside conv1d
                layers.append(nn.ConstantPad1d(((kernel_size - 1) // 2, kernel_size // 2), 0.0))
            layers.append(nn.Conv1d(width, out, kernel_size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers += [nn.ReLU(), _pool1d(pool)]
            width = out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1, 2) if x.ndim == 4 else x)
