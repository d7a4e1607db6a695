"""Runs of two architectures → load_runs, benchmark_table, plots, and the notebook executes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from musictag.analysis import benchmark_table, load_runs, plot_learning_curves, plot_per_tag
from musictag.cli import main
from musictag.testing import cli_args

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "notebooks" / "compare_runs.ipynb"
TINY_MUSICNN = {
    "model.init_args.arch": "musicnn",
    "model.init_args.frontend": '{"name": "musicnn", "timbral_channels": 8, "temporal_channels": 4}',
    "model.init_args.backend": '{"name": "musicnn_1d", "channels": 8}',
    "model.init_args.head": '{"name": "mlp", "hidden": [16]}',
}


@pytest.fixture(scope="module")
def two_architectures(tiny_corpus, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    argv = sys.argv
    sys.argv = ["musictag"]
    try:
        for name, extra in (("short", {}), ("musicnn", TINY_MUSICNN)):
            fit = cli_args("fit", str(tiny_corpus), str(runs), **{"run.name": name, "trainer.max_epochs": 2})
            fit = [a for a in fit if not any(a.startswith(f"--{k}=") for k in extra)] + [
                f"--{k}={v}" for k, v in extra.items()
            ]
            main(fit)
            main(
                [("test" if a == "fit" else a) for a in fit if not a.startswith("--trainer.max_epochs")]
                + ["--ckpt_path=best"]
            )
    finally:
        sys.argv = argv
    return runs


def test_load_runs_and_benchmark_table(two_architectures):
    runs = load_runs(two_architectures)
    assert len(runs) == 4 and sorted(runs.subcommand) == ["fit", "fit", "test", "test"]
    assert set(runs.arch) == {"short_chunk", "musicnn"} and set(runs.corpus) == {"synthetic"}
    fit = runs[runs.subcommand == "fit"].iloc[0]
    assert list(fit.history.dropna(subset=["val/pr_auc"]).epoch) == [0, 1]
    assert fit["best/val/pr_auc"] == fit.history["val/pr_auc"].max()
    table = benchmark_table(runs)
    assert list(table.index) == ["musicnn", "short_chunk"]  # one row per architecture
    assert list(table.columns) == [
        ("synthetic", f"{name}{column}")
        for name in ("ROC-AUC", "PR-AUC")
        for column in ("", " std", " CI low", " CI high")
    ] + [("synthetic", "n")]
    assert table[("synthetic", "n")].tolist() == [1, 1]
    assert table[("synthetic", "ROC-AUC std")].isna().all()  # one run each: no spread
    tested = runs[runs.subcommand == "test"].set_index("arch")
    for arch in table.index:
        assert table.loc[arch, ("synthetic", "ROC-AUC")] == pytest.approx(
            tested.loc[arch, "test/roc_auc"], abs=1e-4
        )
        for bound in ("low", "high"):  # the test's own bootstrap interval
            assert table.loc[arch, ("synthetic", f"PR-AUC CI {bound}")] == pytest.approx(
                tested.loc[arch, f"test/pr_auc_ci_{bound}"], abs=1e-4
            )
        assert (
            tested.loc[arch, "test/roc_auc_ci_low"]
            <= tested.loc[arch, "test/roc_auc"]
            <= tested.loc[arch, "test/roc_auc_ci_high"]
        )
    import matplotlib

    matplotlib.use("Agg")
    assert len(plot_learning_curves(runs[runs.subcommand == "fit"]).lines) == 2
    ax = plot_per_tag(tested.reset_index().iloc[0], tested.reset_index().iloc[1])
    assert len(ax.patches) == 2 * 12


def test_benchmark_table_needs_test_runs(two_architectures):
    runs = load_runs(two_architectures)
    with pytest.raises(ValueError, match="run `musictag test` first"):
        benchmark_table(
            runs[runs.subcommand == "fit"].drop(columns=[c for c in runs if c.startswith("test/")])
        )


@pytest.mark.slow  # starts a Jupyter kernel
def test_the_notebook_executes(two_architectures):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["MUSICTAG_RUNS"] = str(two_architectures)
    try:
        NotebookClient(
            notebook,
            timeout=180,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    finally:
        del os.environ["MUSICTAG_RUNS"]
    table_output = "".join(str(o.get("data", {}).get("text/plain", "")) for o in notebook.cells[2].outputs)
    assert "short_chunk" in table_output and "musicnn" in table_output
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[3].outputs)
    # the seed papers' analyses: AUC against training time and against parameters
    for cell in notebook.cells[-2:]:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source


def test_benchmark_table_averages_runs_and_counts_them():
    import pandas as pd

    runs = pd.DataFrame(
        {
            "arch": ["fcn", "fcn", "fcn", "musicnn", "musicnn"],
            "corpus": ["mtat", "mtat", "msd", "mtat", "mtat"],
            "test/roc_auc": [0.90, 0.80, 0.85, 0.91, None],  # the last run was never tested
            "test/pr_auc": [0.40, 0.30, 0.35, 0.45, None],
        }
    )
    table = benchmark_table(runs)
    assert table.loc["fcn", ("mtat", "ROC-AUC")] == pytest.approx(0.85)
    assert table.loc["fcn", ("mtat", "PR-AUC")] == pytest.approx(0.35)
    assert table.loc["fcn", ("mtat", "n")] == 2 and table.loc["musicnn", ("mtat", "n")] == 1
    assert table.loc["fcn", ("msd", "n")] == 1 and pd.isna(table.loc["musicnn", ("msd", "n")])


def test_benchmark_table_groups_the_seeds_of_one_setup():
    """Runs that differ only in seed (and run name, folder, checkpoint) are one cell: mean ± std and the
    mean of their intervals; another learning rate is another row."""
    import pandas as pd

    def config(seed: int, lr: float) -> dict:
        return {
            "seed_everything": seed,
            "run": {"name": f"fcn_s{seed}"},
            "ckpt_path": f"runs/fcn_s{seed}/version_0/checkpoints/best.ckpt",
            "trainer": {"max_epochs": 5, "default_root_dir": f"runs/fcn_s{seed}"},
            "model": {"init_args": {"arch": "fcn", "optimizer": {"init_args": {"lr": lr}}}},
        }

    runs = pd.DataFrame(
        {
            "arch": ["fcn"] * 4,
            "corpus": ["mtat"] * 4,
            "config": [config(1, 0.001), config(2, 0.001), config(3, 0.001), config(1, 0.01)],
            "test/roc_auc": [0.90, 0.88, 0.86, 0.70],
            "test/roc_auc_ci_low": [0.88, 0.86, 0.83, 0.65],
            "test/roc_auc_ci_high": [0.92, 0.90, 0.89, 0.75],
        }
    )
    table = benchmark_table(runs, metrics=("test/roc_auc",))
    assert list(table.index) == ["fcn", "fcn (2)"]
    assert table.loc["fcn", ("mtat", "ROC-AUC")] == pytest.approx(0.88)
    assert table.loc["fcn", ("mtat", "ROC-AUC std")] == pytest.approx(0.02)  # ddof=1 over three seeds
    assert table.loc["fcn", ("mtat", "ROC-AUC CI low")] == pytest.approx((0.88 + 0.86 + 0.83) / 3, abs=1e-4)
    assert table.loc["fcn", ("mtat", "ROC-AUC CI high")] == pytest.approx(0.9033, abs=1e-4)
    assert table.loc["fcn", ("mtat", "n")] == 3
    assert table.loc["fcn (2)", ("mtat", "ROC-AUC")] == pytest.approx(0.70)
    assert table.loc["fcn (2)", ("mtat", "n")] == 1 and pd.isna(table.loc["fcn (2)", ("mtat", "ROC-AUC std")])
