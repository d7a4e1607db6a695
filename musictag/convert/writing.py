"""The files of ``musictag import-weights``: what it reads is never written, what it writes is whole.

Both sources (a sota-music-tagging-models ``.pth``, a musicnn TensorFlow checkpoint folder) go through
the same two steps, checked before any weights are loaded:

- :func:`check_import_out`: ``--out`` is a new file (an existing one only with ``--force``), not a
  folder, not any input file under any spelling (``./w.pth``, a symlink, a hard link), its folder
  writable. Writing a *new* file into the musicnn folder is harmless; overwriting any of its files, or
  adding one that would change what the folder holds as a checkpoint (a ``.index`` or ``.data-*``), is not.
- :func:`write_checkpoint`: the checkpoint goes through :func:`~musictag.files.atomic_write`, so an
  error or Ctrl-C midway leaves ``--out`` as it was and no temporary behind; a failed write (a full
  disk, a refused folder) is one error naming ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from musictag.files import atomic_write
from musictag.guards import InputError, check_output_file
from musictag.types import Pathlike


def folder_files(folder: Path) -> list[Path]:
    """Every entry of ``folder`` (the inputs a musicnn import must not overwrite)."""
    try:
        return sorted(folder.iterdir())
    except OSError as err:
        raise InputError(f"--weights {folder}: cannot list it ({err.strerror or err})") from None


def check_import_out(out: Pathlike, inputs: list[Path], force: bool = False) -> Path:
    """``out`` as a ``Path`` if the import may write its checkpoint there (see the module docstring)."""
    out = check_output_file(
        out, "--out", inputs=inputs, overwrite=force, hint="pass --force to replace it, or give a new path"
    )
    folders = [p for p in inputs if p.is_dir()]
    name = out.name
    if any(out.resolve().parent == f.resolve() for f in folders) and (
        name.endswith(".index") or ".data-" in name
    ):
        raise InputError(
            f"--out {out} would add a TensorFlow checkpoint file to the input folder and change what it "
            "holds; give a name ending in .ckpt"
        )
    return out


def write_module(module: Any, source: dict[str, str], out: Path) -> Path:
    """The imported ``module`` (a ``TaggingModule`` holding converted weights) as a Lightning checkpoint
    at ``out`` (:func:`write_checkpoint`), with ``source`` (where the weights came from) under
    ``musictag_source``."""
    import lightning

    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "musictag_source": source,
    }
    return write_checkpoint(checkpoint, out)


def write_checkpoint(checkpoint: dict[str, Any], out: Path) -> Path:
    """``torch.save`` of ``checkpoint`` to ``out``, atomically; an ``OSError`` is one line naming ``out``."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as tmp, open(tmp, "wb") as file:
            torch.save(checkpoint, file)
    except OSError as err:
        reason = err.strerror or str(err)
        raise InputError(
            f"--out {out}: could not write the checkpoint ({reason}); nothing was written"
        ) from None
    except RuntimeError as err:  # torch's writer reports a failed write as a RuntimeError
        raise InputError(
            f"--out {out}: could not write the checkpoint ({err}); nothing was written"
        ) from None
    return out
