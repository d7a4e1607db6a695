"""Mistakes a user makes reach them as one `error:` line naming the file or value and what to set."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from helpers.cli import run_musictag
from musictag.testing import cli_args
from musictag.testing.corpora import make_mtat_corpus

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(
    str(p.relative_to(REPO))
    for corpus in ("mtat", "msd", "jamendo")
    for p in (REPO / "experiments" / corpus).glob("*.yaml")
)


def run(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    return run_musictag(argv, capsys)


def _recipe_param(recipe: str):
    # one recipe per corpus in the fast suite (the others differ only in their model, which is never
    # reached); every recipe with the slow tests
    fast = recipe.endswith("/short_chunk.yaml")
    return pytest.param(recipe, id=recipe, marks=() if fast else pytest.mark.slow)


def test_there_are_thirty_one_recipes():
    # ten architectures on each of the three corpora, and the classical floor on MTAT
    assert len(RECIPES) == 31
    assert "experiments/mtat/mfcc_codebook.yaml" in RECIPES


@pytest.mark.parametrize("recipe", [_recipe_param(r) for r in RECIPES])
def test_every_published_recipe_without_its_data_says_what_to_set(recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where none of the recipes' data/ paths exist
    code, out, err = run(["fit", f"--config={REPO / recipe}"], monkeypatch, capsys)
    corpus = Path(recipe).parent.name
    assert code == 2
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"musictag: error: {corpus}: audio root data/"), err
    assert "not found" in err and "set data.init_args.audio_root" in err, err


def test_corpus_and_metadata_errors_are_one_line(tmp_path, monkeypatch, capsys):
    def fit_folder(csv_text: str) -> tuple[int, str]:
        folder = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "tags.csv").write_text(csv_text)
        code, out, err = run(
            [
                "fit",
                "--model=musictag.TaggingModule",
                "--data=datamodules.FolderDataModule",
                f"--data.init_args.csv={folder / 'tags.csv'}",
                f"--data.init_args.cache_dir={folder / 'cache'}",
            ],
            monkeypatch,
            capsys,
        )
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        return code, err.strip()

    _, err = fit_folder("a.mp3,rock\nb.mp3,jazz\n")  # no header
    assert "tags.csv: no column ['path', 'tags']; the header has ['a.mp3', 'rock']" in err
    assert err.endswith("(set data.init_args.csv)")
    _, err = fit_folder("path,tags\na.mp3,rock\na.mp3,jazz\n")
    assert "line 3: path 'a.mp3' already appears on line 2" in err
    _, err = fit_folder("path,tags,split\na.mp3,rock,train\nb.mp3,jazz,dev\n")
    assert "line 3: split 'dev' is not a split" in err
    _, err = fit_folder("path,tags,mood\na.mp3,rock,happy\n")
    assert "unknown column(s) ['mood']" in err
    code, _, err = run(
        [
            "fit",
            "--model=musictag.TaggingModule",
            "--data=datamodules.FolderDataModule",
            f"--data.init_args.csv={tmp_path / 'none.csv'}",
            f"--data.init_args.cache_dir={tmp_path / 'cache'}",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and len(err.splitlines()) == 1 and "none.csv: no such file" in err
    # MTAT: the audio is there, annotations_final.csv is not
    corpus = make_mtat_corpus(tmp_path / "mtat", n_tracks=4)
    corpus.metadata.unlink()
    code, _, err = run(
        [
            "fit",
            f"--config={REPO / 'experiments/mtat/short_chunk.yaml'}",
            f"--data.init_args.audio_root={corpus.audio_root}",
            f"--data.init_args.cache_dir={tmp_path / 'mc'}",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert (
        "annotations_final.csv: no such file" in err
        and "set data.init_args.annotations or data.init_args.audio_root" in err
    )


def test_checkpoint_errors_are_one_line_and_never_torch_advice(tiny_corpus, tmp_path, monkeypatch, capsys):

    empty = tmp_path / "empty.ckpt"
    empty.touch()
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(256)) * 20)

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    evil = tmp_path / "evil.ckpt"
    import torch

    torch.save({"state_dict": Evil()}, evil)
    expected = {
        tmp_path / "missing.ckpt": f"no checkpoint at {tmp_path / 'missing.ckpt'}",
        empty: f"{empty} is empty (0 bytes), not a checkpoint",
        noise: f"{noise} is not a readable PyTorch checkpoint (truncated, or another kind of file)",
        evil: f"{evil} holds Python objects besides tensors and plain data",
        tmp_path: f"{tmp_path} is a folder, not a checkpoint file",
    }
    for subcommand, path in [("fit", p) for p in expected] + [("test", noise), ("test", evil)]:
        message = expected[path]
        code, out, err = run(
            cli_args(subcommand, str(tiny_corpus), str(tmp_path / "runs"), ckpt_path=str(path)),
            monkeypatch,
            capsys,
        )
        assert code == 2 and "this ran" not in out, err
        assert len(err.splitlines()) == 1 and err.startswith(f"musictag: error: {message}"), err
        assert "weights_only" not in err


def test_a_device_this_machine_lacks_is_one_line(tiny_corpus, tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = [*cli_args("fit", str(tiny_corpus), str(tmp_path / "runs")), "--trainer.accelerator=gpu"]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("musictag: error: ") and "use --trainer.accelerator=auto or cpu" in err


def test_import_pretrained_into_a_folder_leaves_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "adir").mkdir()
    code, _, err = run(
        [
            "import-weights",
            "--arch",
            "fcn",
            "--dataset",
            "mtat",
            "--weights",
            str(tmp_path / "w.pth"),
            "--out",
            str(tmp_path / "adir"),
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and "--out " + str(tmp_path / "adir") + " is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_help_lists_every_command(monkeypatch, capsys):
    from musictag.cli import COMMANDS, TOOLS

    assert set(TOOLS) <= set(COMMANDS)  # a tool added without a line in the help fails here

    for argv, status in (([], 2), (["--help"], 0), (["-h"], 0)):
        code, out, _ = run(argv, monkeypatch, capsys)
        assert code == status
        for name in ("fit", "validate", "test", "predict", *TOOLS):
            assert f"\n  {name:<19}{COMMANDS[name]}" in out
    # python -m musictag: the usage says `musictag`, not `__main__.py`
    monkeypatch.setattr(sys, "argv", [str(REPO / "musictag" / "__main__.py"), "fit", "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("musictag", run_name="__main__")
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith("usage: musictag ") and "__main__" not in out


def test_sigterm_ends_a_fit_with_a_failure_status(tiny_corpus, tmp_path, monkeypatch, capsys):
    callback = '[{"class_path": "musictag.testing.SignalAt", "init_args": {"epoch": 0, "batch": 0, "signals": ["SIGTERM"]}}]'
    code, _, err = run(
        [*cli_args("fit", str(tiny_corpus), str(tmp_path / "runs")), f"--trainer.callbacks={callback}"],
        monkeypatch,
        capsys,
    )
    assert code == 143
    assert "musictag: stopped by SIGTERM before the run finished; continue it with --ckpt_path last" in err
    # under SLURM with auto-requeue: SIGUSR1 writes the requeue checkpoint into the run folder (where
    # `--ckpt_path last` looks), then SLURM's SIGTERM ends the job with 143 too
    for name in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID"):
        monkeypatch.setenv(name, "1" if name in ("SLURM_JOB_ID", "SLURM_NTASKS") else "0")
    monkeypatch.setenv("SLURM_JOB_NAME", "musictag")
    plugin = '{"class_path": "lightning.pytorch.plugins.environments.SLURMEnvironment", "init_args": {"auto_requeue": true}}'
    requeue = callback.replace('["SIGTERM"]', '["SIGUSR1", "SIGTERM"]')
    args = cli_args("fit", str(tiny_corpus), str(tmp_path / "runs"), **{"run.name": "slurm"})
    code, _, _ = run(
        [*args, f"--trainer.callbacks={requeue}", f"--trainer.plugins={plugin}"], monkeypatch, capsys
    )
    assert code == 143 and (tmp_path / "runs" / "slurm" / "version_0" / "hpc_ckpt_1.ckpt").is_file()
