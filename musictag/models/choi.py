"""Choi et al. 2017's designs at controlled parameter budgets, and Dieleman and Schrauwen 2014's 1-D CNN.

The CRNN paper compares a 1-D CNN (``choi_conv1d``), a 2-D CNN (``choi_conv2d``) and a CRNN
(``choi_crnn``) at 0.1M, 0.25M, 0.5M, 1M and 3M parameters (50 outputs). Each design here has base
widths; :func:`scaled_preset` multiplies every width by ``s`` and the widths of the layers next to the
output by ``sqrt(s)``, with ``s`` found by bisection over the composed network's parameter count: the
paper's budgets (0.1M-3M) land within 1% (tested); a budget that no width brings within 10% is refused. The width ratios (1:2:2:2:3 for the 2-D CNN, 1:2:2:2 plus the GRU for the
CRNN) follow the paper's layer tables as far as this project could check them; the kernel sizes,
pools and input (96 mel bands x 1366 frames, 12 kHz, hop 256, 29.1 s) are the paper's.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable
from typing import Any

import torch

from musictag.models.presets import Preset, register_factory, register_preset
from musictag.models.tagger import Tagger
from musictag.types import ConfigError

BUDGETS = (100_000, 250_000, 500_000, 1_000_000, 3_000_000)
CHOI_2017 = (
    "K. Choi, G. Fazekas, M. Sandler, K. Cho, 'Convolutional recurrent neural networks for music "
    "classification', ICASSP 2017."
)
CHOI_INPUT: dict[str, Any] = {
    "sample_rate": 12_000,
    "input_len": 349_440,  # 1366 frames of hop 256 at 12 kHz: 29.1 s
    "representation": {"name": "mel", "n_mels": 96, "f_max": 6000.0},
}


def _conv2d(channels: list[int], pools: list[Any]) -> dict[str, Any]:
    return {"name": "conv2d_stack", "channels": channels, "pools": pools, "activation": "elu"}


def _design_conv2d(s: float, r: float) -> tuple[dict[str, Any], int]:
    widths = [max(1, round(w * s)) for w in (16, 32, 32, 32)] + [max(1, round(48 * r))]
    stages = {
        "frontend": _conv2d(widths, [[2, 4], [2, 4], [2, 4], [3, 5], [4, 4]]),
        "backend": {"name": "flatten"},
        "head": {"name": "linear", "dropout": 0.5},
    }
    return stages, widths[-1]


def _design_crnn(s: float, r: float) -> tuple[dict[str, Any], int]:
    widths = [max(1, round(w * s)) for w in (16, 32, 32, 32)]
    hidden = max(1, round(16 * r))
    stages = {
        "frontend": _conv2d(widths, [[2, 2], [3, 3], [4, 4], [4, 4]]),
        "backend": {"name": "gru", "hidden_size": hidden, "num_layers": 2},
        "head": {"name": "linear", "dropout": 0.5},
    }
    return stages, hidden


def _design_conv1d(s: float, r: float) -> tuple[dict[str, Any], int]:
    widths = [max(1, round(w * s)) for w in (32, 32, 32, 32)]
    hidden = max(1, round(64 * r))
    stages = {
        "frontend": {
            "name": "conv1d_stack",
            "channels": widths,
            "kernel_size": 4,
            "pools": [4, 4, 4, 5],
            "padding": "same",
            "batch_norm": True,
        },
        "backend": {"name": "global_max"},
        "head": {"name": "mlp", "hidden": [hidden, hidden], "dropout": 0.5},
    }
    return stages, widths[-1]


DESIGNS: dict[str, tuple[Callable[[float, float], tuple[dict[str, Any], int]], str]] = {
    "choi_conv2d": (
        _design_conv2d,
        "2-D CNN (k2c2): five 3x3 conv + BN + ELU + max-pool blocks, widths 1:2:2:2:3 (the last scaled by "
        "sqrt(s)), pools (2,4),(2,4),(2,4),(3,5),(4,4), flattened, dropout 0.5, dense n_tags",
    ),
    "choi_crnn": (
        _design_crnn,
        "CRNN: four 3x3 conv + BN + ELU + max-pool blocks, widths 1:2:2:2, pools (2,2),(3,3),(4,4),(4,4), "
        "a 2-layer GRU (width scaled by sqrt(s)) read at its last step, dropout 0.5, dense n_tags",
    ),
    "choi_conv1d": (
        _design_conv1d,
        "1-D CNN (k1c2): four 1-D convs over time whose first filter spans all 96 bands x 4 frames (+ BN "
        "+ ReLU), max-pools 4, 4, 4, 5, global max pool, two dense layers (scaled by sqrt(s)) + BN + ReLU "
        "+ dropout 0.5, dense n_tags",
    ),
}


def _params(stages: dict[str, Any], out_width: int, n_tags: int) -> int:
    """Parameters of a design: the composed network itself (:class:`~musictag.models.tagger.Tagger`)
    counts them, so the budget sees exactly the model that is trained."""
    return _tagger_params(json.dumps(stages, sort_keys=True), n_tags)


@functools.lru_cache(maxsize=1024)
def _tagger_params(stages_json: str, n_tags: int) -> int:
    # Rounded widths repeat across the bisection's steps: each distinct network is built once, on the
    # meta device (shapes and parameter counts without memory or arithmetic).
    with torch.device("meta"):
        net = Tagger(
            n_tags=n_tags,
            representation=copy.deepcopy(CHOI_INPUT["representation"]),
            input_len=CHOI_INPUT["input_len"],
            sample_rate=CHOI_INPUT["sample_rate"],
            **json.loads(stages_json),
        )
    return net.n_params()


@functools.lru_cache(maxsize=64)
def scaled_preset(name: str, param_budget: float = 1_000_000, n_tags: int = 50) -> Preset:
    """The design ``name`` scaled to ``param_budget`` parameters at ``n_tags`` outputs (within 1% for the paper's budgets; refused beyond 10%)."""
    if name not in DESIGNS:
        raise ConfigError(f"unknown budgeted design {name!r}; use one of {', '.join(DESIGNS)}")
    if not 10_000 <= param_budget <= 50_000_000:
        raise ConfigError(f"param_budget {param_budget:g} is outside 10k-50M; the paper uses {BUDGETS}")
    design, what = DESIGNS[name]
    low, high = 0.05, 64.0
    for _ in range(40):
        mid = math.sqrt(low * high)
        stages, out_width = design(mid, math.sqrt(mid))
        if _params(stages, out_width, n_tags) < param_budget:
            low = mid
        else:
            high = mid
    candidates = [design(x, math.sqrt(x)) for x in (low, high)]
    stages, out_width = min(candidates, key=lambda c: abs(_params(c[0], c[1], n_tags) - param_budget))
    count = _params(stages, out_width, n_tags)
    if abs(count - param_budget) > 0.1 * param_budget:
        raise ConfigError(
            f"{name}: no width lands within 10% of {param_budget:g} parameters (closest {count})"
        )
    return Preset(
        name=name,
        description=f"{what}. Scaled to {count:,} parameters at {n_tags} tags (budget {param_budget:,.0f}). "
        "Input: 96-band log-mel of 1366 frames at 12 kHz = 349,440 samples (29.1 s).",
        reference=CHOI_2017,
        input_len=CHOI_INPUT["input_len"],
        sample_rate=CHOI_INPUT["sample_rate"],
        representation=copy.deepcopy(CHOI_INPUT["representation"]),
        notes="Widths come from a param_budget (arch_args: {param_budget: N}); the count checks n_tags=50.",
        **stages,
    )


for _name in DESIGNS:
    register_factory(_name, lambda param_budget=1_000_000, _n=_name: scaled_preset(_n, param_budget))


register_preset(
    Preset(
        name="dieleman_1d",
        description=(
            "1-D CNN over time on a 128-band log-mel: the first filter spans all 128 bands x 4 frames; 4 "
            "valid convs of kernel 4 (256, 256, 256, 512) + ReLU with time max-pools 4, 2, 2; global mean, "
            "max and L2 pooling over time (1536), two dense layers of 2048 + ReLU + dropout 0.5, dense "
            "n_tags. Input: 48,000 samples at 16 kHz (3 s, 188 frames)."
        ),
        reference="S. Dieleman, B. Schrauwen, 'End-to-end learning for music audio', ICASSP 2014; the "
        "global temporal pooling and dense sizes of S. Dieleman, 'Recommending music on Spotify with deep "
        "learning', 2014.",
        input_len=48_000,
        representation={"name": "mel", "n_mels": 128},
        frontend={
            "name": "conv1d_stack",
            "channels": [256, 256, 256, 512],
            "kernel_size": 4,
            "pools": [4, 2, 2, 1],
        },
        backend={"name": "global_mean_max_l2"},
        head={"name": "mlp", "hidden": [2048, 2048], "batch_norm": False, "dropout": 0.5},
    )
)


#: Choi et al.'s own preprocessing (music-auto_tagging-keras' ``compute_melgram``): librosa's mel
#: spectrogram of that time (Slaney scale and area norm, 0-6 kHz, n_fft 512, hop 256, centred frames,
#: power 2) squared once more, then ``logamplitude`` (``10·log10``, ref 1.0, amin 1e-10, 80 dB below
#: the example's peak); no input BatchNorm here (the network's own ``bn_0_freq`` follows).
CHOI_KERAS_MEL: dict[str, Any] = {
    "name": "mel",
    "n_mels": 96,
    "f_max": None,
    "mel_scale": "slaney",
    "norm": "slaney",
    "mel_exponent": 2.0,
    "compression": "db",
    "top_db": 80.0,
    "amin": 1e-10,
    "input_bn": False,
}
CHOI_KERAS = (
    "K. Choi, G. Fazekas, M. Sandler, 'Automatic tagging using deep convolutional neural networks', "
    "ISMIR 2016 (MusicTaggerCNN); " + CHOI_2017 + " (MusicTaggerCRNN); the published Keras 1 weights "
    "(music-auto_tagging-keras), trained on the Million Song Dataset's top-50 last.fm tags"
)

register_preset(
    Preset(
        name="choi_cnn_keras",
        description=(
            "Choi et al.'s published MusicTaggerCNN (Keras 1.0.6): a BN per frame of the input, five blocks "
            "of 3x3 conv (32, 128, 128, 192, 256) + BN + ELU + max-pool (2,4),(2,4),(2,4),(3,5),(4,4), "
            "flattened (256), dense n_tags. Input: the original 96-band log-mel of 1,366 frames at 12 kHz "
            "= 349,440 samples (29.12 s); takes exactly that length."
        ),
        reference=CHOI_KERAS,
        input_len=CHOI_INPUT["input_len"],
        sample_rate=CHOI_INPUT["sample_rate"],
        representation=CHOI_KERAS_MEL,
        frontend={
            "name": "choi_keras",
            "channels": [32, 128, 128, 192, 256],
            "pools": [[2, 4], [2, 4], [2, 4], [3, 5], [4, 4]],
            "dropout": 0.5,
            "statistics": "track",
            "eps": 1e-6,
        },
        backend={"name": "flatten"},
        head={"name": "linear"},
        params_at_50_tags=865_950,
        notes="musictag import-weights --source choi --model cnn loads its weights",
    )
)

register_preset(
    Preset(
        name="choi_crnn_keras",
        description=(
            "Choi et al.'s published MusicTaggerCRNN (Keras 1.1-1.2): 37 zero frames on either side, a BN "
            "per frame (1,440), four blocks of 3x3 conv (64, 128, 128, 128) + BN + ELU + max-pool (2,2), "
            "(3,3),(4,4),(4,4), two Keras GRUs of 32 read at the last of 15 steps, dropout 0.3, dense "
            "n_tags. Input: the original 96-band log-mel of 1,366 frames at 12 kHz = 349,440 samples."
        ),
        reference=CHOI_KERAS,
        input_len=CHOI_INPUT["input_len"],
        sample_rate=CHOI_INPUT["sample_rate"],
        representation=CHOI_KERAS_MEL,
        frontend={
            "name": "choi_keras",
            "channels": [64, 128, 128, 128],
            "pools": [[2, 2], [3, 3], [4, 4], [4, 4]],
            "pad_frames": 37,
            "dropout": 0.1,
            "statistics": "running",
            "eps": 1e-3,
        },
        backend={"name": "keras_gru", "hidden_size": 32, "num_layers": 2},
        head={"name": "linear", "dropout": 0.3},
        params_at_50_tags=396_786,
        notes="musictag import-weights --source choi --model crnn loads its weights",
    )
)
