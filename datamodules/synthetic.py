"""The built-in demo corpus: synthesized music whose tags the audio really determines.

Each clip is a short arrangement at one tempo, mixed from up to four parts:

- a lead melody played by one of four synthetic instruments, each a distinct spectral envelope and
  attack: ``flute`` (nearly pure tone, breathy, vibrato), ``clarinet`` (odd harmonics), ``brass``
  (all harmonics, bright) or ``guitar`` (plucked: sharp attack, fast-decaying upper harmonics); in a
  ``high`` (A4–A5) or ``low`` (A2–A3) register. One clip in five has no lead (and no register tag);
- ``drums``: kick and snare on the beats, hi-hat on the eighth notes;
- ``bass``: a low line on the beats;
- ``pad``: sustained triads;

at a ``fast`` (130–160 BPM) or ``slow`` (60–80 BPM) tempo that sets the note and drum rate, and with
background noise at 6–12 dB SNR when tagged ``noisy``. Every clip has at least one rhythmic part, so its
tempo is audible. A clip is a pure function of ``(seed, index)``: the corpus is the same on every
machine and independent of how it is generated.

Splits: the last ``test_fraction`` of clips are test, the ``valid_fraction`` before them valid.
The corpus is generated on first use into ``root`` (default ``$MUSICTAG_DATA`` or
``~/.cache/musictag``, under ``synthetic/<settings>``) as a manifest plus an audio cache, the same path
every corpus takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datamodules.base import TaggingDataModule
from datamodules.cache import AudioCache
from datamodules.manifest import Manifest
from musictag.guards import at_least
from musictag.types import Pathlike

TAGS = [
    "flute",
    "clarinet",
    "brass",
    "guitar",
    "drums",
    "bass",
    "pad",
    "fast",
    "slow",
    "high",
    "low",
    "noisy",
]
LEADS = ("flute", "clarinet", "brass", "guitar")
GENERATOR_VERSION = 1
PENTATONIC = np.array([0, 2, 4, 7, 9])


def midi_to_hz(note: float | np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def _envelope(n: int, sample_rate: int, attack: float, release: float, decay: float = 0.0) -> np.ndarray:
    """Linear attack, optional exponential decay (per second), linear release to zero."""
    t = np.arange(n) / sample_rate
    env = np.minimum(1.0, t / max(attack, 1e-4))
    if decay > 0:
        env *= np.exp(-decay * t)
    n_release = min(n, int(release * sample_rate))
    if n_release > 0:
        env[n - n_release :] *= np.linspace(1.0, 0.0, n_release)
    return env


def _harmonic_tone(
    f0: float,
    n: int,
    sample_rate: int,
    amps: np.ndarray,
    rng: np.random.Generator,
    vibrato: float = 0.0,
    harmonic_decay: np.ndarray | None = None,
) -> np.ndarray:
    """Additive tone: sum of harmonics ``k·f0`` (below 0.45·sr) with amplitudes ``amps[k-1]``."""
    t = np.arange(n) / sample_rate
    freq = f0 * (1.0 + vibrato * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t))
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    k = np.arange(1, len(amps) + 1)
    keep = k * f0 < 0.45 * sample_rate
    k, amps = k[keep], amps[keep]
    partials = np.sin(np.outer(k, phase) + rng.uniform(0, 2 * np.pi, (len(k), 1)))
    if harmonic_decay is not None:
        partials *= np.exp(-np.outer(harmonic_decay[: len(k)], t))
    return amps @ partials


def _lead_note(instrument: str, f0: float, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    k = np.arange(1, 41, dtype=np.float64)
    if instrument == "flute":
        tone = _harmonic_tone(f0, n, sample_rate, np.array([1.0, 0.22, 0.06]), rng, vibrato=0.006)
        breath = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same") * 0.08
        return (tone + breath) * _envelope(n, sample_rate, 0.06, 0.05)
    if instrument == "clarinet":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.02 / k)
        return _harmonic_tone(f0, n, sample_rate, amps, rng) * _envelope(n, sample_rate, 0.03, 0.04)
    if instrument == "brass":
        amps = 1.0 / k**0.8
        return _harmonic_tone(f0, n, sample_rate, amps, rng, vibrato=0.002) * _envelope(
            n, sample_rate, 0.05, 0.04
        )
    if instrument == "guitar":
        amps = 1.0 / k**1.1
        tone = _harmonic_tone(f0, n, sample_rate, amps, rng, harmonic_decay=2.0 + 1.5 * k)
        return tone * _envelope(n, sample_rate, 0.002, 0.02, decay=2.5)
    raise ValueError(f"unknown instrument {instrument!r}")


def _noise_burst(
    n: int, sample_rate: int, decay: float, rng: np.random.Generator, highpass: bool
) -> np.ndarray:
    noise = rng.standard_normal(n)
    if highpass:
        noise = np.diff(noise, prepend=0.0)
    return noise * np.exp(-decay * np.arange(n) / sample_rate)


def _place(track: np.ndarray, sound: np.ndarray, start: int) -> None:
    end = min(len(track), start + len(sound))
    if end > start:
        track[start:end] += sound[: end - start]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-9)


def synthesize_clip(
    index: int, seed: int = 0, sample_rate: int = 16000, seconds: float = 6.0
) -> tuple[np.ndarray, list[str]]:
    """Clip ``index`` of the corpus with ``seed``: ``(float32 audio in [-1, 1], tags)``."""
    rng = np.random.default_rng([seed, index, GENERATOR_VERSION])
    n = int(round(seconds * sample_rate))
    tags: list[str] = []

    fast = rng.random() < 0.5
    bpm = rng.uniform(130, 160) if fast else rng.uniform(60, 80)
    tags.append("fast" if fast else "slow")
    beat = int(round(60.0 / bpm * sample_rate))
    eighth = beat // 2
    offset = int(rng.integers(0, eighth))

    lead = rng.choice(len(LEADS) + 1)
    has_lead = lead < len(LEADS)
    has_drums = rng.random() < 0.5
    has_bass = rng.random() < 0.45
    has_pad = rng.random() < 0.35
    if not (has_lead or has_drums or has_bass):
        has_drums = True  # the tempo must be audible
    parts: list[tuple[np.ndarray, float]] = []

    if has_lead:
        instrument = LEADS[lead]
        high = rng.random() < 0.5
        tags += [instrument, "high" if high else "low"]
        base = 69 if high else 45
        melody = np.zeros(n)
        position = offset
        while position < n:
            steps = int(rng.choice([1, 1, 2]))
            length = steps * eighth
            if position == offset or rng.random() > 0.1:  # one note in ten is a rest, never the first
                note = base + PENTATONIC[rng.integers(0, 5)] + 12 * int(rng.integers(0, 2))
                _place(
                    melody,
                    _lead_note(instrument, float(midi_to_hz(note)), length, sample_rate, rng),
                    position,
                )
            position += length
        parts.append((melody, 1.0))

    if has_drums:
        tags.append("drums")
        drums = np.zeros(n)
        kick_len = int(0.2 * sample_rate)
        t = np.arange(kick_len) / sample_rate
        kick = np.sin(2 * np.pi * np.cumsum(50 + 90 * np.exp(-t * 30)) / sample_rate) * np.exp(-t * 18)
        for i, start in enumerate(range(offset, n, beat)):
            _place(
                drums,
                kick
                if i % 2 == 0
                else 0.7 * _noise_burst(int(0.15 * sample_rate), sample_rate, 25, rng, False),
                start,
            )
        for start in range(offset, n, eighth):
            _place(drums, 0.25 * _noise_burst(int(0.04 * sample_rate), sample_rate, 90, rng, True), start)
        parts.append((drums, 0.8))

    if has_bass:
        tags.append("bass")
        bass = np.zeros(n)
        amps = 1.0 / np.arange(1, 9)
        for start in range(offset, n, beat):
            note = 33 + PENTATONIC[rng.integers(0, 5)]
            tone = _harmonic_tone(float(midi_to_hz(note)), beat, sample_rate, amps, rng)
            _place(bass, tone * _envelope(beat, sample_rate, 0.01, 0.03, decay=3.0), start)
        parts.append((bass, 0.6))

    if has_pad:
        tags.append("pad")
        pad = np.zeros(n)
        span = 2 * sample_rate
        for start in range(0, n, span):
            root = 52 + int(rng.integers(0, 8))
            chord = sum(
                _harmonic_tone(float(midi_to_hz(root + step)), span, sample_rate, np.array([1.0, 0.3]), rng)
                for step in (0, 4, 7)
            )
            _place(pad, chord * _envelope(span, sample_rate, 0.3, 0.3), start)
        parts.append((pad, 0.5))

    mix = sum(part / _rms(part) * gain * 10 ** (rng.uniform(-3, 3) / 20) for part, gain in parts)
    if rng.random() < 0.3:
        tags.append("noisy")
        snr_db = rng.uniform(6, 12)
        mix = mix + rng.standard_normal(n) * _rms(mix) * 10 ** (-snr_db / 20)
    mix = mix / (np.abs(mix).max() + 1e-9) * rng.uniform(0.4, 0.9)
    return mix.astype(np.float32), sorted(tags, key=TAGS.index)


def split_of(index: int, n_clips: int, valid_fraction: float, test_fraction: float) -> str:
    n_test = int(round(n_clips * test_fraction))
    n_valid = int(round(n_clips * valid_fraction))
    if index >= n_clips - n_test:
        return "test"
    if index >= n_clips - n_test - n_valid:
        return "valid"
    return "train"


def generate_corpus(
    root: Pathlike,
    n_clips: int = 480,
    seconds: float = 6.0,
    sample_rate: int = 16000,
    seed: int = 0,
    valid_fraction: float = 0.125,
    test_fraction: float = 0.25,
) -> Manifest:
    """Write the corpus (``manifest.csv`` + ``cache/``) into ``root`` unless it is already complete there."""
    root = Path(root)
    manifest_path = root / "manifest.csv"
    if manifest_path.is_file() and AudioCache.exists(root / "cache"):
        try:
            AudioCache(root / "cache")
            return Manifest.read_csv(manifest_path)
        except ValueError:  # written by an older musictag: generate it again
            manifest_path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"clip{i:05d}" for i in range(n_clips)]
    targets = np.zeros((n_clips, len(TAGS)), dtype=np.uint8)

    def clips() -> Iterator[tuple[str, np.ndarray]]:
        for i, clip_id in enumerate(ids):
            audio, tags = synthesize_clip(i, seed, sample_rate, seconds)
            targets[i, [TAGS.index(t) for t in tags]] = 1
            yield clip_id, audio

    AudioCache.write(root / "cache", clips(), sample_rate, source={"corpus": "synthetic", "seed": seed})
    manifest = Manifest(
        tuple(ids),
        tuple(split_of(i, n_clips, valid_fraction, test_fraction) for i in range(n_clips)),
        targets,
        tuple(TAGS),
        ("",) * n_clips,
    )
    manifest.write_csv(manifest_path)  # written last: its presence marks a complete corpus
    return manifest


def default_data_root() -> Path:
    return Path(os.environ.get("MUSICTAG_DATA", Path.home() / ".cache" / "musictag"))


class SyntheticDataModule(TaggingDataModule):
    """The demo corpus as a DataModule (see the module docstring for what the audio holds).

    Args:
        root: where the corpus is generated; default ``$MUSICTAG_DATA/synthetic/<settings>``.
        n_clips: clips in all splits together.
        clip_seconds: length of every clip.
        seed: the corpus seed (independent of the training seed).
        valid_fraction, test_fraction: split sizes.
        **kwargs: :class:`~datamodules.base.TaggingDataModule` arguments (batch size, chunks, workers).
    """

    tag_names = TAGS

    def __init__(
        self,
        root: str | None = None,
        n_clips: int = 480,
        clip_seconds: float = 6.0,
        seed: int = 0,
        valid_fraction: float = 0.125,
        test_fraction: float = 0.25,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        at_least("n_clips", n_clips, 1)
        at_least("clip_seconds", clip_seconds, 1e-3)  # 0 s clips would be generated, then all refused
        self.generator_args = {
            "n_clips": n_clips,
            "seconds": clip_seconds,
            "sample_rate": self.sample_rate,
            "seed": seed,
            "valid_fraction": valid_fraction,
            "test_fraction": test_fraction,
        }
        settings = f"v{GENERATOR_VERSION}-n{n_clips}-{clip_seconds:g}s-{self.sample_rate}hz-seed{seed}-v{valid_fraction:g}-t{test_fraction:g}"
        self.root = Path(root) if root else default_data_root() / "synthetic" / settings

    def prepare_data(self) -> None:
        generate_corpus(self.root, **self.generator_args)

    def load(self) -> tuple[Manifest, AudioCache]:
        self.prepare_data()  # no-op when present; covers direct use without a Trainer
        return Manifest.read_csv(self.root / "manifest.csv"), AudioCache(self.root / "cache")
