"""The device augmentation (issue 25): each transform does what it says, labels follow, mixup mixes."""

from __future__ import annotations

import math

import pytest
import torch

from musictag import TaggingModule
from musictag.testing import TINY_SHORT_CHUNK
from musictag.training import augment as A
from musictag.types import ConfigError

SR, S = 16000, 59049


def _frequency(x: torch.Tensor) -> float:
    """The strongest frequency of ``x`` (Hann window, 8× zero-padded FFT, parabolic peak)."""
    spectrum = torch.fft.rfft(x * torch.hann_window(len(x)), n=8 * len(x)).abs()
    k = int(spectrum[1:-1].argmax()) + 1
    a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (8 * len(x)))


def _sine(hz: float, n: int = S) -> torch.Tensor:
    return torch.sin(2 * math.pi * hz * torch.arange(n) / SR)


@pytest.mark.parametrize("semitones", [3.0, -5.0, 7.0])
def test_pitch_shift_moves_a_sine_by_two_to_the_n_over_12(semitones):
    shifted = A.pitch_shift(_sine(440.0)[None], torch.tensor([semitones]))[0]
    assert shifted.shape == (S,)
    assert _frequency(shifted[2000:-2000]) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)


def _onsets(x: torch.Tensor) -> list[int]:
    envelope = x.pow(2).unfold(0, 256, 128).mean(1).sqrt()
    above = envelope > 0.2 * envelope.max()
    return [i * 128 for i in range(1, len(envelope)) if above[i] and not above[i - 1]]


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_scales_onset_spacing_by_one_over_rate_and_keeps_pitch(rate):
    bursts = torch.zeros(S)
    tone = _sine(1000.0, 1600) * torch.hann_window(1600)
    for start in range(0, S - 2000, 8000):  # a 1 kHz burst every 0.5 s
        bursts[start : start + 1600] = tone
    stretched = A.time_stretch(bursts[None], torch.tensor([rate]))[0]
    onsets = [o for o in _onsets(stretched) if o < S / rate - 4000]  # before a faster item wraps
    assert len(onsets) >= 5
    assert (onsets[-1] - onsets[0]) / (len(onsets) - 1) == pytest.approx(8000 / rate, rel=0.03)
    steady = A.time_stretch(_sine(440.0)[None], torch.tensor([rate]))[0]
    assert _frequency(steady[2000:20000]) == pytest.approx(440.0, rel=0.01)


@pytest.mark.parametrize("semitones, rate", [(3.0, 1.25), (-2.0, 0.8)])
def test_shift_and_stretch_in_one_pass_moves_the_pitch_and_scales_the_onsets(semitones, rate):
    bursts = torch.zeros(S)
    tone = _sine(1000.0, 1600) * torch.hann_window(1600)
    for start in range(0, S - 2000, 8000):
        bursts[start : start + 1600] = tone
    both = A.shift_and_stretch(bursts[None], torch.tensor([semitones]), torch.tensor([rate]))[0]
    assert both.shape == (S,)
    onsets = [o for o in _onsets(both) if o < S / rate - 4000]
    assert len(onsets) >= 5
    assert (onsets[-1] - onsets[0]) / (len(onsets) - 1) == pytest.approx(8000 / rate, rel=0.03)
    steady = A.shift_and_stretch(_sine(440.0)[None], torch.tensor([semitones]), torch.tensor([rate]))[0]
    assert _frequency(steady[2000:20000]) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)
    chain = A.DeviceAugment({"pitch_shift": {"p": 1.0}, "time_stretch": {"p": 1.0}}, SR)
    torch.manual_seed(0)
    out, applied = chain(_sine(440.0)[None].repeat(3, 1))
    torch.manual_seed(0)  # the chain's draws: chosen, semitones, chosen, rates
    _, shifts, _, rates = torch.rand(3), -2 + 4 * torch.rand(3), torch.rand(3), 0.8 + 0.45 * torch.rand(3)
    expected = A.shift_and_stretch(_sine(440.0)[None].repeat(3, 1), shifts, rates, 2.0)
    torch.testing.assert_close(out, expected)
    assert applied["pitch_shift"].all() and applied["time_stretch"].all()


