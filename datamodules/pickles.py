"""Safe loading of the metadata pickles that define the MTAT and MSD splits.

The published split files of MagnaTagATune (``train_list_pub.cP``, Lee et al. 2017) and of the Million
Song Dataset (``filtered_list_*.cP``, ``msd_id_to_tag_vector.cP``, ``MSD_id_to_7D_id.pkl``,
``7D_id_to_path.pkl``) are pickles written by Python 2's ``cPickle`` (protocol 0): lists and dicts of
Python-2 ``str`` (bytes), ints and numpy arrays. ``pickle.load`` on such a file runs whatever callable
the file names, so a file downloaded from a mirror could execute code. :func:`load_restricted_pickle`
admits only the globals that plain containers, numbers, strings and numpy arrays need, and refuses any
other with :class:`pickle.UnpicklingError` before it is called.

Python-2 ``str`` is loaded with ``encoding="bytes"`` (the only lossless choice: it keeps numpy's raw
array buffers intact and does not guess a text encoding), then the bytes inside lists, tuples, sets and
dicts are decoded as UTF-8, because every caller wants ``str`` ids and paths. Bytes inside numpy object
arrays are left as they are.

:func:`dumps_py2_pickle` is the test double: it writes containers the way Python 2's ``cPickle.dump``
did (protocol 0, ``S'...'`` strings, numpy arrays through ``numpy.core.multiarray._reconstruct``), so
tests can build metadata folders in the original format without Python 2.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from musictag.types import Pathlike


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names something outside the allow-list; nothing it names has been called."""


def _multiarray_attr(name: str) -> Any:
    # numpy >= 2 moved numpy.core to numpy._core; older numpy only has numpy.core.
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no multiarray.{name}")


def _numeric_attr(name: str) -> Any:
    for module in ("numpy._core.numeric", "numpy.core.numeric"):
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no numeric.{name}")


