"""Which files ``musictag tag`` and :meth:`musictag.AudioTagger.tag_many` tag: the search of the given paths.

Every entry is looked at by ``stat`` alone, before anything is opened: a named pipe, a device or a
socket would make the decoder wait forever, so it is reported and skipped, never read. An entry that
cannot be looked at (a dangling symlink, a folder this user may not list, a file removed between the
listing and its ``stat``) is reported and skipped like a broken file, not a crash.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from musictag.audio import AUDIO_EXTENSIONS
from musictag.guards import file_type_problem
from musictag.types import Pathlike


@dataclass
class Found:
    """What a search found: the files to tag (in order), the entries skipped with why, empty folders."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    empty: list[str] = field(default_factory=list)  # given folders that held no audio file


def _is_audio_name(name: str) -> bool:
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def _search_folder(folder: str, found: Found) -> int:
    """Add the audio files under ``folder`` (sorted, recursively) to ``found``; how many were added."""
    added = 0

    def unreadable(err: OSError) -> None:
        where = err.filename if err.filename is not None else folder
        found.skipped.append((os.fspath(where), f"cannot be listed ({err.strerror or err})"))

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs.sort()
        for name in sorted(names):
            if not _is_audio_name(name):
                continue
            path = os.path.join(root, name)
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:
                reason = "a dangling symlink" if os.path.islink(path) else "vanished while searched"
                found.skipped.append((path, reason))
                continue
            except OSError as err:
                found.skipped.append((path, f"cannot be looked at ({err.strerror or err})"))
                continue
            if not stat.S_ISREG(mode):
                found.skipped.append((path, file_type_problem(path) or "is not a regular file"))
                continue
            found.files.append(Path(path))
            added += 1
    return added


def find_audio(paths: list[Pathlike]) -> Found:
    """The given files and the audio files under the given folders; nothing is opened.

    A given file is taken whatever its extension (the decoder says whether it is audio); a given path
    that is missing, or is not a regular file or folder, is skipped with the reason.
    """
    found = Found()
    for given in paths:
        path = os.fspath(given)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            found.skipped.append((path, "no such file or folder"))
            continue
        except OSError as err:
            found.skipped.append((path, f"cannot be looked at ({err.strerror or err})"))
            continue
        if stat.S_ISDIR(mode):
            if _search_folder(path, found) == 0:
                found.empty.append(path)
            continue
        problem = file_type_problem(path)
        if problem is not None:
            found.skipped.append((path, problem))
            continue
        found.files.append(Path(path))
    return found