def test_lowpass_takes_20_db_off_above_its_cutoff():
    chain = A.DeviceAugment({"lowpass": {"p": 1, "cutoff_hz": [2000, 2000]}}, SR)
    torch.manual_seed(0)
    noise = torch.randn(4, S)
    filtered, applied = chain(noise)
    assert applied["lowpass"].all()
    freqs = torch.fft.rfftfreq(S, 1 / SR)
    before, after = torch.fft.rfft(noise).abs() ** 2, torch.fft.rfft(filtered).abs() ** 2
    above, below = freqs > 2000 * 1.25, freqs < 1000
    assert 10 * math.log10(after[:, above].sum() / before[:, above].sum()) <= -20
    assert 10 * math.log10(after[:, below].sum() / before[:, below].sum()) == pytest.approx(0, abs=0.1)


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_reverb_decays_60_db_in_its_rt60(rt60):
    chain = A.DeviceAugment({"reverb": {"p": 1, "rt60_s": [rt60, rt60], "wet": [1, 1]}}, SR)
    impulse = torch.zeros(1, S)
    impulse[0, 0] = 1
    torch.manual_seed(0)
    response = chain(impulse)[0][0]
    energy = torch.flip(torch.cumsum(torch.flip(response**2, [0]), 0), [0])  # Schroeder integral
    decay_db = 10 * torch.log10(energy / energy[0])
    t5, t35 = int((decay_db > -5).sum()), int((decay_db > -35).sum())
    assert (t35 - t5) / SR * 2 == pytest.approx(rt60, rel=0.2)  # T30, extrapolated to 60 dB


def test_pink_noise_falls_3_db_per_octave_and_brown_6():
    torch.manual_seed(0)
    freqs = torch.fft.rfftfreq(S, 1 / SR)
    for exponent, slope in ((1.0, -3.01), (2.0, -6.02), (0.0, 0.0)):
        noise = A.coloured_noise((8, S), torch.full((8,), exponent), torch.device("cpu"))
        power = (torch.fft.rfft(noise).abs() ** 2).mean(0)
        bands = [
            10 * math.log10(power[(freqs >= f) & (freqs < 2 * f)].mean())
            for f in (125, 250, 500, 1000, 2000, 4000)
        ]
        for low, high in zip(bands, bands[1:], strict=False):
            assert high - low == pytest.approx(slope, abs=1.0)


def test_noise_background_polarity_and_shift_do_what_they_say(tmp_path):
    from musictag.audio import write_audio

    write_audio(tmp_path / "cafe.wav", (0.1 * _sine(300.0, 2 * S)).numpy(), SR)
    torch.manual_seed(0)
    audio = torch.randn(6, S) * 0.1
    for config, check in (
        ({"noise": {"p": 1, "snr_db": [10, 10], "colours": ["pink"]}}, 10.0),
        ({"background": {"p": 1, "dir": str(tmp_path), "snr_db": [5, 5]}}, 5.0),
    ):
        chain = A.DeviceAugment(config, SR)
        chain.prepare()
        added = chain(audio)[0] - audio
        snr = 10 * torch.log10(audio.pow(2).mean(1) / added.pow(2).mean(1))
        torch.testing.assert_close(snr, torch.full((6,), check), atol=1e-3, rtol=0)
    flipped = A.DeviceAugment({"polarity": {"p": 1}}, SR)(audio)[0]
    torch.testing.assert_close(flipped, -audio)
    shifted = A.DeviceAugment({"time_shift": {"p": 1, "max_s": 0.01}}, SR)(audio)[0]
    for row, original in zip(
        shifted, audio, strict=True
    ):  # a circular shift: some roll gives the original back
        lags = [k for k in range(-160, 161) if torch.equal(torch.roll(original, k), row)]
        assert len(lags) == 1


def test_an_item_not_chosen_is_left_as_it_was():
    config = {name: {"p": 0.15} for name in A.TRANSFORMS if name != "background"}
    torch.manual_seed(3)
    audio = torch.randn(16, S) * 0.1
    out, applied = A.DeviceAugment(config, SR)(audio)
    untouched = ~torch.stack(list(applied.values())).any(0)
    assert out.shape == audio.shape and untouched.any()
    torch.testing.assert_close(out[untouched], audio[untouched], atol=1e-5, rtol=0)


