"""The feature extraction of Hugging Face audio encoders, in torch, on the model's device.

Each class turns a batch of waveforms at the encoder's own rate into exactly the input its encoder was
trained on, i.e. what the encoder's ``*FeatureExtractor`` (numpy, CPU, one clip at a time) computes; a
test compares the two on random audio for every family. They hold no trainable parameters; filterbanks
are non-persistent buffers, so they follow the model to the GPU without entering checkpoints.

Families:
    ``wav2vec2`` (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, MERT): the raw waveform, normalised to zero
        mean and unit variance per chunk when the extractor's ``do_normalize`` is set.
    ``ast`` (Audio Spectrogram Transformer): Kaldi log-mel filterbank (25 ms Hann-ing windows, 10 ms
        hop), zero-padded to ``max_length`` frames (a longer chunk is refused where the extractor would
        silently cut it), then ``(x - mean) / (2 std)``.
    ``whisper``: the waveform zero-padded to ``chunk_length`` seconds, log10-mel power spectrogram
        (Slaney filterbank), floored at 8 below its maximum, ``(x + 4) / 4``.
    ``clap``: the waveform repeated and zero-padded to ``max_length_s`` (``repeatpad``), power mel
        spectrogram in dB (Slaney filterbank; HTK without norm and four stacked copies when the model fuses).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn


class Wav2Vec2Input(nn.Module):
    """``(B, S)`` → ``(B, S)``: per-chunk zero mean, unit variance (``do_normalize``), else unchanged."""

    def __init__(self, extractor: Any) -> None:
        super().__init__()
        self.do_normalize = bool(getattr(extractor, "do_normalize", True))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not self.do_normalize:
            return wave
        mean = wave.mean(dim=-1, keepdim=True)
        var = wave.var(dim=-1, keepdim=True, unbiased=False)
        return (wave - mean) / torch.sqrt(var + 1e-7)

    def model_inputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_values": features}


class ASTInput(nn.Module):
    """``(B, S)`` → ``(B, max_length, num_mel_bins)``: AST's normalised Kaldi filterbank."""

    def __init__(self, extractor: Any) -> None:
        super().__init__()
        self.sample_rate = int(extractor.sampling_rate)
        self.num_mel_bins = int(extractor.num_mel_bins)
        self.max_length = int(extractor.max_length)
        self.do_normalize = bool(extractor.do_normalize)
        self.mean, self.std = float(extractor.mean), float(extractor.std)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        from torchaudio.compliance import kaldi

        # torchaudio's Kaldi fbank takes one signal at a time (it is what the extractor calls, too)
        banks = []
        for signal in wave:
            bank = kaldi.fbank(
                signal.unsqueeze(0),
                sample_frequency=self.sample_rate,
                window_type="hanning",
                num_mel_bins=self.num_mel_bins,
            )
            if len(bank) > self.max_length:  # the extractor would cut the chunk silently
                raise ValueError(
                    f"AST takes at most {self.max_length} frames (10 ms hop), the chunk gives {len(bank)}"
                )
            banks.append(nn.functional.pad(bank, (0, 0, 0, self.max_length - len(bank))))
        features = torch.stack(banks)
        return (features - self.mean) / (self.std * 2) if self.do_normalize else features

    def model_inputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_values": features}


class WhisperInput(nn.Module):
    """``(B, S)`` → ``(B, n_mels, chunk_length · rate / hop)``: Whisper's log-mel spectrogram."""

    window: torch.Tensor  # buffers, typed for the type checker
    mel_filters: torch.Tensor

    def __init__(self, extractor: Any) -> None:
        super().__init__()
        self.n_fft, self.hop = int(extractor.n_fft), int(extractor.hop_length)
        self.n_samples = int(extractor.n_samples)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer(
            "mel_filters", torch.from_numpy(np.asarray(extractor.mel_filters, np.float32)), persistent=False
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] > self.n_samples:
            raise ValueError(
                f"Whisper takes at most {self.n_samples} samples per chunk, got {wave.shape[-1]}"
            )
        wave = nn.functional.pad(wave, (0, self.n_samples - wave.shape[-1]))
        stft = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0

    def model_inputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_features": features}

    def frames(self, n_samples: int, n_positions: int) -> int:
        """Encoder frames that cover ``n_samples`` of real audio (the rest saw only padding)."""
        return min(n_positions, math.ceil(n_samples / self.hop / 2))


class ClapInput(nn.Module):
    """``(B, S)`` → ``(B, 1 or 4, frames, n_mels)``: CLAP's mel spectrogram in dB.

    Chunks no longer than ``max_length_s`` take the extractor's short-audio path (``repeatpad`` /
    ``repeat`` / zero padding); with fusion the spectrogram is stacked four times and ``is_longer`` is
    false for every chunk (the extractor instead marks one random clip of a batch as longer, which makes
    its output depend on the batch; musictag keeps every chunk's features a function of the chunk).
    """

    window: torch.Tensor  # buffers, typed for the type checker
    mel_filters: torch.Tensor

    def __init__(self, extractor: Any, fusion: bool) -> None:
        super().__init__()
        self.n_fft, self.hop = int(extractor.fft_window_size), int(extractor.hop_length)
        self.n_samples = int(extractor.nb_max_samples)
        self.padding = str(extractor.padding)
        self.fusion = fusion
        filters = extractor.mel_filters if fusion else extractor.mel_filters_slaney
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer(
            "mel_filters", torch.from_numpy(np.asarray(filters, np.float32)), persistent=False
        )

    def _pad(self, wave: torch.Tensor) -> torch.Tensor:
        length = wave.shape[-1]
        if length > self.n_samples:
            raise ValueError(f"CLAP takes at most {self.n_samples} samples per chunk, got {length}")
        if length < self.n_samples and self.padding == "repeat":
            wave = wave.repeat(1, self.n_samples // length + 1)[:, : self.n_samples]
        elif length < self.n_samples and self.padding == "repeatpad":
            wave = wave.repeat(1, self.n_samples // length)
        return nn.functional.pad(wave, (0, self.n_samples - wave.shape[-1]))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = self._pad(wave)
        stft = torch.stft(
            wave,
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        mel = torch.clamp(self.mel_filters.T @ (stft.abs() ** 2), min=1e-10)
        features = (10.0 * torch.log10(mel)).transpose(1, 2).unsqueeze(1)
        return features.expand(-1, 4, -1, -1).contiguous() if self.fusion else features

    def model_inputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = {"input_features": features}
        if self.fusion:
            inputs["is_longer"] = torch.zeros(len(features), 1, dtype=torch.bool, device=features.device)
        return inputs
