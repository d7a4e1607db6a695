"""Where a Transformer back end looks: tag-wise attention contribution and attention rollout.

Both methods read the attention of the back end's Transformer encoder
(:class:`~musictag.stages.backends.sequence.TransformerBackEnd`, the back end of the ``transformer`` and
``cnnsa`` presets) and give, per chunk and tag, a relevance ``>= 0`` for each frame of the front end's
output time axis ([CLS] excluded): ``(chunks, len(tags), T_seq)``.

``attention`` — the tag-wise contribution of Won, Chun & Serra, 'Toward interpretable music tagging
with self-attention' (2019), as their visualisation code computes it: the last encoder layer's attention
(every head) is forced onto one frame ``t``, the rest of the network runs unchanged, and the contribution
of ``t`` to a tag is the tag's probability (sigmoid of its logit) that the network then gives. It answers
"what would the model say about this tag if the last layer could see only frame ``t``". The layers before
the last run as usual, so frame ``t``'s state already mixes the other frames (as in the paper). What
differs from the paper: (1) their loop runs the whole network once per frame; here the forced layer is
evaluated for every frame at once in closed form (one-hot attention makes [CLS]'s attention output the
output projection of frame ``t``'s value vector), which equals the loop (a test checks it against runs
with an attention mask that leaves [CLS] only frame ``t``); (2) only the [CLS] row is forced, because
only [CLS] is read out (their code forces every query row of that layer, which changes nothing
downstream); (3) [CLS] itself is not a candidate frame; (4) it is computed in eval mode (no dropout).
The values are probabilities, not shares: a frame that does not matter keeps the tag's baseline
probability rather than zero, so compare frames within a row (or subtract the row's minimum to draw).
The Music Tagging Transformer paper (Won, Choi & Serra 2021) uses the same back end and publishes no
separate method; the same computation applies to it.

``rollout`` — attention rollout (Abnar & Zuidema, 'Quantifying attention flow in Transformers', 2020):
each layer's attention averaged over heads, half of it replaced by the identity (the residual
connection: ``0.5·A + 0.5·I``, rows still sum to 1), the layers' matrices multiplied from the first to
the last, and the [CLS] row read at the frames. It is how much of [CLS]'s final state flows from each
frame, and it does not depend on the tag: every tag gets the same row.

Neither method changes the model: the encoder is re-run layer by layer through its own modules (the
same calls :class:`torch.nn.TransformerEncoder` makes), attention weights are asked of each layer's
``self_attn`` with ``need_weights=True``; no hook is registered and every module's train/eval mode is
restored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import torch
from torch import nn

from musictag.stages.backends.sequence import TransformerBackEnd

#: The methods of :func:`attention_saliency`.
METHODS = ("attention", "rollout")


def has_attention(tagger: object) -> bool:
    """Whether the tagger's back end has attention weights (a Transformer encoder read at [CLS])."""
    return _attention_backend(tagger) is not None


def attention_saliency(
    tagger: object, representation: torch.Tensor, tags: Sequence[int], method: str
) -> torch.Tensor:
    """Relevance of each back-end frame for each tag: ``(chunks, len(tags), T_seq)``, ``>= 0``.

    Args:
        tagger: a :class:`~musictag.models.tagger.Tagger` whose back end is a Transformer
            (:func:`has_attention`), or a TaggingModule / AudioTagger holding one.
        representation: ``tagger.representation(wave)`` of a batch of chunks.
        tags: tag indices (the rows of the result, in this order).
        method: ``"attention"`` (Won et al.'s tag-wise contribution) or ``"rollout"``.
    """
    net = _network(tagger)
    if method not in METHODS:
        raise ValueError(f"unknown attention method {method!r}; choose one of: {', '.join(METHODS)}")
    backend = _attention_backend(net)
    if backend is None:
        name = type(getattr(net, "backend", net)).__name__
        raise ValueError(f"the {name} back end has no attention weights: use another method (e.g. gradcam)")
    frontend, head = cast(nn.Module, net.frontend), cast(nn.Module, net.head)
    n_tags = int(cast(int, net.n_tags))
    tag_list = [int(t) for t in tags]
    bad = [t for t in tag_list if not 0 <= t < n_tags]
    if bad or not tag_list:
        raise ValueError(f"tags must be indices in 0..{n_tags - 1} (at least one), got {list(tags)}")
    with _eval_mode(net), torch.no_grad():
        states, weights = encoder_states(backend, frontend(representation))
        if method == "rollout":
            row = rollout(weights)[:, 0, 1:]
            return row.unsqueeze(1).expand(-1, len(tag_list), -1).clone()
        probs = forced_attention_probabilities(backend, head, states[-2])  # (chunks, T, n_tags)
        return probs[..., tag_list].transpose(1, 2).contiguous()