class _Latin1Encode:
    """Python 3 pickles ``bytes`` under protocols 0–2 as ``_codecs.encode(text, "latin1")``.

    Only that call is admitted: ``codecs.encode`` with another codec (zlib, base64, ...) is no part of
    plain metadata, so it is refused rather than run. A slotted instance rather than a function, so a
    pickle cannot BUILD new attributes (``__defaults__``, ``__dict__``) onto it.
    """

    __slots__ = ()

    def __call__(self, text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
        if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
            raise RefusedGlobal(
                f"_codecs.encode with codec {encoding!r} is not allowed: the file is not a plain "
                "metadata pickle"
            )
        return text.encode("latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {}
    for builtins_name in ("__builtin__", "builtins"):  # Python 2 and Python 3 names
        for name, value in {
            "set": set,
            "frozenset": frozenset,
            "bytes": bytes,
            "complex": complex,
        }.items():
            allowed[(builtins_name, name)] = value
    allowed[("_codecs", "encode")] = _Latin1Encode()
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _multiarray_attr("_reconstruct")
        allowed[(f"{core}.multiarray", "scalar")] = _multiarray_attr("scalar")
        allowed[(f"{core}.numeric", "_frombuffer")] = _numeric_attr("_frombuffer")  # protocol 5 arrays
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns the constructors of plain data.

    Every way a pickle can reach a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT) goes through
    ``find_class``, so refusing there means nothing outside the allow-list is ever imported or called.
    """

    def __init__(self, file: BinaryIO, source: Pathlike, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"{self.source}: refused to load the global '{module}.{name}': the file is not a plain "
                "metadata pickle (only lists, dicts, tuples, sets, strings, numbers and numpy arrays are "
                "allowed). Check where the file came from; replace it with the published original."
            ) from None


def decode_bytes(value: Any, source: Pathlike = "<pickle>") -> Any:
    """``value`` with every ``bytes`` in (nested) lists, tuples, sets and dict keys/values as UTF-8 ``str``."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{source}: string {value[:60]!r} is not UTF-8 ({error})") from None
    if isinstance(value, list):
        return [decode_bytes(v, source) for v in value]
    if isinstance(value, tuple):
        return tuple(decode_bytes(v, source) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(decode_bytes(v, source) for v in value)
    if isinstance(value, dict):
        return {decode_bytes(k, source): decode_bytes(v, source) for k, v in value.items()}
    return value


def load_restricted_pickle(path: Pathlike, decode: bool = True) -> Any:
    """Load a Python-2 or Python-3 metadata pickle without running anything it names.

    Args:
        path: the pickle file.
        decode: decode ``bytes`` in containers to ``str`` (see the module docstring); ``False`` returns
            Python-2 strings as ``bytes``, exactly as ``pickle.load(f, encoding="bytes")`` would.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        pickle.UnpicklingError: the file names a global outside the allow-list, or is not a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metadata pickle {path} not found; download the split files first")
    with open(path, "rb") as f:
        try:
            value = RestrictedUnpickler(f, source=path, encoding="bytes").load()
        except RefusedGlobal as error:
            if str(path) in str(error):
                raise
            raise RefusedGlobal(f"{path}: {error}") from None
        except Exception as error:  # truncated or not a pickle: UnpicklingError, EOFError, ValueError, ...
            raise pickle.UnpicklingError(
                f"{path}: not a readable pickle ({type(error).__name__}: {error}); "
                "the file may be truncated or corrupt, re-download it"
            ) from error
    return decode_bytes(value, path) if decode else value


# ---------------------------------------------------------------------------------------------------
# Test double: Python 2 cPickle protocol 0.


def _py2_string(data: bytes) -> bytes:
    """``S'...'``: Python 2's ``repr`` of a ``str``, which is what protocol 0 stores."""
    escaped = bytearray()
    for byte in data:
        char = bytes([byte])
        if char in (b"\\", b"'"):
            escaped += b"\\" + char
        elif char in (b"\t", b"\n", b"\r"):
            escaped += {b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r"}[char]
        elif 32 <= byte < 127:
            escaped += char
        else:
            escaped += b"\\x%02x" % byte
    return b"S'" + bytes(escaped) + b"'\n"


def dumps_py2_pickle(value: Any) -> bytes:
    """``value`` pickled as Python 2's ``cPickle.dumps(value)`` (protocol 0) wrote it.

    Supports ``bytes`` (Python-2 ``str``), ``str`` (written as UTF-8 ``str``, as Python 2 code held
    text), ``bool``, ``int``, ``float``, ``None``, lists, tuples, dicts and numeric numpy arrays. Each
    object gets a fresh memo slot (``p<n>``); repeated objects are written again instead of fetched,
    which loads the same. For lists of strings the output is byte-identical to the original files.
    """
    out = bytearray()
    memo = 0

    def put() -> None:
        nonlocal memo
        memo += 1
        out.extend(b"p%d\n" % memo)

    def save(obj: Any) -> None:
        if obj is None:
            out.extend(b"N")
        elif isinstance(obj, bool):
            out.extend(b"I01\n" if obj else b"I00\n")
        elif isinstance(obj, (int, np.integer)):
            out.extend(b"I%d\n" % int(obj))
        elif isinstance(obj, float):
            out.extend(b"F" + repr(obj).encode() + b"\n")
        elif isinstance(obj, (bytes, str)):
            out.extend(_py2_string(obj if isinstance(obj, bytes) else obj.encode("utf-8")))
            put()
        elif isinstance(obj, list):
            out.extend(b"(l")
            put()
            for item in obj:
                save(item)
                out.extend(b"a")
        elif isinstance(obj, tuple):
            out.extend(b"(")
            for item in obj:
                save(item)
            out.extend(b"t")
            put()
        elif isinstance(obj, dict):
            out.extend(b"(d")
            put()
            for key, item in obj.items():
                save(key)
                save(item)
                out.extend(b"s")
        elif isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
            save_array(obj)
        else:
            raise TypeError(f"dumps_py2_pickle cannot write {type(obj).__name__}")

    def save_global(module: str, name: str) -> None:
        out.extend(b"c%s\n%s\n" % (module.encode(), name.encode()))
        put()

    def save_array(array: np.ndarray) -> None:
        # ndarray.__reduce__ under Python 2 / numpy 1.x: _reconstruct(ndarray, (0,), 'b') then BUILD
        # with (version, shape, dtype, is_fortran, raw data).
        array = np.ascontiguousarray(array)
        save_global("numpy.core.multiarray", "_reconstruct")
        out.extend(b"(")
        save_global("numpy", "ndarray")
        save((0,))
        save(b"b")
        out.extend(b"t")
        put()
        out.extend(b"R")
        put()
        out.extend(b"(I1\n")
        save(tuple(array.shape))
        save_global("numpy", "dtype")
        save((array.dtype.str[1:], 0, 1))
        out.extend(b"R")
        put()
        byteorder = b"|" if array.dtype.itemsize == 1 else b"<"
        out.extend(b"(I3\n")
        save(byteorder)
        out.extend(b"NNNI-1\nI-1\nI0\nt")
        put()
        out.extend(b"b")
        save(False)
        save(array.astype(array.dtype.newbyteorder("<")).tobytes())
        out.extend(b"t")
        put()
        out.extend(b"b")

    save(value)
    out.extend(b".")
    return bytes(out)


def write_py2_pickle(path: Pathlike, value: Any) -> None:
    Path(path).write_bytes(dumps_py2_pickle(value))
