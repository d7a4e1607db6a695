"""Read a W&B offline run (``offline-run-*/run-<id>.wandb``) without the network, for tests.

The ``.wandb`` file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number, a version),
then LevelDB-log records in 32 KiB blocks. Each record is a 7-byte header (CRC-32 of type and data,
little-endian length, type: whole, first, middle or last piece) and a piece of a serialized
``wandb.proto.wandb_internal_pb2.Record``. A block with under 7 bytes left is padded with zeros.

W&B's service writes the records out when it closes the run, and it closes it *after*
``run.finish()`` has returned (the finish request to the service is not waited for). A CLI process
waits for the service on exit, so its record is complete; a test that reads the record in the process
that finished the run must wait for the exit record, which :func:`read_offline_run` does.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musictag.types import Pathlike

_BLOCK = 32768
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What a W&B offline run recorded: its name, config, history rows, summary and exit code.

    A nested key (a logged table's fields, say) is its parts joined by ``/``.
    """

    path: Path
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def _payloads(data: bytes) -> list[bytes]:
    """The whole records of a ``.wandb`` file's bytes, in order; a torn last record is left out."""
    if data[:4] != b":W&B":
        return []
    payloads: list[bytes] = []
    pieces = b""
    pos = _HEADER
    while True:
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:
            pos += left_in_block  # zero padding at a block's end
            continue
        if pos + _HEADER > len(data):
            return payloads
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        piece = data[pos + _HEADER : pos + _HEADER + length]
        if len(piece) < length or zlib.crc32(bytes([kind]) + piece) != checksum:
            return payloads  # not written out (yet)
        pos += _HEADER + length
        if kind == _FULL:
            payloads.append(piece)
        elif kind == _FIRST:
            pieces = piece
        elif kind == _MIDDLE:
            pieces += piece
        elif kind == _LAST:
            payloads.append(pieces + piece)
            pieces = b""


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def parse_offline_run(path: Pathlike) -> OfflineRun:
    """The records of ``run-<id>.wandb`` written so far."""
    from wandb.proto import wandb_internal_pb2

    run = OfflineRun(Path(path))
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):  # the config given to wandb.init is in the run record
            config = record.run.config if kind == "run" else record.config
            run.config.update({_key(i): json.loads(i.value_json) for i in config.update})
            run.name = record.run.display_name if kind == "run" else run.name
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            for item in record.summary.remove:
                run.summary.pop(_key(item), None)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def read_offline_run(run_dir: Pathlike, timeout: float = 120.0) -> OfflineRun:
    """The finished offline run in ``run_dir`` (an ``offline-run-*`` folder), once W&B has written it all.

    Waits (up to ``timeout`` seconds) for the exit record, which W&B writes last, shortly after
    ``run.finish()`` returns; raises ``TimeoutError`` naming the file if it never comes.
    """
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if len(files) != 1:
        raise FileNotFoundError(f"{run_dir}: expected one run-*.wandb, found {[f.name for f in files]}")
    deadline = time.monotonic() + timeout
    while True:
        run = parse_offline_run(files[0])
        if run.exit_code is not None:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{files[0]}: no exit record after {timeout:g} s ({len(run.history)} history rows so far); "
                "the run was not finished"
            )
        time.sleep(0.05)
