"""Cached encoder hidden states as the network's input (probes trained from ``musictag embed``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictag.files import EMBEDDINGS_INDEX as INDEX  # noqa: F401  (the cache format lives with the files)
from musictag.files import read_embeddings_index as read_index
from musictag.stages.registry import REPRESENTATIONS, ConfigError


@REPRESENTATIONS.register("embedding")
class EmbeddingInput(nn.Module):
    """Flattened cached hidden states ``(B, L·T·D)`` → the chosen layers ``(B, L', T, D)`` (float32).

    Args:
        cache: the embedding cache folder (its ``index.json`` gives the stored layers and frame shape).
        layers: encoder layers to keep, as stored (``None``: every stored layer): numbers of a Hugging
            Face encoder's hidden states, names of a checkpoint's layers (``penultimate``); one or a list.

    The network's ``input_len`` is ``L·T·D`` (:meth:`input_len_for`), so ``input_len`` need not be given.
    """

    input_ndim = 1

    positions: torch.Tensor  # a buffer, typed for the type checker

    def __init__(
        self,
        in_shape: Sequence[int],
        cache: str,
        layers: int | str | Sequence[int] | Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        index = read_index(cache)
        # hidden-state numbers (Hugging Face encoders) or layer names (a checkpoint's: embed --ckpt)
        self.stored: list[int | str] = [i if isinstance(i, str) else int(i) for i in index["layers"]]
        self.frame_shape = tuple(int(n) for n in index["frame_shape"])
        wanted: list[int | str] = (
            list(self.stored)
            if layers is None
            else [layers]
            if isinstance(layers, (int, str))
            else list(layers)
        )
        missing = [i for i in wanted if i not in self.stored]
        if missing:
            raise ConfigError(
                f"layer(s) {missing} are not in the embedding cache {cache}; it holds {self.stored}"
            )
        self.register_buffer(
            "positions", torch.tensor([self.stored.index(i) for i in wanted]), persistent=False
        )
        if int(in_shape[0]) != self.input_len_for(cache):
            raise ConfigError(
                f"embedding cache {cache} holds rows of {self.input_len_for(cache)} values; input_len is {in_shape[0]}"
            )

    @staticmethod
    def input_len_for(cache: str, layers: int | str | Sequence[int] | Sequence[str] | None = None) -> int:
        """Values per chunk in the cache: stored layers × frames × width."""
        index = read_index(cache)
        n = len(index["layers"])
        for size in index["frame_shape"]:
            n *= int(size)
        return n

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = features.float().reshape(len(features), len(self.stored), *self.frame_shape)
        return hidden.index_select(1, self.positions)
