"""The TensorFlow bundle reader, on a small checkpoint written once by TensorFlow's own SaveV2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from musictag.convert.tf_checkpoint import (
    CheckpointError,
    TFCheckpoint,
    block_entries,
    proto_fields,
    read_varint,
    snappy_decompress,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference_musicnn"
TINY = REFERENCE / "tiny_tf_checkpoint"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "tiny_expected.npz") as data:
        return {key.replace("|", "/"): data[key] for key in data.files}


def test_every_tensor_is_read_with_its_dtype_shape_and_values(expected):
    checkpoint = TFCheckpoint(TINY)
    assert checkpoint.names() == sorted(expected)
    assert len(expected) == 158
    for name, value in expected.items():
        got = checkpoint[name]
        assert got.dtype == value.dtype, name
        assert got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)


def test_the_index_spans_several_blocks_and_restart_points():
    """158 keys sharing long prefixes: the reader has to follow prefix compression across restarts."""
    data = (TINY / "tiny.index").read_bytes()
    assert len(data) > 4096  # LevelDB's default block size: more than one data block


def test_a_folder_prefix_and_index_file_all_open_the_same_checkpoint(expected):
    for where in (TINY, TINY / "tiny", TINY / "tiny.index"):
        assert TFCheckpoint(where).names() == sorted(expected)


def test_shape_check_names_the_tensor():
    checkpoint = TFCheckpoint(TINY)
    assert checkpoint.get("conv/kernel", (3, 2, 1, 4)).shape == (3, 2, 1, 4)
    with pytest.raises(
        CheckpointError, match=r"^tensor conv/kernel in .* has shape \(3, 2, 1, 4\), expected \(4, 1, 2, 3\)$"
    ):
        checkpoint.get("conv/kernel", (4, 1, 2, 3))
    with pytest.raises(CheckpointError, match=r"^tensor dense/kernel is not in the checkpoint .*tiny$"):
        checkpoint["dense/kernel"]


def test_not_a_checkpoint_gets_one_line_naming_it(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"is not a TensorFlow checkpoint folder \(no \*\.index file\)$"
    ):
        TFCheckpoint(tmp_path)
    bad = tmp_path / "model.index"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(
        CheckpointError, match=r"model\.index is not a TensorFlow checkpoint index \(no table magic"
    ):
        TFCheckpoint(tmp_path)
    truncated = tmp_path / "cut"
    truncated.mkdir()
    (truncated / "tiny.index").write_bytes((TINY / "tiny.index").read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="is not a TensorFlow checkpoint index"):
        TFCheckpoint(truncated)


def test_a_missing_or_truncated_data_file_is_named(tmp_path):
    shutil.copy(TINY / "tiny.index", tmp_path / "tiny.index")
    checkpoint = TFCheckpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"data file .*tiny\.data-00000-of-00001 is missing"):
        checkpoint["conv/bias"]
    (tmp_path / "tiny.data-00000-of-00001").write_bytes(b"\x00" * 8)
    with pytest.raises(CheckpointError, match=r"past the end of its data file"):
        TFCheckpoint(tmp_path)["layer_149/batch_normalization/moving_variance"]


def test_wire_format_pieces():
    assert read_varint(bytes([0xAC, 0x02]), 0) == (300, 2)
    # field 1 varint 150, field 2 bytes "hi", field 6 fixed32
    message = bytes([0x08, 0x96, 0x01, 0x12, 0x02]) + b"hi" + bytes([0x35, 1, 0, 0, 0])
    assert proto_fields(message) == [(1, 150), (2, b"hi"), (6, 1)]
    # two keys, the second sharing 3 bytes with the first; one restart point at 0
    block = bytes([0, 4, 1]) + b"abcd" + b"x" + bytes([3, 1, 1]) + b"e" + b"y" + (0).to_bytes(4, "little")
    block += (1).to_bytes(4, "little")
    assert block_entries(block) == [(b"abcd", b"x"), (b"abce", b"y")]
    # snappy: literal "abc", then a copy of 6 bytes from 3 back (overlapping)
    compressed = bytes([9, 2 << 2]) + b"abc" + bytes([((6 - 4) << 2) | 1, 3])
    assert snappy_decompress(compressed) == b"abcabcabc"


# --- CRC-32C: the checksums TensorFlow stores beside every tensor and index block -------------------
def test_crc32c_matches_the_standard_check_value_and_the_byte_loop():
    from musictag.convert.crc32c import _small, crc32c, mask, unmask

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720's polynomial)
    assert crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for n in (1023, 1024, 1025, 4099, 70_001):  # either side of the vectorised path, odd lane widths
        data = rng.integers(0, 256, n, dtype=np.uint8)
        assert crc32c(data) == _small(data, 0xFFFFFFFF) ^ 0xFFFFFFFF, n
    assert unmask(mask(0xDEADBEEF)) == 0xDEADBEEF and mask(0) == 0xA282EAD8


def test_every_tensor_of_the_tiny_checkpoint_has_a_matching_checksum():
    checkpoint = TFCheckpoint(TINY)
    assert all(entry.crc32c is not None for entry in checkpoint.entries.values())
    checkpoint.verify()


def test_a_changed_tensor_byte_is_named_with_its_file(tmp_path):
    for path in TINY.iterdir():
        shutil.copy(path, tmp_path / path.name)
    checkpoint = TFCheckpoint(tmp_path)
    entry = checkpoint.entries["conv/bias"]
    data = tmp_path / "tiny.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[entry.offset] ^= 0x80
    data.write_bytes(bytes(raw))
    with pytest.raises(
        CheckpointError, match=r"^tensor conv/bias in .*tiny\.data-00000-of-00001 does not match"
    ):
        TFCheckpoint(tmp_path)["conv/bias"]


def test_checking_the_largest_musicnn_checkpoint_takes_under_a_second():
    import time

    from helpers.reference import musicnn_models_dir, require_reference

    folder = Path(require_reference(musicnn_models_dir(), "the musicnn wheel's models", "run `make install`"))
    checkpoint = TFCheckpoint(folder / "MTT_musicnn")  # 9.5 MB, the largest of the four
    start = time.perf_counter()
    checkpoint.verify()
    assert time.perf_counter() - start < 1.0
