"""Heads: one vector per chunk → ``(B, n_tags)`` logits."""

from musictag.stages.heads.mlp import LinearHead, MLPHead

__all__ = ["LinearHead", "MLPHead"]
