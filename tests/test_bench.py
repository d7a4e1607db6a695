from __future__ import annotations

import pytest

from musictag.cli import main


def test_bench_prints_a_row_per_architecture(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "bench",
                "--arch",
                "pons_time",
                "sample_cnn",
                "--batch-size",
                "2",
                "--steps",
                "1",
                "--warmup",
                "0",
            ]
        )
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("# musictag bench: forward+backward+Adam, batch 2, CPU")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"pons_time", "sample_cnn"}
    assert rows["sample_cnn"][1] == "1,869,874"
    assert float(rows["pons_time"][3]) > 0


def test_bench_refuses_unknown_architectures(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--arch", "nosuch"])
    assert exit_info.value.code == 2
    assert "unknown architecture(s) nosuch" in capsys.readouterr().err
