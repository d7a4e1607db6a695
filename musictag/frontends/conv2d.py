"""2-D CNN front ends over time-frequency representations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.registry import FRONTENDS, ConfigError

Pool = int | Sequence[int]


class ConvBlock2d(nn.Module):
    """Conv2d (same padding) → BatchNorm2d → ReLU → MaxPool2d: ``(B, C_in, F, T)`` → ``(B, C_out, F/p_f, T/p_t)``.

    The block shared by the FCN, the Short-chunk CNN and the CRNN's CNN (Choi 2016/2017; Won 2020).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, pool: Pool = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        pool = tuple(pool) if isinstance(pool, Sequence) else (pool, pool)
        self.pool = nn.MaxPool2d(pool) if pool != (1, 1) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


@FRONTENDS.register("conv2d_stack")
class Conv2dStack(nn.Module):
    """A stack of :class:`ConvBlock2d`: ``(B, C, F, T)`` → ``(B, channels[-1], F', T')``.

    Args:
        channels: output channels of each block.
        kernel_size: square kernel of every block (odd; "same" padding).
        pools: one int for every block, or one pool per block (an int for a square pool, or
            ``[freq, time]``).
    """

    input_ndim = 3

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (128, 128, 256, 256, 256, 256, 512),
        kernel_size: int = 3,
        pools: Pool | Sequence[Pool] = 2,
    ) -> None:
        super().__init__()
        pools = [pools] * len(channels) if isinstance(pools, int) else list(pools)
        if len(pools) != len(channels):
            raise ConfigError(
                f"conv2d_stack: {len(channels)} channels but {len(pools)} pools; give one int for every "
                "block or one pool per block (an int, or [freq, time])"
            )
        in_channels = [in_shape[0], *channels[:-1]]
        self.blocks = nn.Sequential(
            *(
                ConvBlock2d(c_in, c_out, kernel_size, p)
                for c_in, c_out, p in zip(in_channels, channels, pools, strict=True)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)
