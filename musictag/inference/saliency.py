"""Which frames (and bins) of a chunk's representation made a tag fire: gradient saliency methods.

Every method takes a ``Tagger`` (``model.net``), a batch of waveform chunks ``(B, input_len)`` and the
indices of the tags to explain, and returns :class:`ChunkSaliency`: ``time`` ``(B, K, R)`` ≥ 0 on the
representation's ``R`` frames (its last axis: spectrogram frames, or samples for a waveform model) and,
where the method resolves frequency, ``frequency`` ``(B, K, F, R)`` on its ``F`` bins. The target of a
tag is its chunk *logit* (the evidence before the sigmoid/softmax squashes it).

Methods (:data:`METHODS`; :func:`default_method` picks ``attention`` where the back end has attention
weights, else ``gradcam``):

- ``gradcam`` (Selvaraju et al., 'Grad-CAM', 2017): on the front end's last feature map that still has
  a time axis (more than one frame; a front end that pools time to one frame is read before that
  pooling), ``ReLU(sum_c w_c A_c)`` with ``w_c`` the mean gradient of the tag's logit over the map.
  One forward pass and one backward pass per tag. A front end without any such map (one that
  flattens, as Pons et al.'s) is read on the representation itself, channels = its channels.
- ``integrated_gradients`` (Sundararajan et al., 'Axiomatic attribution for deep networks', 2017) on
  the representation, from the representation of a silent chunk (the input a model really sees when
  nothing plays, and what the deletion check puts in; for a log-mel the all-zeros array would be a loud
  flat spectrum, not an absence of sound) along a straight path, ``steps`` midpoints (default 32).
  ``frequency`` is the attribution summed over channels, ``time`` over channels and bins, each clipped
  at 0 (the evidence *for* the tag). Costs ``steps`` forward and ``steps × K`` backward passes a chunk.
- ``attention`` and ``rollout``: :mod:`musictag.inference.attention` (transformer back ends).

Plain autograd is all these need (a hook on one layer, ``torch.autograd.grad``): Captum would add a
dependency for two short functions, and its layer-attribution API would still need the feature map
found as here.

A map on a coarser time axis than the representation's (front-end or back-end frames) is spread
linearly: frame ``i`` of ``T`` covers representation frames ``[i*R/T, (i+1)*R/T)`` (likewise bins),
which is exact for pooling front ends and ignores the small offsets of unpadded convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from musictag.types import ConfigError

#: Every method's name, in the order messages list them.
METHODS = ("attention", "rollout", "gradcam", "integrated_gradients")
#: Methods that read a back end's attention weights (:mod:`musictag.inference.attention`).
ATTENTION_METHODS = ("attention", "rollout")


@dataclass
class ChunkSaliency:
    """Saliency of a batch of chunks: ``time`` ``(B, K, R)``, ``frequency`` ``(B, K, F, R)`` or None."""

    time: torch.Tensor
    frequency: torch.Tensor | None = None


def _attention_module() -> Any:
    import importlib

    try:  # the attention methods' module (issue 23's second part) may not be installed
        return importlib.import_module("musictag.inference.attention")
    except ModuleNotFoundError as err:
        if err.name != "musictag.inference.attention":
            raise
        return None


def has_attention(net: Any) -> bool:
    """Whether ``net``'s back end has attention weights (False while the attention module is missing)."""
    module = _attention_module()
    return bool(module is not None and module.has_attention(net))


def default_method(net: Any) -> str:
    """``attention`` where the back end has attention weights, else ``gradcam``."""
    return "attention" if has_attention(net) else "gradcam"


