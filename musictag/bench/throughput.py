"""``musictag bench``: training throughput of every architecture, and an epoch you can plan with.

One step = int16 → float32 on the device, forward (under autocast for the mixed precisions),
BCE-with-logits, backward and an Adam update on a batch at the architecture's input length, like a
training step of ``TaggingModule``; the representation (mel, harmonic filterbank) runs inside the
network on the device. Each figure is the median of ``--repeats`` runs of ``--steps`` timed steps after
``--warmup`` steps (synchronised on CUDA), with the spread (lowest – highest run) and the peak memory
(CUDA: allocated by torch; CPU: the process's peak resident memory).

``--epoch`` times one epoch of the MTAT recipe's size through ``Trainer.fit`` — 15,244 training chunks,
then validation of 1,529 songs × 16 chunks — from a synthetic warm cache, loader included (``--scale``
runs a fraction of it, e.g. on CPU). ``--data`` / ``--data-only``: the data pipeline
(:mod:`musictag.bench.data`). ``--profile`` prints the operators that take the time of ``--steps``
training steps instead (torch.profiler). ``--save`` keeps the figures as JSON, rewritten after every
configuration, so that a run cut short keeps what it measured; ``--report`` turns such files into the
README's tables (:mod:`musictag.bench.report`). A configuration that fails (out of memory, say) is
reported on stderr and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from musictag.guards import (
    InputError,
    at_least,
    at_most_per_core,
    check_device,
    check_output_file,
    given_path,
)
from musictag.models import Tagger, available, resolve_architecture

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
#: The MTAT recipe's epoch (clean split): training chunks, validation songs, chunks per song.
MTAT_EPOCH = (15_244, 1_529, 16)
CHANNELS_LAST_FRONTENDS = ("conv2d_stack", "res2d_stack")


@dataclass
class StepFigure:
    """Training throughput of one configuration."""

    arch: str
    params: int
    input_s: float
    batch: int
    precision: str
    compile: bool
    channels_last: bool
    device: str
    samples_per_s: float
    low: float
    high: float
    runs: list[float] = field(default_factory=list)
    peak_memory_mib: float = 0.0


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def build_net(arch: str, channels_last: str = "preset", n_tags: int = 50) -> Tagger:
    """The architecture; ``channels_last`` ``on``/``off`` overrides the 2-D CNN front ends' layout."""
    stages = resolve_architecture(arch)
    frontend = stages["frontend"]
    if channels_last != "preset" and isinstance(frontend, dict):
        if frontend.get("name") in CHANNELS_LAST_FRONTENDS:
            stages["frontend"] = {**frontend, "channels_last": channels_last == "on"}
    return Tagger(n_tags=n_tags, **stages)


def uses_channels_last(net: torch.nn.Module) -> bool:
    return any(getattr(module, "channels_last", False) is True for module in net.modules())


def autocast_for(precision: str, device: torch.device) -> Any:
    if precision == "32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _training_step(
    arch: str, batch_size: int, device: torch.device, precision: str, compile: bool, channels_last: str
) -> tuple[Any, Tagger]:
    """One training step of ``arch`` on a fixed random int16 batch (see the module docstring), and the net."""
    torch.manual_seed(0)
    net = build_net(arch, channels_last).to(device).train()
    if compile:
        # A fresh compilation per configuration: dynamo keys its cache on nn.Module's shared call code,
        # so the nets of earlier configurations would count against its recompile limit (8), past
        # which it runs the network eagerly, and figures called compiled would not be.
        torch._dynamo.reset()
        net.compile()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    wave = (torch.randn(batch_size, net.input_len, device=device) * 3000).to(torch.int16)
    target = torch.randint(0, 2, (batch_size, 50), device=device).float()

    def one_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(precision, device):
            logits = net(wave.float() / 32768.0)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return one_step, net


