"""The ``musictag`` command: one module per subcommand (parse, call, print).

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's (:mod:`musictag.cli.lightning_cli`); the
tools of :data:`TOOLS` (``tag``, ``prepare``, ``embed``, ``import-weights``, ``bench``, ``compare``) take their own
arguments. ``musictag`` / ``musictag --help`` list every command.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

from musictag.cli.lightning_cli import MusictagCLI, config_error_in
from musictag.guards import describe_os_error, run_command
from musictag.training.runs import finish_stopped_wandb_run, finish_wandb

#: Subcommands that are not LightningCLI's: name → "module:function" taking the remaining arguments.
TOOLS = {
    "bench": "musictag.cli.bench:main",
    "prepare": "musictag.cli.prepare:main",
    "embed": "musictag.cli.embed:main",
    "tag": "musictag.cli.tag:main",
    "features": "musictag.cli.features:main",
    "explain": "musictag.cli.explain:main",
    "import-weights": "musictag.cli.import_weights:main",
    "export": "musictag.cli.export:main",
    "cv": "musictag.cli.cv:main",
    "compare": "musictag.cli.compare:main",
}
#: Earlier names of commands: they still run, and ``musictag --help`` lists only the new name.
RENAMED = {"import-pretrained": "import-weights"}

#: Every subcommand with its line in ``musictag --help``.
COMMANDS = {
    "fit": "train a model: musictag fit --config experiments/demo.yaml",
    "validate": "evaluate a checkpoint on the validation split (--ckpt_path best|last|FILE)",
    "test": "evaluate a checkpoint on the test split; writes song-level predictions",
    "predict": "song-level scores of a corpus split (data.init_args.predict_split)",
    "tag": "tag audio files and folders with a checkpoint: musictag tag song.mp3 --ckpt CKPT",
    "features": "a checkpoint's layer outputs per chunk: musictag features song.mp3 --ckpt CKPT --out DIR",
    "explain": "where in each file its tags come from: musictag explain song.mp3 --ckpt CKPT --out DIR",
    "prepare": "decode a corpus once into a packed int16 cache: musictag prepare --config CONFIG",
    "embed": "store a frozen encoder's (or checkpoint's) embeddings of a corpus, to train probes on",
    "import-weights": "turn published weights into a musictag checkpoint",
    "export": "a checkpoint as one ONNX file, spectrogram included: musictag export --ckpt CKPT --out model.onnx",
    "bench": "training throughput of the architectures (and data loading) on this machine",
    "cv": "k-fold cross-validation, mean ± std of test metrics: musictag cv --config C --folds 5",
    "compare": "paired bootstrap of two test runs' metrics: musictag compare RUN_A RUN_B",
}


def overview() -> str:
    """What ``musictag``, ``musictag --help`` and ``python -m musictag --help`` print."""
    lines = [
        f"usage: musictag {{{','.join(COMMANDS)}}} ...",
        "",
        "Music auto-tagging: train, evaluate, compare and use tagging models.",
        "",
        "commands:",
        *(f"  {name:<19}{text}" for name, text in COMMANDS.items()),
        "",
        "`musictag COMMAND --help` lists a command's options (fit, validate, test and predict take",
        "--config YAML files, repeatable, and dotted overrides such as --trainer.max_epochs=30).",
    ]
    return "\n".join(lines)


def main(args: Any = None) -> None:
    """Entry point of the ``musictag`` console script."""
    from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else None
    if argv is not None and (not argv or argv[0] in ("-h", "--help")):
        print(overview())
        raise SystemExit(0 if argv else 2)
    if argv and argv[0] in RENAMED:
        argv[0] = RENAMED[argv[0]]
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        # LightningCLI's own message lists only its four subcommands, over several lines
        print(
            f"musictag: error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} "
            "(`musictag --help` says what each does)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if argv and argv[0] in TOOLS:
        module_name, function = TOOLS[argv[0]].split(":")
        tool = getattr(importlib.import_module(module_name), function)
        # the one net under every tool: a bad path, number or device is a line, never a traceback
        raise SystemExit(run_command(f"musictag {argv[0]}", lambda: tool(argv[1:])))
    try:
        cli = MusictagCLI(args=args)
        finish_wandb(cli.trainer)
    except SIGTERMException:
        # Lightning stops the loops on SIGTERM with a SystemExit of status 0; a scheduler would take
        # that for success. The run did not finish: say so, and exit as a terminated process does.
        print(
            "musictag: stopped by SIGTERM before the run finished; continue it with --ckpt_path last",
            file=sys.stderr,
        )
        finish_stopped_wandb_run(128 + signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM) from None
    except OSError as err:
        # a run folder, a data root or a cache that cannot be made or read: its path and what to do
        described = describe_os_error(err)
        if described is None:
            raise
        print(f"musictag: error: {described}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as err:
        config_error: Exception | None = config_error_in(err)
        if config_error is None and isinstance(err, MisconfigurationException):
            config_error = err  # Lightning's word on a setting this machine cannot honour
        if config_error is None:
            raise
        message = (
            str(config_error).strip().splitlines()[0] if str(config_error).strip() else repr(config_error)
        )
        if isinstance(config_error, MisconfigurationException) and any(
            word in message.lower() for word in ("gpu", "cuda", "accelerator", "mps")
        ):
            message += " (this machine has no such device: use --trainer.accelerator=auto or cpu)"
        print(f"musictag: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
