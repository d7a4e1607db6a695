"""A run's folders and loggers: ``<save_dir>/<name>/version_N/`` with a CSV log and, beside it, a W&B run
(online, offline or disabled), the newest ``best``/``last`` checkpoint of a run, and the W&B run's end.

``musictag fit|validate|test|predict`` (:mod:`musictag.cli.lightning_cli`) takes its ``run:`` group as
:class:`RunSettings`.
"""

from __future__ import annotations

import csv
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only

from musictag.types import ConfigError

WandbMode = Literal["auto", "online", "offline", "disabled"]


@dataclass
class RunSettings:
    """Where and under which name a run logs.

    Args:
        name: experiment name; logs go to ``<save_dir>/<name>/version_N``.
        project: W&B project.
        save_dir: root folder of all runs; default ``trainer.default_root_dir`` if that is set, else ``runs``.
        wandb: ``auto`` (``$WANDB_MODE`` if set, else online with an API key, else offline), or a mode.
        log_model: upload checkpoints as W&B artifacts (``true``: the best at the end; ``all``: each).
        bootstrap_draws: resamplings of the test songs for the 95 % intervals a test writes (0: none).
        bootstrap_seed: the seed of those resamplings (a fixed default: the same test, the same interval).
        explain_songs: ``test``: draw the tag-wise saliency heatmaps of this many test songs into the run
            folder's ``explain/`` and log them to W&B as images (``musictag explain``'s pictures).
    """

    name: str = "default"
    project: str = "musictag"
    save_dir: str | None = None
    wandb: WandbMode = "auto"
    log_model: bool | Literal["all"] = False
    bootstrap_draws: int = 1000
    bootstrap_seed: int = 0
    explain_songs: int = 0


def wandb_mode(requested: WandbMode = "auto") -> str:
    """The W&B mode a run uses: the request, else ``$WANDB_MODE``, else online only with an API key."""
    if requested != "auto":
        return requested
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def runs_root(run: RunSettings, default_root_dir: str | None = None) -> str:
    """The folder that holds the runs: ``run.save_dir``, else ``trainer.default_root_dir``, else ``runs``."""
    return run.save_dir or default_root_dir or "runs"


def default_loggers(run: RunSettings, resume_dir: Path | None = None) -> list[Logger]:
    """CSV always; W&B beside it in the same version folder unless W&B is disabled.

    ``resume_dir`` (a ``version_N`` folder) continues that run: the CSV log gets the new rows and W&B
    resumes the run of the same id.
    """
    csv_logger = CSVLogger(
        save_dir=runs_root(run), name=run.name, version=resume_dir.name if resume_dir else None
    )
    loggers: list[Logger] = [csv_logger]
    metrics_file = Path(csv_logger.log_dir) / "metrics.csv"
    if resume_dir is not None and metrics_file.is_file() and getattr(rank_zero_only, "rank", 0) == 0:
        # Lightning's CSV writer deletes an existing metrics.csv when it starts: put the resumed run's
        # rows back and let the writer append under the same columns.
        logged = metrics_file.read_text()
        writer = csv_logger.experiment
        metrics_file.write_text(logged)
        writer.metrics_keys = next(csv.reader(logged.splitlines()), [])
    mode = wandb_mode(run.wandb)
    if mode != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        _ = csv_logger.experiment  # create the version folder before W&B writes into it
        run_dir = Path(csv_logger.log_dir)
        run_id = wandb_run_id(run_dir) if resume_dir is not None else None
        if run.log_model and mode != "online":
            warnings.warn(
                f"run.log_model needs W&B online (it is {mode}): checkpoints stay local", stacklevel=2
            )
        loggers.append(
            WandbLogger(
                name=f"{run.name}/{run_dir.name}",
                project=run.project,
                save_dir=str(run_dir),
                offline=mode == "offline",
                mode=mode,
                id=run_id,
                resume="allow" if run_id else None,
                log_model=run.log_model if mode == "online" else False,
            )
        )
    return loggers


def wandb_run_folders(run_dir: Path) -> list[Path]:
    """The W&B run folders of a run folder (``wandb/{offline,run}-<YYYYmmdd_HHMMSS>-<id>[-<n>]``), oldest first.

    W&B names a run's folder by the second it started and its id, and when that folder exists (the same
    run resumed within the same second, as a requeued job that starts at once can be) it appends
    ``-1``, ``-2``, ...: the order is the start time, then that number, not the names' order.
    """

    def started(folder: Path) -> tuple[str, int]:
        parts = folder.name.split("-")  # mode, "run", time, id[, n]
        return parts[2], int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else 0

    folders = [f for f in run_dir.glob("wandb/*-run-*-*") if f.is_dir() and not f.is_symlink()]
    return sorted(folders, key=started)


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the newest W&B run of a run folder, from its ``run-<id>.wandb`` file (the id is not the
    folder name's last part when W&B appended a number to it); ``None`` without one."""
    for folder in reversed(wandb_run_folders(run_dir)):
        records = sorted(folder.glob("run-*.wandb"))
        if records:
            return records[0].name[len("run-") : -len(".wandb")]
    return None


def _version_number(folder: Path) -> int:
    number = folder.name.split("_")[-1]
    return int(number) if number.isdigit() else -1


def newest_checkpoint(run: RunSettings, which: str) -> Path:
    """``best.ckpt`` or ``last.ckpt`` of the newest ``version_N`` of a run that has one.

    For ``last``, a mid-epoch checkpoint that Lightning wrote on SLURM's requeue signal
    (``hpc_ckpt_N.ckpt`` in the run folder) counts too, and the newer of the two is taken: a requeued
    job then resumes from where it was stopped, not from the end of the epoch before.
    """
    base = Path(runs_root(run)) / run.name
    candidates = [p for p in base.glob(f"version_*/checkpoints/{which}.ckpt") if p.is_file()]
    if which == "last":
        candidates += [p for p in base.glob("version_*/hpc_ckpt_*.ckpt") if p.is_file()]
    if not candidates:
        raise ConfigError(
            f"--ckpt_path {which}: no {which}.ckpt under {base}/version_*/checkpoints; run `musictag fit` "
            "with this config first, or give the checkpoint's path"
        )
    newest_version = max(_version_number(run_folder(p)) for p in candidates)
    in_newest = [p for p in candidates if _version_number(run_folder(p)) == newest_version]
    return max(in_newest, key=lambda p: (p.stat().st_mtime_ns, p.name.startswith("hpc_ckpt_")))


def run_folder(checkpoint: Path) -> Path:
    """The ``version_N`` folder of a checkpoint in ``checkpoints/`` or (an HPC one) at its top."""
    return checkpoint.parents[1] if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def finish_wandb(trainer: Any) -> None:
    """End the W&B runs of a finished command, so another command in this process starts its own."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in getattr(trainer, "loggers", []):
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def finish_stopped_wandb_run(exit_code: int) -> None:
    """End the W&B run of a command stopped by a signal, with the status the process exits with.

    Its offline record then ends with that status (not the 0 W&B's exit hook would write), and a later
    command in this process starts its own run instead of logging into this one.
    """
    wandb = sys.modules.get("wandb")  # not imported: W&B was never used
    run = getattr(wandb, "run", None)
    if run is not None:
        run.finish(exit_code=exit_code)
