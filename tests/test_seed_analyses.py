"""The seed papers' analyses: tag categories, per-tag AUC by category with popularity rank, the training
clock (``train/elapsed_s``, ``model/n_params``), AUC against training time and against parameters."""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
import yaml

from musictag.analysis import (
    CATEGORIES,
    load_runs,
    per_tag_by_category,
    plot_auc_vs_params,
    plot_auc_vs_time,
    plot_per_tag_by_category,
    tag_categories,
    training_positives,
)
from musictag.cli import main
from musictag.testing import cli_args
from musictag.training.clock import TrainingClock

matplotlib.use("Agg")


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("corpus", "tag_list", "sizes"),
    [
        ("msd", "msd/50tagList.txt", {"genre": 30, "mood": 8, "instrument": 6, "era": 6}),
        ("mtat", "mtat/top50_tags.txt", {"genre": 13, "instrument": 11, "mood": 6, "vocal/other": 20}),
        ("jamendo", "jamendo/top50.txt", {"genre": 31, "instrument": 14, "mood/theme": 5}),
    ],
)
def test_each_top50_tag_has_exactly_one_category(reference, corpus, tag_list, sizes):
    tags = _lines(reference(tag_list))
    assert len(tags) == 50
    if corpus in CATEGORIES:  # the map as data: the published list exactly, as spelled ("Hip-Hop")
        listed = [t for members in CATEGORIES[corpus].values() for t in members]
        assert len(listed) == len(set(listed)) == 50 and set(listed) == set(tags)
    categories = tag_categories(corpus, tags)
    assert list(categories) == tags
    assert pd.Series(categories).value_counts().to_dict() == sizes


def test_tag_categories_refuse_an_unknown_tag_or_corpus():
    assert tag_categories("msd", ["hip-hop", "MELLOW"]) == {"hip-hop": "genre", "MELLOW": "mood"}
    assert tag_categories("jamendo", ["mood/theme---film"]) == {"mood/theme---film": "mood/theme"}
    with pytest.raises(ValueError, match=r"mtat: tag\(s\) kazoo have no category"):
        tag_categories("mtat", ["guitar", "kazoo"])
    with pytest.raises(ValueError, match="no tag categories for corpus 'gtzan'"):
        tag_categories("gtzan")