def encoder_states(
    backend: TransformerBackEnd, features: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The encoder re-run layer by layer on the front end's ``features``.

    Returns the states ``[input, after layer 1, ..., after layer L]``, each ``(B, 1 + T, d_model)``
    (the last one after the encoder's final norm, if it has one), and each layer's attention weights
    ``(B, heads, 1 + T, 1 + T)`` (rows: queries, [CLS] first)."""
    x = backend.embed(features)
    states, weights = [x], []
    for layer in _layers(backend):
        attn_input = layer.norm1(x) if layer.norm_first else x
        _, attn = layer.self_attn(
            attn_input, attn_input, attn_input, need_weights=True, average_attn_weights=False
        )
        weights.append(attn)
        x = layer(x)
        states.append(x)
    if backend.encoder.norm is not None:
        states[-1] = backend.encoder.norm(states[-1])
    return states, weights


def rollout(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout of per-layer weights ``(B, heads, S, S)`` → ``(B, S, S)``: row ``i`` is how
    much of token ``i``'s last state flows from each input token (rows sum to 1)."""
    flow: torch.Tensor | None = None
    for attn in weights:
        mixed = attn.mean(dim=1)
        eye = torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
        step = 0.5 * mixed + 0.5 * eye
        step = step / step.sum(dim=-1, keepdim=True)
        flow = step if flow is None else step @ flow
    if flow is None:
        raise ValueError("attention rollout needs at least one encoder layer")
    return flow


def forced_attention_probabilities(
    backend: TransformerBackEnd, head: nn.Module, last_input: torch.Tensor
) -> torch.Tensor:
    """Tag probabilities when the last layer's [CLS] attends only to frame ``t``, for every ``t``:
    ``last_input`` (the last layer's input, ``(B, 1 + T, d)``) → ``(B, T, n_tags)``; ``head`` is the
    tagger's head after ``backend``.

    With every head's attention one-hot at ``t``, [CLS]'s attention output is the output projection of
    frame ``t``'s value vector; the rest of the layer (residual, norms, feed-forward) is applied to that
    as :class:`torch.nn.TransformerEncoderLayer` does."""
    layer = _layers(backend)[-1]
    attn = layer.self_attn
    d_model = last_input.shape[-1]
    cls_state = last_input[:, :1]  # (B, 1, d)
    attn_input = layer.norm1(last_input) if layer.norm_first else last_input
    values = nn.functional.linear(
        attn_input[:, 1:],
        attn.in_proj_weight[2 * d_model :] if attn.in_proj_weight is not None else attn.v_proj_weight,
        attn.in_proj_bias[2 * d_model :] if attn.in_proj_bias is not None else None,
    )
    attended = attn.out_proj(values)  # (B, T, d): [CLS]'s attention output for each forced frame
    if layer.norm_first:
        hidden = cls_state + attended
        out = hidden + _feed_forward(layer, layer.norm2(hidden))
    else:
        hidden = layer.norm1(cls_state + attended)
        out = layer.norm2(hidden + _feed_forward(layer, hidden))
    if backend.encoder.norm is not None:
        out = backend.encoder.norm(out)
    batch, frames = out.shape[:2]
    logits = head(backend.readout(out).reshape(batch * frames, d_model))
    return torch.sigmoid(logits).reshape(batch, frames, -1)


def _feed_forward(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    return layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))


def _layers(backend: TransformerBackEnd) -> list[nn.TransformerEncoderLayer]:
    return cast(list[nn.TransformerEncoderLayer], list(backend.encoder.layers))


def _attention_backend(tagger: object) -> TransformerBackEnd | None:
    backend = getattr(_network(tagger), "backend", None)
    return backend if isinstance(backend, TransformerBackEnd) else None


def _network(tagger: object) -> nn.Module:
    """The :class:`~musictag.models.tagger.Tagger` itself, the one a TaggingModule holds as ``.net``,
    or the one inside an :class:`~musictag.inference.api.AudioTagger` (``.model.net``)."""
    for attr in ("model", "net"):
        inner = getattr(tagger, attr, None)
        if isinstance(inner, nn.Module):
            tagger = inner
    if not isinstance(tagger, nn.Module):
        raise TypeError(
            f"expected a tagger (a Tagger, TaggingModule or AudioTagger), got {type(tagger).__name__}"
        )
    return tagger


@contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    """Eval mode inside; every submodule's own train/eval flag restored after."""
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
