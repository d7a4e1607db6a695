from __future__ import annotations

import torch
import torchaudio

from musictag.stages.representations import MelSpectrogram
from musictag.testing import sine


def test_mel_matches_torchaudio_reference_front_end():
    """Same numbers as torchaudio's MelSpectrogram + AmplitudeToDB with the sota settings."""
    wave = torch.randn(2, 16000) * 0.1
    ours = MelSpectrogram(n_mels=96, input_bn=False)(wave)
    reference = torchaudio.transforms.AmplitudeToDB()(
        torchaudio.transforms.MelSpectrogram(
            16000, n_fft=512, f_min=0.0, f_max=8000.0, hop_length=256, n_mels=96
        )(wave)
    )
    assert ours.shape == (2, 1, 96, 16000 // 256 + 1)
    torch.testing.assert_close(ours[:, 0], reference, rtol=1e-4, atol=1e-3)


def test_a_tone_peaks_in_its_mel_band():
    mel = MelSpectrogram(n_mels=128, input_bn=False)
    spec = mel(torch.from_numpy(sine(1000.0, 1.0)).unsqueeze(0))[0, 0]
    peak_band = int(spec.mean(dim=1).argmax())
    centre_hz = torch.linspace(0, 2595 * torch.log10(torch.tensor(1 + 8000 / 700)), 130)[peak_band + 1]
    centre_hz = 700 * (10 ** (centre_hz / 2595) - 1)
    assert abs(float(centre_hz) - 1000.0) < 60.0


def test_silence_is_floored_at_minus_100_db():
    spec = MelSpectrogram(input_bn=False)(torch.zeros(1, 4000))
    assert torch.all(spec == -100.0)
