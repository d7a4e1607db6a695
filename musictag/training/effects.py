"""The signal processing of the waveform augmentations (:mod:`musictag.training.augment`), batched.

Every function takes and returns batches ``(B, S)`` with one parameter per item (``(B,)``), on any
device: a phase vocoder (STFT 1024 / hop 256) for pitch shift and time stretch, alone or in one pass,
Butterworth magnitudes, synthetic room impulse responses, coloured noise and mixing at an SNR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

N_FFT, HOP = 1024, 256


def fast_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c ≥ n (a size the FFT is fast at)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


# --- the phase vocoder --------------------------------------------------------------------------
def _stft(audio: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(N_FFT, device=audio.device, dtype=audio.dtype)
    return torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)


def _istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    window = torch.hann_window(N_FFT, device=spec.device, dtype=spec.real.dtype)
    return torch.istft(spec, N_FFT, HOP, window=window, length=length)


def vocode(spec: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Frames of ``spec`` ``(B, F, T)`` at fractional ``positions`` ``(B, K)`` (in ``[0, T - 1]``): the
    magnitudes interpolated, the phase advanced by each frame's instantaneous frequency."""
    batch, bins, frames = spec.shape
    i0 = positions.floor().long().clamp(0, frames - 1)
    i1 = (i0 + 1).clamp(max=frames - 1)
    frac = (positions - i0).clamp(0, 1)[:, None, :]
    x0 = spec.gather(2, i0[:, None, :].expand(batch, bins, -1))
    x1 = spec.gather(2, i1[:, None, :].expand(batch, bins, -1))
    magnitude = (1 - frac) * x0.abs() + frac * x1.abs()
    omega = torch.linspace(0, math.pi * HOP, bins, device=spec.device, dtype=magnitude.dtype)[None, :, None]
    delta = x1.angle() - x0.angle() - omega
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
    advance = omega + delta
    phase = x0[:, :, :1].angle() + torch.cumsum(advance, dim=2) - advance
    return torch.polar(magnitude, phase)


def time_stretch(audio: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` played ``rate`` ``(B,)`` times as fast, pitch kept, still ``S`` samples (a faster item
    reads past its end and wraps to its start)."""
    length = audio.shape[-1]
    spec = _stft(audio)
    frames = spec.shape[-1]
    steps = torch.arange(frames, device=audio.device, dtype=audio.dtype)
    positions = torch.remainder(steps[None, :] * rate[:, None], frames - 1)
    return _istft(vocode(spec, positions), length)


def pitch_shift(audio: torch.Tensor, semitones: torch.Tensor, most: float | None = None) -> torch.Tensor:
    """``(B, S)`` shifted by ``semitones`` ``(B,)``, duration kept: stretched to ``S · 2^(n/12)`` samples
    (bins above the new Nyquist zeroed), then resampled to ``S`` by linear interpolation. ``most``: the
    largest shift of the run (sizes the work without reading the batch's shifts on the host)."""
    return shift_and_stretch(audio, semitones, torch.ones_like(semitones, dtype=audio.dtype), most)


def shift_and_stretch(
    audio: torch.Tensor, semitones: torch.Tensor, rate: torch.Tensor, most: float | None = None
) -> torch.Tensor:
    """:func:`pitch_shift` by ``semitones`` and :func:`time_stretch` by ``rate`` (both ``(B,)``) in one
    phase-vocoder pass: one STFT and one inverse instead of two each. The frames :func:`pitch_shift` reads
    at ``k / 2^(n/12)`` are read at ``rate`` times that (wrapping like :func:`time_stretch`), so the tempo
    is ``rate`` times and the pitch ``2^(n/12)`` times the input's, ``S`` samples. An item of rate 1 is
    :func:`pitch_shift`'s exactly."""
    length = audio.shape[-1]
    factor = torch.pow(2.0, semitones.to(audio.dtype) / 12)
    spec = _stft(audio)
    bins, frames = spec.shape[-2:]
    most = float(semitones.max()) if most is None else most
    longest = int(math.ceil(length * 2 ** (max(most, 0.0) / 12))) + HOP
    out_frames = longest // HOP + 1
    steps = torch.arange(out_frames, device=audio.device, dtype=audio.dtype)
    read = steps[None, :] / factor[:, None]
    rate = rate.to(audio.dtype)[:, None]
    positions = torch.where(rate == 1, read.clamp(max=frames - 1), torch.remainder(read * rate, frames - 1))
    stretched = vocode(spec, positions)
    keep = torch.arange(bins, device=audio.device)[None, :] < (bins - 1) / factor[:, None].clamp(min=1) + 1
    stretched = stretched * keep[:, :, None]
    long = _istft(stretched, out_frames * HOP)
    where = torch.arange(length, device=audio.device, dtype=audio.dtype)[None, :] * factor[:, None]
    i0 = where.floor().long().clamp(max=long.shape[-1] - 2)
    frac = where - i0
    return (1 - frac) * long.gather(1, i0) + frac * long.gather(1, i0 + 1)


# --- linear, time-invariant: frequency responses -------------------------------------------------
def butterworth(freqs: torch.Tensor, cutoff: torch.Tensor, order: int, high: bool = False) -> torch.Tensor:
    """Butterworth magnitude at ``freqs`` ``(N,)`` for per-item ``cutoff`` ``(B,)``: ``(B, N)``."""
    ratio = freqs[None, :].clamp(min=1e-3) / cutoff[:, None]
    if high:
        ratio = 1 / ratio
    return torch.rsqrt(1 + ratio.pow(2 * order))


def synthetic_rir(rt60: torch.Tensor, length: int, sample_rate: int) -> torch.Tensor:
    """``(B, length)`` room tails: Gaussian noise under an exponential whose energy falls 60 dB in
    ``rt60`` ``(B,)`` seconds, unit energy."""
    t = torch.arange(length, device=rt60.device, dtype=rt60.dtype)[None, :] / sample_rate
    envelope = torch.exp(-3 * math.log(10) * t / rt60[:, None])
    tail = torch.randn(len(rt60), length, device=rt60.device) * envelope
    return tail / tail.pow(2).sum(dim=1, keepdim=True).sqrt().clamp(min=1e-8)


def coloured_noise(shape: Sequence[int], exponent: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(B, S)`` noise whose power spectrum goes as ``1 / f^exponent`` (0 white, 1 pink, 2 brown), unit
    power per item."""
    length = shape[-1]
    spectrum = torch.fft.rfft(torch.randn(*shape, device=device))
    freqs = torch.arange(spectrum.shape[-1], device=device, dtype=torch.float32).clamp(min=1)
    spectrum = spectrum * freqs[None, :].pow(-exponent[:, None] / 2)
    noise = torch.fft.irfft(spectrum, n=length)
    noise = noise - noise.mean(dim=-1, keepdim=True)
    return noise * torch.rsqrt(noise.pow(2).mean(dim=-1, keepdim=True).clamp(min=1e-20))


def at_snr(audio: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """``noise`` scaled so that ``audio`` is ``snr_db`` above it, per item."""
    signal = audio.pow(2).mean(dim=-1, keepdim=True).clamp(min=1e-10)
    power = noise.pow(2).mean(dim=-1, keepdim=True).clamp(min=1e-20)
    return noise * (signal / power / torch.pow(10.0, snr_db[:, None] / 10)).sqrt()
