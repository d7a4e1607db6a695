"""Front ends: representation → local features (2-D and 1-D CNN stacks, MusiCNN filters, Pons filters,
a k-means codebook (vector quantisation), pretrained Hugging Face encoders, musictag checkpoints as frozen encoders)."""

from musictag.stages.frontends.codebook import Codebook
from musictag.stages.frontends.conv1d import Conv1dStack, ConvBlock1d, ResSEBlock1d, SampleLevel1d
from musictag.stages.frontends.conv2d import (
    Conv2dStack,
    ConvBlock2d,
    Res2dStack,
    ResPoolBlock2d,
    ResStrideBlock2d,
)
from musictag.stages.frontends.hf_encoder import LayerMix, LayerMixFrontEnd, PretrainedEncoder
from musictag.stages.frontends.keras1 import ChoiKerasFrontEnd
from musictag.stages.frontends.musicnn import MusicnnFrontEnd
from musictag.stages.frontends.pons import PonsFilters
from musictag.stages.registry import FRONTENDS

# a musictag checkpoint as a frozen encoder: it loads a checkpoint, so it lives in musictag.inference
FRONTENDS.lazy("checkpoint_encoder", "musictag.inference.encoder.CheckpointEncoder")

__all__ = [
    "ChoiKerasFrontEnd",
    "Codebook",
    "Conv1dStack",
    "Conv2dStack",
    "ConvBlock1d",
    "ConvBlock2d",
    "LayerMix",
    "LayerMixFrontEnd",
    "MusicnnFrontEnd",
    "PonsFilters",
    "PretrainedEncoder",
    "Res2dStack",
    "ResPoolBlock2d",
    "ResSEBlock1d",
    "ResStrideBlock2d",
    "SampleLevel1d",
]
