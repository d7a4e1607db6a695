from __future__ import annotations

import json

import pytest

from datamodules.loader import default_workers
from musictag.bench.data import Figure, describe, loader_rates
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
                "--repeats",
                "3",
                "--warmup",
                "0",
            ]
        )
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("# musictag bench: forward+backward+Adam on CPU")
    assert "median of 3 runs of 1 steps after 0 warm-up steps" in lines[0]
    assert lines[1].split()[:8] == [
        "architecture", "params", "input", "s", "batch", "precision", "compile", "ch-last"
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"pons_time", "sample_cnn"}
    assert rows["sample_cnn"][1] == "1,869,874"
    assert rows["sample_cnn"][3:6] == ["2", "32", "off"]
    name, params, seconds, batch, precision, compile_, channels_last, rate, low, _, high, peak = rows[
        "pons_time"
    ]
    assert float(low) <= float(rate) <= float(high) and float(rate) > 0 and float(peak) > 0


def test_bench_json_and_the_epoch_figure(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--arch", "pons_time", "--batch-size", "2", "--steps", "1", "--warmup", "0", "--json"])
    assert exit_info.value.code == 0
    (figure,) = json.loads(capsys.readouterr().out)
    assert figure["arch"] == "pons_time" and figure["precision"] == "32" and not figure["compile"]
    assert len(figure["runs"]) == 3 and figure["low"] <= figure["samples_per_s"] <= figure["high"]
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--arch", "pons_time", "--epoch", "--scale", "0.001", "--json"])
    assert exit_info.value.code == 0
    (epoch,) = json.loads(capsys.readouterr().out)
    assert epoch["train_chunks"] == 15 and epoch["valid_songs"] == 2 and epoch["chunks_per_song"] == 16
    assert 0 < epoch["epoch_seconds"] and epoch["full_mtat_epoch_seconds"] == pytest.approx(
        epoch["epoch_seconds"] / 0.001
    )


def test_data_figures_are_medians_of_repeats(tmp_path):
    figure = Figure.of("loader", "x", "chunks/s", [3.0, 1.0, 10.0])
    assert (figure.median, figure.low, figure.high) == (3.0, 1.0, 10.0)
    assert figure.row().split()[-5:] == ["3", "(1", "–", "10)", "chunks/s"]
    figures = loader_rates(tmp_path, n_tracks=16, batches=3, repeats=3)
    whats = [f.what for f in figures]
    assert whats[0] == f"musictag cache, fit's default loader ({describe(default_workers())}), batch 16"
    for other in (0, 2):  # the thread settings fit does not use by default, measured beside it
        if other != default_workers():
            assert f"musictag cache, {describe(other)}, batch 16" in whats
    assert "musictag cache, 2 torch worker processes (worker_type process), batch 16" in whats
    assert [w for w in whats if w.startswith("published pattern")] == [
        f"published pattern (np.load whole .npy + crop), {n} workers, batch 16" for n in (0, 2)
    ]
    for f in figures:
        assert len(f.runs) == 3 and f.low <= f.median <= f.high and f.unit == "chunks/s"


def test_bench_refuses_unknown_architectures(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--arch", "nosuch"])
    assert exit_info.value.code == 2
    assert "unknown architecture(s) nosuch" in capsys.readouterr().err
