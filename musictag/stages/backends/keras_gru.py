"""Keras 1's GRU (Choi et al.'s MusicTaggerCRNN), which ``torch.nn.GRU`` does not compute.

Per step, with ``x W + b`` split in the gate order z (update), r (reset), h (candidate):
``z = hard_sigmoid(x W_z + b_z + h U_z)``, ``r = hard_sigmoid(x W_r + b_r + h U_r)``,
``h~ = tanh(x W_h + b_h + (r * h) U_h)``, ``h = z * h + (1 - z) * h~``. Three differences from
``torch.nn.GRU``: the gates use ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)`` (Keras 1's default
``inner_activation``), the reset gate multiplies the state *before* its recurrent product, and there is
one bias per gate (no separate recurrent bias), so the parameter count is Keras' own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.stages.backends.sequence import _features, to_sequence
from musictag.stages.registry import BACKENDS


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 1's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class KerasGRULayer(nn.Module):
    """One Keras 1 GRU layer over ``(B, T, D)``: all states ``(B, T, H)`` from a zero initial state.

    ``kernel`` ``(D, 3H)``, ``recurrent_kernel`` ``(H, 3H)`` and ``bias`` ``(3H,)`` hold the z, r, h
    parts side by side, as Keras' ``W_z, W_r, W_h`` (``U_*``, ``b_*``).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.kernel = nn.Parameter(torch.empty(input_size, 3 * hidden_size))
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(3 * hidden_size))
        nn.init.xavier_uniform_(self.kernel)
        nn.init.orthogonal_(self.recurrent_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.hidden_size
        inputs = x @ self.kernel + self.bias  # (B, T, 3H), every step at once
        u_zr, u_h = self.recurrent_kernel[:, : 2 * n], self.recurrent_kernel[:, 2 * n :]
        h = x.new_zeros(x.shape[0], n)
        states = []
        for t in range(x.shape[1]):
            zr = hard_sigmoid(inputs[:, t, : 2 * n] + h @ u_zr)
            z, r = zr[:, :n], zr[:, n:]
            candidate = torch.tanh(inputs[:, t, 2 * n :] + (r * h) @ u_h)
            h = z * h + (1 - z) * candidate
            states.append(h)
        return torch.stack(states, 1)


@BACKENDS.register("keras_gru")
class KerasGRUBackEnd(nn.Module):
    """Stacked Keras 1 GRUs over time, the last step's state: ``(B, C[, F], T)`` → ``(B, hidden_size)``.

    The frames become a sequence as Keras' ``Permute((3, 1, 2))`` + ``Reshape((T, C·F))`` make them
    (each frame's features channel-major), which is :func:`~musictag.stages.backends.sequence.to_sequence`.
    ``dropout`` follows the last layer (training only; the CRNN's 0.3).
    """

    def __init__(
        self, in_shape: Sequence[int], hidden_size: int = 32, num_layers: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        sizes = [_features(in_shape)] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(KerasGRULayer(a, hidden_size) for a in sizes[:-1])
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = to_sequence(x)
        for layer in self.layers:
            seq = layer(seq)
        return self.drop(seq[:, -1])
