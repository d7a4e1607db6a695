"""TensorFlow checkpoints read without TensorFlow.

A TF checkpoint (TF 1 ``Saver`` or TF 2 ``tf.train.Checkpoint``) is a *tensor bundle*: ``<prefix>.index``
and ``<prefix>.data-00000-of-0000N``. The index is a LevelDB-format sorted table (SSTable) mapping each
tensor name to a ``BundleEntryProto`` (dtype, shape, shard, byte offset, byte size, CRC32C); the empty
key holds a ``BundleHeaderProto`` (number of shards, endianness). The data files hold the raw tensors,
little-endian, back to back. This module decodes just that: the table's blocks (prefix-compressed keys
with restart points, optionally Snappy-compressed), the few protobuf fields needed (varints and
length-delimited fields, no protobuf dependency), and the tensors as numpy arrays. Every block of the
index and every tensor is checked against the masked CRC-32C stored beside it
(:mod:`musictag.convert.crc32c`), so a changed byte is an error, not other weights.

Every failure is a :class:`CheckpointError` whose one line names the file or tensor.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musictag.convert.crc32c import crc32c, mask
from musictag.guards import file_type_problem
from musictag.types import Pathlike

#: LevelDB table magic number, the last 8 bytes of every ``.index`` file.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_LEN = 48

#: TensorFlow ``DataType`` enum values → numpy dtypes (little-endian). bfloat16 is read as raw uint16.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    14: np.dtype("<u2"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32",
               23: "uint64"}  # fmt: skip


class CheckpointError(Exception):
    """A file or tensor that is not what a TensorFlow checkpoint should hold; the message names it."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies in the bundle (a ``BundleEntryProto``)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    #: The stored (masked) CRC-32C of the tensor's bytes; ``None`` when the entry holds none.
    crc32c: int | None = None


