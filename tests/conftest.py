from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

# No test touches the network or a W&B server.
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")

# Ctrl-C is what the interruption tests send (to this process and to the commands they start). A shell
# that starts pytest in the background (`cmd &` without job control, nohup) hands it SIGINT *ignored*,
# and every process it starts inherits that, so no Ctrl-C would arrive: give SIGINT back its meaning,
# as in a terminal. (A Python handler, unlike SIG_IGN, is reset to the default by exec, so the
# commands started by a test get their own KeyboardInterrupt again.)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def reference() -> Callable[[str], Path]:
    """The reference data (published metadata and weights), the one way tests reach it:
    ``reference("sota/probe.npy")`` is that file's path. Its root is ``$MUSICTAG_REFERENCE`` (default
    ``<repo>/../shared/reference``); a missing file skips the test saying so, or fails it when
    ``MUSICTAG_REQUIRE_REFERENCE=1`` (``.ci/run`` sets it)."""
    from helpers.reference import reference_path

    reference_path()  # the root first: one clear reason when the whole folder is missing
    return lambda relative="": Path(reference_path(relative))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated tiny synthetic corpus, shared by the tests of a session."""
    from datamodules.synthetic import SyntheticDataModule
    from musictag.testing import tiny_synthetic_args

    root = tmp_path_factory.mktemp("synthetic")
    SyntheticDataModule(**tiny_synthetic_args(str(root))).prepare_data()
    return root


#: How long a test that made a named pipe may run: opening one for reading blocks until a writer comes,
#: so a regression of the file-type checks would hang the suite rather than fail it.
PIPE_DEADLINE_S = 120


class NamedPipeHang(Exception):
    """Raised in a test that made a named pipe and ran past :data:`PIPE_DEADLINE_S`."""


@pytest.fixture(autouse=True)
def named_pipes_cannot_hang(monkeypatch: pytest.MonkeyPatch):
    """Every ``os.mkfifo`` of a test arms a deadline: past it, the blocked call raises NamedPipeHang."""
    if not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"):
        yield
        return
    mkfifo, armed = os.mkfifo, []

    def on_alarm(signum, frame):
        raise NamedPipeHang(
            f"the test made a named pipe and ran past {PIPE_DEADLINE_S} s: a read blocked on it?"
        )

    def mkfifo_with_deadline(*args, **kwargs):
        mkfifo(*args, **kwargs)
        if not armed:
            armed.append(signal.signal(signal.SIGALRM, on_alarm))
            signal.alarm(PIPE_DEADLINE_S)

    monkeypatch.setattr(os, "mkfifo", mkfifo_with_deadline)
    yield
    if armed:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, armed[0])


@pytest.fixture(scope="module")
def tiny_model():
    """A 3-tag (a, b, c) Short-chunk CNN of the tiny test size, seeded, in eval mode (one per module)."""
    import torch

    from musictag.testing import TINY_SHORT_CHUNK
    from musictag.training.module import TaggingModule

    torch.manual_seed(0)
    return TaggingModule(n_tags=3, tag_names=["a", "b", "c"], **TINY_SHORT_CHUNK).eval()


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_model, tmp_path_factory):
    """:func:`tiny_model` saved as a checkpoint that ``musictag tag`` and ``musictag.load`` read."""
    from musictag.testing import save_module_checkpoint

    return save_module_checkpoint(tiny_model, tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")
