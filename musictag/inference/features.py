"""What a network computes on the way to its tags: the output of each stage, chunk by chunk.

Layer names (:func:`layer_names`) are those of the composed network, for every checkpoint (trained here,
imported, a probe): ``representation``, ``frontend``, ``backend`` (the stages' outputs), ``head.<i>``
(each layer of an MLP head, in order; the last is the logits) and ``penultimate`` (the input of the
head's last linear layer: the vector the tags are read from). ``musictag features`` (:mod:`musictag.cli.
features`) and ``musictag.load(ckpt).features(path)`` write and return them.

A network built as a published library builds its model also has that library's names, declared by its
stages (:mod:`musictag.stages.library_layers`; :func:`library_layers`): the musicnn library's MusiCNN
(preset ``musicnn_tf``, its ``MTT_musicnn`` and ``MSD_musicnn``) ``timbral``, ``temporal``, ``cnn1``-
``cnn3``, ``mean_pool``, ``max_pool`` (its ``penultimate`` is the generic one) and its VGG (``musicnn_vgg``)
``pool1``-``pool5``, in the library's axis order, and per file in the layout of its ``extractor(...,
extract_features=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musictag.chunks import ChunkPlan, cut_chunks
from musictag.guards import InputError
from musictag.inference.tagging import file_chunks
from musictag.stages.library_layers import LibraryLayer

STAGES = ("representation", "frontend", "backend")
#: The layer ``musictag features`` and :meth:`~musictag.inference.api.AudioTagger.features` give unasked.
DEFAULT_LAYERS = ("penultimate",)


def _head_layers(net: nn.Module) -> list[nn.Module]:
    """The layers of the network's head in order (an MLP head's ``Sequential``), or none."""
    layers = getattr(net.head, "layers", None)
    return list(layers.children()) if isinstance(layers, nn.Sequential) else []


def _last_linear(net: nn.Module) -> nn.Linear | None:
    head: nn.Module = net.head  # type: ignore[assignment]
    linears = [module for module in head.modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


def library_layers(net: nn.Module) -> dict[str, LibraryLayer]:
    """The library names ``net``'s stages declare (``library_layers()``), sources as paths of ``net``."""
    found: dict[str, LibraryLayer] = {}
    for stage in (*STAGES, "head"):
        declare = getattr(getattr(net, stage), "library_layers", None)
        for name, layer in (declare() if callable(declare) else {}).items():
            sources = tuple(f"{stage}.{path}" if path else stage for path in layer.sources)
            found[name] = replace(layer, sources=sources)
    return found


def layer_names(net: nn.Module) -> list[str]:
    """Every layer name :func:`network_features` takes for ``net`` (a ``Tagger``): the composed network's
    in network order, then the library's (:func:`library_layers`) in the library's order."""
    names = [*STAGES, *(f"head.{i}" for i in range(len(_head_layers(net))))]
    names += ["penultimate"] if _last_linear(net) is not None else []
    return names + [name for name in library_layers(net) if name not in names]


def check_layers(net: nn.Module, layers: Sequence[str], what: str = "layers") -> list[str]:
    """``layers`` without repeats, each one of :func:`layer_names`; else one line listing them."""
    if isinstance(layers, str):
        layers = [layers]
    known = layer_names(net)
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        given = f"unknown layer(s) {', '.join(map(repr, unknown))}" if unknown else "no layer given"
        raise InputError(f"{what}: {given}; this model has {', '.join(known)}")
    return list(dict.fromkeys(layers))


def network_features(net: nn.Module, wave: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` (see :func:`layer_names`) for waveform chunks ``(B, input_len)``:
    ``{name: (B, ...)}`` float32 on the CPU, from one forward pass of ``net`` (a ``Tagger``). A library
    name's ``(...)`` is one patch's array as that library's extractor returns it for a one-patch file."""
    layers = check_layers(net, layers)
    heads = _head_layers(net)
    library = library_layers(net)
    caught: dict[str, torch.Tensor] = {}
    tapped: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def keep(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            caught[name] = output

        return hook

    def tap(name: str, index: int) -> Any:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            tapped[name][index] = (inputs[0], output)

        return hook

    handles = []
    try:
        for name in layers:
            if name in STAGES:
                handles.append(getattr(net, name).register_forward_hook(keep(name)))
            elif name == "penultimate":
                last = _last_linear(net)
                assert last is not None  # check_layers lists penultimate only with a linear layer

                def before(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
                    caught["penultimate"] = inputs[0]

                handles.append(last.register_forward_pre_hook(before))
            elif name in library:
                sources = library[name].sources
                tapped[name] = [(torch.empty(0), torch.empty(0))] * len(sources)
                for index, path in enumerate(sources):
                    handles.append(net.get_submodule(path).register_forward_hook(tap(name, index)))
            else:
                handles.append(heads[int(name.split(".")[1])].register_forward_hook(keep(name)))
        with torch.no_grad():  # not inference_mode: the features are plain tensors a caller may train on
            net(wave)
            for name, pairs in tapped.items():
                caught[name] = library[name].value(pairs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: caught[name].detach().float().cpu() for name in layers}


def file_features(
    model: Any, path: Path, plan: ChunkPlan, layers: Sequence[str], batch_size: int
) -> dict[str, np.ndarray]:
    """One file's features: each of ``layers`` as ``(chunks, ...)`` float32 in chunk order, and
    ``start_s`` (each chunk's start in seconds, as ``musictag tag --timeline`` reports it). A library
    name (:func:`library_layers`) is laid out as that library's extractor lays out a file's: the musicnn
    library's frame-wise layers as ``(chunks·T, ...)``, the chunks one after the other along time.

    The file is cut as ``tag`` cuts it (``plan``, capped at what the file holds).

    Raises:
        AudioError: the file cannot be read, holds no audio or NaN/Inf samples.
    """
    item = file_chunks(model, path, plan)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for first in range(0, len(item), batch_size):  # cut a batch at a time: memory bounded by the batch
        starts = item.cut_starts[first : first + batch_size]
        batch = torch.from_numpy(cut_chunks(item.audio, starts, item.chunk_len)).to(model.device)
        for name, value in network_features(model.net, batch, layers).items():
            parts[name].append(value)
    library = library_layers(model.net)
    arrays = {}
    for name, values in parts.items():
        array = torch.cat(values).numpy()
        if name in library and library[name].frames:  # the extractor's concatenation of squeezed patches
            array = array.reshape(-1, *array.shape[2:])
        arrays[name] = array
    arrays["start_s"] = (item.starts / item.rate).astype(np.float64)
    return arrays