def step_throughput(
    arch: str,
    batch_size: int,
    device: torch.device,
    precision: str = "32",
    compile: bool = False,
    channels_last: str = "preset",
    steps: int = 20,
    repeats: int = 3,
    warmup: int = 3,
) -> StepFigure:
    """Samples/s of training steps of ``arch`` (see the module docstring)."""
    one_step, net = _training_step(arch, batch_size, device, precision, compile, channels_last)
    for _ in range(warmup):
        one_step()
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        _synchronize(device)
        runs.append(batch_size * steps / (time.perf_counter() - start))
    return StepFigure(
        arch=arch,
        params=net.n_params(),
        input_s=net.input_len / net.sample_rate,
        batch=batch_size,
        precision=precision,
        compile=compile,
        channels_last=uses_channels_last(net),
        device=device_name(device),
        samples_per_s=statistics.median(runs),
        low=min(runs),
        high=max(runs),
        runs=runs,
        peak_memory_mib=_peak_memory_mib(device),
    )


def profile_steps(
    arch: str,
    batch_size: int,
    device: torch.device,
    precision: str = "32",
    compile: bool = False,
    channels_last: str = "preset",
    steps: int = 5,
    warmup: int = 3,
    row_limit: int = 25,
) -> str:
    """The operators that take the time of ``steps`` training steps (torch.profiler), as a text table
    sorted by their own device time (CPU time on a CPU), after a line comparing wall-clock and device
    time per step: a step whose wall-clock time is well above its device time waits for the host."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    one_step, _ = _training_step(arch, batch_size, device, precision, compile, channels_last)
    for _ in range(warmup):
        one_step()
    _synchronize(device)
    on_cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if on_cuda else [ProfilerActivity.CPU]
    with profile(activities=activities, acc_events=True) as prof:  # (one cycle: keeps torch quiet)
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        _synchronize(device)
        wall_ms = (time.perf_counter() - start) * 1000 / steps
    per_step = f"{wall_ms:.2f} ms wall-clock"
    if on_cuda:  # the kernels' own time (device events; CPU ops would count their kernels twice)
        kernels_us = sum(e.device_time_total for e in prof.events() if e.device_type != DeviceType.CPU)
        per_step += f", {kernels_us / 1000 / steps:.2f} ms in kernels"
    header = (
        f"# profile: {arch}, batch {batch_size}, {precision}, compile {'on' if compile else 'off'}, "
        f"on {device_name(device)}: {steps} steps after {warmup} warm-up steps; per step {per_step} "
        f"({batch_size / wall_ms * 1000:,.0f} samples/s under the profiler)"
    )
    sort_by = "self_device_time_total" if on_cuda else "self_cpu_time_total"
    return header + "\n" + prof.key_averages().table(sort_by=sort_by, row_limit=row_limit)


def epoch_seconds(
    arch: str,
    device: torch.device,
    precision: str = "32",
    compile: bool = False,
    batch_size: int = 16,
    scale: float = 1.0,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Seconds of one MTAT-sized epoch (training, then validation) through ``Trainer.fit``.

    The synthetic cache holds 64 distinct 29.1 s tracks that every song id of the epoch points to (a
    warm cache of MTAT's shape without its 14 GB); the loaders are ``fit``'s defaults. The first
    (warm-up) epoch starts workers, compiles, and fills caches; the figure is the second epoch.
    """
    import numpy as np
    from lightning.pytorch import Callback, Trainer

    from datamodules.cache import AudioCache
    from datamodules.manifest import Manifest
    from musictag.bench.data import CacheDataModule
    from musictag.training.module import TaggingModule

    n_train, n_valid = (max(1, round(n * scale)) for n in MTAT_EPOCH[:2])
    n_chunks = MTAT_EPOCH[2]
    with tempfile.TemporaryDirectory(prefix="musictag-epoch-") as tmp:
        root = Path(tmp) / "cache"
        rng = np.random.default_rng(0)
        tracks = [(f"d{i}", (0.1 * rng.standard_normal(465_600)).astype(np.float32)) for i in range(64)]
        AudioCache.write(root, tracks, 16000)
        index_path = root / "index.json"
        index = json.loads(index_path.read_text())
        distinct = [index["tracks"][f"d{i}"] for i in range(64)]
        ids = [f"s{i:05d}" for i in range(n_train + n_valid)]
        index["tracks"] = {song: distinct[i % 64] for i, song in enumerate(ids)}
        index_path.write_text(json.dumps(index))
        targets = rng.integers(0, 2, (len(ids), 50)).astype(np.uint8)
        targets[:, 0], targets[:2, 0] = 0, 1  # every tag has positives and negatives
        manifest = Manifest(
            tuple(ids),
            ("train",) * n_train + ("valid",) * n_valid,
            targets,
            tuple(f"tag{j}" for j in range(50)),
            ("",) * len(ids),
        )
        settings: dict[str, Any] = {"batch_size": batch_size, "n_chunks": n_chunks}
        if num_workers is not None:
            settings["num_workers"] = num_workers
        data = CacheDataModule(manifest, AudioCache(root), **settings)
        if compile:
            torch._dynamo.reset()  # a fresh compilation per epoch figure (see _training_step)
        model = TaggingModule(n_tags=50, arch=arch, compile=compile, tag_names=list(manifest.tag_names))

        class EpochTimer(Callback):
            def __init__(self) -> None:
                self.starts: list[float] = []
                self.ends: list[float] = []

            def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
                _synchronize(device)
                self.starts.append(time.perf_counter())

            def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # after validation
                _synchronize(device)
                self.ends.append(time.perf_counter())

        timer = EpochTimer()
        trainer = Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index or 0] if device.type == "cuda" else 1,
            precision=precision,  # type: ignore[arg-type]  # a name Lightning checks itself
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[timer],
        )
        trainer.fit(model, datamodule=data)
        seconds = timer.ends[-1] - timer.starts[-1]
    return {
        "arch": arch,
        "device": device_name(device),
        "precision": precision,
        "compile": compile,
        "batch": batch_size,
        "scale": scale,
        "train_chunks": n_train,
        "valid_songs": n_valid,
        "chunks_per_song": n_chunks,
        "epoch_seconds": seconds,
        "full_mtat_epoch_seconds": seconds / scale,
    }


