"""The runs of a cross-validation and their table: ``cv.csv``, a row per fold, then ``mean`` and ``std``.

A fold's run is an ordinary test run (``musictag test``) whose recorded config (``config.yaml`` in its run
folder) has ``data.init_args.folds`` and ``data.init_args.fold`` set; its metrics are the ``test/*``
columns of its ``metrics.csv`` (the last value logged of each). ``musictag cv`` finds its finished folds
this way, and ``musictag cv --collect DIR`` the folds run elsewhere (a W&B sweep, a SLURM array).

``std`` is the sample standard deviation over folds (``ddof=1``), as the papers that report k-fold
"mean ± std" compute it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from musictag.files import atomic_write_text
from musictag.types import ConfigError, Pathlike

#: The metrics shown first (the rest follow sorted).
HEADLINE = ("test/roc_auc", "test/pr_auc")
#: What differs between the folds of one cross-validation (``seed_everything: true`` draws a seed per run).
PER_FOLD = ("data.init_args.fold", "run.name", "ckpt_path", "seed_everything")


def fold_run_name(name: str, fold: int) -> str:
    """The run name of fold ``fold`` of the cross-validation of run ``name``."""
    return f"{name}-fold{fold}"


def cv_folder_name(name: str) -> str:
    """The folder (beside the runs) that holds the cross-validation's ``cv.csv`` and config record."""
    return f"{name}-cv"


@dataclass(frozen=True)
class FoldRun:
    """A finished fold: the test run's folder, its fold settings and its ``test/*`` metrics."""

    folder: Path
    name: str
    folds: int
    fold: int
    fold_seed: int
    metrics: dict[str, float]
    config: dict[str, Any]


def last_metrics(metrics_csv: Path, prefix: str = "test/") -> dict[str, float]:
    """The last value logged of every ``prefix*`` column of a run's ``metrics.csv``."""
    values: dict[str, float] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            values.update(
                {k: float(v) for k, v in row.items() if k and k.startswith(prefix) and v not in ("", None)}
            )
    return values


def read_fold_run(folder: Pathlike) -> FoldRun | None:
    """The fold test run in ``folder`` (a ``version_N``), or ``None`` when it is not one: no config
    recording ``folds``/``fold``, or no ``test/*`` metric logged (a fit, or a test stopped early)."""
    folder = Path(folder)
    config_file, metrics_file = folder / "config.yaml", folder / "metrics.csv"
    if not (config_file.is_file() and metrics_file.is_file()):
        return None
    try:
        config = yaml.safe_load(config_file.read_text()) or {}
        data = (config.get("data") or {}).get("init_args") or {}
        folds, fold = data.get("folds"), data.get("fold")
        metrics = last_metrics(metrics_file)
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None
    if not isinstance(folds, int) or not isinstance(fold, int) or not metrics:
        return None
    name = str((config.get("run") or {}).get("name", folder.parent.name))
    return FoldRun(folder, name, folds, fold, int(data.get("fold_seed") or 0), metrics, config)


def find_fold_runs(root: Pathlike) -> list[FoldRun]:
    """Every fold test run under ``root`` (any depth), in path order."""
    root = Path(root)
    folders = sorted({p.parent for p in root.rglob("config.yaml")}) if root.is_dir() else []
    return [run for run in map(read_fold_run, folders) if run is not None]


def _version(folder: Path) -> int:
    number = folder.name.rsplit("_", 1)[-1]
    return int(number) if number.isdigit() else -1


def finished_fold(runs_root: Pathlike, name: str, folds: int, fold: int, fold_seed: int) -> FoldRun | None:
    """The newest finished test run of fold ``fold`` of ``name``'s cross-validation, if there is one."""
    found = [
        run
        for run in find_fold_runs(Path(runs_root) / fold_run_name(name, fold))
        if (run.folds, run.fold, run.fold_seed) == (folds, fold, fold_seed)
    ]
    return max(found, key=lambda run: _version(run.folder)) if found else None


def _listed(folders: Iterable[Path]) -> str:
    return ", ".join(str(f) for f in folders)


