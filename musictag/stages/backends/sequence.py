"""Sequence back ends: recurrent and attention models over the front end's time axis."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.stages.registry import BACKENDS, ConfigError


def to_sequence(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T)`` or ``(B, C, F, T)`` → ``(B, T, C·F)``: every frame's features as one vector."""
    if x.ndim == 4:
        x = x.flatten(1, 2)
    if x.ndim != 3:
        raise ValueError(f"expected (B, C, T) or (B, C, F, T) features, got shape {tuple(x.shape)}")
    return x.transpose(1, 2)


def _features(in_shape: Sequence[int]) -> int:
    if len(in_shape) not in (2, 3):
        raise ConfigError(f"sequence back ends take (C, T) or (C, F, T) input, got {tuple(in_shape)}")
    return in_shape[0] * (in_shape[1] if len(in_shape) == 3 else 1)


@BACKENDS.register("gru")
class GRUBackEnd(nn.Module):
    """A stacked GRU over time; the last step's state: ``(B, C[, F], T)`` → ``(B, hidden_size)``.

    With the defaults (2 layers of 32) it is the CRNN's recurrent part (Choi et al. 2017).
    """

    def __init__(
        self, in_shape: Sequence[int], hidden_size: int = 32, num_layers: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.gru = nn.GRU(_features(in_shape), hidden_size, num_layers, batch_first=True, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(to_sequence(x))
        return out[:, -1]


@BACKENDS.register("transformer")
class TransformerBackEnd(nn.Module):
    """A Transformer encoder read out at a learnable [CLS] token: ``(B, C[, F], T)`` → ``(B, d_model)``.

    Frames are projected to ``d_model`` (skipped when ``C·F == d_model`` and ``project="auto"``), a
    learnable [CLS] vector is prepended, learnable positional embeddings are added when
    ``max_len > 0`` (up to ``max_len`` frames), and the encoder output at [CLS] goes through an optional
    pooler (``Linear + tanh``, as BERT's).

    References: M. Won, K. Choi, X. Serra, "Semi-supervised music tagging transformer", ISMIR 2021;
    M. Won, S. Chun, X. Serra, "Toward interpretable music tagging with self-attention", 2019.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        d_model: int = 256,
        n_layers: int = 4,
        n_heads: int = 8,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        max_len: int = 0,
        project: bool | str = "auto",
        pooler: bool = False,
    ) -> None:
        super().__init__()
        features = _features(in_shape)
        if project == "auto":
            project = features != d_model
        if not project and features != d_model:
            raise ConfigError(
                f"transformer: {features} input features but d_model={d_model}; set project: true"
            )
        self.projection = nn.Linear(features, d_model) if project else nn.Identity()
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.max_len = max_len
        self.position = nn.Parameter(torch.randn(1, max_len + 1, d_model) * 0.02) if max_len > 0 else None
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward or 4 * d_model, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.pooler = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh()) if pooler else nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``(B, C[, F], T)`` → ``(B, 1 + T, d_model)``, [CLS] first, positions added."""
        seq = self.projection(to_sequence(x))
        # shape[0], not len(): len() would fix the batch of an exported graph (musictag export)
        seq = torch.cat([self.cls.expand(seq.shape[0], -1, -1), seq], dim=1)
        if self.position is not None:
            if seq.shape[1] > self.position.shape[1]:
                raise ValueError(
                    f"transformer: {seq.shape[1] - 1} frames exceed max_len={self.max_len}; use shorter input"
                )
            seq = seq + self.position[:, : seq.shape[1]]
        return seq

    def readout(self, cls_state: torch.Tensor) -> torch.Tensor:
        """The output from the encoder's state at [CLS]: ``(..., d_model)`` → ``(..., d_model)``."""
        return self.pooler(cls_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.encoder(self.embed(x))[:, 0])
