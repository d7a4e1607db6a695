"""The reference data (published metadata and weights) and the musicnn wheel: where they are in this
checkout, and a test that needs them skips, or fails in CI (``MUSICTAG_REQUIRE_REFERENCE=1``)."""

from __future__ import annotations

import os

import pytest

from musictag.types import Pathlike

#: The repository root (this file is ``tests/helpers/reference.py``).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def musicnn_wheel() -> str:
    """The musicnn wheel's model folders, or (CI) a failure saying how to get them (else a skip)."""
    return require_reference(
        musicnn_models_dir(),
        "the musicnn wheel's models",
        "run `make install` (it unpacks musicnn 0.1.0 from the package index) or set $MUSICNN_MODELS",
    )


#: Set (to 1) where every test's reference data must be present (CI: ``.ci/run``): tests that need data
#: that is missing then fail instead of skipping.
REQUIRE_REFERENCE_ENV = "MUSICTAG_REQUIRE_REFERENCE"


def require_reference(path: Pathlike, what: str, how: str) -> str:
    """``path`` if it exists; else skip the calling test naming ``what`` is missing and ``how`` to get it,
    or fail when ``$MUSICTAG_REQUIRE_REFERENCE`` is set."""
    if os.path.exists(path):
        return os.fspath(path)
    message = f"{what} not found at {os.fspath(path)}: {how}"
    if os.environ.get(REQUIRE_REFERENCE_ENV, "").strip() not in ("", "0"):
        pytest.fail(f"{message} ({REQUIRE_REFERENCE_ENV} is set)")
    pytest.skip(message)


def musicnn_models_dir() -> str:
    """Where the musicnn wheel's model folders are: ``$MUSICNN_MODELS``, else the wheel that ``make install``
    unpacks into ``.venv/musicnn-0.1.0/musicnn``."""
    default = os.path.join(REPO, ".venv", "musicnn-0.1.0", "musicnn")
    return os.environ.get("MUSICNN_MODELS", default)


#: The published sota-music-tagging-models checkpoints of the reference data (``sota/models/<corpus>/<model>``).
SOTA_CHECKPOINTS = (
    "jamendo/crnn",
    "jamendo/fcn",
    "jamendo/musicnn",
    "msd/crnn",
    "msd/fcn",
    "mtat/crnn",
    "mtat/fcn",
    "mtat/musicnn",
)


def reference_root() -> str:
    """Where the reference data (published metadata and weights) is: ``$MUSICTAG_REFERENCE``, else
    ``../shared/reference`` next to the repository (the project's workspace)."""
    return os.environ.get("MUSICTAG_REFERENCE") or os.path.join(os.path.dirname(REPO), "shared", "reference")


def reference_path(relative: str = "") -> str:
    """A file or folder of the reference data. When it is missing, the calling test is skipped with the
    reason, or fails when ``MUSICTAG_REQUIRE_REFERENCE`` is set (as CI sets it: CI never passes by skipping)."""
    return require_reference(
        os.path.join(reference_root(), relative),
        "reference data",
        "set MUSICTAG_REFERENCE to the reference data folder to run this test",
    )
