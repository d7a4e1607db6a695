"""Pooling back ends: ``(B, C, *rest)`` → ``(B, D)``."""

from __future__ import annotations

import torch
from torch import nn

from musictag.stages.registry import BACKENDS


@BACKENDS.register("global_max")
class GlobalMax(nn.Module):
    """Max over every axis but the channels: ``(B, C, ...)`` → ``(B, C)``. Accepts any input length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).amax(dim=-1)


@BACKENDS.register("global_mean")
class GlobalMean(nn.Module):
    """Mean over every axis but the channels: ``(B, C, ...)`` → ``(B, C)`` (probes' time pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(dim=-1)


@BACKENDS.register("global_mean_max")
class GlobalMeanMax(nn.Module):
    """Mean and max over every axis but the channels, concatenated: ``(B, C, ...)`` → ``(B, 2C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


@BACKENDS.register("flatten")
class Flatten(nn.Module):
    """All features in one vector: ``(B, C, ...)`` → ``(B, C·...)``. Fixes the input length (FCN)."""

    fixed_input_length = True  # the vector's size, hence the head's, depends on the number of frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


@BACKENDS.register("global_mean_max_l2")
class GlobalMeanMaxL2(nn.Module):
    """Mean, max and L2 norm over every axis but the channels: ``(B, C, ...)`` → ``(B, 3C)``.

    The global temporal pooling of Dieleman and Schrauwen 2014's spectrogram model.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1), x.pow(2).mean(dim=-1).sqrt()], dim=1)
