"""Writing files so that a reader never sees half of one: the one atomic-write helper of the project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from musictag.types import Pathlike


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


def atomic_write_text(path: Pathlike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Pathlike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
