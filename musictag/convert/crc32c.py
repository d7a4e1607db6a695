"""CRC-32C (Castagnoli), as TensorFlow checkpoints and LevelDB tables store it, in numpy.

A byte-at-a-time table loop in Python takes seconds for the musicnn checkpoints' 9 MB, so a long
buffer is cut into equal lanes whose CRCs are computed side by side (one vectorised table step per byte
position), then joined pairwise: the CRC register is linear over GF(2), so the register after lane
``a`` followed by lane ``b`` is ``shift(reg_a, len(b)) ^ reg_b``, where ``shift`` (running the register
over ``len(b)`` zero bytes) is a 32×32 bit matrix, found by repeated squaring. The initial value
``0xFFFFFFFF`` equals complementing the first four bytes from a zero register, and leading zero bytes
leave a zero register at zero, which lets the buffer be padded in front to a whole number of lanes.

:func:`mask` / :func:`unmask` are the storage form: a CRC stored next to the data it covers is rotated
and offset, so that the CRC of a buffer that itself holds CRCs is not degenerate.
"""

from __future__ import annotations

import numpy as np

#: The reflected Castagnoli polynomial.
POLY = 0x82F63B78
MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _table()
_BITS = np.arange(32, dtype=np.uint32)


def _apply(matrix: np.ndarray, states: np.ndarray) -> np.ndarray:
    """The linear map ``matrix`` (the images of the 32 unit registers) applied to every register."""
    bits = ((states[:, None] >> _BITS[None, :]) & 1).astype(bool)
    return np.bitwise_xor.reduce(np.where(bits, matrix[None, :], np.uint32(0)), axis=1).astype(np.uint32)


def _zeros_matrix(n_bytes: int) -> np.ndarray:
    """The map "run the register over ``n_bytes`` zero bytes", by repeated squaring."""
    one = 1 << _BITS  # images of the unit registers after one zero byte
    one = (TABLE[one & 0xFF] ^ (one >> 8)).astype(np.uint32)
    result = (1 << _BITS).astype(np.uint32)  # identity
    power = one
    while n_bytes:
        if n_bytes & 1:
            result = _apply(power, result)
        n_bytes >>= 1
        if n_bytes:
            power = _apply(power, power)
    return result


def _small(data: np.ndarray, register: int) -> int:
    for byte in data.tolist():
        register = int(TABLE[(register ^ byte) & 0xFF]) ^ (register >> 8)
    return register


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """The CRC-32C of ``data`` (initial value and final complement ``0xFFFFFFFF``, as in iSCSI)."""
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    buf = buf.view(np.uint8)
    n = len(buf)
    if n < 1024:
        return _small(buf, _U32) ^ _U32
    lanes = 1 << min(14, max(2, (n.bit_length() - 1) // 2))
    width = -(-n // lanes)
    padded = np.zeros(lanes * width, dtype=np.uint8)
    padded[lanes * width - n :] = buf
    padded[lanes * width - n : lanes * width - n + 4] ^= 0xFF  # the initial 0xFFFFFFFF
    block = padded.reshape(lanes, width)
    registers = np.zeros(lanes, dtype=np.uint32)
    for column in range(width):
        registers = TABLE[(registers ^ block[:, column]) & 0xFF] ^ (registers >> 8)
    shift = _zeros_matrix(width)
    while len(registers) > 1:  # join neighbours: (a, b) → shift(a) ^ b, the joined lanes twice as long
        registers = _apply(shift, registers[0::2]) ^ registers[1::2]
        shift = _apply(shift, shift)
    return int(registers[0]) ^ _U32


def mask(crc: int) -> int:
    """The stored form of a CRC: rotated right by 15 bits, plus a constant (mod 2**32)."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """The CRC whose stored form is ``masked`` (the inverse of :func:`mask`)."""
    rotated = (masked - MASK_DELTA) & _U32
    return ((rotated >> 17) | (rotated << 15)) & _U32