def test_mixup_mixes_inputs_and_targets_as_stated():
    torch.manual_seed(0)
    audio, target = torch.randn(8, 100), (torch.rand(8, 5) > 0.5).float()
    weight = torch.ones(8, 5)
    weight[0, 1] = 0
    for rule in ("mix", "max"):
        torch.manual_seed(1)
        mixed, y, w, lam, perm = A.mixup(audio, target, weight, p=1.0, alpha=0.4, rule=rule)
        torch.testing.assert_close(mixed, lam[:, None] * audio + (1 - lam[:, None]) * audio[perm])
        expected = (
            torch.maximum(target, target[perm])
            if rule == "max"
            else lam[:, None] * target + (1 - lam[:, None]) * target[perm]
        )
        torch.testing.assert_close(y, expected)
        assert w is not None and w[0, 1] == 0 and w[perm.tolist().index(0), 1] == 0
        assert ((lam > 0) & (lam < 1)).all()
    _, y, _, lam, _ = A.mixup(audio, target, None, p=0.0, alpha=0.4)
    assert (lam == 1).all() and torch.equal(y, target)


def test_label_rules_drop_or_set_the_tags_a_transform_changes():
    tags = ["fast", "slow", "guitar", "male"]
    rules = A.LabelRules(
        {
            "time_stretch": {"tags": ["fast", "slow"]},
            "pitch_shift": {"tags": "male", "action": "set", "value": 0},
        },
        tags,
        ["time_stretch", "pitch_shift"],
    )
    target = torch.ones(3, 4)
    applied = {
        "time_stretch": torch.tensor([True, False, False]),
        "pitch_shift": torch.tensor([False, True, False]),
    }
    new, weight = rules.apply(target, applied)
    assert weight is not None and weight.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert new.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]]
    module = TaggingModule(
        n_tags=4,
        tag_names=tags,
        augment={"time_stretch": {}, "labels": {"time_stretch": {"tags": ["fast"]}}},
        **TINY_SHORT_CHUNK,
    )
    loss_all = module.training_loss(torch.randn(2, 59049), torch.ones(2, 4))
    assert loss_all.ndim == 0


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        (
            {"pitch_shift": {"semitones": [3, -3]}},
            "augment.pitch_shift.semitones: [3.0, -3.0] is not a range",
        ),
        ({"time_stretch": {"rate": [0.1, 1.0]}}, "augment.time_stretch.rate: [0.1, 1.0] must lie within"),
        ({"reverb": {"p": 2}}, "augment.reverb.p: 2 is not a probability"),
        ({"flanger": {}}, "augment: unknown transform 'flanger'"),
        ({"noise": {"colours": ["blue"]}}, "augment.noise.colours"),
        ({"time_stretch": {}, "labels": {"time_stretch": {"tags": ["fastest"]}}}, "unknown tag 'fastest'"),
        ({"labels": {"reverb": {"tags": ["fast"]}}}, "augment.labels: 'reverb' is no transform of this run"),
        ({"mixup": {"target": "min"}}, "augment.mixup.target: 'min'"),
        ("everything", "augment: 'everything' is no set"),
    ],
)
def test_a_bad_augment_config_is_one_line_naming_it(augment, message):
    with pytest.raises(ConfigError) as err:
        TaggingModule(n_tags=2, tag_names=["fast", "slow"], augment=augment, **TINY_SHORT_CHUNK)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_folder_is_named_at_fit_start(tmp_path):
    chain = A.DeviceAugment({"reverb": {"ir_dir": str(tmp_path / "irs")}}, SR)
    with pytest.raises(ConfigError, match=r"augment.reverb.ir_dir: .*irs: no such folder"):
        chain.prepare()


def test_the_default_set_runs_on_a_batch_and_a_module_without_augment_is_unchanged():
    torch.manual_seed(0)
    out, applied = A.DeviceAugment("default", SR)(torch.randn(4, S) * 0.1)
    assert out.shape == (4, S) and torch.isfinite(out).all() and set(applied) == set(A.DEFAULT_SET)
    assert not TaggingModule(n_tags=2, **TINY_SHORT_CHUNK).device_augment
