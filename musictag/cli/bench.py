"""``musictag bench``: training throughput of every architecture, and an epoch you can plan with.

Each figure is the median of ``--repeats`` runs of ``--steps`` timed training steps — ``TaggingModule``'s
own step, Adam and the chosen precision (:mod:`musictag.bench.throughput`) — after ``--warmup`` steps,
with the spread (lowest – highest run) and the peak memory. ``--epoch`` times one epoch of the MTAT
recipe's size through ``Trainer.fit`` from a synthetic warm cache, loader included (``--scale`` runs a
fraction of it, e.g. on CPU). ``--data`` / ``--data-only``: the data pipeline (:mod:`musictag.bench.data`).
``--profile`` prints the operators that take the time of ``--steps`` training steps instead
(torch.profiler). ``--save`` keeps the figures as JSON, rewritten after every configuration, so that a
run cut short keeps what it measured; ``--report`` turns such files into the README's tables
(:mod:`musictag.bench.report`). ``--inference CKPT ...``: seconds per ``tag`` of a 30-s song instead
(decode included; :mod:`musictag.bench.inference`), with ``--musicnn-python`` the musicnn library's
``extractor`` on the same file beside it, alternating, and the speed-up. A configuration that fails (out of memory, say) is reported on stderr and
the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from itertools import product
from pathlib import Path
from typing import Any

import torch

from musictag.bench import inference, report, throughput
from musictag.guards import (
    DEVICE_HELP,
    InputError,
    at_least,
    at_most_per_core,
    check_output_file,
    given_path,
    pick_device,
)
from musictag.inference.backends import BACKENDS
from musictag.models import available


def _precision(value: str) -> str:
    aliases = {"bf16": "bf16-mixed", "16": "16-mixed", "fp32": "32", "32-true": "32"}
    value = aliases.get(value, value)
    if value not in (*throughput.PRECISIONS, "auto"):
        raise argparse.ArgumentTypeError(
            f"unknown precision {value!r}; use auto, {', '.join(throughput.PRECISIONS)}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musictag bench", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--arch", nargs="+", default=None, help="architectures (default: all)")
    add("--batch-size", type=int, nargs="+", default=[16], help="one or more batch sizes")
    add("--steps", type=int, default=20, help="timed steps per run")
    add("--repeats", type=int, default=3, help="timed runs; the median is reported")
    add("--warmup", type=int, default=3, help="untimed steps first")
    add("--device", default="auto", help=DEVICE_HELP)
    add(
        "--precision",
        type=_precision,
        nargs="+",
        default=["auto"],
        help="32, bf16-mixed, 16-mixed (one or more); auto: bf16-mixed on CUDA, else 32",
    )
    add("--compile", action="store_true", help="torch.compile the network")
    add(
        "--channels-last",
        choices=["preset", "on", "off"],
        default="preset",
        help="memory layout of the 2-D CNN front ends (preset: as the architecture says)",
    )
    add("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add("--epoch", action="store_true", help="seconds of one MTAT-sized epoch instead")
    add("--scale", type=float, default=1.0, help="--epoch: fraction of the MTAT epoch")
    add("--json", action="store_true", help="print the figures as JSON")
    add("--data", action="store_true", help="also the data pipeline (prepare and loader throughput)")
    add("--data-only", action="store_true", help="only the data pipeline")
    add("--data-repeats", type=int, default=5, help="timed runs of each data figure")
    add(
        "--inference",
        type=given_path,
        nargs="+",
        metavar="CKPT",
        help="instead: seconds per `tag` of one song (decode included) with each checkpoint",
    )
    add(
        "--audio",
        type=given_path,
        metavar="FILE",
        help="--inference: the song (default: a synthesized 30-s 22.05 kHz stereo MP3)",
    )
    add(
        "--backend",
        nargs="+",
        default=["torch"],
        help=f"--inference: backends to time ({', '.join(BACKENDS)})",
    )
    add(
        "--musicnn-python",
        type=given_path,
        metavar="PYTHON",
        help="--inference: a Python with the musicnn library: its extractor on the same file, side by side",
    )
    add(
        "--musicnn-model",
        default="MTT_musicnn",
        help="--inference: the library's model to time (default MTT_musicnn)",
    )
    add(
        "--augment",
        action="store_true",
        help="instead: ms per batch of each device augmentation beside the short_chunk training step",
    )
    add(
        "--profile",
        action="store_true",
        help="instead of timing, print the operators that take the time of --steps steps (torch.profiler)",
    )
    add(
        "--save",
        type=given_path,
        metavar="FILE",
        help="also write the figures as JSON to FILE, rewritten after every configuration",
    )
    add(
        "--report",
        type=given_path,
        nargs="+",
        metavar="FILE",
        help="print the README's markdown tables of figures saved by --save or printed by --json, and exit",
    )
    return parser


def check_own_figures(path: str) -> None:
    """``--save`` replaces only what an earlier ``--save`` wrote: any other file there is refused."""
    if not Path(path).is_file():
        return
    try:
        report.load_figures([path])
    except ValueError:
        raise InputError(
            f"--save {path} exists and is not figures written by musictag bench --save; give a new path "
            "(it is not overwritten)"
        ) from None


def _checked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[torch.device, list[str]]:
    """The device and the precisions (``auto`` resolved), once every number, the device, ``--save`` and
    the architectures are checked: before anything is measured, so that a bad one costs nothing."""
    at_least("--threads", args.threads, 1)
    at_most_per_core("--threads", args.threads)
    at_least("--data-repeats", args.data_repeats, 1)
    device = pick_device(args.device)
    if args.save:
        check_output_file(args.save, "--save", overwrite=True)
        check_own_figures(args.save)
    auto = "bf16-mixed" if device.type == "cuda" else "32"
    precisions = [auto if p == "auto" else p for p in args.precision]
    if device.type == "cpu" and "16-mixed" in precisions:
        parser.error("16-mixed needs a CUDA device (fp16 autocast is not supported for training on CPU)")
    if min(args.batch_size) < 1 or args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--batch-size, --steps and --repeats must be at least 1, --warmup at least 0")
    if not 0 < args.scale <= 1:
        parser.error(f"--scale must be in (0, 1], got {args.scale}")
    unknown = sorted(set(args.arch or ()) - set(available()))
    if unknown:
        parser.error(f"unknown architecture(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    return device, precisions


class Runs:
    """The figures as they come: each configuration measured on its own (a failure costs only its
    figure, reported on stderr and counted in the exit status) and kept in ``--save``'s file."""

    def __init__(self, device: torch.device, save: str | None) -> None:
        self.device, self.save = device, save
        self.saved: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def keep(self, rows: list[dict[str, Any]]) -> None:
        """Add figures to ``--save``'s file, rewritten whole (atomically) each time."""
        if self.save:
            from musictag.files import atomic_write_text

            self.saved.extend(rows)
            atomic_write_text(self.save, json.dumps(self.saved, indent=1) + "\n")

    def attempt(self, what: str, measure: Callable[..., Any], *measure_args: Any) -> Any:
        """``measure(*measure_args)``, or None after reporting its failure: a configuration that fails
        (out of memory, a compiler error) must not cost the figures of the others."""
        try:
            return measure(*measure_args)
        except Exception as err:  # noqa: BLE001  (reported, and counted in the exit status)
            self.failures.append(what)
            reason = (str(err).strip().splitlines() or [""])[0]
            print(
                f"musictag bench: {what} failed: {type(err).__name__}: {reason}", file=sys.stderr, flush=True
            )
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return None

    @property
    def status(self) -> int:
        return 1 if self.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.report:
        return report.main(args.report)
    device, precisions = _checked(parser, args)
    runs = Runs(device, args.save)
    if args.inference:
        return _inference(args, runs)
    if args.data or args.data_only:
        from musictag.bench.data import main as data_main

        runs.keep([asdict(figure) for figure in data_main(as_json=args.json, repeats=args.data_repeats)])
        if args.data_only:
            return runs.status
    if args.threads is not None:  # the training steps' threads (the data figures keep torch's)
        torch.set_num_threads(args.threads)
    names = args.arch or available()
    if args.augment:
        from musictag.bench.augment import augment_figures, table

        figures = augment_figures(runs.device, args.batch_size[0], args.steps, args.repeats, args.warmup)
        runs.keep([asdict(figure) for figure in figures])
        print(json.dumps([asdict(f) for f in figures]) if args.json else table(figures), flush=True)
        return runs.status
    if args.profile:
        _profile(args, runs, names, precisions)
    elif args.epoch:
        _epochs(args, runs, names, precisions)
    else:
        _steps(args, runs, names, precisions)
    return runs.status


