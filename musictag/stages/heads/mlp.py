"""Linear and MLP heads. They return logits; the sigmoid belongs to evaluation and inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.stages.registry import HEADS


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """``(B, D)`` → ``(B, n_tags)``: [Linear → BatchNorm1d → ReLU → Dropout] per hidden size → Linear.

    With ``hidden=[512]``, ``dropout=0.5`` this is the Short-chunk CNN's head (Won et al. 2020).
    ``input_dropout`` drops the input features first (the FCN's dropout before its output layer);
    ``input_batch_norm`` normalises them before that, and ``bn_after_relu`` orders each hidden layer
    Linear → ReLU → BatchNorm1d (both as the musicnn library's MusiCNN).
    """

    input_ndim = 1

    def __init__(
        self,
        in_shape: Sequence[int],
        n_tags: int,
        hidden: Sequence[int] = (),
        batch_norm: bool = True,
        dropout: float = 0.5,
        input_dropout: float = 0.0,
        input_batch_norm: bool = False,
        bn_after_relu: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(in_shape[0])] if input_batch_norm else []
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = in_shape[0]
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm and not bn_after_relu:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            if batch_norm and bn_after_relu:
                layers.append(nn.BatchNorm1d(size))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_tags))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@HEADS.register("linear")
class LinearHead(MLPHead):
    """``(B, D)`` → ``(B, n_tags)``: one Linear layer, optionally after dropout."""

    def __init__(self, in_shape: Sequence[int], n_tags: int, dropout: float = 0.0) -> None:
        super().__init__(in_shape, n_tags, hidden=(), input_dropout=dropout)
