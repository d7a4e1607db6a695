"""Logged runs → pandas: the benchmark table and plots, from local run folders or from W&B.

>>> runs = load_runs("runs")            # every runs/<name>/version_N folder
>>> benchmark_table(runs)               # architecture x corpus ROC-AUC / PR-AUC: mean, std, interval
>>> plot_learning_curves(runs, "val/pr_auc")
>>> plot_per_tag(runs.iloc[0], runs.iloc[1])

A row per run: ``name``, ``version``, ``path``, ``arch``, ``corpus``, ``subcommand`` (``fit`` or
``test``), ``lr``, ``batch_size``, the last value of every logged metric (``val/pr_auc``, ``test/roc_auc``
...), ``best/<metric>`` (the best validation value), ``history`` (the metrics log as a DataFrame),
``per_tag`` (a test run's per-tag table) and ``config`` (the resolved config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from musictag.types import Pathlike

METRIC_NAMES = {"test/roc_auc": "ROC-AUC", "test/pr_auc": "PR-AUC"}


def _corpus(class_path: str | None) -> str:
    if not class_path:
        return "unknown"
    name = class_path.rsplit(".", 1)[-1]
    return name.removesuffix("DataModule").lower() or name


def _get(config: dict[str, Any], *keys: str) -> Any:
    node: Any = config
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _local_run(folder: Path) -> dict[str, Any]:
    config = (
        yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else {}
    )
    history = pd.read_csv(folder / "metrics.csv") if (folder / "metrics.csv").is_file() else pd.DataFrame()
    model = _get(config, "model", "init_args") or {}
    row: dict[str, Any] = {
        "name": folder.parent.name,
        "version": folder.name,
        "path": str(folder),
        "arch": model.get("arch") or "custom",
        "corpus": _corpus(_get(config, "data", "class_path")),
        "lr": _get(model, "optimizer", "init_args", "lr"),
        "batch_size": _get(config, "data", "init_args", "batch_size"),
    }
    for column in history.columns:
        if "/" in column:
            values = history[column].dropna()
            if len(values):
                row[column] = float(values.iloc[-1])
                if column.startswith("val/"):
                    row[f"best/{column}"] = float(values.min() if column.endswith("loss") else values.max())
    row["subcommand"] = "test" if any(k.startswith("test/") for k in row) else "fit"
    per_tag = folder / "test_per_tag.csv"
    row["per_tag"] = pd.read_csv(per_tag) if per_tag.is_file() else None
    row["history"] = history
    row["config"] = config
    return row


def _wandb_runs(path: str) -> list[dict[str, Any]]:
    import wandb

    rows = []
    for run in wandb.Api().runs(path):
        config = dict(run.config)
        model = _get(config, "model", "init_args") or {}
        row: dict[str, Any] = {
            "name": run.name,
            "version": run.id,
            "path": f"{path}/{run.id}",
            "arch": model.get("arch") or config.get("arch") or "custom",
            "corpus": _corpus(_get(config, "data", "class_path")),
            "lr": _get(model, "optimizer", "init_args", "lr"),
            "batch_size": _get(config, "data", "init_args", "batch_size"),
        }
        row.update({k: v for k, v in run.summary.items() if "/" in k and isinstance(v, int | float)})
        row["subcommand"] = "test" if any(k.startswith("test/") for k in row) else "fit"
        row["history"] = run.history(pandas=True)
        row["per_tag"] = None
        row["config"] = config
        rows.append(row)
    return rows


def load_runs(source: Pathlike = "runs") -> pd.DataFrame:
    """Runs of a local folder of run folders (``runs/<name>/version_N``), or of a W&B ``entity/project``."""
    folder = Path(source)
    if folder.is_dir():
        run_dirs = sorted(
            {p.parent for p in folder.rglob("metrics.csv")} | {p.parent for p in folder.rglob("config.yaml")}
        )
        rows = [_local_run(d) for d in run_dirs if d.name.startswith("version_")]
    elif isinstance(source, str) and source.count("/") == 1 and not source.startswith((".", "/")):
        rows = _wandb_runs(source)
    else:
        raise FileNotFoundError(f"{source}: no such run folder (nor a W&B entity/project)")
    return pd.DataFrame(rows)


#: Settings that differ between the runs of one setup: its seed, and where and under which name it ran.
NOT_SETUP = ("seed_everything", "ckpt_path", "run", "trainer.default_root_dir", "trainer.logger", "verbose")


def _setup(config: Any) -> str:
    """What a run's config says about its setup: all of it but :data:`NOT_SETUP` (``""`` without one)."""
    if not isinstance(config, dict):
        return ""
    kept = {k: v for k, v in config.items() if k not in NOT_SETUP}
    if isinstance(kept.get("trainer"), dict):
        kept["trainer"] = {k: v for k, v in kept["trainer"].items() if f"trainer.{k}" not in NOT_SETUP}
    return yaml.safe_dump(kept, sort_keys=True)


