"""Named architectures: each a preset of stage specs over the shared registries (no layer code here).

``experiments/models/<name>.yaml`` holds the same preset as a LightningCLI config; a test keeps the two
equal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from musictag.stages.registry import ConfigError, StageSpec, UnknownNameError


@dataclass(frozen=True)
class Preset:
    """A published architecture as four stage specs and its input."""

    name: str
    description: str
    reference: str
    input_len: int
    representation: StageSpec
    frontend: StageSpec
    backend: StageSpec
    head: StageSpec
    sample_rate: int = 16000
    params_at_50_tags: int | None = None
    published_params: tuple[int, int] | None = None  # (n_tags, count) where the paper counts other outputs
    notes: str = ""

    def stages(self) -> dict[str, Any]:
        """The arguments of :class:`~musictag.models.tagger.Tagger` (deep copies, safe to edit)."""
        return copy.deepcopy(
            {
                "representation": self.representation,
                "frontend": self.frontend,
                "backend": self.backend,
                "head": self.head,
                "input_len": self.input_len,
                "sample_rate": self.sample_rate,
            }
        )


PRESETS: dict[str, Preset] = {}
#: Presets with arguments (e.g. a parameter budget): name → callable returning a Preset.
FACTORIES: dict[str, Callable[..., Preset]] = {}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def register_factory(name: str, factory: Callable[..., Preset]) -> None:
    """A preset whose stages depend on arguments (built on demand by :func:`get_preset`)."""
    FACTORIES[name] = factory


def preset_names() -> list[str]:
    """Every architecture name: fixed presets and presets with arguments."""
    return sorted({*PRESETS, *FACTORIES})


def get_preset(name: str, **arch_args: Any) -> Preset:
    if name in FACTORIES:
        try:
            return FACTORIES[name](**arch_args)
        except TypeError as err:
            raise ConfigError(f"architecture {name!r}: bad arch_args {arch_args}: {err}") from None
    if arch_args:
        raise ConfigError(f"architecture {name!r} takes no arch_args, got {sorted(arch_args)}")
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown architecture {name!r}; registered architectures: {', '.join(preset_names())}"
        ) from None


WON_2020 = (
    "M. Won, A. Ferraro, D. Bogdanov, X. Serra, 'Evaluation of CNN-based automatic music tagging models', "
    "SMC 2020 (sota-music-tagging-models)."
)
MEL96 = {"name": "mel", "n_mels": 96}
MEL128 = {"name": "mel", "n_mels": 128}

register_preset(
    Preset(
        name="fcn",
        description=(
            "Fully convolutional network: 5 blocks of 3x3 conv + BN + ReLU + max-pool (64,128,128,128,64 "
            "channels; pools (2,4),(2,4),(2,4),(3,5),(4,4)) on a 96-band log-mel, flattened, dropout 0.5, "
            "dense n_tags. Input: 464,000 samples at 16 kHz (29 s, 96 x 1813 mel frames)."
        ),
        reference="K. Choi, G. Fazekas, M. Sandler, 'Automatic tagging using deep convolutional neural "
        "networks', ISMIR 2016; as implemented in " + WON_2020,
        input_len=464_000,
        representation=MEL96,
        frontend={
            "name": "conv2d_stack",
            "channels": [64, 128, 128, 128, 64],
            "pools": [[2, 4], [2, 4], [2, 4], [3, 5], [4, 4]],
        },
        backend={"name": "flatten"},
        head={"name": "linear", "dropout": 0.5},
        params_at_50_tags=447_732,
        notes="Channels follow Won 2020's implementation (whose weights exist), not the paper's 128-2048.",
    )
)

register_preset(
    Preset(
        name="fcn4",
        description=(
            "The 4-layer FCN: 3x3 conv + BN + ELU + max-pool blocks of 128, 384, 768, 2048 channels, pools "
            "(2,4),(4,5),(3,8),(4,8), on a 96-band log-mel of 1366 frames at 12 kHz (hop 256), flattened, "
            "dropout 0.5, dense n_tags. Input: 349,440 samples at 12 kHz (29.1 s)."
        ),
        reference="K. Choi, G. Fazekas, M. Sandler, 'Automatic tagging using deep convolutional neural "
        "networks', ISMIR 2016 (FCN-4).",
        input_len=349_440,
        sample_rate=12_000,
        representation={"name": "mel", "n_mels": 96, "f_max": 6000.0},
        frontend={
            "name": "conv2d_stack",
            "channels": [128, 384, 768, 2048],
            "pools": [[2, 4], [4, 5], [3, 8], [4, 8]],
            "activation": "elu",
        },
        backend={"name": "flatten"},
        head={"name": "linear", "dropout": 0.5},
        notes="The mel is HTK-scaled power in dB (the paper used librosa's log-amplitude mel).",
    )
)

register_preset(
    Preset(
        name="short_chunk",
        description=(
            "Short-chunk CNN: 7 blocks of 3x3 conv + BN + ReLU + 2x2 max-pool (128,128,256,256,256,256,512 "
            "channels) on a 128-band log-mel of a 3.69 s chunk, global max pool, dense 512 + BN + ReLU + "
            "dropout 0.5, dense n_tags. Input: 59,049 samples at 16 kHz (128 x 231 mel frames)."
        ),
        reference=WON_2020,
        input_len=59049,
        representation=MEL128,
        frontend={"name": "conv2d_stack", "channels": [128, 128, 256, 256, 256, 256, 512], "pools": 2},
        backend={"name": "global_max"},
        head={"name": "mlp", "hidden": [512], "dropout": 0.5},
        params_at_50_tags=3_687_348,
    )
)

register_preset(
    Preset(
        name="short_chunk_res",
        description=(
            "Short-chunk CNN with residual blocks: 7 blocks of two 3x3 conv + BN with a skip, downsampling "
            "by stride 2 (128,128,256,256,256,256,512 channels), global max pool, dense 512 + BN + ReLU + "
            "dropout 0.5, dense n_tags. Input: 59,049 samples at 16 kHz."
        ),
        reference=WON_2020,
        input_len=59049,
        representation=MEL128,
        frontend={"name": "res2d_stack", "channels": [128, 128, 256, 256, 256, 256, 512], "strides": 2},
        backend={"name": "global_max"},
        head={"name": "mlp", "hidden": [512], "dropout": 0.5},
        params_at_50_tags=12_104_244,
    )
)

register_preset(
    Preset(
        name="harmonic_cnn",
        description=(
            "Harmonic CNN: learnable harmonic filterbank (128 half-semitone centre frequencies from 32.7 Hz, "
            "harmonics 1-6, ERB-law triangles with learnable Q, dB, BatchNorm2d(6)), then 7 blocks: a 3x3 "
            "conv block (128), three residual blocks (128), a conv block (256) and two residual blocks (256); "
            "max-pools 2 and (2,3) for the last two; global max pool, dense 256 + BN + ReLU + dropout 0.5, "
            "dense n_tags. Input: 80,000 samples at 16 kHz (5 s)."
        ),
        reference="M. Won, S. Chun, O. Nieto, X. Serra, 'Data-driven harmonic filters for audio "
        "representation learning', ICASSP 2020; " + WON_2020,
        input_len=80_000,
        representation={"name": "harmonic"},
        frontend={
            "name": "conv2d_stack",
            "channels": [128, 128, 128, 128, 256, 256, 256],
            "pools": [2, 2, 2, 2, 2, [2, 3], [2, 3]],
            "blocks": ["conv", "res", "res", "res", "conv", "res", "res"],
        },
        backend={"name": "global_max"},
        head={"name": "mlp", "hidden": [256], "dropout": 0.5},
        params_at_50_tags=3_631_551,
    )
)

register_preset(
    Preset(
        name="musicnn",
        description=(
            "MusiCNN: timbral filters 204 x (0.7F x 7) and (0.4F x 7) + temporal filters 51 x 129, 65, 33 "
            "frames on a 96-band log-mel (561 channels, max over frequency), three 1-D convs of 64 channels "
            "(kernel 7, residual), concatenated, max + mean pooled over time, dense 200 + BN + ReLU + "
            "dropout 0.5, dense n_tags. Input: 48,000 samples at 16 kHz (3 s)."
        ),
        reference="J. Pons, O. Nieto, M. Prockup, E. Schmidt, A. Ehmann, X. Serra, 'End-to-end learning for "
        "music audio tagging at scale', ISMIR 2018; as implemented in " + WON_2020,
        input_len=48_000,
        representation=MEL96,
        frontend={"name": "musicnn"},
        backend={"name": "musicnn_1d", "channels": 64},
        head={"name": "mlp", "hidden": [200], "dropout": 0.5},
        params_at_50_tags=784_300,
    )
)

register_preset(
    Preset(
        name="musicnn_msd",
        description=(
            "MusiCNN, the larger Million Song Dataset variant: as musicnn with 512-channel 1-D convs and a "
            "dense layer of 500. Input: 48,000 samples at 16 kHz (3 s)."
        ),
        reference="J. Pons et al., 'End-to-end learning for music audio tagging at scale', ISMIR 2018; "
        + WON_2020,
        input_len=48_000,
        representation=MEL96,
        frontend={"name": "musicnn"},
        backend={"name": "musicnn_1d", "channels": 512},
        head={"name": "mlp", "hidden": [500], "dropout": 0.5},
        params_at_50_tags=7_972_000,
    )
)

#: The musicnn library's front end (Pons et al.): librosa's default 96-band mel (Slaney scale and norm,
#: 0-8 kHz) of 16 kHz audio, rounded to float16, ``log10(1 + 10000·x)``, input BatchNorm. Uncentred
#: frames: a 48,128-sample chunk is one 187-frame (3 s) patch of a whole file's centred spectrogram
#: (chunk mode ``patches``).
MUSICNN_LIB_MEL = {
    "name": "mel",
    "n_mels": 96,
    "f_max": None,
    "mel_scale": "slaney",
    "norm": "slaney",
    "compression": "log10_1p",
    "log1p_scale": 10000.0,
    "float16": True,
    "center": False,
}
MUSICNN_LIB_INPUT = 186 * 256 + 512  # 187 frames of 512 samples, hop 256
MUSICNN_LIB = (
    "J. Pons, X. Serra, 'musicnn: pre-trained convolutional neural networks for music audio tagging', "
    "ISMIR 2019 late-breaking demo (the musicnn library, pip install musicnn)"
)

register_preset(
    Preset(
        name="musicnn_tf",
        description=(
            "MusiCNN as the musicnn library (TensorFlow) builds it, the architecture of its MTT_musicnn and "
            "MSD_musicnn models: 204 timbral filters of 38 and 67 bands x 7 frames and 51 temporal filters "
            "of 1 x 128, 64, 32 frames on every band (max over frequency), each conv -> ReLU -> BN; three 1-D "
            "convs of 64 channels (kernel 7, residual); max + mean over time; BN, dense 200 + ReLU + BN, "
            "dropout 0.5, dense n_tags. Input: 48,128 samples at 16 kHz (187 frames, 3 s)."
        ),
        reference=MUSICNN_LIB + "; J. Pons et al., 'End-to-end learning for music audio tagging at scale', "
        "ISMIR 2018",
        input_len=MUSICNN_LIB_INPUT,
        representation=MUSICNN_LIB_MEL,
        frontend={
            "name": "musicnn",
            "timbral_heights": [0.4, 0.7],
            "temporal_lengths": [128, 64, 32],
            "temporal_pooling": "max",
            "bn_after_relu": True,
        },
        backend={"name": "musicnn_1d", "channels": 64, "bn_after_relu": True},
        head={
            "name": "mlp",
            "hidden": [200],
            "dropout": 0.5,
            "input_batch_norm": True,
            "input_dropout": 0.5,
            "bn_after_relu": True,
        },
        params_at_50_tags=787_159,
        notes="musictag import-weights --source musicnn --model MTT_musicnn|MSD_musicnn loads its weights",
    )
)

register_preset(
    Preset(
        name="musicnn_vgg",
        description=(
            "The musicnn library's VGG-like baseline (its MTT_vgg and MSD_vgg models): input BN, five blocks "
            "of 3x3 conv (128) -> ReLU -> BN -> max-pool (4x1 time x freq with stride 2, then 2x2, 2x2, "
            "2x2, 4x4), flattened, dropout 0.5, dense n_tags. Input: 48,128 samples at 16 kHz (187 frames, "
            "3 s); takes exactly that length."
        ),
        reference=MUSICNN_LIB,
        input_len=MUSICNN_LIB_INPUT,
        representation=MUSICNN_LIB_MEL,
        frontend={
            "name": "conv2d_stack",
            "channels": [128, 128, 128, 128, 128],
            "pools": [[1, 4], 2, 2, 2, 4],
            "pool_strides": [2, 2, 2, 2, 4],
            "bn_after_relu": True,
        },
        backend={"name": "flatten"},
        head={"name": "linear", "dropout": 0.5},
        params_at_50_tags=605_748,
        notes="musictag import-weights --source musicnn --model MTT_vgg|MSD_vgg loads its weights",
    )
)

register_preset(
    Preset(
        name="sample_cnn",
        description=(
            "Sample-level CNN: a stride-3 conv (128) then 9 blocks of conv3 + BN + ReLU + max-pool 3 "
            "(128,128,256,256,256,256,256,256,512 channels) and a 1x1 conv (512) on the raw waveform, "
            "max over the remaining frame(s), dropout 0.5, dense n_tags. Input: 59,049 = 3^10 samples at 16 kHz (3.69 s)."
        ),
        reference="J. Lee, J. Park, K. L. Kim, J. Nam, 'Sample-level deep convolutional neural networks for "
        "music auto-tagging using raw waveforms', SMC 2017; " + WON_2020,
        input_len=59049,
        representation={"name": "waveform"},
        frontend={"name": "sample_level"},
        # one frame remains at 59,049 samples: max pooling equals the reference's squeeze there and
        # also takes longer input
        backend={"name": "global_max"},
        head={"name": "linear", "dropout": 0.5},
        params_at_50_tags=1_869_874,
    )
)

register_preset(
    Preset(
        name="sample_cnn_se",
        description=(
            "Sample-level CNN with residual squeeze-and-excitation blocks (channels as sample_cnn), dense "
            "512 + BN + ReLU + dropout 0.5, dense n_tags. Input: 59,049 samples at 16 kHz."
        ),
        reference="T. Kim, J. Lee, J. Nam, 'Sample-level CNN architectures for music auto-tagging using raw "
        "waveforms', ICASSP 2018; " + WON_2020,
        input_len=59049,
        representation={"name": "waveform"},
        frontend={"name": "sample_level", "block": "se"},
        backend={"name": "global_max"},
        head={"name": "mlp", "hidden": [512], "dropout": 0.5},
        params_at_50_tags=6_951_858,
    )
)

register_preset(
    Preset(
        name="crnn",
        description=(
            "Convolutional recurrent network: 4 blocks of 3x3 conv + BN + ReLU + max-pool (64,128,128,128 "
            "channels; pools (2,2),(3,3),(4,4),(4,4)) on a 96-band log-mel, a 2-layer GRU of 32 units read "
            "at its last step, dropout 0.5, dense n_tags. Input: 464,000 samples at 16 kHz (29 s)."
        ),
        reference="K. Choi, G. Fazekas, M. Sandler, K. Cho, 'Convolutional recurrent neural networks for "
        "music classification', ICASSP 2017; as implemented in " + WON_2020,
        input_len=464_000,
        representation=MEL96,
        frontend={
            "name": "conv2d_stack",
            "channels": [64, 128, 128, 128],
            "pools": [[2, 2], [3, 3], [4, 4], [4, 4]],
        },
        backend={"name": "gru", "hidden_size": 32, "num_layers": 2},
        head={"name": "linear", "dropout": 0.5},
        params_at_50_tags=394_100,
    )
)

register_preset(
    Preset(
        name="cnnsa",
        description=(
            "Self-attention CNN: 7 strided residual blocks (128,128,256,256,256,256,256 channels; strides 2 "
            "then (2,1)) on a 128-band log-mel, a 2-layer Transformer encoder (8 heads, 256, feed-forward "
            "1024, dropout 0.4) read at a learnable [CLS] token through a tanh pooler, dropout 0.5, dense "
            "n_tags. Input: 240,000 samples at 16 kHz (15 s)."
        ),
        reference="M. Won, S. Chun, X. Serra, 'Toward interpretable music tagging with self-attention', "
        "arXiv:1906.04972, 2019; " + WON_2020,
        input_len=240_000,
        representation=MEL128,
        frontend={
            "name": "res2d_stack",
            "channels": [128, 128, 256, 256, 256, 256, 256],
            "strides": [2, 2, 2, [2, 1], [2, 1], [2, 1], [2, 1]],
        },
        backend={
            "name": "transformer",
            "d_model": 256,
            "n_layers": 2,
            "n_heads": 8,
            "dim_feedforward": 1024,
            "dropout": 0.4,
            "pooler": True,
        },
        head={"name": "linear", "dropout": 0.5},
        notes="Like the reference implementation (a BERT encoder without embeddings) it has no positional "
        "encoding; its [CLS] vector is learned here instead of a fixed random one.",
    )
)

register_preset(
    Preset(
        name="transformer",
        description=(
            "Music Tagging Transformer: a 128-band log-mel at 22.05 kHz (n_fft 1024, hop 512), 3 residual "
            "conv blocks of 128 channels (pools (2,2),(2,2),(2,1)), each frame's features projected to 256, "
            "a 4-layer Transformer encoder (8 heads, d=256) with a learnable [CLS] token and learnable "
            "positional embeddings (up to 512 frames, ~47 s), dropout 0.1, dense n_tags. Input: 5-30 s; "
            "default 220,500 samples at 22.05 kHz (10 s)."
        ),
        reference="M. Won, K. Choi, X. Serra, 'Semi-supervised music tagging transformer', ISMIR 2021.",
        input_len=220_500,
        sample_rate=22_050,
        representation={"name": "mel", "n_mels": 128, "n_fft": 1024, "hop_length": 512, "f_max": 11025.0},
        frontend={
            "name": "conv2d_stack",
            "channels": [128, 128, 128],
            "pools": [[2, 2], [2, 2], [2, 1]],
            "blocks": "res",
        },
        backend={
            "name": "transformer",
            "d_model": 256,
            "n_layers": 4,
            "n_heads": 8,
            "dropout": 0.1,
            "max_len": 512,
        },
        head={"name": "linear", "dropout": 0.1},
    )
)

register_preset(
    Preset(
        name="waveform_musicnn",
        description=(
            "MusiCNN with the waveform front end: a stride-3 conv (64) then 6 blocks of conv3 + BN + ReLU + "
            "max-pool 3 (64,64,128,128,128,256) on the raw waveform, then the MusiCNN back end (three 1-D "
            "convs of 64, max + mean pooling, dense 200). Input: 48,000 samples at 16 kHz (3 s)."
        ),
        reference="J. Pons et al., 'End-to-end learning for music audio tagging at scale', ISMIR 2018 "
        "(waveform front end).",
        input_len=48_000,
        representation={"name": "waveform"},
        frontend={"name": "sample_level", "channels": [64, 64, 64, 128, 128, 128, 256], "pointwise": None},
        backend={"name": "musicnn_1d", "channels": 64},
        head={"name": "mlp", "hidden": [200], "dropout": 0.5},
    )
)

PONS_INPUT: dict[str, Any] = {
    # 40 mel bands of magnitudes, log(1 + 10000 x), 80 frames: 1.82 s at 16 kHz with a 23 ms hop
    "representation": {
        "name": "mel",
        "n_mels": 40,
        "n_fft": 1024,
        "hop_length": 368,
        "power": 1.0,
        "compression": "log1p",
        "input_bn": False,
    },
    "input_len": 79 * 368,
}
PONS_2016 = "J. Pons, T. Lidy, X. Serra, 'Experimenting with musically motivated convolutional neural networks', CBMI 2016."
TIME_BRANCH = {"channels": 32, "shape": [1, 60], "pool": [-1, 1]}
FREQ_BRANCH = {"channels": 32, "shape": [32, 1], "pool": [1, -1]}
for _name, _what, _branches, _head, _count in (
    (
        "pons_blackbox",
        "black-box: 32 filters of 12x8 (bands x frames), max-pool 4x1",
        [{"channels": 32, "shape": [12, 8], "pool": [4, 1]}],
        "mlp",
        3_275_312,
    ),
    ("pons_time", "time: 32 filters of 1x60, max-pool over all 40 bands", [TIME_BRANCH], "linear", 7_336),
    (
        "pons_frequency",
        "frequency: 32 filters of 32x1, max-pool over all 80 frames",
        [FREQ_BRANCH],
        "linear",
        3_368,
    ),
    (
        "pons_timefreq",
        "time-frequency: the time and frequency branches concatenated",
        [TIME_BRANCH, FREQ_BRANCH],
        "mlp",
        196_816,
    ),
):
    register_preset(
        Preset(
            name=_name,
            description=(
                f"Pons' musically motivated CNN, {_what}; valid convs + ReLU; "
                + ("dense 200 + dropout 0.5, then " if _head == "mlp" else "")
                + "the output layer. Input: 40-band mel, log(1 + 10000 x), 80 frames = 29,072 samples at 16 kHz. "
                "A single-label classifier in the paper (8 Ballroom classes, softmax): use task: multiclass."
            ),
            reference=PONS_2016,
            input_len=PONS_INPUT["input_len"],
            representation=PONS_INPUT["representation"],
            frontend={"name": "pons_filters", "branches": _branches},
            backend={"name": "flatten"},
            head={"name": "mlp", "hidden": [200], "batch_norm": False, "dropout": 0.5}
            if _head == "mlp"
            else {"name": "linear"},
            published_params=(8, _count),
            notes="Frame rate and FFT size are this port's choice at 16 kHz; the counts depend only on 40 x 80.",
        )
    )
