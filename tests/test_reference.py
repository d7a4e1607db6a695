"""The reference data fixture: skipped with a reason on a fresh clone, a failure where CI requires it."""

from __future__ import annotations

import pytest

from helpers.reference import reference_path, reference_root


def test_the_location_comes_from_musictag_reference(monkeypatch, tmp_path):
    (tmp_path / "mtat").mkdir()
    monkeypatch.setenv("MUSICTAG_REFERENCE", str(tmp_path))
    assert reference_root() == str(tmp_path)
    assert reference_path("mtat") == str(tmp_path / "mtat")


def test_missing_reference_data_skips_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICTAG_REFERENCE", str(tmp_path / "absent"))
    monkeypatch.delenv("MUSICTAG_REQUIRE_REFERENCE", raising=False)
    with pytest.raises(
        pytest.skip.Exception,
        match=r"reference data not found at .*absent/sota/probe.npy: set MUSICTAG_REFERENCE",
    ):
        reference_path("sota/probe.npy")


def test_missing_reference_data_fails_where_it_is_required(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICTAG_REFERENCE", str(tmp_path / "absent"))
    monkeypatch.setenv("MUSICTAG_REQUIRE_REFERENCE", "1")
    with pytest.raises(BaseException) as outcome:  # a skip is a BaseException too: it must not be one
        reference_path("sota/probe.npy")
    assert outcome.type is pytest.fail.Exception
    assert "(MUSICTAG_REQUIRE_REFERENCE is set)" in str(outcome.value)


def test_ci_requires_the_reference_data():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert commands.index("export MUSICTAG_REQUIRE_REFERENCE=1") < commands.index("make test")
    assert commands[-4:] == ["make test", "make test-slow", "make lint", "make docs"]
