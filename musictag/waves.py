"""Waveform operations that run on the model's device, shared by the module and the datasets."""

from __future__ import annotations

import torch

#: int16 full scale: the cache stores samples as int16, the network takes float32 in [-1, 1).
INT16_SCALE = 32768.0


def apply_wave_augment(
    audio: torch.Tensor, gain: torch.Tensor, noise_snr_db: torch.Tensor, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, S)`` float audio × ``gain`` ``(B,)``, plus white noise at ``noise_snr_db`` ``(B,)`` (``inf``:
    none). Branch-free, so it never waits for the host; ``noise`` defaults to ``randn`` on the device."""
    audio = audio * gain.to(audio.dtype)[:, None]
    power = audio.pow(2).mean(dim=-1, keepdim=True).clamp(min=1e-10)
    scale = (power / torch.pow(10.0, noise_snr_db.to(audio.dtype)[:, None] / 10)).sqrt()  # inf dB → 0
    if noise is None:
        noise = torch.randn_like(audio)
    return audio + noise * scale


def to_float(audio: torch.Tensor) -> torch.Tensor:
    """int16 samples → float32 waveform in [-1, 1) (float input is returned as it is)."""
    return audio.float() / INT16_SCALE if audio.dtype == torch.int16 else audio
