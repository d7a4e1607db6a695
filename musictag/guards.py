"""Guards for the classes of bad input, each written once and used wherever that input enters.

- :func:`check_input_file`: a path that must be an existing regular file (never a folder, a named pipe
  or a device, which ``open`` or libsndfile would read forever or fail on with an obscure message),
  checked by ``stat`` alone: nothing is opened.
- :func:`check_output_file` / :func:`check_output_folder`: a place a command writes, checked before any
  work is done: its folder exists and is writable, it is not one of the command's inputs (under any
  spelling of the same file), and it holds nothing of the user's that would be overwritten.
- :func:`at_least`: a number below its minimum (``0`` or ``-1`` chunks, batches, shards, rates).
- :func:`pick_device`: a device this machine lacks, and what ``auto`` is (tag, embed, bench,
  ``musictag.load``).
- :func:`run_command`: a command's entry point, turning the errors above, an ``OSError`` naming a path
  and Ctrl-C into one ``PROG: error: ...`` line and an exit status (2, or 130 for Ctrl-C), never a
  Python traceback.

Each raises :class:`InputError` (a :class:`~musictag.types.ConfigError`) whose message names the path or
value, what is wrong with it and what to do.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from musictag.types import ConfigError, Pathlike

if TYPE_CHECKING:
    import torch


class InputError(ConfigError):
    """A path or a number given to a command that it cannot use; the message says what to do."""


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a/b where a is a file
        return None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def file_type_problem(path: Pathlike) -> str | None:
    """Why ``path`` is not an existing, readable regular file (``None`` when it is); opens nothing.

    The reason is worded to follow the path: ``"no such file"``, ``"is a named pipe, not a file"``, ...
    A permission error of a folder on the way (``stat`` itself refused) is reported, not raised.
    """
    path = Path(path)
    try:
        info = _stat(path)
    except PermissionError:
        return "cannot be looked at (permission denied on a folder on its way)"
    except OSError as err:
        return f"cannot be looked at ({err.strerror or err})"
    if info is None:
        return "no such file"
    if not stat.S_ISREG(info.st_mode):
        kind = _kind(info.st_mode)
        return f"is {kind}, not a file" if kind != "not a regular file" else "is not a regular file"
    if not os.access(path, os.R_OK):
        return "permission denied (this user may not read it); check the file's permissions"
    return None


def check_input_file(path: Pathlike, what: str = "file") -> Path:
    """``path`` as a ``Path`` if it is an existing, readable regular file; else :class:`InputError`.

    ``what`` names the role in the message (``"--weights"``, ``"audio file"``, ``"checkpoint"``).
    """
    problem = file_type_problem(path)
    if problem is not None:
        raise InputError(f"{what} {os.fspath(path)}: {problem}")
    return Path(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _check_not_an_input(out: Path, inputs: Iterable[Pathlike], what: str) -> None:
    for given in inputs:
        source = Path(given)
        if _same_file(out, source) or out.resolve() == source.resolve():
            raise InputError(
                f"{what} {out} is the input {source}: it would be overwritten; give another path for {what}"
            )
        if source.is_dir() and _inside(out, source) and not source.resolve() == out.resolve():
            continue  # writing beside the inputs, inside their folder, overwrites none of them
        if out.is_dir() and _inside(source, out):
            raise InputError(
                f"{what} {out} holds the input {source}: writing there could overwrite it; give a new folder"
            )


def check_writable_folder(folder: Pathlike, what: str) -> Path:
    """``folder`` as a ``Path`` if a command can write in it (an existing folder, or one it can
    create); else :class:`InputError` naming the part of the path that is a file or not writable.

    For folders a command adds to (a runs folder, a cache root); :func:`check_output_folder` is for
    folders a command fills and must not find the user's files in.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a folder; give a folder")
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(
                f"{what} {folder}: cannot write in it (permission denied); give a folder you may write"
            )
        return folder
    _check_writable_parent(folder, what)
    return folder


def _check_writable_parent(out: Path, what: str) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    existing = parent
    while not existing.exists():  # folders to be created: the first one that exists must be writable
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(f"{what} {out}: {existing} is a file, not a folder; give a path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{what} {out}: cannot write in {existing} (permission denied); give a path in a folder you may write"
        )


def check_output_file(
    out: Pathlike,
    what: str = "--out",
    *,
    inputs: Sequence[Pathlike] = (),
    overwrite: bool = False,
    hint: str = "give a new path",
) -> Path:
    """``out`` as a ``Path`` if a command may write the file there; else :class:`InputError`.

    Refused: a folder; a path whose folder cannot be written (or is a file); any of ``inputs`` under
    another spelling (a symlink, ``./``, a hard link); and, unless ``overwrite``, an existing file
    (``hint`` says what to do then, e.g. ``"pass --force to replace it"``). Missing parent folders are
    allowed (the command creates them) when the first existing one is writable.
    """
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{what} {out} is a folder; give the path of a file to write")
    _check_not_an_input(out, inputs, what)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise InputError(f"{what} {out} exists; {hint} (nothing was written)")
        if not os.access(out, os.W_OK):
            raise InputError(f"{what} {out} exists and may not be written (permission denied)")
    _check_writable_parent(out, what)
    return out


