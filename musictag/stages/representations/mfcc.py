"""MFCCs with deltas and delta-deltas, computed inside the model on its device (the classical frames)."""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn

from musictag.guards import at_least
from musictag.stages.registry import REPRESENTATIONS
from musictag.stages.representations.mel import MelSpectrogram


@REPRESENTATIONS.register("mfcc")
class MFCC(nn.Module):
    """Log-mel → DCT → MFCCs, with their deltas and delta-deltas: ``(B, S)`` → ``(B, 1, 3·n_mfcc, T)``.

    The mel spectrogram is the ``mel`` stage (power, HTK scale, ``10·log10`` with an 80 dB floor below
    each chunk's peak, as torchaudio's ``MFCC``), no input BatchNorm: nothing here is learned. The DCT is
    type II, orthonormal, keeping the first ``n_mfcc`` coefficients (coefficient 0 included: the
    codebook standardises every dimension before it measures distances). Deltas are torchaudio's
    regression over ``delta_width`` frames (librosa's default 9), applied once for the deltas and again
    for the delta-deltas. ``T = S // hop_length + 1``; 16 ms frames by default.

    References: the lecture's classical tagging baseline; MFCCs as in S. Davis, P. Mermelstein,
    'Comparison of parametric representations for monosyllabic word recognition', IEEE TASSP 1980.
    """

    input_ndim = 1

    dct: torch.Tensor  # (n_mels, n_mfcc), a non-persistent buffer

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mfcc: int = 20,
        n_mels: int = 40,
        n_fft: int = 512,
        hop_length: int = 256,
        f_max: float | None = 8000.0,
        deltas: bool = True,
        delta_width: int = 9,
    ) -> None:
        super().__init__()
        at_least("mfcc: n_mfcc", n_mfcc, 1)
        at_least("mfcc: n_mels", n_mels, n_mfcc)  # a DCT keeps at most as many coefficients as bands
        at_least("mfcc: delta_width", delta_width, 3)
        self.mel = MelSpectrogram(
            sample_rate, n_fft, hop_length, f_max=f_max, n_mels=n_mels, top_db=80.0, input_bn=False
        )
        self.n_mfcc, self.deltas, self.delta_width = n_mfcc, deltas, delta_width
        self.register_buffer("dct", AF.create_dct(n_mfcc, n_mels, norm="ortho"), persistent=False)

    @property
    def n_features(self) -> int:
        """Values per frame: ``n_mfcc``, times 3 with the deltas."""
        return self.n_mfcc * (3 if self.deltas else 1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mel = self.mel(wave).squeeze(1)  # (B, n_mels, T), float32 (the mel stage turns autocast off)
        mfcc = torch.matmul(mel.transpose(-1, -2), self.dct.float()).transpose(-1, -2)  # (B, n_mfcc, T)
        if self.deltas:
            delta = AF.compute_deltas(mfcc, self.delta_width)
            mfcc = torch.cat([mfcc, delta, AF.compute_deltas(delta, self.delta_width)], dim=1)
        return mfcc.unsqueeze(1)

    def n_frames(self, n_samples: int) -> int:
        return self.mel.n_frames(n_samples)