def check_method(net: Any, method: str | None, what: str = "method") -> str:
    """``method`` (None: :func:`default_method`) if ``net`` can be explained by it; else one line."""
    if method is None:
        return default_method(net)
    if method not in METHODS:
        raise ConfigError(f"{what}: unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method in ATTENTION_METHODS:
        if _attention_module() is None:
            raise ConfigError(
                f"{what} {method}: this installation has no attention methods "
                "(musictag.inference.attention); use gradcam or integrated_gradients"
            )
        if not has_attention(net):
            backend = type(getattr(net, "backend", None)).__name__
            raise ConfigError(
                f"{what} {method}: this model's back end ({backend}) has no attention weights; "
                "attention and rollout are for transformer back ends: use gradcam or integrated_gradients"
            )
    return method


def chunk_saliency(
    net: Any, wave: torch.Tensor, tags: Sequence[int], method: str, steps: int = 32
) -> ChunkSaliency:
    """Saliency of ``tags`` for chunks ``wave`` ``(B, input_len)`` by ``method`` (checked first)."""
    method = check_method(net, method)
    if method == "gradcam":
        return gradcam(net, wave, tags)
    if method == "integrated_gradients":
        return integrated_gradients(net, wave, tags, steps)
    with torch.no_grad():
        representation = net.representation(wave)
    frames = _attention_module().attention_saliency(net, representation, list(tags), method).float()
    if method == "rollout":
        # rollout says which frames of a chunk [CLS] reads, the same for every tag; weighted by the tag's
        # chunk probability, the chunks of a file where the tag is absent draw little, so the stitched
        # map says where in the file the tag comes from
        with torch.no_grad():
            probability = torch.sigmoid(net.from_representation(representation).float())[:, list(tags)]
        frames = frames * probability.unsqueeze(-1)
    return ChunkSaliency(spread(frames, representation.shape[-1]).clamp(min=0))


def spread(values: torch.Tensor, size: int, dim: int = -1) -> torch.Tensor:
    """``values`` with axis ``dim`` of length ``T`` spread to ``size``: entry ``i`` covers
    ``[i*size/T, (i+1)*size/T)`` (each target position takes the source entry it falls in)."""
    dim = dim % values.ndim
    length = values.shape[dim]
    if length == size:
        return values
    index = (torch.arange(size, device=values.device) * length) // size
    return values.index_select(dim, index)


def _feature_maps(frontend: nn.Module) -> tuple[list[torch.Tensor], list[Any]]:
    """Hooks that collect, in the order they are computed, every output of the front end's modules
    that is a feature map with a time axis: ``(B, C, T)`` or ``(B, C, F, T)`` with ``T > 1``."""
    maps: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.ndim in (3, 4) and output.shape[-1] > 1:
            maps.append(output)

    return maps, [module.register_forward_hook(keep) for module in frontend.modules()]


def gradcam(net: Any, wave: torch.Tensor, tags: Sequence[int]) -> ChunkSaliency:
    """Grad-CAM of ``tags`` on the front end's last feature map with a time axis (see the module)."""
    with torch.no_grad():
        representation = net.representation(wave)
    representation = representation.detach().requires_grad_(True)
    maps, handles = _feature_maps(net.frontend)
    try:
        with torch.enable_grad():
            logits = net.head(net.backend(net.frontend(representation)))
    finally:
        for handle in handles:
            handle.remove()
    feature = maps[-1] if maps else representation  # a flattening front end: the representation itself
    cams = []
    for position, tag in enumerate(tags):
        (grad,) = torch.autograd.grad(logits[:, tag].sum(), feature, retain_graph=position < len(tags) - 1)
        grad = _finite(grad)
        activation = feature.detach()
        if feature.ndim == 3:  # (B, C, T): one "band"
            activation, grad = activation.unsqueeze(2), grad.unsqueeze(2)
        weights = grad.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        cams.append(torch.relu((weights * activation).sum(dim=1)))  # (B, F', T')
    cam = torch.stack(cams, dim=1).float()  # (B, K, F', T')
    frames = representation.shape[-1]
    time = spread(cam.sum(dim=2), frames)
    frequency = None
    if representation.ndim == 4 and cam.shape[2] > 1:
        frequency = spread(spread(cam, representation.shape[2], dim=2), frames)
    return ChunkSaliency(time, frequency)


def _finite(grad: torch.Tensor) -> torch.Tensor:
    """``grad`` with NaN/Inf set to 0: a layer such as an RMS pool (``sqrt`` of a channel that is all
    zero after a ReLU) has an undefined gradient there, and that channel carries no evidence."""
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def silence_representation(net: Any, like: torch.Tensor) -> torch.Tensor:
    """The representation of a silent chunk, shaped as ``like`` (a batch of representations)."""
    with torch.no_grad():
        silent = net.representation(torch.zeros(1, int(net.input_len), device=like.device))
    return silent.to(like.dtype).expand_as(like)


def integrated_gradients(
    net: Any,
    wave: torch.Tensor,
    tags: Sequence[int],
    steps: int = 32,
    step_batch: int = 16,
    baseline: str = "silence",
) -> ChunkSaliency:
    """Integrated gradients of ``tags`` on the representation, from silence (see the module):
    ``steps`` midpoint samples of the path, ``step_batch`` of them through the network at a time."""
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    with torch.no_grad():
        representation = net.representation(wave)
    if baseline not in ("silence", "zeros"):
        raise ConfigError(f"baseline must be 'silence' or 'zeros', got {baseline!r}")
    start = (
        silence_representation(net, representation)
        if baseline == "silence"
        else torch.zeros_like(representation)
    )
    delta = representation - start
    alphas = (torch.arange(steps, dtype=representation.dtype, device=wave.device) + 0.5) / steps
    times, freqs = [], []
    for chunk in range(representation.shape[0]):
        total = torch.zeros(len(tags), *representation.shape[1:], device=wave.device)
        for first in range(0, steps, step_batch):
            alpha = alphas[first : first + step_batch].view(-1, *[1] * (representation.ndim - 1))
            path = (start[chunk] + alpha * delta[chunk]).detach().requires_grad_(True)
            with torch.enable_grad():
                logits = net.from_representation(path)
                for position, tag in enumerate(tags):
                    (grad,) = torch.autograd.grad(
                        logits[:, tag].sum(), path, retain_graph=position < len(tags) - 1
                    )
                    total[position] += _finite(grad).sum(dim=0).float()
        attribution = total / steps * delta[chunk].float()  # (K, C, ...) by the Riemann midpoint rule
        if attribution.ndim == 4:  # (K, C, F, R)
            per_bin = attribution.sum(dim=1)
            freqs.append(per_bin.clamp(min=0))
            times.append(per_bin.sum(dim=1).clamp(min=0))
        else:  # (K, C, R): a waveform
            times.append(attribution.sum(dim=1).clamp(min=0))
    return ChunkSaliency(torch.stack(times), torch.stack(freqs) if freqs else None)
