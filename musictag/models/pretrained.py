"""Published weights into musictag networks (the musicnn library's: :mod:`musictag.models.musicnn_import`).

sota-music-tagging-models (Won et al. 2020) saves plain state_dicts whose parameters come in the same
order and shapes as the matching presets' (its ``spec.*`` buffers, the STFT window and mel filterbank,
are recomputed here). :func:`convert_sota_state_dict` maps them by position, checking every shape and
that the stored mel filterbank equals the one the preset computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from musictag.files import atomic_write
from musictag.models.tagger import Tagger
from musictag.registry import ConfigError
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


def load_state_dict_file(path: Pathlike) -> dict[str, torch.Tensor]:
    """A plain state_dict from disk, loaded with ``weights_only=True`` (nothing is unpickled beyond tensors)."""
    from musictag.module import read_torch_file

    state = read_torch_file(path, "weights file")
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


def import_sota(arch: str, dataset: str, weights: Pathlike, out: Pathlike) -> Path:
    """A sota-music-tagging-models ``best_model.pth`` as a musictag checkpoint at ``out``.

    The checkpoint carries the original's tag order and evaluation setting (16 chunks placed by its
    rule, mean of the probabilities); it works with ``musictag tag``, ``musictag test`` and as the
    ``pretrained`` weights of a ``fit``.
    """
    import lightning

    from musictag.models.sota_tags import SOTA_TAGS
    from musictag.module import TaggingModule

    if dataset not in SOTA_TAGS:
        raise ConfigError(f"unknown dataset {dataset!r}; the published models are for {', '.join(SOTA_TAGS)}")
    tags = list(SOTA_TAGS[dataset])
    module = TaggingModule(
        n_tags=len(tags),
        arch=sota_preset(arch, dataset),
        tag_names=tags,
        aggregate="mean",
        tag_chunks=16,
        tag_chunk_mode="sota",
    )
    out = Path(out)
    if out.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; give the checkpoint file to write, e.g. {out / 'model.ckpt'}"
        )
    module.net.load_state_dict(convert_sota_state_dict(load_state_dict_file(weights), module.net))
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "musictag_source": {
            "source": "sota-music-tagging-models",
            "arch": arch,
            "dataset": dataset,
            "weights": str(weights),
        },
    }
    with atomic_write(out) as tmp:
        torch.save(checkpoint, tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """``musictag import-pretrained --source sota --arch ARCH --dataset DATASET --weights PTH --out CKPT``,
    or ``--source musicnn --model MODEL --weights DIR --out CKPT``."""
    import argparse
    import sys

    from musictag.models.musicnn_import import MUSICNN_MODELS, import_musicnn

    parser = argparse.ArgumentParser(prog="musictag import-pretrained", description=main.__doc__)
    parser.add_argument(
        "--source",
        choices=["sota", "musicnn"],
        default="sota",
        help="sota-music-tagging-models (Won et al. 2020), or the musicnn library (pip install musicnn)",
    )
    parser.add_argument("--arch", help=f"sota: one of {', '.join(sorted(SOTA_ARCHITECTURES))}")
    parser.add_argument("--dataset", choices=["mtat", "msd", "jamendo"], help="sota: the training corpus")
    parser.add_argument(
        "--model", choices=list(MUSICNN_MODELS), help="musicnn: the model (its folder in the musicnn wheel)"
    )
    parser.add_argument(
        "--weights", required=True, help="sota: the published best_model.pth; musicnn: the model's folder"
    )
    parser.add_argument("--out", required=True, help="the musictag checkpoint to write")
    args = parser.parse_args(argv)
    if args.source == "sota" and not (args.arch and args.dataset):
        parser.error("--source sota needs --arch and --dataset")
    if args.source == "musicnn" and not args.model:
        parser.error(f"--source musicnn needs --model ({', '.join(MUSICNN_MODELS)})")
    try:
        if args.source == "musicnn":
            path = import_musicnn(args.model, args.weights, args.out)
        else:
            path = import_sota(args.arch, args.dataset, args.weights, args.out)
    except ConfigError as err:
        print(f"musictag import-pretrained: error: {err}", file=sys.stderr)
        return 2
    print(f"musictag import-pretrained: wrote {path}")
    return 0
