"""musictag: a PyTorch Lightning experiment suite for music auto-tagging.

``musictag.TaggingModule`` and ``musictag.load`` (tagging from Python) are imported on first use, so that
light tools (audio decoding in cache workers) do not load Lightning.

The layers, bottom to top (``docs/architecture.md`` draws them; ``tests/test_imports.py`` keeps them):
``types``, ``files``, ``audio``, ``chunks``, ``guards`` → ``stages`` (the registry and the
representations, front ends, back ends and heads) → ``models`` (the zoo) → ``training`` (the
LightningModule, metrics, callbacks, schedules) → ``convert`` (published weights) and ``inference``
(tagging, ``musictag.load``) → ``bench`` and ``analysis`` → ``cli`` (one module per command);
``testing`` holds test doubles and nothing imports it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

__version__ = "0.1.0"
__all__ = ["TaggingModule", "__version__", "load"]

#: PyTorch's OpenMP threads sleep at the end of each operator instead of spinning (GNU OpenMP reads this
#: once, when ``import torch`` loads it: set here only if torch is not loaded yet, and only if unset). A
#: spinning thread holds its core while it waits: on a CPU that other programs share, a 2-thread
#: ``musictag tag`` then took twice the CPU seconds and twice the wall time of a sleeping one
#: (``docs/benchmarks.md``). ``OMP_WAIT_POLICY=ACTIVE`` gives the spinning back.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Modules as they were named before the layers became packages (2026-12) → where they live now. Class
#: paths in configs and run folders written before the move (``musictag.schedules.ReferenceSchedule``,
#: ``musictag.frontends.conv2d.Conv2dStack``, ``musictag.callbacks.TaggingMetrics``) keep resolving.
MOVED = {
    "musictag.ops": "musictag.stages.ops",
    "musictag.registry": "musictag.stages.registry",
    "musictag.representations": "musictag.stages.representations",
    "musictag.frontends.pretrained": "musictag.stages.frontends.hf_encoder",
    "musictag.frontends": "musictag.stages.frontends",
    "musictag.backends": "musictag.stages.backends",
    "musictag.heads": "musictag.stages.heads",
    "musictag.models.pretrained": "musictag.convert.sota",
    "musictag.models.musicnn_import": "musictag.convert.musicnn",
    "musictag.models.tf_checkpoint": "musictag.convert.tf_checkpoint",
    "musictag.models.crc32c": "musictag.convert.crc32c",
    "musictag.models.import_files": "musictag.convert.writing",
    "musictag.models.sota_tags": "musictag.convert.sota_tags",
    "musictag.module": "musictag.training.module",
    "musictag.metrics": "musictag.training.metrics",
    "musictag.callbacks": "musictag.training.callbacks",
    "musictag.schedules": "musictag.training.schedules",
    "musictag.loading": "musictag.inference.loading",
    "musictag.api": "musictag.inference.api",
    "musictag.taggram": "musictag.inference.taggram",
    "musictag.tag_search": "musictag.inference.search",
    "musictag.tag_command": "musictag.cli.tag",
    "musictag.prepare": "musictag.cli.prepare",
    "musictag.embed": "musictag.cli.embed",
    "musictag.embed_checks": "datamodules.embedding_writer",
    "musictag.bench_data": "musictag.bench.data",
    "musictag.bench_report": "musictag.bench.report",
    "musictag.waves": "musictag.audio",
    "musictag.testing_encoders": "musictag.testing.encoders",
    "musictag.testing_wandb": "musictag.testing.wandb_offline",
    "datamodules.dummies": "musictag.testing.corpora",
}


def moved_to(name: str) -> str | None:
    """Where the module once called ``name`` lives now (``None``: it was not moved)."""
    for old in sorted(MOVED, key=len, reverse=True):
        if name == old or name.startswith(old + "."):
            return MOVED[old] + name[len(old) :]
    return None


class _MovedModule(importlib.abc.Loader):
    """Loads an old module name as the module it became (the same object: one class, one registry)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: Any = None

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the old name's spec on it: give its own back


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(("musictag.", "datamodules.")):
            return None
        new = moved_to(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModule(new))


# First in line: an old package's submodule (``musictag.frontends.conv2d``) would otherwise be found by the
# path finder in the moved package's folder and run a second time under its old name.
if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())


def __getattr__(name: str) -> Any:
    if name == "load":  # musictag.load("X.ckpt").tag("song.mp3")
        from musictag.inference.api import load

        return load
    if name == "TaggingModule":
        from musictag.training.module import TaggingModule

        return TaggingModule
    raise AttributeError(f"module 'musictag' has no attribute {name!r}")
