"""Waveform augmentation on the training device, batched, and the labels that follow it.

:class:`DeviceAugment` is a chain of transforms, each applied to an item with its own probability and
with parameters drawn from a range. Everything runs on the model's device on the whole ``(B, S)`` batch
and is branch-free (an item not chosen is computed and then replaced by its input through ``where``), so
no step waits for the host. Every draw comes from the device's default generator, which
:class:`~musictag.training.TaggingModule` seeds from (seed, epoch, batch, rank) as the batch arrives; a
batch's songs are a pure function of (seed, epoch), so a resumed run draws what an uninterrupted one does.

Implementations (own code: torchaudio's ``pitch_shift`` / ``phase_vocoder`` take one shift or rate per
call, not one per item, and torch-audiomentations / julius are no dependency of musictag):

- ``pitch_shift`` / ``time_stretch``: one batched phase vocoder (STFT 1024 / hop 256, per-item frame
  positions); a pitch shift is a stretch by ``2^(n/12)`` with the bins above the new Nyquist zeroed,
  resampled back to ``S`` samples by linear interpolation. A time stretch keeps ``S`` samples: a faster
  item reads past the end of its chunk and wraps to its start.
- ``eq``, ``lowpass``, ``highpass``, ``bandpass``, ``delay``, ``reverb``: linear and time-invariant, so
  all of them are one product of frequency responses applied with one real FFT of the zero-padded batch
  (zero phase for the EQ and filters; a feedback echo; the room response of a synthetic or measured
  impulse response). Butterworth magnitudes ``1 / sqrt(1 + (f / fc)^(2 order))``; EQ bells are Gaussians
  in log-frequency of ``gain_db`` at ``freq_hz``.
- ``noise``: white, pink (power ∝ 1/f) or brown (1/f²) noise, shaped in the frequency domain, at an SNR.
- ``background``: a random excerpt of the recordings in ``dir`` (concatenated once, on the device) at an
  SNR.
- ``polarity``: × −1; ``time_shift``: a circular shift of up to ``max_s`` seconds either way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from musictag.training.effects import (
    at_snr,
    butterworth,
    coloured_noise,
    fast_size,
    pitch_shift,
    shift_and_stretch,
    synthetic_rir,
    time_stretch,
)
from musictag.types import ConfigError

# the signal processing of the transforms lives in musictag.training.effects; these names stay here too
__all__ = ["DEFAULT_SET", "TRANSFORMS", "DeviceAugment", "LabelRules", "coloured_noise", "mixup"]
__all__ += ["mixup_config", "parse_transforms", "pitch_shift", "shift_and_stretch", "time_stretch"]

#: The transforms in the order the chain applies them, with their default arguments.
TRANSFORMS: dict[str, dict[str, Any]] = {
    "time_shift": {"p": 0.5, "max_s": 0.5},
    "polarity": {"p": 0.5},
    "pitch_shift": {"p": 0.5, "semitones": [-2.0, 2.0]},
    "time_stretch": {"p": 0.5, "rate": [0.8, 1.25]},
    "eq": {"p": 0.5, "bands": 3, "gain_db": [-6.0, 6.0], "freq_hz": [100.0, 6000.0], "octaves": 1.0},
    "lowpass": {"p": 0.3, "cutoff_hz": [2000.0, 7000.0], "order": 8},
    "highpass": {"p": 0.3, "cutoff_hz": [50.0, 500.0], "order": 8},
    "bandpass": {"p": 0.2, "low_hz": [50.0, 400.0], "high_hz": [3000.0, 7000.0], "order": 8},
    "delay": {"p": 0.3, "delay_ms": [50.0, 400.0], "feedback": [0.1, 0.5], "mix": [0.1, 0.5]},
    "reverb": {"p": 0.3, "rt60_s": [0.2, 1.0], "wet": [0.1, 0.5], "ir_dir": None, "measured_p": 0.5},
    "background": {"p": 0.3, "dir": None, "snr_db": [5.0, 20.0]},
    "noise": {"p": 0.3, "snr_db": [10.0, 40.0], "colours": ["white", "pink", "brown"]},
}
#: The documented default set (``augment: default``): what the ablation in docs/augmentation.md trains.
DEFAULT_SET = (
    "time_shift",
    "polarity",
    "pitch_shift",
    "time_stretch",
    "eq",
    "lowpass",
    "delay",
    "reverb",
    "noise",
)
COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: The extra keys of an ``augment`` mapping that are not transforms.
OTHER_KEYS = ("mixup", "labels", "gain")


def _range(
    name: str, key: str, value: Any, low: float | None = None, high: float | None = None
) -> tuple[float, float]:
    """``[lo, hi]`` from a config value, checked: one line naming the transform and key when it is not."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"augment.{name}.{key}: expected [low, high], got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ConfigError(f"augment.{name}.{key}: [{lo}, {hi}] is not a range (low ≤ high, finite)")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ConfigError(f"augment.{name}.{key}: [{lo}, {hi}] must lie within [{low}, {high}]")
    return lo, hi


