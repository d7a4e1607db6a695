"""The raw waveform as a one-channel signal, for sample-level front ends."""

from __future__ import annotations

import torch
from torch import nn

from musictag.stages.registry import REPRESENTATIONS


@REPRESENTATIONS.register("waveform")
class Waveform(nn.Module):
    """``(B, S)`` → ``(B, 1, S)``, optionally through an input BatchNorm1d."""

    input_ndim = 1

    def __init__(self, sample_rate: int = 16000, input_bn: bool = False) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.bn = nn.BatchNorm1d(1) if input_bn else nn.Identity()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.bn(wave.float().unsqueeze(1))
