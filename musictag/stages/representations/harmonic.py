"""The learnable harmonic filterbank of the Harmonic CNN (Won et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn

from musictag.stages.registry import REPRESENTATIONS
from musictag.stages.representations.stft import power_spectrogram


def harmonic_centre_frequencies(
    sample_rate: int, n_harmonic: int = 6, semitone_scale: int = 2, low_midi: int = 24
) -> tuple[torch.Tensor, int]:
    """Centre frequencies ``(n_harmonic · level,)`` in Hz (harmonic-major) and ``level``.

    ``level`` bands per harmonic are spaced ``1/semitone_scale`` semitones apart from ``low_midi`` (C1,
    32.70 Hz) up to the note nearest ``sample_rate / (2 · n_harmonic)``, so the top harmonic stays below
    Nyquist: 128 bands (C1 to E6 in half semitones) at 16 kHz with 6 harmonics.
    """
    top_hz = sample_rate / (2 * n_harmonic)
    high_midi = int(round(12 * (math.log2(top_hz) - math.log2(440.0)) + 69))
    level = (high_midi - low_midi) * semitone_scale
    midi = torch.linspace(low_midi, high_midi, level + 1, dtype=torch.float64)[:-1]
    hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    return torch.cat([hz * (h + 1) for h in range(n_harmonic)]).float(), level


@REPRESENTATIONS.register("harmonic")
class HarmonicFilterbank(nn.Module):
    """Power STFT → harmonic triangular filters → dB → ``BatchNorm2d(n_harmonic)``: ``(B, S)`` → ``(B, H, level, T)``.

    Filter ``k`` is a triangle centred on ``f_k`` (the ``h``-th harmonic of a half-semitone-spaced
    pitch), of bandwidth ``(0.1079·f_k + 24.7) / Q`` (the ERB law) where ``Q`` is learned. Frames:
    ``n_fft=513`` (257 bins), hop ``n_fft // 2 = 256``, centred, as the reference implementation.

    References: M. Won, S. Chun, O. Nieto, X. Serra, "Data-driven harmonic filters for audio
    representation learning", ICASSP 2020.
    """

    input_ndim = 1

    f0: torch.Tensor  # buffers (bw_q a parameter when learnt), typed for the type checker
    fft_bins: torch.Tensor
    window: torch.Tensor
    bw_q: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 513,
        hop_length: int | None = None,
        n_harmonic: int = 6,
        semitone_scale: int = 2,
        bw_q: float = 1.0,
        learn_q: bool = True,
        input_bn: bool = True,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length or n_fft // 2
        self.n_harmonic = n_harmonic
        f0, self.level = harmonic_centre_frequencies(sample_rate, n_harmonic, semitone_scale)
        self.register_buffer("f0", f0, persistent=False)
        self.register_buffer(
            "fft_bins", torch.linspace(0, sample_rate // 2, n_fft // 2 + 1), persistent=False
        )
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        q = torch.tensor([float(bw_q)])
        if learn_q:
            self.bw_q = nn.Parameter(q)
        else:
            self.register_buffer("bw_q", q)
        self.bn = nn.BatchNorm2d(n_harmonic) if input_bn else nn.Identity()

    def filterbank(self) -> torch.Tensor:
        """``(n_bins, n_harmonic · level)`` triangular filters at the current ``Q``."""
        bw = ((0.1079 * self.f0 + 24.7) / self.bw_q).unsqueeze(0)
        f0 = self.f0.unsqueeze(0)
        bins = self.fft_bins.unsqueeze(1)
        up = bins * (2 / bw) + 1 - 2 * f0 / bw
        down = bins * (-2 / bw) + 1 + 2 * f0 / bw
        return torch.clamp(torch.minimum(up, down), min=0.0)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wave.device.type, enabled=False):
            spec = power_spectrogram(
                wave, self.n_fft, self.hop_length, self.n_fft, self.window
            )  # (B, n_bins, T)
            harmonic = torch.matmul(spec.transpose(1, 2), self.filterbank().float()).transpose(1, 2)
            batch, _, frames = harmonic.shape
            harmonic = harmonic.reshape(batch, self.n_harmonic, self.level, frames)
            harmonic = 10.0 * torch.log10(torch.clamp(harmonic, min=1e-10))
            return self.bn(harmonic)