def _positive(name: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0:
        raise ConfigError(f"augment.{name}.{key}: must be a number > 0, got {value!r}")
    return number


def parse_transforms(config: Mapping[str, Any] | str | None) -> dict[str, dict[str, Any]]:
    """The transforms of an ``augment`` mapping (or ``"default"``) with their arguments filled in and
    checked; ``None`` or ``{name: null}`` leaves a transform out."""
    if config is None:
        return {}
    if isinstance(config, str):
        if config != "default":
            raise ConfigError(f"augment: {config!r} is no set; use 'default' or a mapping of transforms")
        config = {name: {} for name in DEFAULT_SET}
    unknown = [k for k in config if k not in TRANSFORMS and k not in OTHER_KEYS]
    if unknown:
        raise ConfigError(
            f"augment: unknown transform {unknown[0]!r}; known: {', '.join([*TRANSFORMS, *OTHER_KEYS])}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, defaults in TRANSFORMS.items():
        given = config.get(name, False) if name in config else False
        if given is None or given is False:
            continue
        given = {} if given is True else dict(given)
        extra = [k for k in given if k not in defaults]
        if extra:
            raise ConfigError(
                f"augment.{name}: unknown argument {extra[0]!r}; it takes {', '.join(defaults)}"
            )
        args = {**defaults, **given}
        p = float(args["p"])
        if not 0 <= p <= 1:
            raise ConfigError(f"augment.{name}.p: {args['p']!r} is not a probability in [0, 1]")
        args["p"] = p
        for key, value in list(args.items()):
            if key in ("p", "ir_dir", "dir", "colours", "measured_p"):
                continue
            if key in ("bands", "order"):
                args[key] = int(_positive(name, key, value))
            elif key in ("max_s", "octaves"):
                args[key] = _positive(name, key, value)
            else:
                bounds = {
                    "rate": (0.5, 2.0),
                    "semitones": (-12.0, 12.0),
                    "feedback": (0.0, 0.9),
                    "mix": (0.0, 1.0),
                    "wet": (0.0, 1.0),
                    "rt60_s": (0.01, 3.0),
                    "delay_ms": (1.0, 1000.0),
                }.get(key, (0.0, None) if key.endswith("_hz") else (None, None))
                args[key] = _range(name, key, value, *bounds)
        if name == "noise":
            bad = [c for c in args["colours"] if c not in COLOURS]
            if bad or not args["colours"]:
                raise ConfigError(
                    f"augment.noise.colours: {bad or args['colours']!r}; use white, pink, brown"
                )
        if name == "background" and not args["dir"]:
            raise ConfigError("augment.background.dir: a folder of recordings is needed")
        out[name] = args
    return out


def _uniform(shape: Sequence[int], lo_hi: tuple[float, float], device: torch.device) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(*shape, device=device)


def _load_folder(folder: str, sample_rate: int, what: str) -> list[torch.Tensor]:
    from musictag.audio import AUDIO_EXTENSIONS, AudioError, load_audio

    if not os.path.isdir(folder):
        raise ConfigError(f"augment.{what}: {folder}: no such folder; give a folder of audio files")
    paths = sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(folder)
        for f in files
        if f.lower().endswith(AUDIO_EXTENSIONS)
    )
    if not paths:
        raise ConfigError(f"augment.{what}: {folder}: no audio files in it")
    out = []
    for path in paths:
        try:
            out.append(torch.from_numpy(load_audio(path, sample_rate)[0]))
        except AudioError as err:
            raise ConfigError(f"augment.{what}: {err}") from None
    return out


class DeviceAugment(torch.nn.Module):
    """The chain of transforms of an ``augment`` config (see :data:`TRANSFORMS`), applied to float
    ``(B, S)`` batches on their device; :meth:`forward` also returns which items each transform took.

    Measured impulse responses (``reverb.ir_dir``) and background recordings (``background.dir``) are
    read at :meth:`prepare` (fit start), never when a checkpoint is loaded to tag.
    """

    def __init__(self, config: Mapping[str, Any] | str | None, sample_rate: int) -> None:
        super().__init__()
        self.transforms = parse_transforms(config)
        self.sample_rate = sample_rate
        self._irs: torch.Tensor | None = None
        self._background: torch.Tensor | None = None

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def prepare(self) -> None:
        """Read the folders the config names (a one-line :class:`ConfigError` for a missing or empty one)."""
        reverb = self.transforms.get("reverb")
        if reverb and reverb["ir_dir"]:
            irs = _load_folder(reverb["ir_dir"], self.sample_rate, "reverb.ir_dir")
            longest = max(len(ir) for ir in irs)
            stacked = torch.zeros(len(irs), longest)
            for i, ir in enumerate(irs):
                stacked[i, : len(ir)] = ir / ir.pow(2).sum().sqrt().clamp(min=1e-8)
            self._irs = stacked
        background = self.transforms.get("background")
        if background:
            self._background = torch.cat(_load_folder(background["dir"], self.sample_rate, "background.dir"))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(B, S)`` → augmented ``(B, S)`` and ``{transform: (B,) bool}``, the items it changed."""
        batch, length = audio.shape
        device, sr = audio.device, self.sample_rate
        applied: dict[str, torch.Tensor] = {}
        t = self.transforms

        def chosen(name: str) -> torch.Tensor:
            on = torch.rand(batch, device=device) < t[name]["p"]
            applied[name] = on
            return on

        if "time_shift" in t:
            on = chosen("time_shift")
            most = int(t["time_shift"]["max_s"] * sr)
            shift = torch.randint(-most, most + 1, (batch,), device=device) * on
            index = torch.remainder(torch.arange(length, device=device)[None, :] - shift[:, None], length)
            audio = audio.gather(1, index)
        if "polarity" in t:
            on = chosen("polarity")
            audio = audio * (1 - 2 * on.to(audio.dtype))[:, None]
        audio = self._shift_and_stretch(audio, chosen)
        audio = self._filter(audio, chosen)
        if "background" in t:
            on = chosen("background")
            snr = _uniform((batch,), t["background"]["snr_db"], device)
            assert self._background is not None, "DeviceAugment.prepare() reads the background folder"
            self._background = pool = self._background.to(device)  # moved once, kept there
            if len(pool) < length:
                pool = pool.repeat(length // len(pool) + 1)
            start = (torch.rand(batch, device=device) * (len(pool) - length + 1)).long()
            excerpt = pool[start[:, None] + torch.arange(length, device=device)[None, :]]
            audio = audio + at_snr(audio, excerpt, snr) * on[:, None]
        if "noise" in t:
            on = chosen("noise")
            colours = torch.tensor([COLOURS[c] for c in t["noise"]["colours"]], device=device)
            exponent = colours[torch.randint(len(colours), (batch,), device=device)]
            snr = _uniform((batch,), t["noise"]["snr_db"], device)
            noise = coloured_noise((batch, length), exponent, device)
            audio = audio + at_snr(audio, noise, snr) * on[:, None]
        return audio, applied

    def _shift_and_stretch(self, audio: torch.Tensor, chosen: Any) -> torch.Tensor:
        """Pitch shift, then time stretch; both configured: one vocoder pass (:func:`shift_and_stretch`)."""
        t, (batch, _), device = self.transforms, audio.shape, audio.device
        shift, stretch = t.get("pitch_shift"), t.get("time_stretch")
        semitones = rate = None
        if shift is not None:
            on_shift = chosen("pitch_shift")
            semitones = _uniform((batch,), shift["semitones"], device) * on_shift
        if stretch is not None:
            on_stretch = chosen("time_stretch")
            rate = torch.where(on_stretch, _uniform((batch,), stretch["rate"], device), 1.0)
        if semitones is not None and rate is not None:
            changed = shift_and_stretch(audio, semitones, rate, shift["semitones"][1])  # type: ignore[index]
            return torch.where((on_shift | on_stretch)[:, None], changed, audio)
        if semitones is not None:
            changed = pitch_shift(audio, semitones, shift["semitones"][1])  # type: ignore[index]
            return torch.where(on_shift[:, None], changed, audio)
        if rate is not None:
            return torch.where(on_stretch[:, None], time_stretch(audio, rate), audio)
        return audio

    def _filter(self, audio: torch.Tensor, chosen: Any) -> torch.Tensor:
        """EQ, filters, echo and reverb: one product of responses, one FFT of the zero-padded batch."""
        t = self.transforms
        names = [n for n in ("eq", "lowpass", "highpass", "bandpass", "delay", "reverb") if n in t]
        if not names:
            return audio
        batch, length = audio.shape
        device, sr = audio.device, self.sample_rate
        tail = 0
        if "reverb" in t:
            tail = int(t["reverb"]["rt60_s"][1] * sr)
            if self._irs is not None:
                tail = max(tail, self._irs.shape[1])
        if "delay" in t:
            tail = max(tail, int(t["delay"]["delay_ms"][1] * sr / 1000) * 4)
        size = fast_size(length + tail)
        freqs = torch.fft.rfftfreq(size, 1 / sr, device=device)
        response = torch.ones(batch, len(freqs), dtype=torch.complex64, device=device)
        if "eq" in t:
            on = chosen("eq")
            args = t["eq"]
            bands = args["bands"]
            lo, hi = args["freq_hz"]
            centre = torch.exp(_uniform((batch, bands), (math.log(lo), math.log(hi)), device))
            gain = _uniform((batch, bands), args["gain_db"], device) * on[:, None]
            octaves = torch.log2(freqs.clamp(min=1.0)[None, None, :] / centre[:, :, None])
            db = (gain[:, :, None] * torch.exp(-0.5 * (octaves / args["octaves"]) ** 2)).sum(dim=1)
            response = response * torch.pow(10.0, db / 20)
        for name, high in (("lowpass", False), ("highpass", True)):
            if name in t:
                on = chosen(name)
                cutoff = _uniform((batch,), t[name]["cutoff_hz"], device)
                magnitude = butterworth(freqs, cutoff, t[name]["order"], high=high)
                response = response * torch.where(on[:, None], magnitude, 1.0)
        if "bandpass" in t:
            on = chosen("bandpass")
            args = t["bandpass"]
            low, high_cut = (
                _uniform((batch,), args["low_hz"], device),
                _uniform((batch,), args["high_hz"], device),
            )
            magnitude = butterworth(freqs, low, args["order"], high=True) * butterworth(
                freqs, high_cut, args["order"]
            )
            response = response * torch.where(on[:, None], magnitude, 1.0)
        if "delay" in t:
            on = chosen("delay")
            args = t["delay"]
            delay = _uniform((batch,), args["delay_ms"], device) / 1000
            feedback = _uniform((batch,), args["feedback"], device)
            mix = _uniform((batch,), args["mix"], device) * on
            turn = torch.polar(
                torch.ones_like(freqs)[None, :], -2 * math.pi * freqs[None, :] * delay[:, None]
            )
            echo = turn / (1 - feedback[:, None] * turn)
            response = response * (1 + mix[:, None] * echo)
        if "reverb" in t:
            on = chosen("reverb")
            args = t["reverb"]
            rt60 = _uniform((batch,), args["rt60_s"], device)
            wet = _uniform((batch,), args["wet"], device) * on
            rir = synthetic_rir(rt60, int(args["rt60_s"][1] * sr), sr)
            room = torch.fft.rfft(rir, n=size)
            if self._irs is not None:
                self._irs = irs = self._irs.to(device)
                pick = torch.randint(len(irs), (batch,), device=device)
                measured = torch.fft.rfft(irs[pick], n=size)
                use = torch.rand(batch, device=device) < args["measured_p"]
                room = torch.where(use[:, None], measured, room)
            response = response * ((1 - wet)[:, None] + wet[:, None] * room)
        spectrum = torch.fft.rfft(audio, n=size) * response
        return torch.fft.irfft(spectrum, n=size)[:, :length]


# --- mixup and the labels that follow ------------------------------------------------------------
def mixup_config(augment: dict[str, Any] | str | None, task: str) -> dict[str, Any] | None:
    """``augment.mixup`` checked: ``{p, alpha, rule}`` for :func:`mixup`."""
    given = augment.get("mixup") if isinstance(augment, dict) else None
    if not given:
        return None
    given = {} if given is True else dict(given)
    extra = [k for k in given if k not in ("p", "alpha", "target")]
    if extra:
        raise ConfigError(f"augment.mixup: unknown argument {extra[0]!r}; it takes p, alpha, target")
    p, alpha, rule = float(given.get("p", 0.5)), given.get("alpha", 0.4), given.get("target", "mix")
    if not 0 <= p <= 1:
        raise ConfigError(f"augment.mixup.p: {given['p']!r} is not a probability in [0, 1]")
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ConfigError(f"augment.mixup.alpha: must be a number > 0, got {alpha!r}")
    if rule not in ("mix", "max") or (rule == "max" and task == "multiclass"):
        raise ConfigError(f"augment.mixup.target: {rule!r}; use mix (or max, for multilabel tagging)")
    return {"p": p, "alpha": float(alpha), "rule": rule}


def mixup(
    audio: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    p: float,
    alpha: float,
    rule: str = "mix",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Items mixed with a permutation of the batch: ``λ x_i + (1 − λ) x_perm(i)``, λ ~ Beta(α, α) for the
    items chosen with probability ``p`` (1 for the others). Targets: ``mix`` (the same mixture; BCE is
    linear in its target, so this is λ × the loss against song i plus (1 − λ) × the loss against the other
    song) or ``max`` (the union of both songs' tags). A tag dropped from either song's loss is dropped from
    the mixture's. Returns audio, target, weight, λ ``(B,)`` and the permutation."""
    batch = len(audio)
    concentration = torch.full((batch,), float(alpha), device=audio.device)
    # validate_args=False: the checks of the concentrations would wait for the device
    lam = torch.distributions.Beta(concentration, concentration, validate_args=False).sample()
    on = torch.rand(batch, device=audio.device) < p
    lam = torch.where(on, lam, 1.0)
    perm = torch.randperm(batch, device=audio.device)
    audio = lam[:, None] * audio + (1 - lam[:, None]) * audio[perm]
    other = target[perm]
    if rule == "max":
        target = torch.where(on[:, None], torch.maximum(target, other), target)
    else:
        target = lam[:, None] * target + (1 - lam[:, None]) * other
    if weight is not None:
        weight = torch.where(on[:, None], weight * weight[perm], weight)
    return audio, target, weight, lam, perm


class LabelRules:
    """``labels: {transform: {tags: [...], action: drop | set, value: 0 or 1}}``: for an item a transform
    changed, its tags leave the loss (``drop``) or take ``value`` (``set``). ``gain`` names the
    DataModule's gain augmentation."""

    def __init__(
        self, rules: Mapping[str, Any] | None, tag_names: Sequence[str], transforms: Sequence[str]
    ) -> None:
        self.rules: list[tuple[str, list[int], str, float]] = []
        for name, rule in (rules or {}).items():
            if name not in transforms and name != "gain":
                raise ConfigError(
                    f"augment.labels: {name!r} is no transform of this run; use one of {', '.join([*transforms, 'gain'])}"
                )
            rule = dict(rule or {})
            action = rule.get("action", "drop")
            if action not in ("drop", "set"):
                raise ConfigError(f"augment.labels.{name}.action: {action!r}; use drop or set")
            value = float(rule.get("value", 0.0))
            if action == "set" and value not in (0.0, 1.0):
                raise ConfigError(f"augment.labels.{name}.value: {rule.get('value')!r}; use 0 or 1")
            tags = rule.get("tags") or []
            if isinstance(tags, str):
                tags = [tags]
            index = []
            for tag in tags:
                if tag not in tag_names:
                    raise ConfigError(
                        f"augment.labels.{name}: unknown tag {tag!r} (not in the run's tag_names)"
                    )
                index.append(list(tag_names).index(tag))
            if not index:
                raise ConfigError(f"augment.labels.{name}.tags: name the tags it changes")
            self.rules.append((name, index, action, value))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def apply(
        self, target: torch.Tensor, applied: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The targets ``(B, n_tags)`` and loss weights (``None`` when nothing is dropped) after the rules."""
        weight = None
        for name, index, action, value in self.rules:
            if name not in applied:
                continue
            columns = torch.zeros(target.shape[-1], dtype=torch.bool, device=target.device)
            columns[index] = True
            hit = applied[name][:, None] & columns[None, :]
            if action == "set":
                target = torch.where(hit, torch.full_like(target, value), target)
            else:
                weight = torch.ones_like(target) if weight is None else weight
                weight = weight.masked_fill(hit, 0.0)
        return target, weight
