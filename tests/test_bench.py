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


def test_the_benchmark_times_the_modules_own_training_step(monkeypatch):
    """Every step ``musictag bench`` times is ``TaggingModule.training_loss`` on int16 chunks of the
    architecture's input length, then backward and Adam (the step ``fit`` trains with)."""
    import torch

    from musictag.bench import throughput
    from musictag.training.module import TaggingModule

    own = TaggingModule.training_loss
    seen: list[tuple[torch.dtype, tuple[int, ...]]] = []

    def counted(self, audio, target):
        seen.append((audio.dtype, tuple(audio.shape)))
        return own(self, audio, target)

    monkeypatch.setattr(TaggingModule, "training_loss", counted)
    figure = throughput.step_throughput("pons_time", 2, torch.device("cpu"), steps=2, repeats=2, warmup=1)
    module = throughput.build_module("pons_time")
    assert seen == [(torch.int16, (2, module.input_len))] * (1 + 2 * 2)
    assert figure.params == module.net.n_params() and figure.batch == 2 and len(figure.runs) == 2
    assert figure.input_s == module.input_len / module.sample_rate
    _, compiled = throughput._training_step("pons_time", 2, torch.device("cpu"), "32", True, "preset")
    assert compiled.net._compiled_call_impl is not None  # the module's own compile (its setup), as fit's
    assert module.net._compiled_call_impl is None


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


@pytest.mark.slow
def test_bench_augment_times_every_transform_beside_the_training_step(capsys):
    """``musictag bench --augment``: one row per transform, the default set and all together, each with
    its share of the short_chunk training step."""
    from musictag.cli.bench import main as bench_main
    from musictag.training.augment import TRANSFORMS

    assert (
        bench_main(
            [
                "--augment",
                "--device",
                "cpu",
                "--batch-size",
                "2",
                "--steps",
                "1",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["what"] for r in rows] == [
        "short_chunk training step",
        *TRANSFORMS,
        "default set (p = 1)",
        "all together (p = 1)",
    ]
    assert all(r["ms"] > 0 for r in rows) and rows[0]["share_of_step"] is None
    assert all(r["share_of_step"] == pytest.approx(r["ms"] / rows[0]["ms"], abs=1e-3) for r in rows[1:])
