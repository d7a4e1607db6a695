"""``musictag bench --save`` / ``--report`` / ``--profile``, and a failing configuration."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

import musictag.bench.throughput
from musictag.bench.data import Figure
from musictag.bench.report import markdown
from musictag.bench.throughput import StepFigure
from musictag.cli import main


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_saved_figures_become_the_readme_table(tmp_path, capsys):
    saved = tmp_path / "bench.json"
    tiny = ["--steps", "1", "--repeats", "1", "--warmup", "0"]
    assert run(["bench", "--arch", "pons_time", "--batch-size", "2", "3", *tiny, "--save", str(saved)]) == 0
    figures = json.loads(saved.read_text())
    assert [(f["arch"], f["batch"], f["precision"]) for f in figures] == [
        ("pons_time", 2, "32"),
        ("pons_time", 3, "32"),
    ]
    assert set(figures[0]) == set(asdict(figures_of_step()))  # the schema the report reads
    capsys.readouterr()
    assert run(["bench", "--report", str(saved)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Training steps on {figures[0]['device']}: samples/s (median of 1 runs;")
    rows = table_rows(out)
    assert rows["architecture"] == ["32, batch 2", "32, batch 3"]
    for cell, figure in zip(rows["`pons_time`"], figures, strict=True):
        value = figure["samples_per_s"]
        assert cell.startswith(f"{value:,.0f} (" if value >= 100 else f"{value:.3g} (")
        assert cell.endswith(" MiB)") or cell.endswith(" GiB)")


def figures_of_step(**fields) -> StepFigure:
    values = dict(
        arch="short_chunk",
        params=3687348,
        input_s=3.69,
        batch=256,
        precision="bf16-mixed",
        compile=False,
        channels_last=True,
        device="NVIDIA H200",
        samples_per_s=12345.6,
        low=12000.0,
        high=12500.0,
        runs=[12000.0, 12345.6, 12500.0],
        peak_memory_mib=3072.0,
    )
    values.update(fields)
    return StepFigure(**values)  # type: ignore[arg-type]


def test_save_replaces_its_own_figures_and_no_other_file(tmp_path, capsys):
    saved = tmp_path / "bench.json"
    tiny = ["--arch", "pons_time", "--steps", "1", "--repeats", "1", "--warmup", "0"]
    assert run(["bench", *tiny, "--batch-size", "3", "--save", str(saved)]) == 0
    assert run(["bench", *tiny, "--batch-size", "2", "--save", str(saved)]) == 0
    assert [f["batch"] for f in json.loads(saved.read_text())] == [2]  # this run's figures
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    capsys.readouterr()
    assert run(["bench", *tiny, "--save", str(tmp_path / "notes.json")]) == 2
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'
    assert "is not figures written by musictag bench --save" in capsys.readouterr().err


def test_report_of_every_kind_of_figure():
    steps = [
        figures_of_step(precision="32", batch=16, samples_per_s=999.4, peak_memory_mib=512.0),
        figures_of_step(samples_per_s=1.0),  # measured again below: the last figure counts
        figures_of_step(),
        figures_of_step(compile=True, samples_per_s=20000.0),
        figures_of_step(arch="fcn", channels_last=False, samples_per_s=42.25, peak_memory_mib=100.0),
        figures_of_step(device="CPU, 2 threads", batch=2, precision="32", samples_per_s=7.5),
    ]
    epoch = {
        "arch": "short_chunk",
        "device": "NVIDIA H200",
        "precision": "bf16-mixed",
        "compile": False,
        "batch": 16,
        "scale": 1.0,
        "train_chunks": 15244,
        "valid_songs": 1529,
        "chunks_per_song": 16,
        "epoch_seconds": 8.25,
        "full_mtat_epoch_seconds": 8.25,
    }
    data = Figure.of(
        "loader", "musictag cache, fit's default loader", "chunks/s", [30000.0, 28000.0, 31000.0]
    )
    text = markdown([*(asdict(s) for s in steps), epoch, asdict(data)])
    h200, cpu, epochs, loader = text.split("\n\n")[1::2]  # each table after its title
    assert table_rows(h200) == {
        "architecture": ["32, batch 16", "bf16-mixed, batch 256"],
        "`short_chunk`": ["999 (512 MiB)", "12,346 (3.0 GiB)"],
        "`short_chunk`, compiled": ["—", "20,000 (3.0 GiB)"],
        "`fcn`": ["—", "42.2 (100 MiB)"],
    }
    assert table_rows(cpu) == {"architecture": ["32, batch 2"], "`short_chunk`": ["7.5 (3.0 GiB)"]}
    assert table_rows(epochs)["`short_chunk`"] == [
        "NVIDIA H200", "bf16-mixed", "16", "off", "15,244 + 1,529 × 16", "8.2", "8.2"
    ]  # fmt: skip
    assert table_rows(loader)["loader: musictag cache, fit's default loader"] == [
        "30,000 chunks/s",
        "28,000 – 31,000",
    ]


def test_report_refuses_a_file_of_something_else(tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"samples_per_s": 1}))
    assert run(["bench", "--report", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"musictag bench: error: {other}: not a list of musictag bench figures (from --save or --json)"
    )
    assert run(["bench", "--report", str(tmp_path / "missing.json")]) == 2
    assert f"{tmp_path / 'missing.json'}: no such file" in capsys.readouterr().err


def test_a_failing_configuration_costs_only_its_own_figure(tmp_path, capsys, monkeypatch):
    measure = musictag.bench.throughput.step_throughput

    def out_of_memory_for_sample_cnn(arch, *args):
        if arch == "sample_cnn":
            raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB\nmore details")
        return measure(arch, *args)

    monkeypatch.setattr(musictag.bench.throughput, "step_throughput", out_of_memory_for_sample_cnn)
    saved = tmp_path / "bench.json"
    argv = ["bench", "--arch", "sample_cnn", "pons_time", "--batch-size", "2", "--steps", "1"]
    assert run([*argv, "--repeats", "1", "--warmup", "0", "--save", str(saved)]) == 1
    assert capsys.readouterr().err.strip() == (
        "musictag bench: sample_cnn batch 2 32 failed: RuntimeError: CUDA out of memory. Tried to allocate 80.00 GiB"
    )
    assert [f["arch"] for f in json.loads(saved.read_text())] == ["pons_time"]


def test_profile_prints_the_operators_of_training_steps(capsys):
    argv = ["bench", "--arch", "pons_time", "--batch-size", "2", "--steps", "2", "--warmup", "1", "--profile"]
    assert run(argv) == 0
    header, *table = capsys.readouterr().out.splitlines()
    assert header.startswith("# profile: pons_time, batch 2, 32, compile off, on CPU")
    assert "2 steps after 1 warm-up steps; per step " in header and " ms wall-clock (" in header
    assert any("Self CPU" in line for line in table)
    assert any("aten::convolution" in line or "aten::conv2d" in line for line in table)
