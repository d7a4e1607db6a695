"""Log-mel spectrogram computed inside the model, on the model's device."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import torch
import torchaudio.functional as AF
from torch import nn

from musictag.stages.registry import REPRESENTATIONS, ConfigError
from musictag.stages.representations.stft import power_spectrogram


@REPRESENTATIONS.register("mel")
class MelSpectrogram(nn.Module):
    """Mel spectrogram → compression → ``BatchNorm2d(1)``: ``(B, S)`` → ``(B, 1, n_mels, T)``.

    The defaults are the front end of sota-music-tagging-models (Won et al. 2020): 16 kHz, n_fft 512,
    hop 256, 0–8 kHz, HTK mel scale without area normalisation, ``AmplitudeToDB`` (power, no top_db) and
    an input BatchNorm. ``T = S // hop_length + 1`` (centred, reflect-padded frames, as torchaudio's
    ``MelSpectrogram``). The window and filterbank are non-persistent buffers: they follow the module to
    the device but are recomputed from the arguments rather than stored in checkpoints.
    The transform runs in float32 even under mixed precision, where dB of small powers would underflow.

    Args:
        power: 2 for a power spectrogram, 1 for magnitudes.
        mel_scale, norm: ``htk`` / ``None`` (torchaudio's defaults), or ``slaney`` / ``slaney`` (librosa's
            defaults, the musicnn library's front end).
        compression: ``db`` (``10·log10(max(x, amin))``), ``log1p`` (``log(1 + log1p_scale·x)``, Pons et al.
            2016), ``log10_1p`` (``log10(1 + log1p_scale·x)``, the musicnn library) or ``none``.
        float16: round the mel powers to float16 before the compression (the musicnn library casts its
            spectrograms to float16; numpy < 2 then compresses them in float32).
        mel_exponent: raise the mel powers to this exponent before the compression (Choi et al.'s
            Keras preprocessing squares librosa's mel power spectrogram once more: 2.0).
        top_db: clamp the compressed values of each example to at most ``top_db`` below its maximum
            (librosa's old ``logamplitude`` default: 80 dB); ``db`` compression only; None: no clamp.
        center: centred, reflect-padded frames (``S // hop + 1``); ``False``: the frames as they lie in the
            input (``1 + (S - n_fft) // hop``), for chunks cut from a whole file's zero-padded frames
            (chunk mode ``patches``).
        input_bn: a BatchNorm2d(1) on the result (Won et al. 2020), learned with the network.
        window: ``hann`` (default) or ``blackman_harris`` (the 4-term Blackman-Harris window, periodic,
            of Pons et al. 2016).
        standardize: z-score each band with the mean and standard deviation of the compressed bands over
            the whole training set (Pons et al. 2016): buffers kept in checkpoints, computed once before
            training starts (:func:`musictag.training.standardize.fit_band_statistics`); until then the
            identity.
        freq_masks, freq_mask_width, time_masks, time_mask_width: SpecAugment (Park et al. 2019) in
            training only: that many bands / frame ranges of random width up to the given width are set
            to 0 (the mean after the input BatchNorm). Off by default.
    """

    input_ndim = 1

    window: torch.Tensor  # buffers, typed for the type checker
    fb: torch.Tensor
    band_mean: torch.Tensor
    band_std: torch.Tensor
    statistics_fitted: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 256,
        win_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = 8000.0,
        n_mels: int = 128,
        mel_scale: str = "htk",
        norm: str | None = None,
        power: float = 2.0,
        compression: Literal["db", "log1p", "log10_1p", "none"] = "db",
        log1p_scale: float = 10000.0,
        amin: float = 1e-10,
        input_bn: bool = True,
        freq_masks: int = 0,
        freq_mask_width: int = 0,
        time_masks: int = 0,
        time_mask_width: int = 0,
        float16: bool = False,
        center: bool = True,
        mel_exponent: float = 1.0,
        top_db: float | None = None,
        window: Literal["hann", "blackman_harris"] = "hann",
        standardize: bool = False,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length or n_fft
        self.n_mels = n_mels
        if compression not in ("db", "log1p", "log10_1p", "none"):
            raise ConfigError(
                f"mel: unknown compression {compression!r}; use 'db', 'log1p', 'log10_1p' or 'none'"
            )
        self.float16, self.center = float16, center
        if top_db is not None and (compression != "db" or top_db <= 0):
            raise ConfigError(f"mel: top_db {top_db} needs compression 'db' and a positive value")
        self.mel_exponent, self.top_db = mel_exponent, top_db
        self.power = power
        self.compression = compression
        self.log1p_scale = log1p_scale
        self.amin = amin
        f_max = sample_rate / 2 if f_max is None else f_max
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ConfigError(
                f"mel: need 0 <= f_min < f_max <= sample_rate/2, got f_min={f_min}, f_max={f_max}"
            )
        with warnings.catch_warnings(), torch.device("cpu"):
            # 128 HTK bands over 257 bins leave the lowest bands empty: that is the published
            # Short-chunk CNN front end, so torchaudio's warning about it is noise here. (Computed on
            # the CPU: torchaudio inspects its values, which a model built on the meta device has not.)
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
            fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm, mel_scale)
        if window not in WINDOWS:
            raise ConfigError(f"mel: unknown window {window!r}; use {' or '.join(map(repr, WINDOWS))}")
        self.window_name = window
        self.register_buffer("window", WINDOWS[window](self.win_length), persistent=False)
        self.standardize = standardize
        if standardize:  # persistent: the training set's statistics travel with the weights
            self.register_buffer("band_mean", torch.zeros(n_mels, 1))
            self.register_buffer("band_std", torch.ones(n_mels, 1))
            self.register_buffer("statistics_fitted", torch.tensor(False))
        self.register_buffer("fb", fb.to(torch.get_default_device()), persistent=False)  # (n_freqs, n_mels)
        self.bn = nn.BatchNorm2d(1) if input_bn else nn.Identity()
        self.masks = ((2, freq_masks, freq_mask_width), (3, time_masks, time_mask_width))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        device_type = "cpu" if wave.is_meta else wave.device.type  # autocast knows no meta device
        with torch.autocast(device_type, enabled=False):
            mel = self.compressed(wave)
            if self.standardize:
                mel = (mel - self.band_mean) / self.band_std
            out = self.bn(mel.unsqueeze(1))
            return spec_augment(out, self.masks) if self.training else out

    def compressed(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` → the compressed mel bands ``(B, n_mels, T)``, before any standardisation."""
        device_type = "cpu" if wave.is_meta else wave.device.type
        with torch.autocast(device_type, enabled=False):
            spec = power_spectrogram(
                wave, self.n_fft, self.hop_length, self.win_length, self.window, self.power, self.center
            )
            mel = torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)  # (B, n_mels, T)
            if self.float16:
                mel = mel.half().float()
            if self.mel_exponent != 1.0:
                mel = mel.pow(self.mel_exponent)
            if self.compression == "db":
                mel = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
                if self.top_db is not None:
                    peak = mel.amax(dim=(-2, -1), keepdim=True)
                    mel = torch.maximum(mel, peak - self.top_db)
            elif self.compression == "log1p":
                mel = torch.log1p(self.log1p_scale * mel)
            elif self.compression == "log10_1p":
                mel = torch.log10(1.0 + self.log1p_scale * mel)
            return mel

    def set_band_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise with these per-band statistics ``(n_mels,)`` from now on (a band that never varied
        keeps a standard deviation of 1)."""
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.band_mean.copy_(mean.reshape(-1, 1))
        self.band_std.copy_(std.reshape(-1, 1))
        self.statistics_fitted.fill_(True)

    def n_frames(self, n_samples: int) -> int:
        if not self.center:
            return 1 + (n_samples - self.n_fft) // self.hop_length
        return n_samples // self.hop_length + 1

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"n_mels={self.n_mels}, compression={self.compression}, frames/s={self.sample_rate / self.hop_length:.2f}"
            + (f", window={self.window_name}" if self.window_name != "hann" else "")
            + (", standardize=True" if self.standardize else "")
        )


def blackman_harris_window(length: int) -> torch.Tensor:
    """The periodic 4-term Blackman-Harris window (-92 dB side lobes; Harris 1978)."""
    return torch.signal.windows.general_cosine(length, a=[0.35875, 0.48829, 0.14128, 0.01168], sym=False)


WINDOWS: dict[str, Callable[[int], torch.Tensor]] = {
    "hann": torch.hann_window,
    "blackman_harris": blackman_harris_window,
}


def spec_augment(spec: torch.Tensor, masks: tuple[tuple[int, int, int], ...]) -> torch.Tensor:
    """Zero ``count`` random ranges of up to ``width`` along ``axis`` of each example of ``(B, C, F, T)``."""
    for axis, count, width in masks:
        if count <= 0 or width <= 0:
            continue
        size = spec.shape[axis]
        positions = torch.arange(size, device=spec.device)
        for _ in range(count):
            widths = torch.randint(0, width + 1, (spec.shape[0], 1), device=spec.device)
            starts = (torch.rand(spec.shape[0], 1, device=spec.device) * (size - widths + 1)).long()
            hit = (positions >= starts) & (positions < starts + widths)  # (B, size)
            shape = [spec.shape[0], 1, 1, 1]
            shape[axis] = size
            spec = spec.masked_fill(hit.view(shape), 0.0)
    return spec