@pytest.fixture
def mtat_test_run(reference, tmp_path) -> Path:
    """A fake test run folder of MTAT: its config and a per-tag table whose positives fall with the
    tag's place in the list, AUC 0.5 + place / 100."""
    folder = tmp_path / "runs" / "mtat-fcn" / "version_1"
    folder.mkdir(parents=True)
    config = {"data": {"class_path": "datamodules.MTATDataModule"}, "model": {"init_args": {"arch": "fcn"}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.csv").write_text("epoch,step,model/n_params,test/roc_auc\n0,0,1000,\n0,0,,0.75\n")
    with open(folder / "test_per_tag.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tag", "roc_auc", "pr_auc", "positives", "songs"])
        for place, tag in enumerate(_lines(reference("mtat/top50_tags.txt"))):
            writer.writerow([tag, 0.5 + place / 100, 0.1, 1000 - 10 * place, 4332])
    return tmp_path / "runs"


def test_per_tag_by_category_of_a_run_folder(mtat_test_run, reference):
    tags = _lines(reference("mtat/top50_tags.txt"))
    run = load_runs(mtat_test_run).iloc[0]
    assert run["corpus"] == "mtat" and run["model/n_params"] == 1000
    table = per_tag_by_category(run)
    assert list(table.columns) == ["tag", "category", "rank", "positives", "roc_auc", "pr_auc"]
    assert sorted(table["tag"]) == sorted(tags)
    # grouped: each category one contiguous block, in the map's order; inside, by rank (1 = most positives)
    blocks = table["category"].tolist()
    assert list(dict.fromkeys(blocks)) == ["genre", "instrument", "mood", "vocal/other"]
    assert [len(list(group)) for _, group in itertools.groupby(blocks)] == [13, 11, 6, 20]
    for _, group in table.groupby("category"):
        assert group["rank"].is_monotonic_increasing
    by_tag = table.set_index("tag")
    assert by_tag.loc["guitar", "rank"] == 1 and by_tag.loc["choral", "rank"] == 50  # first and last listed
    assert by_tag.loc["techno", "rank"] == tags.index("techno") + 1
    assert by_tag.loc["techno", "roc_auc"] == pytest.approx(0.5 + tags.index("techno") / 100)
    # a popularity given (e.g. the training split's counts) replaces the table's positives
    reversed_rank = per_tag_by_category(run, popularity={t: i for i, t in enumerate(tags)}).set_index("tag")
    assert reversed_rank.loc["choral", "rank"] == 1 and reversed_rank.loc["guitar", "rank"] == 50

    ax = plot_per_tag_by_category(table)
    assert len(ax.patches) == 50 and len(ax.containers) == 4  # a bar per tag, a colour per category
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == f"{table['tag'][0]} ({table['rank'][0]})"


def test_the_rank_comes_from_the_training_split_of_the_runs_manifest(mtat_test_run, reference, tmp_path):
    """With the run's corpus cache on the machine, the rank is by the training split's positives (a
    manifest written by the corpus code itself); the test split's counts are the fallback."""
    import numpy as np

    from datamodules.manifest import Manifest

    tags = _lines(reference("mtat/top50_tags.txt"))
    run = load_runs(mtat_test_run).iloc[0]
    assert per_tag_by_category(run).attrs["rank_source"] == "positives (test split)"
    # training positives rise with the place in the list (the test split's fall): choral most popular
    targets = (np.arange(50)[None, :] >= np.arange(50)[:, None]).astype(np.uint8)  # tag j in j + 1 tracks
    splits = ("train",) * 50
    manifest = Manifest(tuple(f"t{i}" for i in range(50)), splits, targets, tuple(tags), ("",) * 50)
    cache = tmp_path / "cache"
    cache.mkdir()
    manifest.write_csv(cache / "manifest.csv")
    test_track = Manifest(("x",), ("test",), np.ones((1, 50), np.uint8), tuple(tags), ("",))
    assert training_positives(cache / "manifest.csv") == {t: j + 1 for j, t in enumerate(tags)}
    test_track.write_csv(cache / "test-only.csv")
    assert set(training_positives(cache / "test-only.csv").values()) == {0}  # test tracks are not counted
    run["config"] = {**run["config"], "data": {"init_args": {"cache_dir": str(cache)}}}
    table = per_tag_by_category(run, corpus="mtat")
    assert table.attrs["rank_source"] == f"{cache / 'manifest.csv'} (train)"
    ranks = table.set_index("tag")["rank"]
    assert ranks["choral"] == 1 and ranks["guitar"] == 50


def test_per_tag_by_category_needs_a_test_run():
    with pytest.raises(ValueError, match="run `musictag test` first"):
        per_tag_by_category(pd.Series({"per_tag": None, "corpus": "mtat"}))
    with pytest.raises(ValueError, match="pass corpus="):
        per_tag_by_category(pd.DataFrame({"tag": ["rock"], "roc_auc": [0.9], "positives": [3]}))


class _Logger:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.rows.append((step, dict(metrics)))


def test_the_clock_stops_during_validation_and_resumes_from_its_state(monkeypatch):
    """Hooks driven by hand on a fake clock: validation's seconds are left out; the state carries on."""
    clock_s = SimpleNamespace(now=0.0)
    monkeypatch.setattr("musictag.training.clock._now", lambda: clock_s.now)
    logger = _Logger()
    trainer = SimpleNamespace(loggers=[logger], global_step=4, current_epoch=0)
    clock = TrainingClock()

    def at(seconds: float, hook: str) -> None:
        clock_s.now = seconds
        getattr(clock, hook)(trainer, None)

    at(0, "on_train_epoch_start")
    at(2, "on_validation_start")  # 2 s trained
    at(10, "on_validation_end")  # 8 s of validation: not counted
    at(11, "on_train_epoch_end")  # 1 s more
    assert logger.rows == [(3, {"train/elapsed_s": 3.0, "epoch": 0})]  # the step of the epoch's rows
    at(20, "on_train_epoch_start")
    clock_s.now = 24
    assert clock.state_dict() == {"elapsed_s": 7.0}  # a checkpoint written mid-epoch holds the stretch
    clock = TrainingClock()  # resumed from the end of epoch 0 (a fresh process, its saved state)
    clock.load_state_dict({"elapsed_s": 3.0})
    trainer.current_epoch = 1
    at(100, "on_train_epoch_start")
    at(105, "on_train_epoch_end")
    assert logger.rows[-1] == (3, {"train/elapsed_s": 8.0, "epoch": 1})


@pytest.fixture(scope="module")
def fitted_resumed_tested(tiny_corpus, tmp_path_factory) -> Path:
    """A tiny fit of 2 epochs, resumed to 3 from last.ckpt, then tested."""
    runs = tmp_path_factory.mktemp("runs")
    argv, sys.argv = sys.argv, ["musictag"]
    try:
        main(cli_args("fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 2}))
        main(cli_args("fit", str(tiny_corpus), str(runs), **{"trainer.max_epochs": 3, "ckpt_path": "last"}))
        main(cli_args("test", str(tiny_corpus), str(runs), ckpt_path="best"))
    finally:
        sys.argv = argv
    return runs


def test_every_fit_logs_its_training_time_and_size(fitted_resumed_tested):
    import torch

    runs = load_runs(fitted_resumed_tested)
    fit, test = runs[runs.subcommand == "fit"].iloc[0], runs[runs.subcommand == "test"].iloc[0]
    elapsed = fit.history.dropna(subset=["train/elapsed_s"])
    assert elapsed["epoch"].tolist() == [0, 1, 2]  # one row per epoch, the resumed one in the same log
    seconds = elapsed["train/elapsed_s"].tolist()
    assert 0 < seconds[0] < seconds[1] < seconds[2]  # the resumed epoch continues the checkpoint's time
    checkpoint = torch.load(
        Path(fit.path) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert checkpoint["callbacks"]["TrainingClock"]["elapsed_s"] == pytest.approx(seconds[2], rel=1e-6)
    # the size, in the fit's and the test's folders alike: the network's own count
    from musictag.training.module import TaggingModule

    module = TaggingModule.load_from_checkpoint(
        Path(fit.path) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert fit["model/n_params"] == test["model/n_params"] == module.net.n_params() > 0

    ax = plot_auc_vs_time(runs[runs.subcommand == "fit"])
    assert len(ax.lines) == 1 and list(ax.lines[0].get_xdata()) == seconds
    assert len(plot_auc_vs_params(runs).lines) == 1
    with pytest.raises(ValueError, match="no run logs both train/elapsed_s and val/roc_auc"):
        plot_auc_vs_time(runs[runs.subcommand == "test"])


def test_auc_vs_params_draws_a_line_per_architecture_on_a_log_axis():
    designs = ("choi_conv1d", "choi_conv2d", "choi_crnn")
    budgets = (100_000, 250_000, 500_000, 1_000_000, 3_000_000)
    runs = pd.DataFrame(
        [
            {"arch": arch, "model/n_params": budget, "test/roc_auc": 0.8 + i / 100 + j / 1000}
            for i, arch in enumerate(designs)
            for j, budget in enumerate(reversed(budgets))
        ]
        + [{"arch": "fcn", "model/n_params": None, "test/roc_auc": 0.9}]  # an old run without its size
    )
    ax = plot_auc_vs_params(runs)
    assert ax.get_xscale() == "log" and len(ax.lines) == 3
    assert [line.get_label() for line in ax.lines] == list(designs)
    assert list(ax.lines[0].get_xdata()) == list(budgets)  # by size
    assert len({line.get_marker() for line in ax.lines}) == 3
    with pytest.raises(ValueError, match="no run logs both model/n_params and test/pr_auc"):
        plot_auc_vs_params(runs, "test/pr_auc")
