"""The musicnn library's published models (``pip install musicnn``) as musictag networks.

The musicnn wheel (version 0.1.0) ships four TensorFlow 1 checkpoints, ``musicnn/<model>/`` with
``.index`` and ``.data-00000-of-00001``: ``MTT_musicnn`` and ``MSD_musicnn`` (preset ``musicnn_tf``),
``MTT_vgg`` and ``MSD_vgg`` (preset ``musicnn_vgg``). :func:`convert_musicnn` maps every tensor by its
TensorFlow name onto the preset's ``state_dict``, read with :class:`~musictag.convert.tf_checkpoint.TFCheckpoint`
(no TensorFlow needed), checking each shape:

- TensorFlow's input is ``(time, freq)`` with conv kernels ``(height=time, width=freq, in, out)``;
  musictag's spectrograms are ``(freq, time)``, so a kernel becomes ``(out, in, freq, time)`` and the
  1-D convs over the mid-end's features ``(out, in, time)``; dense kernels ``(in, out)`` are transposed.
- TensorFlow's ``batch_normalization`` adds ``epsilon = 1e-3`` to the moving variance, PyTorch's 1e-5:
  the imported running variance holds ``var + 1e-3 - 1e-5``, so inference is exact.
- MusiCNN's temporal pooling stacks max and mean per feature (``[max_0, mean_0, max_1, …]``) where the
  ``musicnn_1d`` back end concatenates all maxima, then all means; the VGG flattens ``(time, freq,
  channels)`` where musictag flattens ``(channels, freq, time)``: the following layer's inputs are
  permuted to match.

Before converting, :func:`import_musicnn` checks that the folder is the model asked for (its tensor set
and its training run's ``config.json``: MTT and MSD weights are otherwise indistinguishable) and every
tensor's CRC-32C, so neither another model's folder nor a damaged copy imports as a different tagger.

The imported checkpoint carries the library's tags (``configuration.py``'s order) and its chunking:
non-overlapping 187-frame patches of the whole file's spectrogram, song score = mean of the patch
probabilities (chunk mode ``patches``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from musictag.convert.tf_checkpoint import CheckpointError, TFCheckpoint
from musictag.convert.writing import check_import_out, folder_files, write_module
from musictag.guards import InputError, check_input_file, file_type_problem
from musictag.models.tagger import Tagger
from musictag.stages.registry import ConfigError
from musictag.types import Pathlike

#: The library's MagnaTagATune tags, in the order of its models' outputs.
MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal",
    "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
    "choral",
)  # fmt: skip
#: The library's Million Song Dataset tags, in the order of its models' outputs.
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk",
    "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar",
    "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro",
    "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip

#: The wheel's model folders → (musictag preset, tags).
MUSICNN_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "MTT_musicnn": ("musicnn_tf", MTT_TAGS),
    "MSD_musicnn": ("musicnn_tf", MSD_TAGS),
    "MTT_vgg": ("musicnn_vgg", MTT_TAGS),
    "MSD_vgg": ("musicnn_vgg", MSD_TAGS),
}

TF_BN_EPSILON = 1e-3
#: Checkpoint entries that are optimiser state, not the model's.
OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_NAMES = ("beta1_power", "beta2_power", "global_step")


def _tf_names(prefix: str, count: int, first: int = 0) -> list[str]:
    """TensorFlow's automatic layer names: ``conv2d``, ``conv2d_1``, …"""
    return [prefix if i == 0 else f"{prefix}_{i}" for i in range(first, first + count)]


# TF tensor → musictag tensor, and the TF shape a musictag shape comes from
def _conv2d(kernel: np.ndarray) -> np.ndarray:  # (time, freq, in, out) → (out, in, freq, time)
    return kernel.transpose(3, 2, 1, 0)


def _conv2d_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[3], shape[2], shape[1], shape[0])


def _conv1d(kernel: np.ndarray) -> np.ndarray:  # (time, in, 1, out) → (out, in, time)
    return kernel[:, :, 0, :].transpose(2, 1, 0)


def _conv1d_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[1], 1, shape[0])


def _same(array: np.ndarray) -> np.ndarray:
    return array


def _same_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


Rule = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[tuple[int, ...]], tuple[int, ...]]]


def _conv(tf_name: str, ours: str, kind: str = "2d") -> dict[str, Rule]:
    convert, shape = (_conv2d, _conv2d_shape) if kind == "2d" else (_conv1d, _conv1d_shape)
    return {
        f"{ours}.weight": (f"{tf_name}/kernel", convert, shape),
        f"{ours}.bias": (f"{tf_name}/bias", _same, _same_shape),
    }


def _bn(tf_name: str, ours: str) -> dict[str, Rule]:
    def variance(var: np.ndarray) -> np.ndarray:
        return var + np.float32(TF_BN_EPSILON - 1e-5)  # PyTorch's BatchNorm adds eps=1e-5

    return {
        f"{ours}.weight": (f"{tf_name}/gamma", _same, _same_shape),
        f"{ours}.bias": (f"{tf_name}/beta", _same, _same_shape),
        f"{ours}.running_mean": (f"{tf_name}/moving_mean", _same, _same_shape),
        f"{ours}.running_var": (f"{tf_name}/moving_variance", variance, _same_shape),
    }


