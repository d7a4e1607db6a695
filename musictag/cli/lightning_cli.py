"""``musictag fit|validate|test|predict``: LightningCLI with musictag's defaults.

On top of LightningCLI:
- ``n_tags`` and ``tag_names`` flow from the DataModule to the model;
- a ``checkpoint`` group (:class:`~musictag.training.callbacks.Checkpoint`) that keeps ``best.ckpt`` by ``val/pr_auc`` and
  ``last.ckpt`` (the state after the latest epoch);
- a ``run`` group naming the run; unless ``trainer.logger`` is configured, every run logs to CSV and to
  Weights & Biases side by side under ``<run.save_dir>/<run.name>/version_N/`` (W&B offline without an
  API key, ``disabled`` when ``WANDB_MODE=disabled``);
- ``--ckpt_path best`` / ``last`` for validate/test/predict means that checkpoint of the newest run of
  ``run.name``; ``fit --ckpt_path last`` resumes that run (same folder, epoch, optimizer and logger run);
- configuration errors (unknown stage names, shapes that do not fit, corpus and metadata errors, a
  checkpoint that is missing or not safe to load, a device this machine lacks) end with one ``error:``
  line and exit status 2;
- a run stopped by SIGTERM exits 143, not 0, and ends its W&B run so (SLURM's requeue signal still
  checkpoints and requeues);
- ``musictag`` / ``musictag --help`` (:mod:`musictag.cli`) list every command.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from datamodules.base import TaggingDataModule
from musictag.guards import InputError, at_least, check_writable_folder
from musictag.training.callbacks import Checkpoint, default_callbacks
from musictag.training.module import TaggingModule
from musictag.training.runs import (
    RunSettings,
    default_loggers,
    newest_checkpoint,
    run_folder,
    runs_root,
)
from musictag.types import ConfigError, Pathlike


class SaveConfigToLoggers(SaveConfigCallback):
    """``config.yaml`` in the run folder, and the same resolved config in every W&B run."""

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(self.config.as_dict(), allow_val_change=True)


#: Trainer settings Lightning takes unchecked (a ZeroDivisionError mid-epoch, or silently nothing): minimum.
TRAINER_MINIMUMS = {
    "accumulate_grad_batches": 1,
    "check_val_every_n_epoch": 1,
    "log_every_n_steps": 1,
    "num_nodes": 1,
    "num_sanity_val_steps": -1,
    "gradient_clip_val": 0,
    "reload_dataloaders_every_n_epochs": 0,
}


def check_trainer_numbers(trainer: Any) -> None:
    """``--trainer.X`` below its minimum (:data:`TRAINER_MINIMUMS`), or a zero ``val_check_interval``:
    one line before anything runs."""
    for key, minimum in TRAINER_MINIMUMS.items():
        value = trainer.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            at_least(f"--trainer.{key}", value, minimum)
    interval = trainer.get("val_check_interval")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool) and not interval > 0:
        raise InputError(
            f"--trainer.val_check_interval must be above 0, got {interval} (a fraction of an epoch, or batches)"
        )


#: Lines of jsonargparse's nested error reports that say how it searched, not what was wrong.
_SEARCH_LINES = re.compile(
    r"^(- )?(Does not validate against any of the Union subtypes|Subtypes:|Errors:|Given value type:|"
    r"Given value:|Expected a <class 'NoneType'>|Problem with given class_path)"
)

#: jsonargparse's words for a section given as a path to a file it cannot read (missing, or bad inside).
_UNREADABLE_CONFIG = re.compile(
    r"^Unable to load config ['\"]([^'\"]+)['\"]$|^Expected a path but (\S+\.(?:ya?ml|json)) either not accessible"
)


def one_line_parse_error(message: str) -> str:
    """jsonargparse's report of a bad argument as one line: the keys it went through, the reasons.

    ``Parser key "data": ... Parser key "batch_size": Expected a <class 'int'>. Got value: many``
    becomes ``data.batch_size: Expected a <class 'int'>. Got value: many``.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else "bad arguments"
    where = ""
    for key in dict.fromkeys(re.findall(r'Parser key "([^"]+)"', message)):
        # a key of a section given as a path is named alone and with its section ("trainer.max_epochs")
        where = key if not where or key.startswith(where + ".") else f"{where}.{key}"
    given = re.search(r"^\s*Given value: (.*)$", message, re.MULTILINE)
    reasons, files, missing = [], [], []
    for line in lines:
        line = re.sub(r'^(- )?(Parser key "[^"]+":\s*)*', "", line).strip()
        unreadable = _UNREADABLE_CONFIG.match(line)
        if unreadable:
            files.append(unreadable.group(1) or unreadable.group(2))
            missing += [unreadable.group(2)] if unreadable.group(2) else []
        elif line and not _SEARCH_LINES.match(line) and line not in reasons:
            reasons.append(line)
    if missing or (files and not reasons):  # a section given as a path (trainer: trainer.yaml) not found
        return (
            f"{where or 'config'}: no config file {(missing or files)[0]!r} (a path in a config is read "
            "relative to the file that names it)"
        )
    reason = " or ".join(reasons[:2]) if reasons else lines[-1]
    if files:
        reason = f"in {files[0]}: {reason}"
    value = given.group(1) if given else None
    nested = re.fullmatch(r"NestedArg\(key='[^']*', val=(.*)\)", value or "")
    value = nested.group(1).strip("'\"") if nested else value
    if value is not None and "Got value" not in reason and f": {value}" not in reason:
        reason += f"; got {value!r}"
    return f"{where}: {reason}" if where else reason


