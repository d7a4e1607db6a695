"""Training throughput of every architecture, and an epoch you can plan with (``musictag bench``,
whose flags and printing are :mod:`musictag.cli.bench`).

One step is ``TaggingModule``'s own: :meth:`~musictag.training.module.TaggingModule.training_loss` (int16
→ float on the device, forward, BCE-with-logits; under autocast for the mixed precisions, as Lightning
runs ``training_step``), then backward and an Adam update, on a batch at the architecture's input
length; the representation (mel, harmonic filterbank) runs inside the network on the device. Each figure
is the median of ``repeats`` runs of ``steps`` timed steps after ``warmup`` steps (synchronised on the
GPU), with the spread (lowest – highest run) and the peak memory (CUDA: allocated by torch; otherwise
the process's peak resident memory).

:func:`epoch_seconds` times one epoch of the MTAT recipe's size through ``Trainer.fit`` — 15,244 training
chunks, then validation of 1,529 songs × 16 chunks — from a synthetic warm cache, loader included
(``scale`` runs a fraction of it, e.g. on CPU). :func:`profile_steps` lists the operators that take the
time of training steps (torch.profiler). The data pipeline is :mod:`musictag.bench.data`; saved figures
become the README's tables in :mod:`musictag.bench.report`.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from datamodules.manifest import Manifest
    from musictag.training.module import TaggingModule

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
#: The MTAT recipe's epoch (clean split): training chunks, validation songs, chunks per song.
MTAT_EPOCH = (15_244, 1_529, 16)
#: Tags of the benchmark's batches (MTAT's top 50).
N_TAGS = 50
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
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU, {torch.get_num_threads()} threads"


def build_module(
    arch: str, channels_last: str = "preset", n_tags: int = N_TAGS, compile: bool = False
) -> TaggingModule:
    """The ``TaggingModule`` of ``arch``; ``channels_last`` ``on``/``off`` overrides the 2-D CNN front
    ends' layout (``preset``: as the architecture says)."""
    from musictag.models import resolve_architecture
    from musictag.training.module import TaggingModule

    frontend = resolve_architecture(arch)["frontend"]
    override = None
    if channels_last != "preset" and isinstance(frontend, dict):
        if frontend.get("name") in CHANNELS_LAST_FRONTENDS:
            override = {**frontend, "channels_last": channels_last == "on"}
    return TaggingModule(n_tags=n_tags, arch=arch, frontend=override, compile=compile)


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
    elif device.type == "mps":
        torch.mps.synchronize()


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _training_step(
    arch: str, batch_size: int, device: torch.device, precision: str, compile: bool, channels_last: str
) -> tuple[Callable[[], None], TaggingModule]:
    """One training step of ``arch`` on a fixed random int16 batch (see the module docstring), and the
    module it trains."""
    torch.manual_seed(0)
    if compile:
        # A fresh compilation per configuration: dynamo keys its cache on nn.Module's shared call code,
        # so the nets of earlier configurations would count against its recompile limit (8), past
        # which it runs the network eagerly, and figures called compiled would not be.
        torch._dynamo.reset()
    module = build_module(arch, channels_last, compile=compile).to(device).train()
    module.setup("fit")  # the module's own torch.compile (when asked), as Trainer.fit runs it
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    wave = (torch.randn(batch_size, module.input_len, device=device) * 3000).to(torch.int16)
    target = torch.randint(0, 2, (batch_size, N_TAGS), device=device).float()

    def one_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(precision, device):
            loss = module.training_loss(wave, target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return one_step, module


def _warmed_step(
    arch: str,
    batch_size: int,
    device: torch.device,
    precision: str,
    compile: bool,
    channels_last: str,
    warmup: int,
) -> tuple[Callable[[], None], TaggingModule]:
    """:func:`_training_step`, run ``warmup`` times (compiled, caches filled) and synchronised."""
    one_step, module = _training_step(arch, batch_size, device, precision, compile, channels_last)
    for _ in range(warmup):
        one_step()
    _synchronize(device)
    return one_step, module


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
    settings = (arch, batch_size, device, precision, compile, channels_last)
    one_step, module = _warmed_step(*settings, warmup)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        _synchronize(device)
        runs.append(batch_size * steps / (time.perf_counter() - start))
    net = module.net
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

    one_step, _ = _warmed_step(arch, batch_size, device, precision, compile, channels_last, warmup)
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


def synthetic_epoch_cache(root: Path, n_train: int, n_valid: int) -> Manifest:
    """A warm cache of MTAT's shape without its 14 GB, written to ``root``: 64 distinct 29.1 s tracks that
    every song id of the epoch points to, and the manifest of ``n_train`` training and ``n_valid``
    validation songs with random tags (each with positives and negatives)."""
    import numpy as np

    from datamodules.cache import AudioCache
    from datamodules.manifest import Manifest

    rng = np.random.default_rng(0)
    tracks = [(f"d{i}", (0.1 * rng.standard_normal(465_600)).astype(np.float32)) for i in range(64)]
    AudioCache.write(root, tracks, 16000)
    index_path = root / "index.json"
    index = json.loads(index_path.read_text())
    distinct = [index["tracks"][f"d{i}"] for i in range(64)]
    ids = [f"s{i:05d}" for i in range(n_train + n_valid)]
    index["tracks"] = {song: distinct[i % 64] for i, song in enumerate(ids)}
    index_path.write_text(json.dumps(index))
    targets = rng.integers(0, 2, (len(ids), N_TAGS)).astype(np.uint8)
    targets[:, 0], targets[:2, 0] = 0, 1  # every tag has positives and negatives
    return Manifest(
        tuple(ids),
        ("train",) * n_train + ("valid",) * n_valid,
        targets,
        tuple(f"tag{j}" for j in range(N_TAGS)),
        ("",) * len(ids),
    )


def _timed_epochs(device: torch.device, precision: str, max_epochs: int) -> tuple[Any, list[float]]:
    """A ``Trainer`` of ``max_epochs`` epochs on ``device`` that only trains and validates, and the list
    it fills with the seconds of each training epoch (its validation included), synchronised."""
    from lightning.pytorch import Callback, Trainer

    seconds: list[float] = []

    class EpochTimer(Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            _synchronize(device)
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # after validation
            _synchronize(device)
            seconds.append(time.perf_counter() - self.start)

    trainer = Trainer(
        accelerator={"cuda": "gpu"}.get(device.type, device.type),
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision=precision,  # type: ignore[arg-type]  # a name Lightning checks itself
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochTimer()],
    )
    return trainer, seconds


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

    The cache is :func:`synthetic_epoch_cache`; the loaders are ``fit``'s defaults. The first (warm-up)
    epoch starts workers, compiles, and fills caches; the figure is the second epoch.
    """
    from datamodules.cache import AudioCache
    from musictag.bench.data import CacheDataModule
    from musictag.training.module import TaggingModule

    n_train, n_valid = (max(1, round(n * scale)) for n in MTAT_EPOCH[:2])
    n_chunks = MTAT_EPOCH[2]
    with tempfile.TemporaryDirectory(prefix="musictag-epoch-") as tmp:
        root = Path(tmp) / "cache"
        manifest = synthetic_epoch_cache(root, n_train, n_valid)
        settings: dict[str, Any] = {"batch_size": batch_size, "n_chunks": n_chunks}
        if num_workers is not None:
            settings["num_workers"] = num_workers
        data = CacheDataModule(manifest, AudioCache(root), **settings)
        if compile:
            torch._dynamo.reset()  # a fresh compilation per epoch figure (see _training_step)
        model = TaggingModule(n_tags=N_TAGS, arch=arch, compile=compile, tag_names=list(manifest.tag_names))
        trainer, seconds = _timed_epochs(device, precision, max_epochs=2)
        trainer.fit(model, datamodule=data)
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
        "epoch_seconds": seconds[-1],
        "full_mtat_epoch_seconds": seconds[-1] / scale,
    }
