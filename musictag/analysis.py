"""Logged runs → pandas: the benchmark table and plots, from local run folders or from W&B.

>>> runs = load_runs("runs")            # every runs/<name>/version_N folder
>>> benchmark_table(runs)               # architecture x corpus ROC-AUC / PR-AUC: mean, std, interval
>>> plot_learning_curves(runs, "val/pr_auc")
>>> plot_per_tag(runs.iloc[0], runs.iloc[1])
>>> plot_per_tag_by_category(per_tag_by_category(runs.iloc[1]))   # Choi et al. 2017's per-tag figure
>>> plot_auc_vs_time(runs[runs.subcommand == "fit"])                # val/roc_auc against train/elapsed_s
>>> plot_auc_vs_params(runs)                                        # test/roc_auc against model/n_params

A row per run: ``name``, ``version``, ``path``, ``arch``, ``corpus``, ``subcommand`` (``fit`` or
``test``), ``lr``, ``batch_size``, the last value of every logged metric (``val/pr_auc``, ``test/roc_auc``
...), ``best/<metric>`` (the best validation value), ``history`` (the metrics log as a DataFrame),
``per_tag`` (a test run's per-tag table) and ``config`` (the resolved config). Every fit and test run
logs ``model/n_params`` and every fit ``train/elapsed_s`` (:mod:`musictag.training.clock`), so both are
columns too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


# --- The seed papers' analyses: per-tag AUC by category, AUC against training time and model size ---

#: Category → tags of a corpus's top-50, as data (every tag in exactly one category; tests check each
#: map against the published tag lists). MSD: the four groups of Choi et al. 2017's per-tag figure
#: (genre, mood, instrument, era). MTAT: read from the tag names (tempo, loudness and character words are
#: moods; ``beat``/``beats``, ``solo`` and the vocal words share ``vocal/other``). Jamendo's categories
#: are its tag prefixes (:func:`tag_categories`).
CATEGORIES: dict[str, dict[str, tuple[str, ...]]] = {
    "msd": {
        "genre": (
            "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz",
            "metal", "chillout", "classic rock", "soul", "indie rock", "electronica", "folk", "punk",
            "blues", "hard rock", "ambient", "experimental", "Hip-Hop", "country", "easy listening",
            "funk", "electro", "heavy metal", "Progressive rock", "rnb", "indie pop", "House",
        ),
        "mood": ("beautiful", "Mellow", "chill", "party", "sexy", "catchy", "sad", "happy"),
        "instrument": (
            "female vocalists", "male vocalists", "instrumental", "acoustic", "female vocalist", "guitar",
        ),
        "era": ("00s", "80s", "90s", "oldies", "70s", "60s"),
    },
    "mtat": {
        "genre": (
            "classical", "techno", "electronic", "rock", "ambient", "indian", "opera", "pop", "classic",
            "new age", "dance", "country", "metal",
        ),
        "instrument": (
            "guitar", "strings", "drums", "piano", "violin", "synth", "harpsichord", "flute", "sitar",
            "harp", "cello",
        ),
        "mood": ("slow", "fast", "loud", "quiet", "soft", "weird"),
        "vocal/other": (
            "beat", "vocal", "female", "male", "singing", "vocals", "no vocals", "woman", "male vocal",
            "no vocal", "solo", "man", "choir", "voice", "male voice", "female vocal", "beats",
            "no voice", "female voice", "choral",
        ),
    },
}  # fmt: skip
#: Jamendo's tag prefixes and the category each names.
JAMENDO_PREFIXES = {"genre---": "genre", "instrument---": "instrument", "mood/theme---": "mood/theme"}


def tag_categories(corpus: str, tags: Sequence[str] | None = None) -> dict[str, str]:
    """Tag → category of ``corpus`` (``msd``, ``mtat``, ``jamendo``). ``tags`` (a run's tag names) are
    matched case-insensitively and returned as given; Jamendo's tags need them (the category is the
    prefix: ``genre---rock`` → ``genre``). A tag the map lacks is refused, naming it."""
    if corpus == "jamendo":
        if tags is None:
            raise ValueError("jamendo: the categories come from the tag names; pass the run's tags")
        found = {t: next((c for p, c in JAMENDO_PREFIXES.items() if t.startswith(p)), None) for t in tags}
    elif corpus in CATEGORIES:
        known = {t.lower(): c for c, members in CATEGORIES[corpus].items() for t in members}
        names = tags if tags is not None else list(known)
        found = {t: known.get(t.lower()) for t in names}
    else:
        raise ValueError(f"no tag categories for corpus {corpus!r}; use one of msd, mtat, jamendo")
    missing = [t for t, c in found.items() if c is None]
    if missing:
        raise ValueError(f"{corpus}: tag(s) {', '.join(missing)} have no category (not the corpus's top-50?)")
    return {t: str(c) for t, c in found.items()}


def training_positives(manifest_csv: Pathlike, split: str = "train") -> dict[str, int]:
    """Tag → number of ``split`` tracks with it, from a corpus cache's ``manifest.csv`` (``#tags:`` line,
    then ``id,split,path,tags`` with the tags joined by ``;``)."""
    path = Path(manifest_csv)
    with open(path) as f:
        header = f.readline().rstrip("\n")
        if not header.startswith("#tags:"):
            raise ValueError(f"{path}: not a musictag manifest (its first line is not '#tags:...')")
        tracks = pd.read_csv(f, dtype=str, keep_default_na=False)
    counts = dict.fromkeys(header[len("#tags:") :].split(";"), 0)
    for tags in tracks.loc[tracks["split"] == split, "tags"]:
        for tag in filter(None, tags.split(";")):
            counts[tag] += 1
    return counts


def _manifest_of(run: pd.Series) -> Path | None:
    """The ``manifest.csv`` of a run's corpus cache (``data.init_args.cache_dir``), when it is there."""
    config = run.get("config")
    cache_dir = _get(config, "data", "init_args", "cache_dir") if isinstance(config, dict) else None
    manifest = Path(str(cache_dir)) / "manifest.csv" if cache_dir else None
    return manifest if manifest is not None and manifest.is_file() else None