def _dense(tf_name: str, ours: str, inputs: np.ndarray | None = None) -> dict[str, Rule]:
    """``inputs[j]``: the TF input feature that musictag's input ``j`` is."""

    def kernel(k: np.ndarray) -> np.ndarray:
        return (k if inputs is None else k[inputs]).T

    def shape(s: tuple[int, ...]) -> tuple[int, ...]:
        return (s[1], s[0])

    return {
        f"{ours}.weight": (f"{tf_name}/kernel", kernel, shape),
        f"{ours}.bias": (f"{tf_name}/bias", _same, _same_shape),
    }


def _then_permute(
    convert: Callable[[np.ndarray], np.ndarray], order: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    return lambda array: convert(array)[order]


def _permuted_bn(tf_name: str, ours: str, order: np.ndarray) -> dict[str, Rule]:
    rules = _bn(tf_name, ours)
    return {
        key: (name, _then_permute(convert, order), shape) for key, (name, convert, shape) in rules.items()
    }


def musicnn_rules(net: Tagger) -> dict[str, Rule]:
    """TF name and conversion of every tensor of a ``musicnn_tf`` network."""
    n_features = net.shapes["backend"][0] // 2
    # musictag's pooled vector is [max_0 … max_{C-1}, mean_0 … mean_{C-1}]; TF's is [max_0, mean_0, …]
    order = np.concatenate([np.arange(n_features) * 2, np.arange(n_features) * 2 + 1])
    rules = _bn("batch_normalization", "representation.bn")
    convs, bns = _tf_names("conv2d", 8), _tf_names("batch_normalization", 10, first=1)
    for i in range(5):  # f74, f77, s1, s2, s3
        rules |= _conv(convs[i], f"frontend.layers.{i}.conv") | _bn(bns[i], f"frontend.layers.{i}.bn")
    for i in range(3):  # the mid-end's 1-D convs
        rules |= _conv(convs[5 + i], f"backend.layers.{i}.conv", "1d") | _bn(
            bns[5 + i], f"backend.layers.{i}.bn"
        )
    rules |= _permuted_bn(bns[8], "head.layers.0", order)
    rules |= _dense("dense", "head.layers.2", order)
    rules |= _bn(bns[9], "head.layers.4")
    rules |= _dense("dense_1", "head.layers.6")
    return rules


def vgg_rules(net: Tagger) -> dict[str, Rule]:
    """TF name and conversion of every tensor of a ``musicnn_vgg`` network."""
    channels, freq, time = net.shapes["frontend"]
    # musictag flattens (channels, freq, time), TF (time, freq, channels)
    c, f, t = np.meshgrid(np.arange(channels), np.arange(freq), np.arange(time), indexing="ij")
    order = (t * freq * channels + f * channels + c).reshape(-1)
    rules = _bn("batch_normalization", "representation.bn")
    for i in range(5):
        rules |= _conv(f"{i + 1}CNN", f"frontend.blocks.{i}.conv")
        rules |= _bn(f"batch_normalization_{i + 1}", f"frontend.blocks.{i}.bn")
    rules |= _dense("dense", "head.layers.1", order)
    return rules


def _model_tensor(name: str) -> bool:
    return not (name.endswith(OPTIMIZER_SUFFIXES) or name in OPTIMIZER_NAMES)


def convert_musicnn(checkpoint: TFCheckpoint, net: Tagger, preset: str) -> dict[str, torch.Tensor]:
    """Every tensor of ``net.state_dict()`` from the TF checkpoint, by name; shape-checked.

    Raises :class:`~musictag.convert.tf_checkpoint.CheckpointError` naming a tensor that is missing, of
    another shape, or left over (a model tensor of the checkpoint that the network has no place for).
    """
    rules = musicnn_rules(net) if preset == "musicnn_tf" else vgg_rules(net)
    target = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    if set(rules) != set(target):  # a defect of this module, not of the user's files
        raise RuntimeError(f"musicnn rules do not cover {sorted(set(target) ^ set(rules))}")
    converted = {}
    for key, (tf_name, convert, tf_shape) in rules.items():
        array = convert(checkpoint.get(tf_name, tf_shape(tuple(target[key].shape))))
        converted[key] = torch.from_numpy(np.ascontiguousarray(array)).to(target[key].dtype)
    used = {name for name, _, _ in rules.values()}
    extra = sorted(n for n in checkpoint.names() if _model_tensor(n) and n not in used)
    if extra:
        raise CheckpointError(
            f"{checkpoint.prefix} holds tensors the {preset} network has no place for: {', '.join(extra[:5])}"
            f"{' …' if len(extra) > 5 else ''} (another model's checkpoint?)"
        )
    return converted


#: The tensor that tells each architecture's checkpoint from the other's.
ARCH_MARKERS = {"musicnn": "conv2d/kernel", "vgg": "1CNN/kernel"}
#: ``config.json``'s ``audio_rep.identifier`` (its start) → the corpus in the model names.
CORPUS_IDENTIFIERS = {"mtt": "MTT", "msd": "MSD"}


def checkpoint_folder(checkpoint: TFCheckpoint) -> Path:
    """The folder holding the checkpoint's files (and the training run's ``config.json``)."""
    return checkpoint.prefix if checkpoint.prefix.is_dir() else checkpoint.prefix.parent


def identify_musicnn(checkpoint: TFCheckpoint) -> str:
    """Which of :data:`MUSICNN_MODELS` a checkpoint is, from what its folder says about itself.

    The architecture shows in the tensor set; the corpus does not (``MTT_musicnn`` and ``MSD_musicnn``
    have the same tensors, 50 outputs each): it is the training run's ``config.json`` beside the
    checkpoint (``audio_rep.identifier``: ``mtt…`` or ``msd``), which the wheel ships in every folder.
    Without it the import is refused: MSD weights under MTT tag names tag a techno clip "strings, loud".
    """
    import json

    archs = [arch for arch, marker in ARCH_MARKERS.items() if marker in checkpoint]
    if len(archs) != 1:
        raise CheckpointError(
            f"{checkpoint.prefix} is none of the musicnn library's models (no tensor "
            f"{' or '.join(ARCH_MARKERS.values())})"
        )
    config = checkpoint_folder(checkpoint) / "config.json"
    problem = file_type_problem(config)
    if problem is not None:
        raise CheckpointError(
            f"{config}: {problem}; the training run's config.json says which corpus (MTT or MSD) the "
            "weights learnt, which the tensors cannot: copy it from the musicnn wheel's model folder"
        )
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
        identifier = str(settings["audio_rep"]["identifier"])
        n_classes = int(settings["num_classes_dataset"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{config} is not a musicnn training config (no audio_rep.identifier / num_classes_dataset: "
            f"{type(err).__name__}); copy it from the musicnn wheel's model folder"
        ) from None
    corpora = [name for prefix, name in CORPUS_IDENTIFIERS.items() if identifier.lower().startswith(prefix)]
    if len(corpora) != 1 or n_classes != 50:
        raise CheckpointError(
            f"{config}: a model of corpus {identifier!r} with {n_classes} tags, none of the library's models"
        )
    return f"{corpora[0]}_{archs[0]}"


def _input_folder(weights: Pathlike) -> Path:
    """``--weights`` checked to be a checkpoint folder (or its ``.index`` or prefix) before reading it."""
    path = Path(weights)
    if path.is_dir():
        return path
    if path.name == ".index" and path.is_file():  # the wheel's index file: its folder is the checkpoint
        return path.parent
    if path.suffix == ".index" or path.with_name(path.name + ".index").exists():
        check_input_file(
            path if path.suffix == ".index" else path.with_name(path.name + ".index"), "--weights"
        )
        return path.parent
    problem = file_type_problem(path)
    if problem == "no such file":
        raise InputError(f"--weights {path}: no such folder; give the model's folder of the musicnn wheel")
    if problem is not None:
        raise InputError(f"--weights {path}: {problem}")
    raise InputError(
        f"--weights {path} is a file; --source musicnn takes the model's folder of the musicnn wheel "
        "(e.g. musicnn/MTT_musicnn, holding .index and .data-00000-of-00001)"
    )


def import_musicnn(model: str, weights: Pathlike, out: Pathlike, force: bool = False) -> Path:
    """One of the musicnn library's models (its folder in the wheel) as a musictag checkpoint at ``out``.

    Checked before anything is written: ``out`` (never a file of the input folder; an existing file only
    with ``force``), that the folder is the ``model`` asked for (:func:`identify_musicnn`), and every
    tensor's checksum (:meth:`~musictag.convert.tf_checkpoint.TFCheckpoint.verify`).
    """

    from musictag.training.module import TaggingModule

    if model not in MUSICNN_MODELS:
        raise ConfigError(f"unknown musicnn model {model!r}; the library ships {', '.join(MUSICNN_MODELS)}")
    preset, tags = MUSICNN_MODELS[model]
    folder = _input_folder(weights)
    out = check_import_out(out, [Path(weights), folder, *folder_files(folder)], force)
    try:
        checkpoint = TFCheckpoint(folder if Path(weights).name == ".index" else weights)
        found = identify_musicnn(checkpoint)
        if found != model:
            raise CheckpointError(
                f"--weights {weights} holds {found} (its tensors and config.json), not {model}: "
                f"give --model {found}, or the {model} folder"
            )
        checkpoint.verify()
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
    module = TaggingModule(
        n_tags=len(tags), arch=preset, tag_names=list(tags), aggregate="mean", tag_chunk_mode="patches"
    )
    try:
        module.net.load_state_dict(convert_musicnn(checkpoint, module.net, preset), strict=False)
    except CheckpointError as err:
        raise ConfigError(f"{err} (is {weights} the {model} folder?)") from None
    source = {"source": "musicnn", "model": model, "weights": str(weights)}
    return write_module(module, source, out)