class OneLineErrorParser(LightningArgumentParser):
    """A bad command line is one ``musictag: error:`` line naming the option, not usage and a report."""

    def error(self, message: str, ex: Exception | None = None) -> Any:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            return super().error(message, ex)  # jsonargparse trying alternatives, or asked to raise
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        print(
            f"musictag: error: {one_line_parse_error(message)} (`{prog} --help` lists the options)",
            file=sys.stderr,
        )
        raise SystemExit(2)


class MusictagCLI(LightningCLI):
    """LightningCLI with musictag's links, checkpointing, loggers and error reporting."""

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf"})
        kwargs.setdefault("parser_class", OneLineErrorParser)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", SaveConfigToLoggers)
        # the DataModules shard themselves under DDP, evaluation without repeating songs
        kwargs.setdefault("trainer_defaults", {"use_distributed_sampler": False})
        super().__init__(
            TaggingModule,
            TaggingDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.n_tags", "model.init_args.n_tags", apply_on="instantiate")
        parser.link_arguments("data.tag_names", "model.init_args.tag_names", apply_on="instantiate")
        parser.add_class_arguments(RunSettings, "run")
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/pr_auc",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def _set_seed(self) -> None:
        # "Seed set to N" (in config.yaml anyway) would be a second line before a configuration error
        seed_log = logging.getLogger("lightning.fabric.utilities.seed")
        level = seed_log.level
        seed_log.setLevel(logging.WARNING)
        try:
            super()._set_seed()
        finally:
            seed_log.setLevel(level)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        ckpt = config.get("ckpt_path")
        self.resume_dir: Path | None = None
        # `--trainer.default_root_dir D` puts the runs under D (unless `--run.save_dir` says otherwise)
        config.run.save_dir = runs_root(
            RunSettings(**vars(config.run)), config.trainer.get("default_root_dir")
        )
        # before anything runs: a runs folder under a file would otherwise fail once training is over
        check_writable_folder(config.run.save_dir, "--run.save_dir")
        check_trainer_numbers(config.trainer)
        at_least("--run.bootstrap_draws", config.run.bootstrap_draws, 0)
        if ckpt in ("best", "last") and (self.subcommand != "fit" or ckpt == "last"):
            path = newest_checkpoint(RunSettings(**vars(config.run)), ckpt)
            print(f"musictag: using {ckpt} checkpoint {path}", file=sys.stderr)
            config.ckpt_path = str(path)
            if self.subcommand == "fit":  # resume: same run folder, same logger runs
                self.resume_dir = run_folder(path)
        else:
            self._check_ckpt_path(ckpt)

    def _check_ckpt_path(self, ckpt: Any) -> None:
        """One line for a ``--ckpt_path`` file that is missing, empty, foreign or unsafe to load."""
        if ckpt is None or ckpt in ("best", "last", "hpc") or "://" in str(ckpt):
            return
        if getattr(self, "_ckpt_checked", None) != ckpt:
            from musictag.training.checkpoints import load_checkpoint

            load_checkpoint(str(ckpt))
            self._ckpt_checked = ckpt

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads a checkpoint's hyperparameters right after parsing, with torch's own errors
        subcommand = self.config.get("subcommand")
        self._check_ckpt_path(self.config[subcommand].get("ckpt_path") if subcommand else None)
        super()._parse_ckpt_path()

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        if config["trainer"].get("logger") in (None, True) and "logger" not in kwargs:
            kwargs["logger"] = default_loggers(config["run"], getattr(self, "resume_dir", None))
            # The run folder is the Trainer's root too, so what Lightning writes outside the loggers
            # stays in the run: a SLURM requeue's hpc_ckpt_N.ckpt (which `--ckpt_path last` finds),
            # the tuner's temporary checkpoints. (`--trainer.default_root_dir D` already put the run
            # folder under D.) W&B's offline run is the same with or without it, SLURM or not.
            kwargs["default_root_dir"] = kwargs["logger"][0].log_dir
        try:
            return super().instantiate_trainer(**kwargs)
        except (ValueError, TypeError) as err:
            # Lightning's own check of a trainer setting (devices=abc, strategy=nosuch): one line
            if not str(err).strip() or config_error_in(err) is not None:
                raise
            raise ConfigError(f"trainer: {str(err).strip().splitlines()[0]}") from None

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        if self.subcommand != "fit":
            # Only fit chooses checkpoints. Elsewhere the callback would try to restore its state into the
            # new run's folder, and Lightning's note that it is missing is no news to the user.
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks used")
        # the evaluation callbacks, unless the config names its own instance of one
        configured = [*callbacks, *(config.get("callbacks") or [])]
        run = (self.config_init[self.subcommand] if self.subcommand else self.config_init)["run"]
        for callback in default_callbacks(self.subcommand, run.bootstrap_draws, run.bootstrap_seed):
            if not any(isinstance(c, type(callback)) for c in configured):
                callbacks.append(callback)
        return super()._instantiate_trainer(config, callbacks)

    def _refuse_untrained(self) -> None:
        """Before the run starts (no run folder filled): evaluating layers that were never trained,
        with no ``--ckpt_path`` to give trained ones, is refused (``TaggingModule.check_trained``)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        check = getattr(self.model, "check_trained", None)
        if config.get("ckpt_path") is None and check is not None:
            check(self.subcommand)

    def before_validate(self) -> None:
        self._refuse_untrained()

    def before_test(self) -> None:
        self._refuse_untrained()

    def before_predict(self) -> None:
        self._refuse_untrained()

    def after_test(self) -> None:
        self._explain_test_songs()
        self._say_where_outputs_went("test")

    def _explain_test_songs(self) -> None:
        """``--run.explain_songs N``: heatmaps of N test songs in ``<run folder>/explain/``, and in W&B."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        n_songs = int(config.run.explain_songs or 0)
        log_dir = self.trainer.log_dir
        if n_songs < 1 or not self.trainer.is_global_zero or log_dir is None:
            return
        from lightning.pytorch.loggers import WandbLogger

        from musictag.inference.explain import explain_test_songs

        manifest, cache = self.datamodule.load()
        pictures = explain_test_songs(self.model, manifest, cache, n_songs, Path(log_dir) / "explain")
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and pictures:
                logger.log_image(
                    key="test/explain", images=[str(p) for p in pictures], caption=[p.stem for p in pictures]
                )
        print(f"musictag: test: {len(pictures)} heatmap(s) in {Path(log_dir) / 'explain'}", file=sys.stderr)

    def after_predict(self) -> None:
        self._say_where_outputs_went("predict")

    def _say_where_outputs_went(self, subcommand: str) -> None:
        """One line naming the run folder of a test or predict run, and why it is not the checkpoint's."""
        log_dir = self.trainer.log_dir
        if not self.trainer.is_global_zero or log_dir is None:
            return
        written = [name for name in ("metrics.csv", "config.yaml") if (Path(log_dir) / name).is_file()]
        line = f"musictag: {subcommand} run folder {log_dir} ({', '.join(written)}"
        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
            for path in getattr(callback, "written", []):
                line += f", {Path(path).name}"
        line += ")"
        ckpt = self.trainer.ckpt_path
        if ckpt and Path(ckpt).parent.name == "checkpoints":
            fit_dir = Path(ckpt).parents[1]
            if fit_dir.resolve() != Path(log_dir).resolve():
                line += (
                    f"; the checkpoint's fit run is {fit_dir}: every command logs into a new version folder, "
                    "so the fit's own log and W&B run stay as they were"
                )
        print(line, file=sys.stderr)

    def after_fit(self) -> None:
        callback = self.trainer.checkpoint_callback
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            score = callback.best_model_score
            shown = f" ({callback.monitor}={float(score):.4f})" if score is not None else ""
            self.trainer.print(f"musictag: best checkpoint {callback.best_model_path}{shown}")


class _RaisingParser(OneLineErrorParser):
    """:class:`OneLineErrorParser` that raises its one line as a :class:`ConfigError` instead of exiting."""

    def error(self, message: str, ex: Exception | None = None) -> Any:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            return super().error(message, ex)
        raise ConfigError(one_line_parse_error(message))


class _Parsed(Exception):
    """What :class:`_ParseOnlyCLI` stops with: the parsed config, as ``--print_config`` writes it."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("parsed")
        self.config = config


class _ParseOnlyCLI(MusictagCLI):
    """``musictag``'s parser, stopped once the arguments are parsed: no seed, checks or classes."""

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        config = parser.parse_args(args)
        subcommand = config["subcommand"]
        dumped = self._parser(subcommand).dump(config[subcommand], skip_unset=False)  # as --print_config
        raise _Parsed(yaml.safe_load(dumped))


def resolved_config(*configs: Pathlike, args: Sequence[str] = (), subcommand: str = "fit") -> dict[str, Any]:
    """The config ``musictag <subcommand> --config C1 --config C2 ... ARGS`` runs with, as its
    ``--print_config`` prints it: the files composed (a section given as a path is read relative to the
    file that names it; later files and ``args`` override earlier ones), defaults filled in. Nothing is
    instantiated, seeded or checked beyond parsing.

    A config that does not parse raises :class:`ConfigError` with ``fit``'s one-line message.
    """
    argv = [subcommand, *(f"--config={os.fspath(path)}" for path in configs), *args]
    try:
        _ParseOnlyCLI(args=argv, parser_class=_RaisingParser)
    except _Parsed as parsed:
        return parsed.config
    raise AssertionError("the parser returned without a config")  # pragma: no cover


def config_error_in(err: BaseException) -> ConfigError | None:
    """The :class:`ConfigError` behind ``err``: jsonargparse wraps errors raised while instantiating."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
