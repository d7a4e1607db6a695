from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from datamodules.pickles import dumps_py2_pickle, load_restricted_pickle, write_py2_pickle


@pytest.fixture
def reference_file(reference):
    """A file of the reference data's ```` folder (see the ``reference`` fixture)."""
    return lambda name: reference(f"{name}")


def test_real_msd_test_list_gives_str_ids(reference_file):
    ids = load_restricted_pickle(reference_file("msd/filtered_list_test.cP"))
    assert len(ids) == 28_435 and len(set(ids)) == 28_435
    assert all(isinstance(track, str) and track.startswith("TR") and len(track) == 18 for track in ids)
    assert ids[0] == "TRAADIN128F931D672"


def test_real_mtat_train_list_loads_as_bytes_or_str(reference_file):
    path = reference_file("mtat/train_list_pub.cP")
    raw = load_restricted_pickle(path, decode=False)
    assert len(raw) == 15_244 and isinstance(raw[0], bytes) and raw[0].endswith(b".npy")
    assert load_restricted_pickle(path) == [p.decode() for p in raw]


def test_py2_writer_reproduces_the_original_files_byte_for_byte(reference_file):
    # the test double writes what Python 2's cPickle wrote, so generated fixtures match the originals
    for name in ("msd/filtered_list_test.cP", "mtat/train_list_pub.cP"):
        path = reference_file(name)
        assert dumps_py2_pickle(load_restricted_pickle(path, decode=False)) == path.read_bytes()


def test_py2_numpy_arrays_and_dicts_round_trip(tmp_path):
    value = {
        b"TRA": np.array([[0], [1], [1]]),
        b"TRB": np.arange(6, dtype=np.float32).reshape(3, 2),
        b"bools": np.array([True, False]),
        b"nested": [(1, 2.5, None), {b"k": b"v\xc3\xa9"}],
    }
    write_py2_pickle(tmp_path / "d.cP", value)
    loaded = load_restricted_pickle(tmp_path / "d.cP")
    assert set(loaded) == {"TRA", "TRB", "bools", "nested"}
    np.testing.assert_array_equal(loaded["TRA"], [[0], [1], [1]])
    assert loaded["TRB"].dtype == np.float32 and loaded["TRB"][2, 1] == 5.0
    assert loaded["bools"].dtype == bool
    assert loaded["nested"] == [(1, 2.5, None), {"k": "vé"}]
    # and the original way of reading it agrees
    plain = pickle.loads((tmp_path / "d.cP").read_bytes(), encoding="bytes")
    np.testing.assert_array_equal(plain[b"TRA"], loaded["TRA"])


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_python3_pickles_of_plain_data_load(tmp_path, protocol):
    value = {
        "ids": ["a", b"b", b""],
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "z": 1 + 2j,
        "vector": np.arange(4, dtype=np.int16),
        "scalar": np.float32(1.5),
    }
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = load_restricted_pickle(tmp_path / "p.pkl")
    assert loaded["ids"] == ["a", "b", ""] and loaded["set"] == {1, 2} and loaded["frozen"] == {"x"}
    assert loaded["z"] == 1 + 2j and loaded["scalar"] == np.float32(1.5)
    np.testing.assert_array_equal(loaded["vector"], np.arange(4))


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo hi > {self.marker}",))


class Custom:
    pass


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_os_system_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.cP"
    path.write_bytes(pickle.dumps([b"TRAAAAA", Exploit(marker)], protocol=protocol))
    with pytest.raises(pickle.UnpicklingError) as error:
        load_restricted_pickle(path)
    message = str(error.value)
    assert str(path) in message and "system" in message and "not a plain metadata pickle" in message
    assert not marker.exists()


def test_custom_class_is_refused(tmp_path):
    path = tmp_path / "custom.pkl"
    path.write_bytes(pickle.dumps({"a": Custom()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"test_pickles\.Custom"):
        load_restricted_pickle(path)


def test_codecs_encode_only_latin1(tmp_path):
    # Python 3 writes bytes under protocol 2 as _codecs.encode(text, 'latin1'); any other codec is refused
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00eJX\x06\x00\x00\x00base64\x86R.")
    with pytest.raises(pickle.UnpicklingError, match=r"codec\.pkl.*base64.*not a plain metadata pickle"):
        load_restricted_pickle(path)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.cP"):
        load_restricted_pickle(tmp_path / "nothing.cP")
    (tmp_path / "cut.cP").write_bytes(dumps_py2_pickle([b"a", b"b"])[:-3])
    with pytest.raises(pickle.UnpicklingError, match=r"cut\.cP: not a readable pickle.*truncated"):
        load_restricted_pickle(tmp_path / "cut.cP")


def test_allowed_callables_cannot_be_patched_by_a_pickle(tmp_path):
    # BUILD on an admitted global would set attributes on it for every later load; it must fail instead
    path = tmp_path / "patch.pkl"
    path.write_bytes(b"c_codecs\nencode\n(N(dS'__defaults__'\n(S'base64'\ntdtb.")
    with pytest.raises(pickle.UnpicklingError, match=r"patch\.pkl: not a readable pickle"):
        load_restricted_pickle(path)
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps([b"abc"], protocol=2))  # bytes via _codecs.encode
    assert load_restricted_pickle(tmp_path / "ok.pkl") == ["abc"]