def _check_inference(args: argparse.Namespace) -> None:
    """Every file and backend of ``--inference``, before anything is loaded or timed."""
    unknown = sorted(set(args.backend) - set(BACKENDS))
    if unknown:
        raise InputError(f"--backend {' '.join(unknown)}: unknown; choose from {', '.join(BACKENDS)}")
    for flag, path in [*(("--inference", c) for c in args.inference), ("--audio", args.audio),
                       ("--musicnn-python", args.musicnn_python)]:  # fmt: skip
        if path is not None and not Path(path).is_file():
            raise InputError(f"{flag} {path}: no such file")


def _inference(args: argparse.Namespace, runs: Runs) -> int:
    import tempfile

    _check_inference(args)
    threads = args.threads or 2
    with tempfile.TemporaryDirectory(prefix="musictag-bench-") as tmp:
        audio = args.audio or str(inference.synth_song(Path(tmp) / "song_30s_22k_stereo.mp3"))
        backends = {name: BACKENDS[name] for name in args.backend}
        settings = (args.inference, audio, backends, args.repeats, threads, args.musicnn_python)
        figures = runs.attempt("inference", inference.measure, *settings, args.musicnn_model)
    if figures is None:
        return runs.status
    runs.keep([asdict(f) for f in figures])
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=1))
    else:
        print("\n".join(inference.format_rows(figures)), flush=True)
    return runs.status


