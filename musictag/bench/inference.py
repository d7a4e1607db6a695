"""Seconds per song of ``tag`` (decode included), side by side with the musicnn library's ``extractor``.

Each backend is a small function ``prepare(ckpt, threads) -> tag_once``
(:data:`musictag.inference.backends.BACKENDS`, passed in by the CLI): it loads
what it needs once, and ``tag_once(path)`` tags one file, end to end. :func:`measure` times every
checkpoint with every backend it is given and, when a Python with the musicnn library is given, the library's own
``extractor`` on the same file in a child process of that Python (TensorFlow is never imported here),
alternating (ours, library, ours, library …) so that a machine's changing load falls on both. A new
backend (onnxruntime, say) is one more entry there.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: ``prepare(ckpt, threads)`` → ``tag_once(path)``: one file tagged end to end (decode included); the
#: backends themselves are in :mod:`musictag.inference.backends` (this layer does not load checkpoints).
Backend = Callable[[str, int], Callable[[str], object]]

#: The child that runs the musicnn library: ``python CHILD MODEL FILE``, then one line on stdin per
#: timed run; it answers each with the seconds of one ``extractor`` call.
CHILD = Path(__file__).with_name("musicnn_child.py")


@dataclass
class InferenceFigure:
    """Seconds per ``tag`` of one file: the median of the repeats and their spread."""

    model: str
    backend: str
    audio: str
    audio_seconds: float
    threads: int
    repeats: int
    seconds: float
    low: float
    high: float
    speedup: float | None = None  # the library's median / this one (None: no library row)


def synth_song(path: Path, seconds: float = 30.0, rate: int = 22050) -> Path:
    """A deterministic stereo MP3 of ``seconds`` (chords, a beat and noise), the file the rows tag."""
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    beat = np.exp(-((t % 0.5) * 30.0)) * rng.standard_normal(t.size)
    left, right = 0.4 * chord + 0.2 * beat, 0.3 * chord + 0.25 * beat
    audio = np.stack([left, right], axis=1).astype(np.float32) * 0.8
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    sf.write(tmp, audio, rate, format="MP3")
    os.replace(tmp, path)
    return path


class LibraryChild:
    """The musicnn library's ``extractor`` in a child of ``python``, TensorFlow and OpenMP on ``threads``."""

    def __init__(self, python: str, model: str, audio: str, threads: int) -> None:
        env = dict(os.environ)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            env[name] = str(threads)
        env["TF_NUM_INTEROP_THREADS"] = "1"
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        env["CUDA_VISIBLE_DEVICES"] = ""
        self.proc = subprocess.Popen(
            [python, str(CHILD), model, audio, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._expect("ready")

    def _expect(self, what: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(what):
            self.close()
            assert self.proc.stderr is not None
            tail = (self.proc.stderr.read().strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"the musicnn library's child stopped: {tail}")
        return line[len(what) :].strip()

    def run(self) -> float:
        """Seconds of one ``extractor`` call on the file, timed in the child."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self._expect("seconds"))

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _time(tag_once: Callable[[], object]) -> float:
    start = time.perf_counter()
    tag_once()
    return time.perf_counter() - start


def _timer(tag_once: Callable[[str], object], audio: str) -> Callable[[], float]:
    return lambda: _time(lambda: tag_once(audio))


def measure(
    ckpts: list[str],
    audio: str,
    backends: dict[str, Backend],
    repeats: int = 5,
    threads: int = 2,
    musicnn_python: str | None = None,
    musicnn_model: str = "MTT_musicnn",
) -> list[InferenceFigure]:
    """One figure per checkpoint and backend (``{name: prepare}``) (and one of the library's ``extractor`` with
    ``musicnn_python``): the median of ``repeats`` timed runs after one untimed warm-up, each round
    running every one of them once in turn (ours, library, ours, library …)."""
    import soundfile as sf

    audio_seconds = float(sf.info(audio).duration)
    runners: dict[tuple[str, str], Callable[[], float]] = {}
    for ckpt in ckpts:
        for backend, prepare in backends.items():
            runners[(Path(ckpt).name, backend)] = _timer(prepare(ckpt, threads), audio)
    child = None
    try:
        if musicnn_python:
            child = LibraryChild(musicnn_python, musicnn_model, audio, threads)
            runners[(musicnn_model, "musicnn library")] = child.run
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
        for run in runners.values():  # warm-up: first-call allocations, the library's graph and session
            run()
        for _ in range(repeats):
            for key, run in runners.items():
                times[key].append(run())
    finally:
        if child is not None:
            child.close()
    library = times.get((musicnn_model, "musicnn library"))
    library_median = statistics.median(library) if library else None
    figures = []
    for (model, backend), values in times.items():
        median = statistics.median(values)
        speedup = library_median / median if library_median and backend != "musicnn library" else None
        figures.append(
            InferenceFigure(
                model, backend, Path(audio).name, audio_seconds, threads, repeats, median,
                min(values), max(values), speedup,
            )
        )  # fmt: skip
    return figures


def format_rows(figures: list[InferenceFigure]) -> list[str]:
    """The printed table: a header naming the file and the settings, then one row per figure."""
    if not figures:
        return []
    first = figures[0]
    lines = [
        f"# musictag bench --inference: seconds per tag of {first.audio} ({first.audio_seconds:.1f} s, "
        f"decode included), {first.threads} threads, median of {first.repeats} (lowest – highest)",
        f"{'model':<28} {'backend':<16} {'seconds':>8} {'spread':>15} {'speed-up':>9}",
    ]
    for f in figures:
        speedup = f"{f.speedup:.2f}×" if f.speedup is not None else ""
        spread = f"{f.low:.3f} – {f.high:.3f}"
        lines.append(f"{f.model:<28} {f.backend:<16} {f.seconds:>8.3f} {spread:>15} {speedup:>9}")
    if not any(f.backend == "musicnn library" for f in figures):
        lines.append(
            "(no musicnn library row: give --musicnn-python PYTHON of a venv with the musicnn library)"
        )
    return lines
