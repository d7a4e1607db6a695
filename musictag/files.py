"""Writing files so that a reader never sees half of one: the one atomic-write helper of the project."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from musictag.types import ConfigError, Pathlike


@contextmanager
def atomic_write(path: Pathlike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it becomes ``path`` only when the block completes.

    The content is flushed to disk (``fsync``) before the rename, and the rename is atomic on one file
    system, so ``path`` is either its old content or the whole new one, even after a crash. On an error
    the temporary file is removed and ``path`` is left as it was. The temporary name keeps the suffix
    (``np.savez`` adds ``.npz`` to names without it) and starts with a dot.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: The name :func:`atomic_write` gives its temporary file: ``.<stem>.tmp-<writer's pid><suffix>``.
_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)(\.[^.]*)?$")


def remove_stale_temporaries(folder: Pathlike) -> list[Path]:
    """Remove the temporaries of :func:`atomic_write` in ``folder`` whose writer process is gone.

    A writer killed mid-write (SIGKILL, a terminated worker process) cannot remove its own; those of a
    live process (another run writing the same folder now) are left alone. Returns the removed paths.
    """
    removed = []
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _process_exists(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a zombie is gone too (orphans in a container without an init may never be reaped)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux)
        return True


def atomic_write_text(path: Pathlike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Pathlike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


#: The embedding cache (``musictag embed`` writes it; the ``embedding`` representation and
#: ``datamodules.EmbeddingDataModule`` read it): format, index and manifest file names.
EMBEDDINGS_FORMAT = "musictag-embeddings/1"
EMBEDDINGS_INDEX = "index.json"
EMBEDDINGS_MANIFEST = "manifest.csv"


def read_embeddings_index(root: Pathlike) -> dict[str, Any]:
    """The ``index.json`` of a complete embedding cache, or a one-line error."""
    path = Path(root) / EMBEDDINGS_INDEX
    if not path.is_file():
        raise ConfigError(
            f"no complete embedding cache at {root} (missing {EMBEDDINGS_INDEX}): run `musictag embed --encoder ... "
            f"--data ... --out {root}`, or rerun it to finish an interrupted one"
        )
    index = json.loads(path.read_text())
    if index.get("format") != EMBEDDINGS_FORMAT:
        raise ConfigError(
            f"{path}: format {index.get('format')!r}, expected {EMBEDDINGS_FORMAT!r}; embed again"
        )
    return index
