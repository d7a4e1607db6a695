"""Representations: waveform ``(B, S)`` → what the front end reads (``(B, C, F, T)`` or ``(B, 1, S)``)."""

from musictag.representations.embedding import EmbeddingInput
from musictag.representations.harmonic import HarmonicFilterbank
from musictag.representations.mel import MelSpectrogram
from musictag.representations.waveform import Waveform

__all__ = ["EmbeddingInput", "HarmonicFilterbank", "MelSpectrogram", "Waveform"]
