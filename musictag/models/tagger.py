"""The tagging network: representation → front end → back end → head, composed from the registries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

import musictag.stages.backends  # noqa: F401  (registers the stages)
import musictag.stages.frontends  # noqa: F401
import musictag.stages.heads  # noqa: F401
import musictag.stages.representations  # noqa: F401
from musictag.stages.registry import (
    BACKENDS,
    FRONTENDS,
    HEADS,
    REPRESENTATIONS,
    ConfigError,
    Registry,
    StageSpec,
    spec_name,
)

STAGES: tuple[tuple[str, Registry], ...] = (
    ("representation", REPRESENTATIONS),
    ("frontend", FRONTENDS),
    ("backend", BACKENDS),
    ("head", HEADS),
)


class Tagger(nn.Module):
    """A music tagger: waveform ``(B, input_len)`` at ``sample_rate`` → logits ``(B, n_tags)``.

    A stage whose output size depends on the input length (it flattens time into features) says so
    with a class attribute ``fixed_input_length = True``; the network then takes exactly ``input_len``
    samples, and any other length is refused with a message rather than a shape error deep inside.

    Each stage is built from its registry with the output shape of the stage before it (``in_shape``,
    per example, without the batch axis); the shapes are found by running one zero example through the
    stages as they are built, so a composition that does not fit fails here, naming both stages and the
    shape that did not fit, rather than at the first training step.

    Attributes:
        shapes: per-example output shape of each stage at ``input_len``.
    """

    representation: nn.Module  # the stages, set by name in __init__
    frontend: nn.Module
    backend: nn.Module
    head: nn.Module

    def __init__(
        self,
        n_tags: int,
        representation: StageSpec,
        frontend: StageSpec,
        backend: StageSpec,
        head: StageSpec,
        input_len: int | None,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if input_len is None:
            input_len = _input_len_of(representation)
        if n_tags < 1:
            raise ConfigError(f"n_tags must be at least 1, got {n_tags}")
        if input_len < 1:
            raise ConfigError(f"input_len must be a positive number of samples, got {input_len}")
        self.n_tags = n_tags
        self.input_len = input_len
        self.sample_rate = sample_rate
        specs = {"representation": representation, "frontend": frontend, "backend": backend, "head": head}
        self.shapes: dict[str, tuple[int, ...]] = {"input": (input_len,)}
        shape: tuple[int, ...] = (input_len,)
        previous = ("input", "waveform")
        for attr, registry in STAGES:
            spec = specs[attr]
            name = spec_name(spec)
            stage = registry.build(spec, in_shape=shape, n_tags=n_tags, sample_rate=sample_rate)
            wanted = getattr(stage, "input_ndim", None)
            if wanted is not None and len(shape) != wanted:
                raise ConfigError(
                    _mismatch(previous, (registry.kind, name), shape, f"it takes {wanted}-D input")
                )
            shape = _output_shape(stage, shape, previous, (registry.kind, name))
            setattr(self, attr, stage)
            self.shapes[attr] = shape
            previous = (registry.kind, name)
        if shape != (n_tags,):
            raise ConfigError(f"head {spec_name(head)!r} gives shape {shape}, expected ({n_tags},)")
        # Stages that pool or read out over time take any length; a flattening one fixes it.
        self.variable_length = not any(
            getattr(getattr(self, attr), "fixed_input_length", False) for attr, _ in STAGES
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not self.variable_length and wave.shape[-1] != self.input_len:
            raise ValueError(
                f"this network takes exactly input_len={self.input_len} samples (its back end flattens); "
                f"got {wave.shape[-1]}: cut the audio into chunks of input_len"
            )
        x = self.representation(wave)
        x = self.frontend(x)
        x = self.backend(x)
        return self.head(x)

    def from_representation(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of inputs already in the representation's output form (e.g. a precomputed
        ``(B, 1, 96, 1366)`` log-mel of Choi et al.'s preprocessing): front end → back end → head."""
        return self.head(self.backend(self.frontend(x)))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _input_len_of(representation: StageSpec) -> int:
    """The input length a representation fixes itself (cached embeddings), for a config without one."""
    cls, kwargs, name = REPRESENTATIONS.resolve(representation)
    if not hasattr(cls, "input_len_for"):
        raise ConfigError(f"input_len is not set and representation {name!r} does not fix it: set input_len")
    return int(cls.input_len_for(**kwargs))


def _output_shape(
    stage: nn.Module, in_shape: tuple[int, ...], previous: tuple[str, str], current: tuple[str, str]
) -> tuple[int, ...]:
    was_training = stage.training
    stage.eval()
    try:
        with torch.no_grad():
            out = stage(torch.zeros(1, *in_shape))
    except (RuntimeError, ValueError, IndexError) as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(_mismatch(previous, current, in_shape, reason)) from None
    finally:
        stage.train(was_training)
    shape = tuple(out.shape[1:])
    if any(size == 0 for size in shape):
        raise ConfigError(_mismatch(previous, current, in_shape, f"its output would be empty {shape}"))
    return shape


def _mismatch(previous: tuple[str, str], current: tuple[str, str], shape: Sequence[int], reason: Any) -> str:
    return (
        f"{current[0]} {current[1]!r} cannot take the output of {previous[0]} {previous[1]!r}, "
        f"shape {tuple(shape)} (channels, ...; batch axis left out): {reason}"
    )
