"""A musictag checkpoint as a frozen encoder: the ``checkpoint_encoder`` front end and ``musictag embed
--ckpt``.

Any checkpoint ``musictag tag`` reads (a model trained here, an imported sota-music-tagging-models,
musicnn library or Choi model) gives the outputs of the layers :func:`~musictag.inference.features.
layer_names` lists for it (the stage outputs, the head's layers, ``penultimate``, and the musicnn
library's own names for its models) as hidden states ``(B, L, T, D)``, the form the Hugging Face
encoders give (:class:`~musictag.stages.frontends.hf_encoder.PretrainedEncoder`): the same embedding
cache, ``embedding`` representation and ``layer_mix`` front end then serve both, so a MusiCNN and a MERT
are probed by one protocol.

A layer's frames are its time axis: the last one for the stage outputs of the composed network
(``representation``, ``frontend``, ``backend``, ``head.<i>``: channels first, time last), the first one
for the musicnn library's names (its shapes: time first); a vector (``penultimate``, a pooled back end)
is one frame. The other axes are flattened into the width. The layers chosen together must have one
frame shape ``(T, D)`` (the cache stores rows ``(L, T, D)``).

The checkpoint's network runs in eval mode without gradients; its weights are frozen (not trained by
the probe's optimizer) and travel in the probe's checkpoint as a Hugging Face encoder's do. It takes the
checkpoint's own chunk length (``input_len``) at the checkpoint's own sample rate: no resampling.

Its stage module lives here, above the stages (it loads a checkpoint and reads its layers); the front
end registry names it lazily (:meth:`~musictag.stages.registry.Registry.lazy`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from musictag.inference.features import STAGES, check_layers, network_features
from musictag.stages.frontends.hf_encoder import LayerMix, to_float16
from musictag.types import ConfigError

#: What ``embed`` records as the encoder's family in the cache's ``index.json``.
FAMILY = "checkpoint"


def _time_last(name: str) -> bool:
    """Whether layer ``name`` is channels first, time last (the composed network's stage outputs)."""
    return name in STAGES or name.startswith("head.")


def as_frames(name: str, output: torch.Tensor) -> torch.Tensor:
    """A layer's output ``(B, ...)`` → frames ``(B, T, D)`` (see the module docstring)."""
    if output.ndim == 2:
        return output.unsqueeze(1)
    if output.ndim < 2:
        raise ConfigError(
            f"layer {name!r} gives one value per chunk {tuple(output.shape)}: choose another layer"
        )
    frames = output.movedim(-1, 1) if _time_last(name) else output
    return frames.flatten(2)


def load_network(ckpt: str) -> Any:
    """The ``TaggingModule`` of ``ckpt`` on the CPU in eval mode, without moving the global RNG (a probe
    is then initialised alike whether its encoder runs live or from a cache)."""
    from musictag.inference.loading import load_model

    with torch.random.fork_rng(devices=[]):
        return load_model(os.path.expanduser(ckpt), torch.device("cpu"))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointEncoder(nn.Module):
    """A musictag checkpoint's layers: waveform ``(B, 1, S)`` at ``sample_rate`` → ``(B, D', T)``.

    Registered as the ``checkpoint_encoder`` front end (``{name: checkpoint_encoder, ckpt: PATH,
    layers: [penultimate]}``); the interface ``musictag embed`` and ``layer_mix`` need is that of
    :class:`~musictag.stages.frontends.hf_encoder.PretrainedEncoder`.

    Args:
        ckpt: a musictag checkpoint (``musictag import-weights`` writes the published ones).
        layers: layer names of the checkpoint's network (:func:`~musictag.inference.features.layer_names`),
            one or a list, each of one frame shape; ``penultimate`` by default.
        mix: ``concat`` or ``weighted`` (:class:`~musictag.stages.frontends.hf_encoder.LayerMix`).
        time_pool: ``none`` keeps every frame; ``mean`` averages each layer over its frames.
        float16: round the layers to float16 as ``musictag embed`` stores them (live = cached).
        encoder_batch: chunks per forward of the checkpoint's network (default: the whole batch); ``1``
            gives features independent of the batch, bit for bit ``musictag embed --encoder-batch 1``.

    Raises:
        ConfigError: the data's sample rate or chunk length is not the checkpoint's, an unknown layer,
            layers of different frame shapes.
    """

    input_ndim = 2

    def __init__(
        self,
        in_shape: Sequence[int],
        sample_rate: int,
        ckpt: str,
        layers: str | Sequence[str] = "penultimate",
        mix: str = "concat",
        time_pool: str = "none",
        float16: bool = True,
        encoder_batch: int | None = None,
    ) -> None:
        super().__init__()
        if time_pool not in ("none", "mean"):
            raise ConfigError(f"unknown time_pool {time_pool!r}; use 'none' or 'mean'")
        if encoder_batch is not None and encoder_batch < 1:
            raise ConfigError(f"encoder_batch must be at least 1, got {encoder_batch}")
        self.path = str(ckpt)
        self.family = FAMILY
        self.finetune = False
        self.float16 = float16
        self.time_pool = time_pool
        self.encoder_batch = encoder_batch
        module = load_network(self.path)
        #: the checkpoint file's SHA-256: ``musictag embed`` resumes a cache only on the same file
        self.sha256 = file_sha256(os.path.expanduser(self.path))
        self.net = module.net
        self.source_arch = str(module.hparams.get("arch") or "custom")
        self.encoder_rate = int(self.net.sample_rate)
        self.sample_rate = int(sample_rate)
        self.input_len = int(self.net.input_len)
        if self.sample_rate != self.encoder_rate:
            raise ConfigError(
                f"the data is at {self.sample_rate} Hz but the checkpoint {ckpt} takes {self.encoder_rate} Hz: "
                f"set the data's sample_rate (and the model's) to {self.encoder_rate}"
            )
        n_samples = int(in_shape[-1])
        if n_samples != self.input_len:
            raise ConfigError(
                f"the checkpoint {ckpt} takes chunks of {self.input_len} samples, not {n_samples}: "
                f"set input_len and the data's chunk_len to {self.input_len}"
            )
        self.layers = check_layers(self.net, [layers] if isinstance(layers, str) else list(layers))
        self.net.requires_grad_(False)
        self.net.eval()
        with torch.no_grad():
            outputs = self._layer_frames(torch.zeros(1, n_samples))
        shapes = {name: tuple(out.shape[1:]) for name, out in zip(self.layers, outputs, strict=True)}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())
            raise ConfigError(
                f"layers of {ckpt} must have one frame shape (frames, width) to be stored and mixed "
                f"together; they have {listed}: choose layers of one shape, or one layer per cache"
            )
        frames, width = shapes[self.layers[0]]
        self.frame_shape = (1 if time_pool == "mean" else frames, width)
        self.mix = LayerMix(len(self.layers), mix)

    def train(self, mode: bool = True) -> CheckpointEncoder:
        super().train(mode)
        self.net.eval()  # frozen: batch norm keeps its statistics, no dropout
        return self

    def _layer_frames(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """Waveform chunks ``(B, S)`` → each chosen layer as frames ``(B, T, D)`` on ``wave``'s device."""
        found = network_features(self.net, wave.float(), self.layers)
        return [as_frames(name, found[name]).to(wave.device) for name in self.layers]

    def hidden_states(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, S)`` → the chosen layers ``(B, L, T, D)`` (float16 when ``float16``): what
        ``musictag embed`` stores."""
        if wave.ndim == 3:
            wave = wave.squeeze(1)
        parts = wave.split(self.encoder_batch) if self.encoder_batch else [wave]
        with torch.no_grad():
            chosen = [torch.stack(self._layer_frames(part), dim=1) for part in parts]
        stacked = torch.cat(chosen) if len(chosen) > 1 else chosen[0]
        if self.time_pool == "mean":
            stacked = stacked.mean(dim=2, keepdim=True)
        return to_float16(stacked) if self.float16 else stacked

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.mix(self.hidden_states(wave).float())