def _profile(args: argparse.Namespace, runs: Runs, names: list[str], precisions: list[str]) -> None:
    settings = (args.compile, args.channels_last, args.steps, args.warmup)
    for name, batch_size, precision in product(names, args.batch_size, precisions):
        what = f"profile {name} batch {batch_size} {precision}"
        table = runs.attempt(
            what, throughput.profile_steps, name, batch_size, runs.device, precision, *settings
        )
        if table is not None:
            print(table, flush=True)


def _epochs(args: argparse.Namespace, runs: Runs, names: list[str], precisions: list[str]) -> None:
    results = []
    for name, precision in product(names, precisions):
        settings = (name, runs.device, precision, args.compile, args.batch_size[0], args.scale)
        row = runs.attempt(f"epoch {name} {precision}", throughput.epoch_seconds, *settings)
        if row is None:
            continue
        results.append(row)
        runs.keep([row])
        if not args.json:
            print(
                f"epoch {name} on {row['device']}, {precision}, batch {row['batch']}, compile "
                f"{'on' if args.compile else 'off'}: {row['train_chunks']:,} training chunks + "
                f"{row['valid_songs']:,} songs × {row['chunks_per_song']} chunks in "
                f"{row['epoch_seconds']:.1f} s (the full MTAT epoch: "
                f"{row['full_mtat_epoch_seconds']:.1f} s)",
                flush=True,
            )
    if args.json:
        print(json.dumps(results, indent=1))


def _steps(args: argparse.Namespace, runs: Runs, names: list[str], precisions: list[str]) -> None:
    figures = []
    if not args.json:
        print(
            f"# musictag bench: forward+backward+Adam on {throughput.device_name(runs.device)}; median of "
            f"{args.repeats} runs of {args.steps} steps after {args.warmup} warm-up steps (lowest – highest)"
        )
        print(
            f"{'architecture':<18} {'params':>12} {'input s':>8} {'batch':>6} {'precision':>10} "
            f"{'compile':>7} {'ch-last':>7} {'samples/s':>10} {'spread':>17} {'peak MiB':>9}"
        )
    settings = (args.compile, args.channels_last, args.steps, args.repeats, args.warmup)
    for name, batch_size, precision in product(names, args.batch_size, precisions):
        what = f"{name} batch {batch_size} {precision}"
        measure = throughput.step_throughput  # looked up each time: tests replace it
        figure = runs.attempt(what, measure, name, batch_size, runs.device, precision, *settings)
        if figure is None:
            continue
        figures.append(figure)
        runs.keep([asdict(figure)])
        if not args.json:
            print(_step_row(figure), flush=True)
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=1))


def _step_row(figure: throughput.StepFigure) -> str:
    spread = f"{figure.low:.1f} – {figure.high:.1f}"
    return (
        f"{figure.arch:<18} {figure.params:>12,d} {figure.input_s:>8.2f} {figure.batch:>6} "
        f"{figure.precision:>10} {'on' if figure.compile else 'off':>7} "
        f"{'on' if figure.channels_last else 'off':>7} {figure.samples_per_s:>10.1f} "
        f"{spread:>17} {figure.peak_memory_mib:>9.0f}"
    )
