"""Published weights into musictag networks (the musicnn library's: :mod:`musictag.convert.musicnn`).

sota-music-tagging-models (Won et al. 2020) saves plain state_dicts whose parameters come in the same
order and shapes as the matching presets' (its ``spec.*`` buffers, the STFT window and mel filterbank,
are recomputed here). :func:`convert_sota_state_dict` maps them by position, checking every shape and
that the stored mel filterbank equals the one the preset computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from musictag.convert.writing import check_import_out, write_module
from musictag.guards import InputError, check_input_file
from musictag.models.tagger import Tagger
from musictag.stages.registry import ConfigError
from musictag.types import Pathlike

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


#: Keys of a Lightning checkpoint (a musictag one, say) that a published weights file does not have.
LIGHTNING_KEYS = ("pytorch-lightning_version", "hyper_parameters", "musictag_source", "optimizer_states")


def load_state_dict_file(path: Pathlike) -> dict[str, torch.Tensor]:
    """A plain state_dict from disk, loaded with ``weights_only=True`` (nothing is unpickled beyond tensors).

    Refused, each with one line: a path that is not a regular file (checked by ``stat``, so a named pipe
    is never opened), a file torch cannot read, one holding other objects, and a Lightning checkpoint
    (its weights would be mapped by position onto the sota network and carry the sota tags: a musictag
    checkpoint is used as it is).
    """
    from musictag.training.checkpoints import read_torch_file

    if Path(path).is_dir():
        raise InputError(
            f"--weights {path}: is a folder, not a file; give the published best_model.pth "
            "(a musicnn model's folder is imported with --source musicnn --model MODEL)"
        )
    check_input_file(path, "--weights")
    state = read_torch_file(path, "weights")
    if isinstance(state, Mapping) and any(key in state for key in LIGHTNING_KEYS):
        raise InputError(
            f"--weights {path} is a Lightning checkpoint, not a sota-music-tagging-models weights file; "
            "a musictag checkpoint needs no import: use it as it is (musictag tag --ckpt FILE)"
        )
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if (
        not isinstance(state, Mapping)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise InputError(
            f"--weights {path} does not hold a state_dict of tensors (name → tensor); give the published "
            "best_model.pth"
        )
    return dict(state)


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


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
        # a batch norm's weight and bias (and running mean and variance) have one shape: by position
        # alone, tensors stored in another order would be swapped without a word
        if _leaf(src_key) != _leaf(dst_key):
            raise ConfigError(
                f"checkpoint tensor {src_key} stands where the network has {dst_key}: "
                "another architecture, or tensors stored in another order"
            )
        if src.is_floating_point() != dst.is_floating_point():
            raise ConfigError(f"checkpoint tensor {src_key} is {src.dtype} where {dst_key} is {dst.dtype}")
        if src.is_floating_point() and not bool(torch.isfinite(src).all()):
            raise ConfigError(f"checkpoint tensor {src_key} holds NaN or infinite values: a damaged file?")
        converted[dst_key] = src.to(dst.dtype)
    return converted


def _output_width(state: Mapping[str, torch.Tensor]) -> int | None:
    """How many tags a sota state dict scores: the length of its last tensor, the output layer's bias
    (every published architecture ends in a linear layer); None if the last tensor is not one."""
    tensors = [v for k, v in state.items() if not k.startswith("spec.")]
    if not tensors or tensors[-1].ndim != 1:
        return None
    return int(tensors[-1].shape[0])


def import_sota(arch: str, dataset: str, weights: Pathlike, out: Pathlike, force: bool = False) -> Path:
    """A sota-music-tagging-models ``best_model.pth`` as a musictag checkpoint at ``out``.

    The checkpoint carries the original's tag order and evaluation setting (16 chunks placed by its
    rule, mean of the probabilities); it works with ``musictag tag``, ``musictag test`` and as the
    ``pretrained`` weights of a ``fit``. ``out`` is checked before anything is loaded: never the
    input, an existing file only with ``force`` (:func:`~musictag.convert.writing.check_import_out`).

    What is checked of the ``.pth``: every tensor's name (its last part) and shape against the
    architecture, in order, the output width against the dataset's tag count, the stored mel filterbank.
    What cannot be: the corpus it was trained on beyond its width (all three have 50 tags), so a model
    trained on MSD given as ``--dataset mtat`` imports under MTAT tag names; the file holds weights only.
    """

    from musictag.convert.sota_tags import SOTA_TAGS
    from musictag.training.module import TaggingModule

    if dataset not in SOTA_TAGS:
        raise ConfigError(f"unknown dataset {dataset!r}; the published models are for {', '.join(SOTA_TAGS)}")
    preset = sota_preset(arch, dataset)
    out = check_import_out(out, [Path(weights)], force)
    state = load_state_dict_file(weights)
    tags = list(SOTA_TAGS[dataset])
    module = TaggingModule(
        n_tags=len(tags),
        arch=preset,
        tag_names=tags,
        aggregate="mean",
        tag_chunks=16,
        tag_chunk_mode="sota",
    )
    width = _output_width(state)
    if width is not None and width != len(tags):
        raise ConfigError(
            f"--weights {weights} has {width} outputs but --dataset {dataset} has {len(tags)} tags: "
            "a model of another tag set; give the weights published for this dataset"
        )
    try:
        converted = convert_sota_state_dict(state, module.net)
    except ConfigError as err:
        raise ConfigError(
            f"--weights {weights} does not fit --arch {arch} (preset {preset}): {err}"
        ) from None
    module.net.load_state_dict(converted)
    source = {
        "source": "sota-music-tagging-models",
        "arch": arch,
        "dataset": dataset,
        "weights": str(weights),
    }
    return write_module(module, source, out)
