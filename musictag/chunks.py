"""How songs are cut into chunks: the :class:`ChunkPlan` that evaluation, ``tag``, the Python API and
``embed`` all receive, built once (from the model, with the caller's overrides) and validated once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple, cast, get_args

import numpy as np

from musictag.guards import InputError, at_least
from musictag.types import ConfigError

ChunkMode = Literal["even", "sota", "sliding", "patches", "centre"]
#: The chunk modes, in the order messages and ``--chunk-mode`` list them.
CHUNK_MODES: tuple[ChunkMode, ...] = get_args(ChunkMode)
#: Modes that cut the whole song (their number of chunks follows its length): ``n_chunks`` is unused.
WHOLE_SONG_MODES: tuple[ChunkMode, ...] = ("sliding", "patches")
#: Modes any model can be cut by (``patches`` needs a spectrogram's frames).
FRAMELESS_MODES: tuple[ChunkMode, ...] = tuple(m for m in CHUNK_MODES if m != "patches")


class SettingNames(NamedTuple):
    """How a caller spells the three chunking settings, so that a refusal names what the user typed."""

    mode: str = "chunk_mode"
    n_chunks: str = "n_chunks"
    hop: str = "hop"


#: The settings as the Python API and :func:`ChunkPlan.for_model` spell them.
PYTHON_NAMES = SettingNames()


@dataclass(frozen=True)
class ChunkPlan:
    """Where the chunks of a song start; validated when built (:class:`ConfigError`, a ``ValueError``).

    Modes:
        ``even``: ``n_chunks`` evenly spaced from the first sample to the last full chunk, so the chunks
            cover the whole song (``linspace(0, n_samples - chunk_len, n_chunks)``, rounded).
        ``sota``: the rule of sota-music-tagging-models (Won et al. 2020): ``hop = (n_samples -
            chunk_len) // n_chunks`` and chunk ``i`` starts at ``i * hop``; the last ``hop`` samples are
            never seen. Use it to reproduce that code's song-level numbers.
        ``sliding``: a window every ``hop`` samples (default ``chunk_len``, no overlap) plus one ending at
            the song's end if the last window stops short of it; ``n_chunks`` is unused, so songs of
            different lengths get different numbers of chunks.
        ``patches``: the musicnn library's rule, for a model whose spectrogram takes uncentred frames of
            ``n_fft`` every ``hop`` samples: the whole song's centred, zero-padded spectrogram
            (``n_samples // hop + 1`` frames) is cut into non-overlapping patches of the
            :attr:`patch_frames` frames one chunk holds, and the incomplete last patch is dropped. Patch
            ``i`` is the chunk starting ``n_fft // 2`` samples before its first frame's centre (the first
            starts before the song: :func:`cut_chunks` zero-pads). ``n_chunks`` is unused.
        ``centre``: one chunk, the middle of the song (start ``(n_samples - chunk_len) // 2``; a shorter
            song is zero-padded at its end): the rule of Choi et al.'s Keras taggers, which score the
            centre 29.12 s of a file. ``n_chunks`` is unused.

    A song no longer than one chunk gives ``n_chunks`` starts at 0 (the chunk is zero-padded); in
    ``patches`` mode, a song shorter than one patch gives one zero-padded patch.

    Attributes:
        chunk_len: samples per chunk (the model's ``input_len``).
        n_chunks: chunks per song of ``even`` and ``sota``.
        mode: one of :data:`CHUNK_MODES`.
        hop: ``sliding``: samples between windows (None: ``chunk_len``); ``patches``: the spectrogram's
            frame hop; unused otherwise.
        n_fft: ``patches``: the spectrogram's frame length; None otherwise.
    """

    chunk_len: int
    n_chunks: int = 16
    mode: ChunkMode = "even"
    hop: int | None = None
    n_fft: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in CHUNK_MODES:
            raise ConfigError(f"unknown chunk mode {self.mode!r}; use {_listed(CHUNK_MODES)}")
        if self.chunk_len < 1:
            raise ConfigError(f"chunk_len must be at least 1, got {self.chunk_len}")
        if self.n_chunks < 1 and self.mode not in WHOLE_SONG_MODES:
            raise ConfigError(f"n_chunks must be at least 1, got {self.n_chunks}")
        if self.hop is not None and self.hop < 1:
            raise ConfigError(f"hop must be at least 1 sample, got {self.hop}")
        if self.mode == "patches":
            if not self.hop or not self.n_fft or self.n_fft < 1:
                raise ConfigError("chunk mode 'patches' needs the spectrogram's hop and n_fft")
            if _frames_per_chunk(self.chunk_len, self.hop, self.n_fft) is None:
                raise ConfigError(_not_whole_frames(self.chunk_len, self.hop, self.n_fft))

    @classmethod
    def for_model(
        cls,
        model: Any,
        mode: str | None = None,
        n_chunks: int | None = None,
        hop: int | None = None,
        chunk_len: int | None = None,
        names: SettingNames = PYTHON_NAMES,
        refuse_unused: bool = True,
    ) -> ChunkPlan:
        """The plan of ``model`` (a ``TaggingModule``, or None): its ``input_len``, its tagging setting
        (``tag_chunk_mode``, ``tag_chunks``, ``tag_chunk_hop``; 16 ``even`` chunks without one) and, for
        ``patches``, its spectrogram's frames, each replaced by the override given.

        ``names`` spell the settings in the messages (``--chunk-mode`` for the command line);
        ``refuse_unused``: an ``n_chunks`` given for a whole-song mode, or a ``hop`` for another mode
        than ``sliding``, is refused rather than ignored (a DataModule turns it off: the configs
        LightningCLI saves carry every default).

        Raises:
            InputError: (a :class:`ConfigError`) a number below 1, an unknown mode, an unused setting,
                ``patches`` for a model without a spectrogram or whose chunk is not a whole number of its
                frames; ``chunk_len`` unset without a model.
        """
        at_least(names.n_chunks, n_chunks)
        at_least(names.hop, hop)
        if mode is not None and mode not in CHUNK_MODES:
            raise InputError(f"unknown {names.mode} {mode!r}; use one of {', '.join(CHUNK_MODES)}")
        chosen = cast(ChunkMode, mode or getattr(model, "tag_chunk_mode", None) or "even")
        if refuse_unused and hop is not None and chosen != "sliding":
            raise InputError(
                f"{names.hop} is for {names.mode} sliding; this run's mode is {chosen}: drop {names.hop}"
            )
        if refuse_unused and n_chunks is not None and chosen == "centre":
            raise InputError(
                f"{names.n_chunks} is for {names.mode} even or sota; centre scores one chunk, the middle of "
                f"the file: drop {names.n_chunks}"
            )
        if refuse_unused and n_chunks is not None and chosen in WHOLE_SONG_MODES:
            how = f"every {names.hop} samples" if chosen == "sliding" else "into patches"
            raise InputError(
                f"{names.n_chunks} is for {names.mode} even or sota; {chosen} cuts the whole file ({how}): "
                f"drop {names.n_chunks}"
            )
        if chunk_len is None:
            if getattr(model, "input_len", None) is None:
                raise InputError("chunk_len is not set and there is no model to take its input_len from")
            chunk_len = int(model.input_len)
        n_chunks = n_chunks if n_chunks is not None else int(getattr(model, "tag_chunks", None) or 16)
        hop = hop if hop is not None else getattr(model, "tag_chunk_hop", None)
        n_fft = None
        if chosen == "patches":
            frames = spectrogram_frames(getattr(model, "net", None))
            if frames is None:
                raise InputError(
                    f"{names.mode} patches cuts a spectrogram's frames: it needs a model whose "
                    f"representation is a spectrogram (hop_length, n_fft); use {_listed(FRAMELESS_MODES)}"
                )
            hop, n_fft = frames
            if _frames_per_chunk(chunk_len, hop, n_fft) is None:
                raise InputError(
                    f"{names.mode} patches does not fit this model: {_not_whole_frames(chunk_len, hop, n_fft)}; "
                    f"use {_listed(FRAMELESS_MODES)}"
                )
        elif chosen != "sliding":
            hop = None  # only sliding windows and patches have a hop
        return cls(chunk_len, n_chunks, chosen, hop, n_fft)

    @property
    def whole_song(self) -> bool:
        """Whether the number of chunks follows the song's length (``sliding``, ``patches``)."""
        return self.mode in WHOLE_SONG_MODES

    @property
    def patch_frames(self) -> int | None:
        """``patches``: the spectrogram frames one chunk holds, ``(chunk_len - n_fft) // hop + 1``."""
        if self.mode != "patches":
            return None
        assert self.hop is not None and self.n_fft is not None  # checked when built
        return _frames_per_chunk(self.chunk_len, self.hop, self.n_fft)

    @property
    def timeline_offset(self) -> int:
        """Samples from a chunk's start to where its audio sits on a timeline: ``n_fft // 2`` for a patch
        (its first frame's centre; the chunk itself starts before it), else 0."""
        return self.n_fft // 2 if self.mode == "patches" and self.n_fft else 0

    def with_n_chunks(self, n_chunks: int) -> ChunkPlan:
        """The same plan with ``n_chunks`` chunks (``even``/``sota``)."""
        return replace(self, n_chunks=n_chunks)

    def starts(self, n_samples: int) -> np.ndarray:
        """Start sample of each chunk in a song of ``n_samples`` (may be negative in ``patches`` mode)."""
        room = max(0, n_samples - self.chunk_len)
        if self.mode == "patches":
            frames = self.patch_frames
            assert frames is not None and self.hop is not None and self.n_fft is not None
            n_patches = max(1, (n_samples // self.hop + 1) // frames)
            return np.arange(n_patches, dtype=np.int64) * (frames * self.hop) - self.n_fft // 2
        if self.mode == "centre":
            return np.full(1, room // 2, dtype=np.int64)
        if self.mode == "sliding":
            starts = np.arange(0, room + 1, self.hop or self.chunk_len, dtype=np.int64)
            return starts if starts[-1] == room else np.append(starts, room)
        if self.mode == "even":
            return np.rint(np.linspace(0, room, self.n_chunks)).astype(np.int64)
        return np.arange(self.n_chunks, dtype=np.int64) * (room // self.n_chunks)  # sota


def chunk_starts(
    n_samples: int,
    chunk_len: int,
    n_chunks: int,
    mode: ChunkMode = "even",
    hop: int | None = None,
    n_fft: int | None = None,
) -> np.ndarray:
    """``ChunkPlan(chunk_len, n_chunks, mode, hop, n_fft).starts(n_samples)``: one song's chunk starts
    without a model (the modes: :class:`ChunkPlan`)."""
    return ChunkPlan(chunk_len, n_chunks, mode, hop, n_fft).starts(n_samples)


def spectrogram_frames(net: object) -> tuple[int, int] | None:
    """``(hop_length, n_fft)`` of a network's spectrogram representation, or None if it has none."""
    representation = getattr(net, "representation", None)
    hop, n_fft = getattr(representation, "hop_length", None), getattr(representation, "n_fft", None)
    return (int(hop), int(n_fft)) if hop and n_fft else None


def cut_chunks(audio: np.ndarray, starts: np.ndarray, chunk_len: int) -> np.ndarray:
    """``(n_samples,)`` → ``(len(starts), chunk_len)``, zero-padding chunks that run past either end."""
    chunks = np.zeros((len(starts), chunk_len), dtype=audio.dtype)
    for row, start in enumerate(starts):
        skip = max(0, -int(start))
        piece = audio[start + skip : start + chunk_len]
        chunks[row, skip : skip + len(piece)] = piece
    return chunks


def _frames_per_chunk(chunk_len: int, hop: int, n_fft: int) -> int | None:
    """The frames of ``n_fft`` every ``hop`` a chunk holds, or None if they do not fill it exactly."""
    frames = (chunk_len - n_fft) // hop + 1
    return frames if frames >= 1 and (frames - 1) * hop + n_fft == chunk_len else None


def _not_whole_frames(chunk_len: int, hop: int, n_fft: int) -> str:
    return f"chunk_len {chunk_len} is not a whole number of frames of {n_fft} every {hop}"


def _listed(modes: tuple[str, ...]) -> str:
    """``'even', 'sota', 'sliding' or 'patches'``."""
    quoted = [repr(m) for m in modes]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
