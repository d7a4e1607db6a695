"""Named architectures: each a preset of stage specs over the shared registries (no layer code here).

``experiments/models/<name>.yaml`` holds the same preset as a LightningCLI config; a test keeps the two
equal.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from musictag.registry import StageSpec, UnknownNameError


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
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

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


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown architecture {name!r}; registered architectures: {', '.join(sorted(PRESETS))}"
        ) from None


register_preset(
    Preset(
        name="short_chunk",
        description=(
            "Short-chunk CNN: 7 blocks of 3x3 conv + BN + ReLU + 2x2 max-pool (128,128,256,256,256,256,512 "
            "channels) on a 128-band log-mel of a 3.69 s chunk, global max pool, dense 512 + BN + ReLU + "
            "dropout 0.5, dense n_tags. Input: 59,049 samples at 16 kHz (128 x 231 mel frames)."
        ),
        reference=(
            "M. Won, A. Ferraro, D. Bogdanov, X. Serra, 'Evaluation of CNN-based automatic music tagging "
            "models', SMC 2020."
        ),
        input_len=59049,
        representation={"name": "mel", "n_mels": 128},
        frontend={"name": "conv2d_stack", "channels": [128, 128, 256, 256, 256, 256, 512], "pools": 2},
        backend={"name": "global_max"},
        head={"name": "mlp", "hidden": [512], "dropout": 0.5},
        params_at_50_tags=3_687_348,
    )
)
