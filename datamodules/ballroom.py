"""Ballroom: 698 excerpts of ~30 s of ballroom dance music, one dance style each.

Files (Gouyon et al., the ISMIR 2004 rhythm/tempo contest data, ``BallroomData.zip``): one folder per
style, ``BallroomData/<folder>/*.wav``; ``audio_root`` is the folder that holds ``BallroomData/`` or the
``BallroomData`` folder itself. The archive has ten style folders, ``ChaChaCha`` (111), ``Jive`` (60),
``Quickstep`` (82), ``Rumba-American`` (7), ``Rumba-International`` (51), ``Rumba-Misc`` (40),
``Samba`` (86), ``Tango`` (86), ``VienneseWaltz`` (65) and ``Waltz`` (110). Pons et al. 2016 and most
genre-classification work use 8 classes, :data:`CLASSES`: the three Rumba folders are one ``Rumba``
class (98 excerpts), :data:`FOLDER_CLASS`.

Every ``.wav`` of a style folder (found recursively) is an excerpt; hidden files (macOS' ``._x.wav``
forks) and anything outside the style folders (the archive's file lists, a stray file) are not. A file
that cannot be decoded is left out of the cache and reported there, not here.

Split: the corpus has none. Pons et al. 2016 report 10-fold cross-validation with random 80/10/10
splits: ``musictag cv --folds 10`` (each fold tests a tenth). Outside cross-validation the split is a
seeded 80/10/10 draw (``seed``, ``valid_fraction``, ``test_fraction``). Track ids are
``<folder>/<file stem>``; the targets are one-hot (``task: multiclass``).
"""

from __future__ import annotations

import os

import numpy as np

from datamodules.folder import random_split
from datamodules.manifest import Manifest
from musictag.types import Pathlike

CLASSES = ("ChaChaCha", "Jive", "Quickstep", "Rumba", "Samba", "Tango", "VienneseWaltz", "Waltz")
FOLDER_CLASS = {
    **{name: name for name in CLASSES if name != "Rumba"},
    "Rumba-American": "Rumba",
    "Rumba-International": "Rumba",
    "Rumba-Misc": "Rumba",
}
N_EXCERPTS = 698


def ballroom_folder(audio_root: Pathlike) -> str:
    """The prefix of the excerpt paths under ``audio_root``: ``BallroomData/`` when it holds that folder."""
    return "BallroomData/" if os.path.isdir(os.path.join(audio_root, "BallroomData")) else ""


def list_excerpts(audio_root: Pathlike) -> list[tuple[str, str]]:
    """``(path relative to audio_root, class)`` of every excerpt, style folders in :data:`FOLDER_CLASS`
    order, files sorted by name."""
    prefix = ballroom_folder(audio_root)
    found: list[tuple[str, str]] = []
    for folder, label in FOLDER_CLASS.items():
        top = os.path.join(audio_root, prefix, folder)
        if not os.path.isdir(top):
            continue
        for parent, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(".wav"):
                    continue
                relative = os.path.relpath(os.path.join(parent, name), audio_root)
                found.append((relative.replace(os.sep, "/"), label))
    if not found:
        raise FileNotFoundError(
            f"no Ballroom excerpts in {audio_root}: expected BallroomData/<style>/*.wav with style folders "
            f"{', '.join(FOLDER_CLASS)}; give the folder that holds BallroomData"
        )
    return found


def read_ballroom(
    audio_root: Pathlike, seed: int = 0, valid_fraction: float = 0.1, test_fraction: float = 0.1
) -> Manifest:
    """The Ballroom manifest: every excerpt under ``audio_root`` with its class (:data:`CLASSES` columns,
    one-hot) and a seeded random split (see the module docstring)."""
    excerpts = list_excerpts(audio_root)
    prefix = ballroom_folder(audio_root)
    ids = [os.path.splitext(path[len(prefix) :])[0] for path, _ in excerpts]
    targets = np.zeros((len(excerpts), len(CLASSES)), dtype=np.uint8)
    for row, (_, label) in enumerate(excerpts):
        targets[row, CLASSES.index(label)] = 1
    return Manifest(
        ids=tuple(ids),
        splits=tuple(random_split(len(excerpts), None, seed, valid_fraction, test_fraction)),
        targets=targets,
        tag_names=CLASSES,
        paths=tuple(path for path, _ in excerpts),
    )
