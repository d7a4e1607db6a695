"""Pons et al. 2016's musically motivated filter shapes: parallel single-layer conv branches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from musictag.stages.registry import FRONTENDS, ConfigError


class FilterBranch(nn.Module):
    """One conv layer of ``shape`` (valid padding) → ReLU → max-pool → flattened: ``(B, C, F, T)`` → ``(B, D)``.

    ``pool`` is ``[freq, time]``; ``-1`` pools over the whole remaining axis.
    """

    def __init__(
        self, in_shape: Sequence[int], channels: int, shape: Sequence[int], pool: Sequence[int]
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_shape[0], channels, (shape[0], shape[1]))
        out_f, out_t = in_shape[1] - shape[0] + 1, in_shape[2] - shape[1] + 1
        if out_f < 1 or out_t < 1:
            raise ConfigError(f"pons filter {tuple(shape)} is larger than its input {tuple(in_shape[1:])}")
        size = (out_f if pool[0] == -1 else pool[0], out_t if pool[1] == -1 else pool[1])
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.conv(x))).flatten(1)


@FRONTENDS.register("pons_filters")
class PonsFilters(nn.Module):
    """Parallel conv branches with musically motivated filter shapes, concatenated: ``(B, C, F, T)`` → ``(B, D)``.

    Each branch is ``{"channels": 32, "shape": [freq, time], "pool": [freq, time]}``. The four designs of
    the paper are: black-box ``[12, 8]`` pooled ``[4, 1]``; time ``[1, 60]`` pooled over all bands
    ``[-1, 1]``; frequency ``[32, 1]`` pooled over all frames ``[1, -1]``; time-frequency = the time and
    frequency branches together.

    References: J. Pons, T. Lidy, X. Serra, "Experimenting with musically motivated convolutional neural
    networks", CBMI 2016.
    """

    input_ndim = 3
    fixed_input_length = True  # the branches' flattened outputs are sized for the configured input

    def __init__(self, in_shape: Sequence[int], branches: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        if not branches:
            raise ConfigError("pons_filters needs at least one branch")
        self.branches = nn.ModuleList(
            FilterBranch(in_shape, int(b.get("channels", 32)), b["shape"], b.get("pool", [1, 1]))
            for b in branches
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)