def _precision(value: str) -> str:
    aliases = {"bf16": "bf16-mixed", "16": "16-mixed", "fp32": "32", "32-true": "32"}
    value = aliases.get(value, value)
    if value not in (*PRECISIONS, "auto"):
        raise argparse.ArgumentTypeError(f"unknown precision {value!r}; use auto, {', '.join(PRECISIONS)}")
    return value


def check_own_figures(path: str) -> None:
    """``--save`` replaces only what an earlier ``--save`` wrote: any other file there is refused."""
    from musictag.bench.report import load_figures

    if not Path(path).is_file():
        return
    try:
        load_figures([path])
    except ValueError:
        raise InputError(
            f"--save {path} exists and is not figures written by musictag bench --save; give a new path "
            "(it is not overwritten)"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musictag bench", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=None, help="architectures (default: all)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16], help="one or more batch sizes")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--precision",
        type=_precision,
        nargs="+",
        default=["auto"],
        help="32, bf16-mixed, 16-mixed (one or more); auto: bf16-mixed on CUDA, else 32",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument(
        "--channels-last",
        choices=["preset", "on", "off"],
        default="preset",
        help="memory layout of the 2-D CNN front ends (preset: as the architecture says)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--epoch", action="store_true", help="seconds of one MTAT-sized epoch instead")
    parser.add_argument("--scale", type=float, default=1.0, help="--epoch: fraction of the MTAT epoch")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--data", action="store_true", help="also the data pipeline (prepare and loader throughput)"
    )
    parser.add_argument("--data-only", action="store_true", help="only the data pipeline")
    parser.add_argument("--data-repeats", type=int, default=5, help="timed runs of each data figure")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, print the operators that take the time of --steps steps (torch.profiler)",
    )
    parser.add_argument(
        "--save",
        type=given_path,
        metavar="FILE",
        help="also write the figures as JSON to FILE, rewritten after every configuration",
    )
    parser.add_argument(
        "--report",
        type=given_path,
        nargs="+",
        metavar="FILE",
        help="print the README's markdown tables of figures saved by --save or printed by --json, and exit",
    )
    args = parser.parse_args(argv)
    if args.report:
        from musictag.bench.report import main as report_main

        return report_main(args.report)
    # every number, the device and --save before anything is measured (a bad one costs nothing)
    at_least("--threads", args.threads, 1)
    at_most_per_core("--threads", args.threads)
    at_least("--data-repeats", args.data_repeats, 1)
    device = torch.device(check_device(args.device))
    if args.save:
        check_output_file(args.save, "--save", overwrite=True)
        check_own_figures(args.save)
    saved: list[dict[str, Any]] = []

    def keep(rows: list[dict[str, Any]]) -> None:
        """Add figures to ``--save``'s file, rewritten whole (atomically) each time."""
        if args.save:
            from musictag.files import atomic_write_text

            saved.extend(rows)
            atomic_write_text(args.save, json.dumps(saved, indent=1) + "\n")

    if args.data or args.data_only:
        from musictag.bench.data import main as data_main

        keep([asdict(figure) for figure in data_main(as_json=args.json, repeats=args.data_repeats)])
        if args.data_only:
            return 0

    precisions = [
        ("bf16-mixed" if device.type == "cuda" else "32") if p == "auto" else p for p in args.precision
    ]
    if device.type == "cpu" and "16-mixed" in precisions:
        parser.error("16-mixed needs a CUDA device (fp16 autocast is not supported for training on CPU)")
    if min(args.batch_size) < 1 or args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--batch-size, --steps and --repeats must be at least 1, --warmup at least 0")
    if not 0 < args.scale <= 1:
        parser.error(f"--scale must be in (0, 1], got {args.scale}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = args.arch or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown architecture(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    failures: list[str] = []

    def attempt(what: str, measure: Callable[..., Any], *measure_args: Any) -> Any:
        """``measure(*measure_args)``, or None after reporting its failure: a configuration that fails
        (out of memory, a compiler error) must not cost the figures of the others."""
        try:
            return measure(*measure_args)
        except Exception as err:  # noqa: BLE001  (reported, and counted in the exit status)
            failures.append(what)
            reason = (str(err).strip().splitlines() or [""])[0]
            print(
                f"musictag bench: {what} failed: {type(err).__name__}: {reason}", file=sys.stderr, flush=True
            )
            if device.type == "cuda":
                torch.cuda.empty_cache()
            return None

    step_settings = (args.compile, args.channels_last, args.steps)
    if args.profile:
        for name, batch_size, precision in product(names, args.batch_size, precisions):
            what = f"profile {name} batch {batch_size} {precision}"
            table = attempt(
                what, profile_steps, name, batch_size, device, precision, *step_settings, args.warmup
            )
            if table is not None:
                print(table, flush=True)
        return 1 if failures else 0

    if args.epoch:
        results = []
        for name, precision in product(names, precisions):
            row = attempt(
                f"epoch {name} {precision}",
                epoch_seconds,
                *(name, device, precision, args.compile, args.batch_size[0], args.scale),
            )
            if row is None:
                continue
            results.append(row)
            keep([row])
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
        return 1 if failures else 0

    figures = []
    if not args.json:
        print(
            f"# musictag bench: forward+backward+Adam on {device_name(device)}; median of {args.repeats} "
            f"runs of {args.steps} steps after {args.warmup} warm-up steps (lowest – highest)"
        )
        print(
            f"{'architecture':<18} {'params':>12} {'input s':>8} {'batch':>6} {'precision':>10} "
            f"{'compile':>7} {'ch-last':>7} {'samples/s':>10} {'spread':>17} {'peak MiB':>9}"
        )
    for name, batch_size, precision in product(names, args.batch_size, precisions):
        figure = attempt(
            f"{name} batch {batch_size} {precision}",
            step_throughput,
            *(name, batch_size, device, precision, *step_settings, args.repeats, args.warmup),
        )
        if figure is None:
            continue
        figures.append(figure)
        keep([asdict(figure)])
        if not args.json:
            spread = f"{figure.low:.1f} – {figure.high:.1f}"
            print(
                f"{name:<18} {figure.params:>12,d} {figure.input_s:>8.2f} {batch_size:>6} "
                f"{precision:>10} {'on' if figure.compile else 'off':>7} "
                f"{'on' if figure.channels_last else 'off':>7} {figure.samples_per_s:>10.1f} "
                f"{spread:>17} {figure.peak_memory_mib:>9.0f}",
                flush=True,
            )
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
