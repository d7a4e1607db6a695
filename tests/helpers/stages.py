"""Stage classes only tests use (by ``class_path``)."""

from __future__ import annotations

import torch
from torch import nn


class CumMaxPool(nn.Module):
    """A back end with an operator the ONNX exporter cannot write (``cummax``): ``(B, C, ...)`` → ``(B, C)``,
    the max over all but the channels, as :class:`musictag.stages.backends.pooling.GlobalMax`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x.flatten(2), dim=-1)[0][..., -1]


#: A stage spec of :class:`CumMaxPool`.
UNEXPORTABLE_BACKEND = {"class_path": "helpers.stages.CumMaxPool"}