# --- protobuf wire format -----------------------------------------------------------------------
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos`` → (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message: ints for varint/fixed fields, bytes for
    length-delimited ones (nested messages, strings, packed arrays)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
            if pos > len(buf):
                raise ValueError("truncated field")
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.append((number, value))
    return fields


def parse_entry(name: str, buf: bytes) -> TensorEntry:
    """A ``BundleEntryProto``: dtype=1, shape=2 (``TensorShapeProto``: dim=2 {size=1}), shard_id=3,
    offset=4, size=5, crc32c=6, slices=7."""
    dtype = shard_id = offset = size = 0
    crc: int | None = None
    shape: list[int] = []
    for number, value in proto_fields(buf):
        if number == 1:
            dtype = int(value)
        elif number == 2:
            for dim_number, dim in proto_fields(value):  # type: ignore[arg-type]
                if dim_number == 2:
                    sizes = [int(v) for n, v in proto_fields(dim) if n == 1]  # type: ignore[arg-type]
                    shape.append(sizes[0] if sizes else 0)
        elif number == 3:
            shard_id = int(value)
        elif number == 4:
            offset = int(value)
        elif number == 5:
            size = int(value)
        elif number == 6:
            crc = int(value)
        elif number == 7:
            raise CheckpointError(f"tensor {name} is stored as slices (partitioned variable): not supported")
    return TensorEntry(name, dtype, tuple(shape), shard_id, offset, size, crc)


# --- LevelDB table ------------------------------------------------------------------------------
def snappy_decompress(buf: bytes) -> bytes:
    """Raw Snappy (as LevelDB writes blocks): a varint length, then literals and back-references."""
    length, pos = read_varint(buf, 0)
    out = bytearray()
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(buf[pos : pos + extra], "little")
                pos += extra
            n += 1
            out += buf[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            n = 4 + ((tag >> 2) & 7)
            back = ((tag >> 5) << 8) | buf[pos]
            pos += 1
        elif kind == 2:
            n = 1 + (tag >> 2)
            back = int.from_bytes(buf[pos : pos + 2], "little")
            pos += 2
        else:
            n = 1 + (tag >> 2)
            back = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        if back == 0 or back > len(out):
            raise ValueError("bad snappy back-reference")
        for _ in range(n):  # byte by byte: a copy may overlap what it writes
            out.append(out[-back])
    if len(out) != length:
        raise ValueError("snappy length mismatch")
    return bytes(out)


def read_block(data: bytes, offset: int, size: int) -> bytes:
    """The contents of the block at a handle, checked against its trailer's masked CRC-32C (the 5-byte
    trailer: compression type, then the CRC of the contents and that type byte)."""
    if offset + size + 5 > len(data):
        raise ValueError("block handle past the end of the file")
    contents = data[offset : offset + size]
    compression = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if mask(crc32c(data[offset : offset + size + 1])) != stored:  # contents and compression byte
        raise ValueError(
            f"the block at byte {offset} does not match its checksum (a changed or damaged file)"
        )
    if compression == 0:
        return contents
    if compression == 1:
        return snappy_decompress(contents)
    raise ValueError(f"unknown block compression {compression}")


def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of a block; keys share prefixes with the previous key, reset at restarts."""
    if len(block) < 4:
        raise ValueError("block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise ValueError("bad restart count")
    entries = []
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if shared > len(key):
            raise ValueError("bad key prefix")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def table_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB table file, in order."""
    if len(data) < FOOTER_LEN:
        raise ValueError("shorter than a table footer")
    footer = data[-FOOTER_LEN:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise ValueError("no table magic number at the end")
    _, pos = read_varint(footer, 0)  # metaindex offset
    _, pos = read_varint(footer, pos)  # metaindex size
    index_offset, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    entries = []
    for _, handle in block_entries(read_block(data, index_offset, index_size)):
        offset, hpos = read_varint(handle, 0)
        size, _ = read_varint(handle, hpos)
        entries += block_entries(read_block(data, offset, size))
    return entries


# --- the bundle ---------------------------------------------------------------------------------
def checkpoint_prefix(path: Pathlike) -> Path:
    """The bundle prefix of a checkpoint folder, ``.index`` file or prefix.

    A folder is searched for exactly one ``*.index`` (the musicnn wheel's folders hold ``.index``,
    prefix ``<folder>/``).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.index")) + sorted(path.glob(".index"))
        found = sorted(set(found))
        if len(found) != 1:
            what = "no *.index file" if not found else f"{len(found)} *.index files"
            raise CheckpointError(f"{path} is not a TensorFlow checkpoint folder ({what})")
        return found[0].with_suffix("") if found[0].name != ".index" else found[0].parent / ""
    if path.suffix == ".index":
        return path.with_suffix("")
    return path


def _index_path(prefix: Path) -> Path:
    return prefix / ".index" if prefix.is_dir() else prefix.with_name(prefix.name + ".index")


def _data_path(prefix: Path, shard: int, n_shards: int) -> Path:
    name = f".data-{shard:05d}-of-{n_shards:05d}"
    return prefix / name if prefix.is_dir() else prefix.with_name(prefix.name + name)


class TFCheckpoint:
    """The tensors of a TensorFlow checkpoint, by name: ``ckpt["dense/kernel"]`` → numpy array.

    Args:
        path: a checkpoint folder (one ``*.index`` in it), its ``.index`` file, or its prefix.
    """

    def __init__(self, path: Pathlike) -> None:
        self.prefix = checkpoint_prefix(path)
        index = _index_path(self.prefix)
        self.index_path = index
        problem = file_type_problem(index)
        if problem == "no such file":
            raise CheckpointError(f"{path} is not a TensorFlow checkpoint (no {index.name} file)")
        if problem is not None:
            raise CheckpointError(f"the checkpoint's index {index}: {problem}")
        try:
            records = table_entries(index.read_bytes())
        except (ValueError, struct.error, IndexError) as err:
            raise CheckpointError(f"{index} is not a TensorFlow checkpoint index ({err})") from None
        self.n_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        try:
            for key, value in records:
                if key == b"":  # BundleHeaderProto: num_shards=1, endianness=2 (0 little), version=3
                    for number, field in proto_fields(value):
                        if number == 1:
                            self.n_shards = int(field)
                        elif number == 2 and field != 0:
                            raise CheckpointError(f"{index}: big-endian checkpoints are not supported")
                    continue
                name = key.decode("utf-8")
                self.entries[name] = parse_entry(name, value)
        except (ValueError, struct.error, IndexError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{index} is not a TensorFlow checkpoint index ({err})") from None
        self._shards: dict[int, np.ndarray] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise CheckpointError(f"tensor {name} is not in the checkpoint {self.prefix}") from None

    def data_path(self, shard: int = 0) -> Path:
        """The data file of a shard."""
        return _data_path(self.prefix, shard, self.n_shards)

    def _shard(self, shard: int) -> np.ndarray:
        if shard not in self._shards:
            path = self.data_path(shard)
            problem = file_type_problem(path)
            if problem == "no such file":
                raise CheckpointError(f"the checkpoint's data file {path} is missing")
            if problem is not None:
                raise CheckpointError(f"the checkpoint's data file {path}: {problem}")
            if path.stat().st_size == 0:  # numpy cannot map an empty file
                self._shards[shard] = np.zeros(0, dtype=np.uint8)
            else:
                self._shards[shard] = np.memmap(path, dtype=np.uint8, mode="r")
        return self._shards[shard]

    def _raw(self, entry: TensorEntry) -> np.ndarray:
        """The stored bytes of a tensor, checked against the index's CRC-32C of them.

        A byte changed in the data file (or an index belonging to another checkpoint) would otherwise be
        read as different weights without a word: the checksum is what TensorFlow wrote for each tensor.
        """
        shard = self._shard(entry.shard_id)
        if entry.offset + entry.size > len(shard):
            raise CheckpointError(
                f"tensor {entry.name} lies past the end of its data file {self.data_path(entry.shard_id)} "
                "(truncated checkpoint?)"
            )
        raw = np.asarray(shard[entry.offset : entry.offset + entry.size])
        if entry.crc32c is not None and mask(crc32c(raw)) != entry.crc32c:
            raise CheckpointError(
                f"tensor {entry.name} in {self.data_path(entry.shard_id)} does not match its checksum in "
                f"{self.index_path}: the file was changed or damaged (or the index is another checkpoint's); "
                "get a fresh copy of the checkpoint"
            )
        return raw

    def verify(self) -> None:
        """Check every tensor's bytes against its checksum (all of them, optimiser state included)."""
        for entry in self.entries.values():
            self._raw(entry)

    def __getitem__(self, name: str) -> np.ndarray:
        entry = self._entry(name)
        dtype = DTYPES.get(entry.dtype)
        if dtype is None:
            kind = DTYPE_NAMES.get(entry.dtype, f"dtype {entry.dtype}")
            raise CheckpointError(f"tensor {name} is of type {kind}, which is not supported")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(
                f"tensor {name}: {entry.size} bytes stored for shape {entry.shape} of {dtype}"
            )
        return self._raw(entry).view(dtype).reshape(entry.shape).copy()

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A tensor, checked to have ``shape``."""
        entry = self._entry(name)
        if shape is not None and tuple(entry.shape) != tuple(shape):
            raise CheckpointError(
                f"tensor {name} in {self.prefix} has shape {entry.shape}, expected {tuple(shape)}"
            )
        return self[name]