def collect(root: Pathlike) -> list[FoldRun]:
    """The fold runs under ``root``, one per fold, in fold order: refused in one line when none is there,
    when they come from different cross-validations (fold counts or seeds), when a fold is missing or
    when a fold has two test runs."""
    runs = find_fold_runs(root)
    if not runs:
        raise ConfigError(
            f"no fold test runs under {root} (run folders whose config.yaml sets data.init_args.folds and "
            "fold, with test/* metrics in metrics.csv); run `musictag test` on each fold's checkpoint first"
        )
    settings = sorted({(run.folds, run.fold_seed) for run in runs})
    if len(settings) > 1:
        described = "; ".join(f"folds={k}, fold_seed={s}" for k, s in settings)
        raise ConfigError(
            f"the fold runs under {root} come from {len(settings)} cross-validations ({described}); "
            "collect one at a time (give the folder of one)"
        )
    folds = settings[0][0]
    by_fold: dict[int, list[FoldRun]] = {}
    for run in runs:
        by_fold.setdefault(run.fold, []).append(run)
    twice = {fold: found for fold, found in sorted(by_fold.items()) if len(found) > 1}
    if twice:
        fold, found = next(iter(twice.items()))
        raise ConfigError(
            f"fold {fold} of {folds} has {len(found)} test runs under {root} "
            f"({_listed(r.folder for r in found)}); remove all but one"
        )
    missing = [fold for fold in range(folds) if fold not in by_fold]
    if missing:
        raise ConfigError(
            f"fold(s) {', '.join(map(str, missing))} of {folds} have no test run under {root}; "
            "run and test them, then collect again"
        )
    chosen = [by_fold[fold][0] for fold in range(folds)]
    first = _settings(chosen[0].config)
    for run in chosen[1:]:
        other = _settings(run.config)
        differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differ:
            raise ConfigError(
                f"the fold runs under {root} differ in {differ[0]} ({chosen[0].folder}: {first.get(differ[0])!r}, "
                f"{run.folder}: {other.get(differ[0])!r}): they are not one cross-validation"
            )
    return chosen


def flat(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"a.b.c": value}``."""
    if isinstance(config, dict) and config:
        return {k: v for key, value in config.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): config}


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat(config).items() if k not in PER_FOLD}


def metric_columns(runs: Sequence[FoldRun]) -> list[str]:
    """Every metric of the runs: :data:`HEADLINE` first, then the others sorted."""
    names = {name for run in runs for name in run.metrics}
    return [m for m in HEADLINE if m in names] + sorted(names - set(HEADLINE))


def summary(runs: Sequence[FoldRun]) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """The metric columns and their mean and sample std (``ddof=1``) over the folds that logged them."""
    columns = metric_columns(runs)
    mean, std = {}, {}
    for column in columns:
        values = np.array([run.metrics[column] for run in runs if column in run.metrics], dtype=np.float64)
        mean[column] = float(values.mean())
        std[column] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return columns, mean, std


def _cell(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def cv_csv(runs: Sequence[FoldRun]) -> str:
    """The text of ``cv.csv``: ``fold,run,<metrics>``; a row per fold, then ``mean`` and ``std``."""
    columns, mean, std = summary(runs)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["fold", "run", *columns])
    for run in runs:
        writer.writerow([run.fold, str(run.folder), *(_cell(run.metrics.get(c)) for c in columns)])
    writer.writerow(["mean", "", *(_cell(mean[c]) for c in columns)])
    writer.writerow(["std", "", *(_cell(std[c]) for c in columns)])
    return out.getvalue()


def write_cv_csv(path: Pathlike, runs: Sequence[FoldRun]) -> Path:
    """``cv.csv`` at ``path``, written atomically (a reader never sees half a table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, cv_csv(runs))
    return path


def read_cv_csv(path: Pathlike) -> dict[str, dict[str, Any]]:
    """``cv.csv`` as ``{fold or "mean" or "std": {column: value}}`` (metrics as floats)."""
    table: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table[row["fold"]] = {
                k: (float(v) if k not in ("fold", "run") and v != "" else v) for k, v in row.items()
            }
    return table


def format_table(runs: Sequence[FoldRun], shown: Sequence[str] | None = None) -> str:
    """The folds' metrics and ``mean ± std`` as aligned text (the headline metrics unless ``shown``)."""
    columns, mean, std = summary(runs)
    shown = [c for c in (shown or HEADLINE) if c in columns] or columns[:4]
    header = ["fold", *shown]
    lines = [
        [str(run.fold), *(f"{run.metrics[c]:.4f}" if c in run.metrics else "" for c in shown)] for run in runs
    ]
    lines.append(["mean ± std", *(f"{mean[c]:.4f} ± {std[c]:.4f}" for c in shown)])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *lines]
    )
