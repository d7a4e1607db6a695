"""2-D CNN front ends over time-frequency representations: ``(B, C, F, T)`` → ``(B, C', F', T')``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from musictag.stages.library_layers import LibraryLayer
from musictag.stages.ops import conv2d_fast_input_grad
from musictag.stages.registry import FRONTENDS, ConfigError

Pool = int | Sequence[int]
Activation = Literal["relu", "elu"]


def _pair(value: Pool) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, Sequence) else (int(value), int(value))


def _activation(name: Activation) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "elu":
        return nn.ELU()
    raise ConfigError(f"unknown activation {name!r}; use 'relu' or 'elu'")


def _pool(pool: Pool, stride: Pool | None = None) -> nn.Module:
    if _pair(pool) == (1, 1) and (stride is None or _pair(stride) == (1, 1)):
        return nn.Identity()
    return nn.MaxPool2d(_pair(pool), _pair(stride) if stride is not None else None)


class ConvBlock2d(nn.Module):
    """Conv2d ("same" padding) → BatchNorm2d → activation → MaxPool2d.

    The block of the FCN, the Short-chunk CNN and the CRNN's CNN (Choi 2016/2017; Won 2020: ``Conv_2d``).
    ``pool_stride`` (default: the pool size) and ``bn_after_relu`` (conv → activation → BN) give the
    musicnn library's VGG blocks.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        pool: Pool = 2,
        activation: Activation = "relu",
        pool_stride: Pool | None = None,
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = _activation(activation)
        self.pool = _pool(pool, pool_stride)
        self.bn_after_relu = bn_after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv2d_fast_input_grad(x, self.conv)
        out = self.bn(self.act(out)) if self.bn_after_relu else self.act(self.bn(out))
        return self.pool(out)


class ResPoolBlock2d(nn.Module):
    """Two 3x3 conv+BN with a skip connection, ReLU, then max-pool (Won 2020: ``Res_2d_mp``).

    The skip is the identity when the channel count is kept, else a 3x3 conv + BN projection (as in the
    Music Tagging Transformer's front end, Won 2021).
    """

    def __init__(self, in_channels: int, out_channels: int, pool: Pool = 2) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn_1 = nn.BatchNorm2d(out_channels)
        self.conv_2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn_2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels)
            )
        self.relu = nn.ReLU()
        self.pool = _pool(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        return self.pool(self.relu(self.shortcut(x) + out))


class ResStrideBlock2d(nn.Module):
    """Residual block that downsamples by stride (Won 2020: ``Res_2d``): conv(s)+BN+ReLU+conv+BN, plus a
    strided 3x3 conv+BN skip when the shape changes, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: Pool = 2) -> None:
        super().__init__()
        stride = _pair(stride)
        self.conv_1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn_1 = nn.BatchNorm2d(out_channels)
        self.conv_2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn_2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        return self.relu(self.shortcut(x) + out)


def _use_channels_last(module: nn.Module, enabled: bool) -> bool:
    """Lay the conv weights out channels-last (the inputs follow in forward)."""
    if enabled:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # a real argument torch's stubs lack
    return enabled


def _per_block(value: object, n_blocks: int, what: str) -> list:
    """One value for every block: a scalar (int or name) is repeated; a list gives one value per block
    (so a ``[freq, time]`` pool is written once per block: ``[[2, 4], [2, 4], ...]``)."""
    if isinstance(value, (int, str)):
        return [value] * n_blocks
    values = list(value)  # type: ignore[call-overload]
    if len(values) != n_blocks:
        raise ConfigError(f"{n_blocks} channels but {len(values)} {what}; give one, or one per block")
    return values


@FRONTENDS.register("conv2d_stack")
class Conv2dStack(nn.Module):
    """A stack of 2-D conv blocks: ``(B, C, F, T)`` → ``(B, channels[-1], F', T')``.

    Args:
        channels: output channels of each block.
        kernel_size: square kernel of the plain blocks (odd; "same" padding).
        pools: one int for every block, or one pool per block (an int for a square pool, or
            ``[freq, time]``).
        blocks: ``conv`` (:class:`ConvBlock2d`) or ``res`` (:class:`ResPoolBlock2d`), for every block or
            per block; the Harmonic CNN alternates them.
        activation: of the plain blocks, ``relu`` or ``elu``.
        pool_strides: strides of the plain blocks' pools, like ``pools`` (default: the pool sizes).
        bn_after_relu: plain blocks as conv → activation → BN (the musicnn library's VGG).
        channels_last: run in channels-last memory format, which oneDNN (CPU) and cuDNN (GPU, mixed
            precision) convolve faster: 25-35% more training throughput on CPU for the Short-chunk CNN
            and the FCN (``musictag bench``). Numerically the same network.
    """

    input_ndim = 3

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (128, 128, 256, 256, 256, 256, 512),
        kernel_size: int = 3,
        pools: Pool | Sequence[Pool] = 2,
        blocks: str | Sequence[str] = "conv",
        activation: Activation = "relu",
        channels_last: bool = True,
        pool_strides: Pool | Sequence[Pool] | None = None,
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        pool_list = _per_block(pools, len(channels), "pools")
        block_list = _per_block(blocks, len(channels), "block types")
        stride_list = (
            [None] * len(channels)
            if pool_strides is None
            else _per_block(pool_strides, len(channels), "pool_strides")
        )
        layers: list[nn.Module] = []
        width = in_shape[0]
        for out, pool, stride, kind in zip(channels, pool_list, stride_list, block_list, strict=True):
            if kind == "conv":
                layers.append(ConvBlock2d(width, out, kernel_size, pool, activation, stride, bn_after_relu))
            elif kind == "res":
                layers.append(ResPoolBlock2d(width, out, pool))
            else:
                raise ConfigError(f"conv2d_stack: unknown block type {kind!r}; use 'conv' or 'res'")
            width = out
        self.blocks = nn.Sequential(*layers)
        self.channels_last = _use_channels_last(self, channels_last)
        self.library_vgg = bn_after_relu and all(kind == "conv" for kind in block_list)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)

    def library_layers(self) -> dict[str, LibraryLayer]:
        """The musicnn library's VGG features (``pool1`` …: each block's output, a patch ``(T', F', C)``
        as TensorFlow lays it out), when built as the library builds it (conv → ReLU → BN → pool)."""
        if not self.library_vgg:
            return {}
        return {
            f"pool{i + 1}": LibraryLayer((f"blocks.{i}",), f"block {i + 1}, max-pooled", permute=(0, 3, 2, 1))
            for i in range(len(self.blocks))
        }


@FRONTENDS.register("res2d_stack")
class Res2dStack(nn.Module):
    """Residual blocks that downsample by stride (:class:`ResStrideBlock2d`): ``(B, C, F, T)`` → ``(B, C', F', T')``.

    Args:
        channels: output channels of each block.
        strides: one int for every block, or one stride per block (an int or ``[freq, time]``).
        channels_last: as :class:`Conv2dStack`.
    """

    input_ndim = 3

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (128, 128, 256, 256, 256, 256, 512),
        strides: Pool | Sequence[Pool] = 2,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        stride_list = _per_block(strides, len(channels), "strides")
        widths = [in_shape[0], *channels]
        self.blocks = nn.Sequential(
            *(ResStrideBlock2d(widths[i], widths[i + 1], stride_list[i]) for i in range(len(channels)))
        )
        self.channels_last = _use_channels_last(self, channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)
