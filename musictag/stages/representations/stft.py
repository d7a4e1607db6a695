"""The STFT every spectrogram representation starts from."""

from __future__ import annotations

import torch


def power_spectrogram(
    wave: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int,
    window: torch.Tensor,
    power: float = 2.0,
    center: bool = True,
) -> torch.Tensor:
    """``(B, S)`` → ``|STFT|^power`` ``(B, n_fft // 2 + 1, S // hop_length + 1)``, in float32.

    Centred, reflect-padded frames, one-sided, not normalised: torchaudio's ``Spectrogram`` defaults,
    so that published front ends are reproduced exactly. ``center=False`` takes the frames as they lie
    in the input, ``1 + (S - n_fft) // hop_length`` of them (the caller has cut the input with the
    padding the frames need, e.g. a patch of a whole file's centred spectrogram).
    """
    if wave.is_meta:  # a shape-only build (e.g. counting a design's parameters): torch has no meta STFT
        frames = wave.shape[-1] // hop_length + 1
        return wave.new_empty((*wave.shape[:-1], n_fft // 2 + 1, frames), dtype=torch.float32)
    spec = torch.stft(
        wave.float(), n_fft, hop_length, win_length, window,
        center=center, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
    ).abs()  # fmt: skip
    return spec if power == 1.0 else spec.pow(power)