def benchmark_table(
    runs: pd.DataFrame, metrics: tuple[str, ...] = ("test/roc_auc", "test/pr_auc")
) -> pd.DataFrame:
    """Architecture x (corpus, column) of the test runs, the layout of the field's comparison tables.

    The test runs of one setup (configs that differ only in :data:`NOT_SETUP`: the seed, the run's name
    and folder, the checkpoint) are one cell: per metric its mean (``ROC-AUC``), the standard deviation
    over the runs (``ROC-AUC std``, ``ddof=1``; empty for one run), and when the runs logged bootstrap
    intervals (``test/roc_auc_ci_low`` / ``_ci_high``) the mean of their bounds (``ROC-AUC CI low``,
    ``ROC-AUC CI high``: the run's own 95 % interval when there is one run); ``n`` counts the runs. An
    architecture with several setups on a corpus (another learning rate, say) has a row per setup:
    ``arch``, ``arch (2)`` ... in the order the runs come. Runs without a config (W&B summaries made into
    a frame by hand) are grouped by architecture and corpus alone.
    """
    present = [m for m in metrics if m in runs.columns]
    if not present:
        raise ValueError(f"no test metrics {list(metrics)} in these runs: run `musictag test` first")
    tested = runs.dropna(subset=present, how="all").copy()
    configs = (
        tested["config"] if "config" in tested.columns else pd.Series([None] * len(tested), tested.index)
    )
    tested["_setup"] = [_setup(c) for c in configs]
    # the setups of one architecture on one corpus, numbered in the order of their first run
    number = tested.groupby(["arch", "corpus"], sort=False)["_setup"].transform(
        lambda setups: setups.map({setup: i for i, setup in enumerate(dict.fromkeys(setups))})
    )
    tested["_row"] = [
        arch if i == 0 else f"{arch} ({i + 1})" for arch, i in zip(tested["arch"], number, strict=True)
    ]
    cells = tested.groupby(["_row", "corpus"], sort=True)
    columns: dict[tuple[str, str], pd.Series] = {}
    corpora = sorted(tested["corpus"].unique())
    for corpus in corpora:
        for metric in present:
            name = METRIC_NAMES.get(metric, metric)
            columns[(corpus, name)] = cells[metric].mean().xs(corpus, level="corpus")
            columns[(corpus, f"{name} std")] = cells[metric].std(ddof=1).xs(corpus, level="corpus")
            for bound in ("low", "high"):
                if f"{metric}_ci_{bound}" in tested.columns:
                    column = cells[f"{metric}_ci_{bound}"].mean().xs(corpus, level="corpus")
                    columns[(corpus, f"{name} CI {bound}")] = column
        columns[(corpus, "n")] = cells[present[0]].count().xs(corpus, level="corpus")
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(list(columns), names=["corpus", "metric"])
    table.index.name = "arch"
    return table.round(4)


def plot_learning_curves(runs: pd.DataFrame, metric: str = "val/pr_auc", ax: Any = None) -> Any:
    """One line per run: ``metric`` against epochs."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for _, run in runs.iterrows():
        history = run["history"]
        if isinstance(history, pd.DataFrame) and metric in history:
            curve = history.dropna(subset=[metric])
            ax.plot(
                curve["epoch"],
                curve[metric],
                marker="o",
                label=f"{run['name']}/{run['version']} ({run['arch']})",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return ax


def plot_per_tag(run_a: pd.Series, run_b: pd.Series, metric: str = "roc_auc", ax: Any = None) -> Any:
    """Per-tag ``roc_auc`` or ``pr_auc`` of two test runs side by side, tags sorted by the first."""
    import matplotlib.pyplot as plt

    a, b = run_a["per_tag"].set_index("tag")[metric], run_b["per_tag"].set_index("tag")[metric]
    order = a.sort_values().index
    ax = ax or plt.subplots(figsize=(7, max(3, 0.25 * len(order))))[1]
    y = range(len(order))
    ax.barh([i - 0.2 for i in y], a[order], height=0.4, label=f"{run_a['name']} ({run_a['arch']})")
    ax.barh([i + 0.2 for i in y], b.reindex(order), height=0.4, label=f"{run_b['name']} ({run_b['arch']})")
    ax.set_yticks(list(y), list(order))
    ax.set_xlabel(metric)
    ax.legend(fontsize="small")
    return ax
