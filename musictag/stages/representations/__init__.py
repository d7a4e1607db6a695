"""Representations: waveform ``(B, S)`` → what the front end reads (``(B, C, F, T)`` or ``(B, 1, S)``)."""

from musictag.stages.representations.embedding import EmbeddingInput
from musictag.stages.representations.harmonic import HarmonicFilterbank
from musictag.stages.representations.mel import MelSpectrogram
from musictag.stages.representations.mfcc import MFCC
from musictag.stages.representations.waveform import Waveform

__all__ = ["MFCC", "EmbeddingInput", "HarmonicFilterbank", "MelSpectrogram", "Waveform"]
