"""Published weights into musictag networks.

sota-music-tagging-models (Won et al. 2020) saves plain state_dicts whose parameters come in the same
order and shapes as the matching presets' (its ``spec.*`` buffers, the STFT window and mel filterbank,
are recomputed here). :func:`convert_sota_state_dict` maps them by position, checking every shape and
that the stored mel filterbank equals the one the preset computes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from musictag.models.tagger import Tagger
from musictag.registry import ConfigError

#: sota-music-tagging-models' model names → musictag presets.
SOTA_ARCHITECTURES = {
    "fcn": "fcn",
    "crnn": "crnn",
    "musicnn": "musicnn",
    "short": "short_chunk",
    "short_chunk": "short_chunk",
    "short_res": "short_chunk_res",
    "short_chunk_res": "short_chunk_res",
    "hcnn": "harmonic_cnn",
    "harmonic_cnn": "harmonic_cnn",
    "sample": "sample_cnn",
    "sample_cnn": "sample_cnn",
    "se": "sample_cnn_se",
    "sample_cnn_se": "sample_cnn_se",
}


def sota_preset(arch: str, dataset: str) -> str:
    """The preset for a sota model name on a dataset (the MSD MusiCNN is the wider variant)."""
    try:
        preset = SOTA_ARCHITECTURES[arch]
    except KeyError:
        raise ConfigError(
            f"unknown sota-music-tagging-models architecture {arch!r}; known: {', '.join(sorted(SOTA_ARCHITECTURES))}"
        ) from None
    return "musicnn_msd" if preset == "musicnn" and dataset == "msd" else preset


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state_dict from disk, loaded with ``weights_only=True`` (nothing is unpickled beyond tensors)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises several kinds for a bad file)
        raise ConfigError(f"cannot read weights from {path}: {str(err).splitlines()[0]}") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} does not hold a state_dict of tensors")
    return dict(state)


def convert_sota_state_dict(state_dict: Mapping[str, torch.Tensor], net: Tagger) -> dict[str, torch.Tensor]:
    """A sota-music-tagging-models state_dict as ``net.state_dict()`` keys (positional, shape-checked)."""
    stored_fb = state_dict.get("spec.mel_scale.fb")
    if stored_fb is not None:
        ours = getattr(net.representation, "fb", None)
        if (
            ours is None
            or ours.shape != stored_fb.shape
            or not torch.allclose(ours, stored_fb.float(), atol=1e-4)
        ):
            raise ConfigError(
                "the checkpoint's mel filterbank differs from the preset's: wrong architecture or settings"
            )
    source = [(k, v) for k, v in state_dict.items() if not k.startswith("spec.")]
    target = list(net.state_dict().items())
    if len(source) != len(target):
        raise ConfigError(
            f"the checkpoint has {len(source)} tensors but the network has {len(target)}: wrong architecture?"
        )
    converted = {}
    for (src_key, src), (dst_key, dst) in zip(source, target, strict=True):
        if src.shape != dst.shape:
            raise ConfigError(
                f"checkpoint tensor {src_key} {tuple(src.shape)} does not fit {dst_key} {tuple(dst.shape)}: "
                "wrong architecture or number of tags?"
            )
        converted[dst_key] = src.to(dst.dtype)
    return converted
