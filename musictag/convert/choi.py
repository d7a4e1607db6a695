"""Choi et al.'s published Keras 1 taggers (music-auto_tagging-keras) as musictag checkpoints.

``MusicTaggerCNN`` (preset ``choi_cnn_keras``) and ``MusicTaggerCRNN`` (``choi_crnn_keras``) from their
Keras 1 HDF5 weight files, theano or tensorflow, read with ``h5py`` (the ``choi`` extra; never Keras).
What each Keras 1 tensor becomes, and why (each checked against the published scores or the other
backend's file in ``tests/models/test_choi_import.py``):

- ``conv*_W`` ``(out, in, 3, 3)``: theano convolves (flips the kernel), tensorflow and PyTorch
  cross-correlate, so a theano file's kernels are flipped on both spatial axes; a tensorflow file's are
  taken as they are. The backend is read from the file: tensorflow names its tensors ``...:0``.
- ``bn*_running_std``: Keras 1.1-1.2 (the CRNN) stored the *variance* there and normalised by
  ``sqrt(var + 1e-3)``; Keras 1.0.6 (the CNN) stored ``sqrt(var + 1e-6)``, a standard deviation, and
  divided by ``std + 1e-6``. Both become a PyTorch running variance for the preset's epsilon.
- ``gru*_{W,U,b}_{z,r,h}``: side by side in the order z, r, h (:mod:`musictag.stages.backends.keras_gru`).
- ``output_W`` ``(D, n_tags)``: transposed into a PyTorch Linear weight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from musictag.convert.musicnn import MSD_TAGS
from musictag.convert.writing import check_import_out, write_module
from musictag.guards import InputError, check_input_file
from musictag.models.tagger import Tagger
from musictag.stages.frontends.keras1 import ChoiKerasFrontEnd
from musictag.types import ConfigError, Pathlike

#: The two published models: ``--model`` → (preset, Keras version the weights need, running_std holds).
CHOI_MODELS = {
    "cnn": ("choi_cnn_keras", "Keras 1.0.6", "std"),
    "crnn": ("choi_crnn_keras", "Keras 1.1-1.2", "var"),
}

#: The Million Song Dataset's top-50 last.fm tags in the published models' output order: the same list,
#: in the same order, as the musicnn library's MSD models.
CHOI_TAGS = MSD_TAGS

#: The MP3 decoder delay (samples at 44.1 kHz) this machine's MP3 decoding (libsndfile's mpg123) has at
#: the start of a file and the original's (librosa 0.4 through audioread) did not: the shipped melgrams
#: match the MP3s decoded here only with these samples dropped, the length kept.
MP3_DECODER_DELAY = 529

#: Keras 1.0.6's BatchNormalization epsilon (the CNN's), added to the standard deviation it stored.
KERAS_106_EPS = 1e-6


def read_keras_h5(path: Pathlike) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """``{layer: {weight: array}}`` of a Keras 1 HDF5 weights file and its backend (theano/tensorflow).

    Weight names lose their layer prefix and TensorFlow's ``_1:0`` / ``:0`` suffixes (``conv1_W``
    stays ``conv1_W``). Refused with one line: a missing h5py, a file that is not HDF5, one without
    Keras' ``layer_names``.
    """
    try:
        import h5py
    except ImportError:
        raise InputError("reading Keras weights needs h5py: pip install 'musictag[choi]'") from None
    check_input_file(path, "--weights")
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise InputError(
            f"--weights {path}: not an HDF5 file h5py can read ({err}); give the .h5 weights"
        ) from None
    with file:
        if "layer_names" not in file.attrs:
            raise InputError(
                f"--weights {path}: not a Keras weights file (no layer_names); give the published .h5"
            )
        layers: dict[str, dict[str, np.ndarray]] = {}
        tensorflow = False
        for raw in file.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            group = file[name]
            weights = {}
            for key in group:
                tensorflow |= key.endswith(":0")
                clean = key.split(":")[0]
                clean = clean[:-2] if clean.endswith("_1") else clean
                weights[clean] = np.asarray(group[key][()])
            if weights:
                layers[name] = weights
    return layers, "tensorflow" if tensorflow else "theano"


def _running_var(std: np.ndarray, holds: str, eps: float) -> np.ndarray:
    """Keras' ``running_std`` as the running variance PyTorch's ``BatchNorm`` (epsilon ``eps``) needs to
    compute what Keras computed: ``var`` unchanged (Keras 1.1+: ``sqrt(var + eps)``); ``std`` such
    that ``sqrt(v + eps) = std + 1e-6`` (Keras 1.0.6 divided by ``std + epsilon``)."""
    if holds == "var":
        return std
    return (std.astype(np.float64) + KERAS_106_EPS) ** 2 - eps


def convert_choi_weights(
    layers: dict[str, dict[str, np.ndarray]], backend: str, model: str, net: Tagger
) -> dict[str, torch.Tensor]:
    """The Keras layers of ``model`` (``cnn``/``crnn``) as ``net.state_dict()`` entries, shape-checked."""
    holds = CHOI_MODELS[model][2]
    frontend = net.frontend
    if not isinstance(frontend, ChoiKerasFrontEnd):
        raise ConfigError(f"the network's front end is not choi_keras: not a {model} preset")
    eps = float(frontend.input_bn.eps)
    target = net.state_dict()
    out: dict[str, torch.Tensor] = {}

    def weight(layer: str, key: str) -> np.ndarray:
        try:
            return layers[layer][f"{layer}_{key}"]
        except KeyError:
            raise ConfigError(f"it has no {layer}_{key}: not the {model} weights?") from None

    def put(dst: str, value: np.ndarray) -> None:
        if tuple(value.shape) != tuple(target[dst].shape):
            raise ConfigError(
                f"{dst} is {tuple(target[dst].shape)} but the file gives {tuple(value.shape)}: not the {model} weights?"
            )
        if not np.isfinite(value).all():
            raise ConfigError(f"{dst} holds NaN or infinite values: a damaged file?")
        out[dst] = torch.from_numpy(np.ascontiguousarray(value)).to(target[dst].dtype)

    def batch_norm(layer: str, dst: str) -> None:
        put(f"{dst}.weight", weight(layer, "gamma"))
        put(f"{dst}.bias", weight(layer, "beta"))
        put(f"{dst}.running_mean", weight(layer, "running_mean"))
        put(f"{dst}.running_var", _running_var(weight(layer, "running_std"), holds, eps))
        out[f"{dst}.num_batches_tracked"] = target[f"{dst}.num_batches_tracked"]

    batch_norm("bn_0_freq", "frontend.input_bn")
    for i in range(len(frontend.convs)):
        kernel = weight(f"conv{i + 1}", "W")
        put(f"frontend.convs.{i}.weight", kernel[:, :, ::-1, ::-1] if backend == "theano" else kernel)
        put(f"frontend.convs.{i}.bias", weight(f"conv{i + 1}", "b"))
        batch_norm(f"bn{i + 1}", f"frontend.bns.{i}")
    gru_layers = getattr(net.backend, "layers", None)
    for i in range(len(gru_layers) if isinstance(gru_layers, torch.nn.ModuleList) else 0):
        gru = f"gru{i + 1}"
        for part, key in (("W", "kernel"), ("U", "recurrent_kernel"), ("b", "bias")):
            stacked = np.concatenate([weight(gru, f"{part}_{g}") for g in "zrh"], axis=-1)
            put(f"backend.layers.{i}.{key}", stacked)
    linear = [k for k in target if k.startswith("head.") and k.endswith(".weight")][-1]
    put(linear, weight("output", "W").T)
    put(linear[: -len("weight")] + "bias", weight("output", "b"))
    missing = sorted(set(target) - set(out))
    if missing:
        raise ConfigError(f"nothing in the file for {', '.join(missing)}")
    used = {"bn_0_freq", "output"} | {k for k in layers if k[:-1] in ("conv", "bn", "gru")}
    extra = sorted(set(layers) - used)
    if extra or len([k for k in layers if k.startswith("conv")]) != len(frontend.convs):
        raise ConfigError(f"its layers {', '.join(sorted(layers))} are not those of the {model}")
    return out


def import_choi(
    model: str, weights: Pathlike, out: Pathlike, force: bool = False, statistics: str | None = None
) -> Path:
    """Choi et al.'s published ``music_tagger_{cnn,crnn}_weights_{theano,tensorflow}.h5`` as a musictag
    checkpoint at ``out``: the original preprocessing as its representation (``musictag tag`` on an
    MP3 scores the centre 29.12 s), the 50 MSD tags, and the ``include_top=False`` vector as its
    ``penultimate`` features (256-d CNN, 32-d CRNN).

    ``statistics`` overrides where the batch normalisations take their statistics at inference
    (``running``, ``track``, ``batch``; see :class:`~musictag.stages.frontends.keras1.ChoiKerasFrontEnd`).
    """

    from musictag.models.presets import get_preset
    from musictag.training.module import TaggingModule

    if model not in CHOI_MODELS:
        raise ConfigError(f"unknown Choi model {model!r}; use {' or '.join(CHOI_MODELS)}")
    preset_name = CHOI_MODELS[model][0]
    out = check_import_out(out, [Path(weights)], force)
    layers, backend = read_keras_h5(weights)
    frontend = dict(cast(dict[str, Any], get_preset(preset_name).frontend))
    if statistics is not None:
        frontend["statistics"] = statistics
    module = TaggingModule(
        n_tags=len(CHOI_TAGS),
        arch=preset_name,
        frontend=frontend,
        tag_names=list(CHOI_TAGS),
        aggregate="mean",
        tag_chunks=1,
        tag_chunk_mode="centre",
        mp3_decoder_delay=MP3_DECODER_DELAY,
    )
    try:
        converted = convert_choi_weights(layers, backend, model, module.net)
    except ConfigError as err:
        raise ConfigError(f"--weights {weights} does not fit --model {model}: {err}") from None
    module.net.load_state_dict(converted)
    source = {
        "source": "music-auto_tagging-keras",
        "model": model,
        "backend": backend,
        "weights": str(weights),
    }
    return write_module(module, source, out)
