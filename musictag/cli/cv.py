"""``musictag cv --config C --folds K [--fold-seed S] [fit overrides...]``: K-fold cross-validation.

Each fold ``k`` is an ordinary ``musictag fit`` and then ``musictag test --ckpt_path best`` with
``--data.init_args.folds=K --data.init_args.fold=k --data.init_args.fold_seed=S`` and the run name
``<name>-fold<k>``: its own run folder, W&B run and checkpoints. The runs are child processes, one after
another: each starts with fresh seeds and globals (Lightning's, W&B's, torch's), exactly as the same
command typed by hand, and a crash or a kill ends that fold, not the record of the others.

The folds' test metrics and their mean ± std are printed and written to ``<save_dir>/<name>-cv/cv.csv``
(:mod:`musictag.training.crossval`; std is the sample std, ddof=1). The resolved config is recorded
beside it (``cv_config.yaml``): a rerun of the same command continues with the first unfinished fold (a
fold is finished when its test metrics exist; an unfinished fit resumes from its ``last.ckpt``), and a
rerun with another config is refused in one line naming the first setting that differs.

``--data.init_args.fold=k`` among the overrides runs that fold only (a W&B sweep or a SLURM array task);
``musictag cv --collect DIR`` then makes ``cv.csv`` from the fold runs found under ``DIR``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from datamodules.folds import check_fold_args
from musictag.files import atomic_write_text
from musictag.guards import InputError, check_writable_folder, given_path
from musictag.types import ConfigError

#: An override that names one fold (``--data.init_args.fold=2`` or ``--data.init_args.fold 2``).
_FOLD = re.compile(r"^--data\.init_args\.(fold|folds|fold_seed)(?:=(.*))?$")
RECORD = "cv_config.yaml"
CONTINUE = "rerun the same command to continue with the first unfinished fold"


def run_child(argv: list[str]) -> int:
    """``python -m musictag ARGV`` as a child process; its exit status. SIGTERM (a scheduler's kill) and
    Ctrl-C sent to this process alone reach the child too, so no run goes on without its parent."""
    child = subprocess.Popen([sys.executable, "-m", "musictag", *argv])

    stopped: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        # only forwarded here: the wait below (which holds the child's lock) returns when the child ends
        stopped.append(signum)
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            child.wait()
        print(f"musictag cv: {CONTINUE}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        print(f"musictag cv: stopped by SIGTERM; {CONTINUE}", file=sys.stderr)
        raise SystemExit(128 + stopped[0])
    return code


def _split_overrides(extra: list[str]) -> tuple[list[str], int | None]:
    """The fit overrides without ``--data.init_args.fold``, and that fold (``None``: every fold)."""
    kept: list[str] = []
    fold: int | None = None
    items = iter(extra)
    for item in items:
        match = _FOLD.match(item)
        if match is None:
            kept.append(item)
            continue
        key, value = match.group(1), match.group(2)
        if key != "fold":
            option = "--folds" if key == "folds" else "--fold-seed"
            raise InputError(f"give the cross-validation's {key} as {option}, not --data.init_args.{key}")
        value = value if value is not None else next(items, "")
        try:
            fold = int(value)
        except ValueError:
            raise InputError(f"--data.init_args.fold must be a fold number, got {value!r}") from None
    return kept, fold


def _check_record(record: Path, current: dict[str, Any], command: str) -> None:
    """Record the cross-validation's resolved config, or refuse one that differs from the record."""
    text = yaml.safe_dump(current, sort_keys=True)
    if not record.is_file():
        atomic_write_text(record, text)
        return
    from musictag.training.crossval import flat

    recorded = flat(yaml.safe_load(record.read_text()) or {})
    now = flat(yaml.safe_load(text))
    differ = sorted(
        k for k in recorded.keys() | now.keys() if recorded.get(k, "<unset>") != now.get(k, "<unset>")
    )
    if differ:
        key = differ[0]
        raise ConfigError(
            f"{record} records this cross-validation with another config ({key}: {recorded.get(key, '<unset>')!r}, "
            f"now {now.get(key, '<unset>')!r}{f', and {len(differ) - 1} more' if len(differ) > 1 else ''}); "
            f"rerun it as it was, or give another --run.name to start a new one ({command})"
        )


def run_cv(configs: list[str], folds: int, fold_seed: int, extra: list[str]) -> int:
    from musictag.cli.lightning_cli import resolved_config
    from musictag.training import crossval
    from musictag.training.runs import RunSettings, newest_checkpoint, runs_root

    overrides, only = _split_overrides(extra)
    check_fold_args(folds, 0 if only is None else only)
    fold_args = [f"--data.init_args.folds={folds}", f"--data.init_args.fold_seed={fold_seed}"]
    base = [*(f"--config={c}" for c in configs), *overrides, *fold_args]
    config = resolved_config(*configs, args=[*overrides, *fold_args, "--data.init_args.fold=0"])
    config["data"]["init_args"].pop("fold", None)
    name = str(config["run"]["name"])
    save_dir = runs_root(RunSettings(**config["run"]), config["trainer"].get("default_root_dir"))
    cv_dir = check_writable_folder(Path(save_dir) / crossval.cv_folder_name(name), "the cv folder")
    cv_dir.mkdir(parents=True, exist_ok=True)
    _check_record(cv_dir / RECORD, config, "musictag cv")

    for fold in range(folds) if only is None else [only]:
        run_name = crossval.fold_run_name(name, fold)
        done = crossval.finished_fold(save_dir, name, folds, fold, fold_seed)
        if done is None:
            fold_base = [*base, f"--data.init_args.fold={fold}", f"--run.name={run_name}"]
            try:
                newest_checkpoint(RunSettings(name=run_name, save_dir=save_dir), "last")
                resume = ["--ckpt_path=last"]
            except ConfigError:
                resume = []
            say = "resuming from its last.ckpt" if resume else "fit, then test"
            print(f"musictag cv: fold {fold} of {folds} ({run_name}): {say}", file=sys.stderr, flush=True)
            for step in (["fit", *fold_base, *resume], ["test", *fold_base, "--ckpt_path=best"]):
                code = run_child(step)
                if code != 0:
                    raise ConfigError(
                        f"fold {fold}'s `musictag {step[0]}` ended with exit status {code}; fix what it said "
                        "and rerun the same command: it continues with this fold"
                    )
            done = crossval.finished_fold(save_dir, name, folds, fold, fold_seed)
            if done is None:
                raise ConfigError(
                    f"fold {fold}'s test run logged no test/* metric under {save_dir}/{run_name}"
                )
        shown = ", ".join(f"{k}={done.metrics[k]:.4f}" for k in crossval.HEADLINE if k in done.metrics)
        print(f"musictag cv: fold {fold}: {shown} ({done.folder})", flush=True)
    if only is not None:
        print(f"musictag cv: fold {only} done; `musictag cv --collect {save_dir}` makes cv.csv once all are")
        return 0
    runs = [crossval.finished_fold(save_dir, name, folds, k, fold_seed) for k in range(folds)]
    return _write(cv_dir / "cv.csv", [r for r in runs if r is not None])


def _write(path: Path, runs: list[Any]) -> int:
    from musictag.training import crossval

    print(crossval.format_table(runs))
    crossval.write_cv_csv(path, runs)
    print(f"musictag cv: wrote {path} (a row per fold, then mean and std; std is the sample std, ddof=1)")
    return 0


def collect(root: str, out: str | None) -> int:
    from musictag.training import crossval

    if not os.path.isdir(root):
        raise InputError(f"--collect {root}: not a folder; give the folder that holds the fold runs")
    runs = crossval.collect(root)
    names = {re.sub(r"-fold\d+$", "", run.name) for run in runs}
    default = Path(root) / crossval.cv_folder_name(names.pop() if len(names) == 1 else "collected") / "cv.csv"
    path = Path(out) if out else default
    check_writable_folder(path.parent, "--out's folder")
    return _write(path, runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="musictag cv",
        description="K-fold cross-validation: K ordinary fit + test runs (run names <name>-fold<k>), their "
        "test metrics and mean ± std in <save_dir>/<name>-cv/cv.csv; a rerun continues with the first "
        "unfinished fold.",
        allow_abbrev=False,
        epilog="Any other option is a fit override (--trainer.max_epochs=1), passed to every fold's run; "
        "--data.init_args.fold=k runs fold k alone (a sweep or array task; then --collect).",
    )
    parser.add_argument(
        "--config", type=given_path, action="append", default=[], help="a config (repeatable)"
    )
    parser.add_argument("--folds", type=int, metavar="K", help="number of folds K (at least 3)")
    parser.add_argument(
        "--fold-seed", type=int, default=0, metavar="S", help="seed of the deal of songs into folds"
    )
    parser.add_argument(
        "--collect", type=given_path, metavar="DIR", help="make cv.csv from the fold runs under this folder"
    )
    parser.add_argument("--out", type=given_path, metavar="FILE", help="with --collect: the cv.csv to write")
    args, extra = parser.parse_known_args(argv)
    if args.collect is not None:
        if args.config or args.folds is not None or extra:
            raise InputError("--collect DIR takes no config, --folds or overrides (only --out)")
        return collect(args.collect, args.out)
    if args.folds is None:
        raise InputError(
            "give --folds K with the fit's --config (or --collect DIR); `musictag cv --help` says more"
        )
    if args.out is not None:
        raise InputError("--out goes with --collect; cv writes <save_dir>/<name>-cv/cv.csv")
    if any(a == "--fold" or a.startswith("--fold=") for a in extra):
        raise InputError("one fold alone is --data.init_args.fold=k (as a sweep or an array job gives it)")
    unknown = [a for a in extra if re.match(r"^-[A-Za-z]", a)]
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r}; `musictag cv --help` lists the options")
    return run_cv(args.config, args.folds, args.fold_seed, extra)