def per_tag_by_category(
    run: pd.Series | pd.DataFrame,
    corpus: str | None = None,
    popularity: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A test run's per-tag table grouped by category, as Choi et al. 2017's per-tag figure.

    ``run`` is a row of :func:`load_runs` (its ``per_tag`` table and ``corpus``) or a per-tag table itself
    (``tag, roc_auc, pr_auc[, positives]``). Columns: ``tag, category, rank, positives, roc_auc, pr_auc``,
    rows by category (in the map's order: genre, mood, instrument, era for the MSD, as Choi et al.'s
    figure) then by rank. ``rank`` is the tag's popularity among all the tags (1 = most songs), by
    ``popularity`` (tag → training positives, e.g. :func:`training_positives`) when given, else the
    table's ``train_positives``, else the training split of the run's corpus cache
    (``data.init_args.cache_dir``/``manifest.csv``) when it is on this machine, else the table's
    ``positives`` (the test split's: the three corpora's splits are drawn without regard to the tags, so
    their order is close to the training order). ``table.attrs["rank_source"]`` says which one.
    """
    table = run if isinstance(run, pd.DataFrame) else run["per_tag"]
    if not isinstance(table, pd.DataFrame):
        raise ValueError("this run has no per-tag table (test_per_tag.csv): run `musictag test` first")
    if corpus is None:
        if isinstance(run, pd.DataFrame):
            raise ValueError("pass corpus= (msd, mtat or jamendo) with a bare per-tag table")
        corpus = str(run["corpus"])
    table = table.copy()
    table["tag"] = table["tag"].astype(str)
    table["category"] = table["tag"].map(tag_categories(corpus, list(table["tag"])))
    manifest = None if isinstance(run, pd.DataFrame) else _manifest_of(run)
    if popularity is None and "train_positives" not in table and manifest is not None:
        popularity, source = training_positives(manifest), f"{manifest} (train)"
    else:
        source = "popularity" if popularity is not None else "train_positives"
    if popularity is not None:
        table["positives"] = table["tag"].map(lambda t: popularity.get(t, float("nan")))
    elif "train_positives" in table:
        table["positives"] = table["train_positives"]
    elif "positives" in table:
        source = "positives (test split)"
    else:
        raise ValueError("the per-tag table has no positives: pass popularity= (tag → training positives)")
    table["rank"] = table["positives"].rank(ascending=False, method="first", na_option="bottom").astype(int)
    order = list(CATEGORIES.get(corpus, {})) or list(JAMENDO_PREFIXES.values())
    table["_order"] = table["category"].map(order.index)
    table = table.sort_values(["_order", "rank"])
    columns = ["tag", "category", "rank", "positives"] + [m for m in ("roc_auc", "pr_auc") if m in table]
    table = table[columns].reset_index(drop=True)
    table.attrs["rank_source"] = source
    return table


def plot_per_tag_by_category(table: pd.DataFrame, metric: str = "roc_auc", ax: Any = None) -> Any:
    """Bars of :func:`per_tag_by_category`'s ``metric``: one colour (one bar container) per category, tags
    in the table's order (by popularity inside a category), each labelled ``tag (rank)``."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(max(6, 0.28 * len(table)), 4))[1]
    for category, group in table.groupby("category", sort=False):
        ax.bar(group.index, group[metric].astype(float), label=str(category))
    ax.set_xticks(list(table.index), [f"{t} ({r})" for t, r in zip(table["tag"], table["rank"], strict=True)])
    ax.tick_params(axis="x", labelrotation=90, labelsize="small")
    scores = table[metric].astype(float).dropna()
    if len(scores):
        ax.set_ylim(max(0.0, scores.min() - 0.05), min(1.0, scores.max() + 0.02))
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return ax


def _per_epoch(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``train/elapsed_s`` and ``metric`` of each epoch (each from its own rows of the log)."""
    if "train/elapsed_s" not in history or metric not in history or "epoch" not in history:
        return pd.DataFrame(columns=["elapsed_s", metric])
    elapsed = history.dropna(subset=["train/elapsed_s"]).groupby("epoch")["train/elapsed_s"].max()
    scores = history.dropna(subset=[metric]).groupby("epoch")[metric].last()
    return pd.concat({"elapsed_s": elapsed, metric: scores}, axis=1).dropna()


def plot_auc_vs_time(runs: pd.DataFrame, metric: str = "val/roc_auc", ax: Any = None) -> Any:
    """One line per fit run: ``metric`` at each epoch's end against the training seconds so far
    (``train/elapsed_s``, validation excluded), as Choi et al. 2017's AUC against training time."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for _, run in runs.iterrows():
        history = run["history"]
        curve = _per_epoch(history, metric) if isinstance(history, pd.DataFrame) else None
        if curve is not None and len(curve):
            label = f"{run['name']}/{run['version']} ({run['arch']})"
            ax.plot(curve["elapsed_s"], curve[metric], marker="o", label=label)
    if not ax.lines:
        raise ValueError(f"no run logs both train/elapsed_s and {metric}: fit with musictag first")
    ax.set_xlabel("training time (s, validation excluded)")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return ax


def plot_auc_vs_params(runs: pd.DataFrame, metric: str = "test/roc_auc", ax: Any = None) -> Any:
    """``metric`` against ``model/n_params`` (log scale) of the test runs: one line and marker per
    architecture (``arch``), points by size, as Choi et al. 2017's AUC against parameters."""
    import matplotlib.pyplot as plt

    present = [c for c in ("model/n_params", metric) if c in runs]
    tested = runs.dropna(subset=present) if len(present) == 2 else runs.iloc[:0]
    if not len(tested):
        raise ValueError(f"no run logs both model/n_params and {metric}: test the runs with musictag first")
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    markers = "osD^vP*Xh<>"
    for i, (arch, group) in enumerate(tested.groupby("arch", sort=True)):
        group = group.sort_values("model/n_params")
        ax.plot(group["model/n_params"], group[metric], marker=markers[i % len(markers)], label=str(arch))
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return ax
