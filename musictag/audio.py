"""Audio: the one place files are decoded, downmixed, resampled and written, and the waveform operations
shared by the model and the datasets (int16 scaling, gain and noise augmentation).

soundfile (libsndfile) decodes WAV, FLAC, OGG and MP3 with seeking; soxr resamples. ``torchaudio.load``
is not used: it needs TorchCodec.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import soxr
import torch

from musictag.types import Pathlike


class AudioError(Exception):
    """A file that cannot be used as audio; the message names the file and the reason."""

    def __init__(self, path: Pathlike, reason: str, problem: str = "unreadable") -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason
        #: the kind of problem, as a cache report lists it: ``missing``, ``unreadable``, ``empty`` or
        #: ``non_finite``
        self.problem = problem


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """``(n,)`` or ``(n, channels)`` float audio from ``orig_rate`` to ``target_rate`` (soxr, high quality)."""
    if orig_rate == target_rate:
        return audio
    return soxr.resample(audio, orig_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def load_audio(
    path: Pathlike, sample_rate: int | None = None, mono: bool = True, mp3_decoder_delay: int = 0
) -> tuple[np.ndarray, int]:
    """Decode a file to float32 in [-1, 1]: ``(n,)`` when ``mono`` (channels averaged), else ``(n, channels)``.

    Resampled to ``sample_rate`` when given (the rate returned is the output's). ``mp3_decoder_delay``
    (MP3 input only, found by the file's content, not its name): that many samples at the file's own
    rate, before resampling, are dropped from the start and as many zeros added at the end (the length
    kept), as a decoder that drops the MP3 decoder delay (529 samples) gives them; see
    :func:`drop_decoder_delay`. Raises
    :class:`AudioError` for a missing, empty or undecodable file, and for one whose samples are not all
    finite (NaN or Inf: a float file that is corrupt, never to be read as silence).
    """
    path = os.fspath(path)
    _check_regular(path)  # by stat alone: libsndfile would wait forever on a named pipe
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)", "empty")
    try:
        with sf.SoundFile(path) as file:
            audio, rate, fmt = file.read(dtype="float32", always_2d=True), file.samplerate, file.format
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(path, f"cannot decode ({_decoder_reason(err)})") from None
    if audio.size == 0:
        raise AudioError(path, "no audio samples", "empty")
    finite = np.isfinite(audio)
    if not finite.all():
        bad = int(audio.size - np.count_nonzero(finite))
        raise AudioError(
            path, f"{bad} of {audio.size} samples are NaN or Inf (a corrupt float file)", "non_finite"
        )
    if fmt == "MP3" and mp3_decoder_delay:
        audio = drop_decoder_delay(audio, mp3_decoder_delay)
    if mono:
        audio = audio.mean(axis=1)
    if sample_rate is not None and rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def drop_decoder_delay(audio: np.ndarray, delay: int) -> np.ndarray:
    """``(n, channels)`` decoded audio ``delay`` samples earlier: the first ``delay`` dropped, as many zeros
    appended, so the length is the same (what Choi et al.'s decoder gave for an MP3 that libsndfile's
    mpg123 decodes with the 529-sample MP3 decoder delay at its start; dropping the samples without
    keeping the length puts the file's centre half as far)."""
    if delay < 0:
        raise ValueError(f"mp3_decoder_delay must be at least 0, got {delay}")
    delay = min(delay, len(audio))
    pad = np.zeros((delay, audio.shape[1]), dtype=audio.dtype)
    return np.concatenate([audio[delay:], pad])


def _check_regular(path: str) -> None:
    """:class:`AudioError` unless ``path`` is a readable regular file, found by ``stat`` (nothing opened)."""
    from musictag.guards import file_type_problem

    problem = file_type_problem(path)
    if problem == "is a folder, not a file":
        problem = "is a folder, not an audio file"
    if problem is not None:
        raise AudioError(path, problem, "missing" if problem == "no such file" else "unreadable")


def _decoder_reason(err: Exception) -> str:
    """libsndfile's message, made to say what it means for a file it does not recognise at all."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "Format not recognised" in text or "not a regular file" in text.lower():
        return "not a recognised audio format"
    return text


def audio_duration(path: Pathlike) -> float:
    """Seconds of audio in a file, from its header (no decoding)."""
    _check_regular(os.fspath(path))
    try:
        return float(sf.info(os.fspath(path)).duration)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"cannot read header ({str(err).splitlines()[0]})") from None


#: File extensions musictag looks for in folders.
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au")


def write_audio(path: Pathlike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio ``(n,)`` or ``(n, channels)`` in the format of the file's extension (MP3 included)."""
    fmt = {".mp3": "MP3", ".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}[
        os.path.splitext(os.fspath(path))[1].lower()
    ]
    subtype = "VORBIS" if fmt == "OGG" else None
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    sf.write(os.fspath(path), audio, sample_rate, format=fmt, subtype=subtype)


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