def check_output_folder(
    out: Pathlike,
    what: str = "--out",
    *,
    inputs: Sequence[Pathlike] = (),
    ours: Callable[[Path], bool] | None = None,
    hint: str = "give a new or empty folder",
) -> Path:
    """``out`` as a ``Path`` if a command may fill the folder; else :class:`InputError`.

    Accepted: a path that does not exist (its first existing parent writable), an empty folder, or a
    folder for which ``ours(folder)`` is true (the command's own earlier output, e.g. to resume).
    Refused: a file, an unwritable folder, a folder holding any of ``inputs``, or one holding other
    files (the user's: they are never overwritten).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{what} {out} is a file, not a folder; {hint}")
    _check_not_an_input(out, inputs, what)
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"{what} {out}: cannot write in it (permission denied); {hint}")
        if ours is not None and ours(out):
            return out
        found = sorted(p.name for p in out.iterdir())
        if found:
            shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
            raise InputError(
                f"{what} {out} is not empty and was not written by this command ({shown}); {hint}, "
                "so nothing in it is overwritten"
            )
        return out
    _check_writable_parent(out, what)
    return out


def given_path(text: str) -> str:
    """An ``argparse`` ``type=`` for path options: an empty (or blank) path is refused by name.

    ``Path("")`` is the working folder, so an empty ``--ckpt``, ``--out`` or ``--plot`` would otherwise
    be read as "." (or, for ``--plot``, ignored) and refused, if at all, with a message about ".".
    """
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder")
    return text


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def at_most_per_core(name: str, value: int | None, per_core: int = 1) -> None:
    """:class:`InputError` if ``value`` (threads, processes) exceeds ``per_core`` per usable core:
    ``--threads 100000`` would spend minutes starting threads that only wait for a core."""
    cores = usable_cores()
    if value is not None and value > per_core * cores:
        each = "" if per_core == 1 else f" ({per_core} per core)"
        raise InputError(
            f"{name} {value} is more than this machine's {cores} CPU core(s) can run{each}; "
            f"give at most {per_core * cores}"
        )


def at_least(name: str, value: int | float | None, minimum: int | float = 1) -> None:
    """:class:`InputError` if ``value`` (given) is below ``minimum``: ``"--batch-size must be at least 1, got 0"``."""
    if value is not None and not value >= minimum:  # `not >=` refuses NaN too
        raise InputError(f"{name} must be at least {minimum}, got {value}")


#: What an ``OSError`` of a path means for the user, by ``errno``: said after the path.
_OS_ERROR_ADVICE = {
    errno.EEXIST: "exists and is not a folder; give the path of a folder (or a new one)",
    errno.ENOTDIR: "a part of this path is a file, not a folder; give a path in a folder",
    errno.EISDIR: "is a folder; give the path of a file",
    errno.EACCES: "permission denied; give a path this user may read (or write)",
    errno.EPERM: "operation not permitted; give a path this user may read (or write)",
    errno.ENOENT: "no such file or folder",
    errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
    errno.EROFS: "read-only file system; write elsewhere",
    errno.ENAMETOOLONG: "the name is too long",
}


def describe_os_error(err: OSError) -> str | None:
    """``"PATH: what it means and what to do"`` for an ``OSError`` that names a path, else ``None``."""
    if err.filename is None:
        return None
    where = os.fspath(err.filename)
    reason = _OS_ERROR_ADVICE.get(err.errno or -1) or err.strerror or str(err)
    return f"{where}: {reason}"


def run_command(prog: str, function: Callable[[], int | None]) -> int:
    """Run a command's body: its bad input becomes one ``PROG: error:`` line and exit 2, Ctrl-C exit 130.

    :class:`~musictag.types.ConfigError` (and so :class:`InputError`) is a message for the user as it
    is. An ``OSError`` that names a path (a folder that vanished, a full disk, a permission refused) is
    worded from its path and reason. Other exceptions are bugs and keep their traceback.
    """
    try:
        return int(function() or 0)
    except ConfigError as err:
        message = str(err).strip() or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:
        described = describe_os_error(err)
        if described is None:
            raise
        print(f"{prog}: error: {described}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: stopped by Ctrl-C", file=sys.stderr)
        return 130


def physical_memory() -> int:
    """Bytes of memory of this machine (0 where the system does not say): the bound of a batch size."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 0


#: The ``--device`` help of every command that takes one (tag, embed, bench).
DEVICE_HELP = "auto (a CUDA GPU, else Apple's MPS, else the CPU), cpu, cuda, cuda:N or mps"


def pick_device(name: str | torch.device = "auto", what: str = "--device") -> torch.device:
    """The torch device a command (or ``musictag.load``) runs on, checked before any work is done; the
    one place that says what ``auto`` is.

    ``auto`` is a CUDA GPU, else Apple's MPS, else the CPU. A named device must exist on this machine,
    so ``--device cuda`` without a GPU is one line naming ``what`` (the flag or argument), not a CUDA
    traceback after a model has been loaded and an output folder started.

    Raises:
        InputError: for a device name torch does not know or a device this machine does not have.
    """
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{what} {name}: no CUDA GPU is available here; use {what} auto or cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(
                f"{what} {name}: this machine has {count} CUDA GPU(s), cuda:0 … cuda:{count - 1}"
            )
    elif device.type == "mps":
        if not has_mps:
            raise InputError(f"{what} {name}: MPS is not available here; use {what} auto or cpu")
    elif device.type != "cpu":
        raise InputError(
            f"{what} {name}: {device.type} devices are not supported; use auto, cpu, cuda or mps"
        )
    return device
