"""Every ``musictag`` command under a bad path, a bad number and a device this machine lacks (issue 27).

One table, a few cases per command: each runs in this process as the console script runs it and must
exit 2 with one ``error:`` line naming what was wrong, and no Python traceback. The per-command files
(``test_bad_input_*.py``) go deeper; this one is the net that holds every command to the same rule,
and it fails when a command is added to ``musictag --help`` without a row here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import run_musictag
from helpers.stages import UNEXPORTABLE_BACKEND
from musictag.cli import COMMANDS
from musictag.testing import TINY_SHORT_CHUNK, cli_args, save_module_checkpoint, sine, write_audio
from musictag.testing.encoders import make_tiny_encoder
from musictag.training.module import TaggingModule


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What the good arguments point at: a checkpoint, a song, a folder corpus with its cache and a
    data config, a tiny encoder, a plain file (to put paths under) and an empty folder."""
    root = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    ckpt = save_module_checkpoint(
        TaggingModule(n_tags=2, tag_names=["a", "b"], **TINY_SHORT_CHUNK).eval(), root / "tiny.ckpt"
    )
    write_audio(root / "song.wav", sine(440.0, 2.0), 16000)
    (root / "corpus" / "audio").mkdir(parents=True)
    rows = ["path,tags,split"]
    for i, split in enumerate(["train", "train", "valid", "test"]):
        write_audio(root / "corpus" / "audio" / f"t{i}.wav", sine(220.0 * (i + 1), 1.0), 16000)
        rows.append(f"audio/t{i}.wav,{'rock' if i % 2 else 'jazz'},{split}")
    (root / "corpus" / "tags.csv").write_text("\n".join(rows) + "\n")
    code, _, err = _run(
        [
            "prepare", "folder", "--root", str(root / "corpus"),
            "--metadata", str(root / "corpus" / "tags.csv"), "--out", str(root / "cache"),
        ]
    )  # fmt: skip
    assert code == 0, err
    init_args = {"cache_dir": str(root / "cache"), "chunk_len": 8000, "n_chunks": 1, "batch_size": 2}
    (root / "data.yaml").write_text(
        yaml.safe_dump({"data": {"class_path": "datamodules.FolderDataModule", "init_args": init_args}})
    )
    (root / "data-22k.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {
                    "class_path": "datamodules.FolderDataModule",
                    "init_args": {**init_args, "sample_rate": 22050},
                }
            }
        )
    )
    unexportable = TaggingModule(n_tags=2, **(TINY_SHORT_CHUNK | {"backend": UNEXPORTABLE_BACKEND}))
    save_module_checkpoint(unexportable.eval(), root / "cummax.ckpt")
    (root / "a-file").write_text("mine\n")
    (root / "empty").mkdir()
    return {
        "root": root,
        "ckpt": ckpt,
        "unexportable": root / "cummax.ckpt",
        "song": root / "song.wav",
        "corpus": root / "corpus",
        "csv": root / "corpus" / "tags.csv",
        "data": root / "data.yaml",
        "encoder": make_tiny_encoder("hubert", root / "encoder"),
        "file": root / "a-file",
        "empty": root / "empty",
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    if capsys is not None:
        return run_musictag(argv, capsys)
    from musictag.cli import main

    try:
        main(argv)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 0), "", ""
    return 0, "", ""


def lightning(command: str, w: dict[str, Path], *extra: str) -> list[str]:
    return [*cli_args(command, str(w["root"] / "synthetic"), str(w["root"] / "runs")), *extra]


def tag(w: dict[str, Path], *extra: str) -> list[str]:
    return ["tag", str(w["song"]), "--ckpt", str(w["ckpt"]), *extra]


def features(w: dict[str, Path], *extra: str) -> list[str]:
    return [
        "features",
        str(w["song"]),
        "--ckpt",
        str(w["ckpt"]),
        "--out",
        str(w["root"] / "new-features"),
        *extra,
    ]


def explain(w: dict[str, Path], *extra: str) -> list[str]:
    return [
        "explain",
        str(w["song"]),
        "--ckpt",
        str(w["ckpt"]),
        "--out",
        str(w["root"] / "new-explain"),
        *extra,
    ]


def embed_ckpt(w: dict[str, Path], ckpt: str, *extra: str) -> list[str]:
    out = str(w["root"] / "new-embeddings")
    return ["embed", f"--ckpt={ckpt}", f"--data={w['data']}", f"--out={out}", "--quiet", *extra]


def prepare(w: dict[str, Path], *extra: str, out: str | None = None) -> list[str]:
    out = str(w["root"] / "new-cache") if out is None else out
    return [
        "prepare",
        "folder",
        "--root",
        str(w["corpus"]),
        "--metadata",
        str(w["csv"]),
        "--out",
        out,
        *extra,
    ]


def prepare_config(w: dict[str, Path], *extra: str) -> list[str]:
    return ["prepare", "--config", str(w["data"]), *extra]


def embed(w: dict[str, Path], *extra: str) -> list[str]:
    out = str(w["root"] / "new-embeddings")
    return ["embed", f"--encoder={w['encoder']}", f"--data={w['data']}", f"--out={out}", "--quiet", *extra]


def import_weights(w: dict[str, Path], weights: str, out: str | None = None) -> list[str]:
    out = str(w["root"] / "new.ckpt") if out is None else out
    return ["import-weights", "--arch", "fcn", "--dataset", "mtat", "--weights", weights, "--out", out]


def cv(w: dict[str, Path], *extra: str) -> list[str]:
    """``musictag cv`` of the tiny run (3 folds; a later ``--folds`` wins)."""
    return ["cv", "--folds", "3", *lightning("fit", w)[1:], *extra]


def export(w: dict[str, Path], ckpt: str, out: str | None = None) -> list[str]:
    return ["export", "--ckpt", ckpt, "--out", str(w["root"] / "m.onnx") if out is None else out]


#: command → kind of bad input → (the arguments, what the error line must hold). ``{file}``/``{root}``
#: stand for the world's plain file and folder. prepare and import-weights run on no device.
CASES = {
    "fit": {
        "missing path": (lambda w: lightning("fit", w, "--config={root}/nosuch.yaml"), "nosuch.yaml"),
        "path under a file": (lambda w: lightning("fit", w, "--run.save_dir={file}/runs"), "{file}/runs"),
        "number": (lambda w: lightning("fit", w, "--data.init_args.batch_size=0"), "batch_size"),
        "not a number": (lambda w: lightning("fit", w, "--data.init_args.batch_size=many"), "batch_size"),
        "device": (lambda w: lightning("fit", w, "--trainer.accelerator=cuda"), "no such device"),
        # trainer settings Lightning took unchecked (ZeroDivisionError mid-epoch) or raised on
        "trainer number": (
            lambda w: lightning("fit", w, "--trainer.accumulate_grad_batches=0"),
            "--trainer.accumulate_grad_batches must be at least 1, got 0",
        ),
        "trainer interval": (
            lambda w: lightning("fit", w, "--trainer.val_check_interval=0"),
            "--trainer.val_check_interval must be above 0",
        ),
        "trainer name": (
            lambda w: lightning("fit", w, "--trainer.strategy=nosuch"),
            "trainer: You selected an invalid strategy name",
        ),
        "trainer devices": (lambda w: lightning("fit", w, "--trainer.devices=abc"), "trainer: `devices`"),
        "bootstrap draws": (
            lambda w: lightning("fit", w, "--run.bootstrap_draws=-1"),
            "--run.bootstrap_draws must be at least 0, got -1",
        ),
    },
    **{
        command: {
            "missing path": (
                lambda w, c=command: lightning(c, w, "--ckpt_path={root}/nosuch.ckpt"),
                "nosuch.ckpt",
            ),
            "file as a checkpoint": (lambda w, c=command: lightning(c, w, "--ckpt_path={file}"), "{file}"),
            "number": (lambda w, c=command: lightning(c, w, "--data.init_args.n_chunks=-1"), "n_chunks"),
            "device": (lambda w, c=command: lightning(c, w, "--trainer.accelerator=cuda"), "no such device"),
        }
        for command in ("validate", "test", "predict")
    },
    "tag": {
        "missing path": (lambda w: ["tag", "{root}/gone.wav", "--ckpt", str(w["ckpt"])], "gone.wav"),
        "missing checkpoint": (lambda w: ["tag", str(w["song"]), "--ckpt", "{root}/no.ckpt"], "no.ckpt"),
        "plot under a file": (lambda w: tag(w, "--plot", "{file}/pictures"), "{file}"),
        "empty path": (lambda w: tag(w, "--plot", ""), "argument --plot: an empty path"),
        "empty checkpoint": (
            lambda w: ["tag", str(w["song"]), "--ckpt", " "],
            "argument --ckpt: an empty path",
        ),
        "number": (lambda w: tag(w, "--top-k", "0"), "--top-k"),
        "negative number": (lambda w: tag(w, "--batch-size", "-3"), "--batch-size"),
        "not a number": (lambda w: tag(w, "--n-chunks", "two"), "--n-chunks"),
        "device": (lambda w: tag(w, "--device", "cuda"), "--device cuda"),
    },
    "features": {
        "missing path": (
            lambda w: ["features", "{root}/gone.wav", "--ckpt", str(w["ckpt"]), "--out", "{root}/f"],
            "gone.wav",
        ),
        "missing checkpoint": (
            lambda w: ["features", str(w["song"]), "--ckpt", "{root}/no.ckpt", "--out", "{root}/f"],
            "no.ckpt",
        ),
        "out under a file": (
            lambda w: ["features", str(w["song"]), "--ckpt", str(w["ckpt"]), "--out", "{file}/f"],
            "{file}",
        ),
        "empty path": (
            lambda w: ["features", str(w["song"]), "--ckpt", str(w["ckpt"]), "--out", ""],
            "argument --out: an empty path",
        ),
        "unknown layer": (
            lambda w: features(w, "--layers", "penultimate,nosuch"),
            "unknown layer(s) 'nosuch'",
        ),
        "number": (lambda w: features(w, "--batch-size", "0"), "--batch-size"),
        "not a number": (lambda w: features(w, "--n-chunks", "two"), "--n-chunks"),
        "device": (lambda w: features(w, "--device", "cuda"), "--device cuda"),
    },
    "explain": {
        "missing path": (
            lambda w: ["explain", "{root}/gone.wav", "--ckpt", str(w["ckpt"]), "--out", "{root}/x"],
            "gone.wav",
        ),
        "missing checkpoint": (
            lambda w: ["explain", str(w["song"]), "--ckpt", "{root}/no.ckpt", "--out", "{root}/x"],
            "no.ckpt",
        ),
        "out under a file": (
            lambda w: ["explain", str(w["song"]), "--ckpt", str(w["ckpt"]), "--out", "{file}/x"],
            "{file}",
        ),
        "empty path": (lambda w: explain(w)[:-1] + [""], "argument --out: an empty path"),
        "unknown tag": (
            lambda w: explain(w, "--tags", "a,rock"),
            "unknown tag(s) 'rock'; this model's tags are a, b",
        ),
        "unknown method": (
            lambda w: explain(w, "--method", "lime"),
            "unknown method 'lime'; use one of attention, rollout, gradcam, integrated_gradients",
        ),
        "attention on a CNN": (lambda w: explain(w, "--method", "attention"), "--method attention"),
        "number": (lambda w: explain(w, "--top-k", "0"), "--top-k"),
        "steps": (lambda w: explain(w, "--steps", "0"), "--steps"),
        "not a number": (lambda w: explain(w, "--n-chunks", "two"), "--n-chunks"),
        "device": (lambda w: explain(w, "--device", "cuda"), "--device cuda"),
    },
    "prepare": {
        "missing path": (
            lambda w: [
                "prepare",
                "folder",
                "--root",
                "{root}/nowhere",
                "--metadata",
                str(w["csv"]),
                "--out",
                "x",
            ],
            "nowhere",
        ),
        "out is a file": (lambda w: prepare(w, out="{file}"), "{file}"),
        "empty path": (lambda w: prepare(w, out=""), "argument --out: an empty path"),
        "number": (lambda w: prepare(w, "--sample-rate", "0"), "--sample-rate"),
        "zero shard": (lambda w: prepare(w, "--tracks-per-shard", "0"), "--tracks-per-shard"),
        "too many workers": (lambda w: prepare(w, "--workers", "100000"), "--workers 100000 is more than"),
        "a rate in kHz": (lambda w: prepare(w, "--sample-rate", "16"), "--sample-rate must be at least 1000"),
        "not a number": (lambda w: prepare(w, "--workers", "some"), "--workers"),
        "gtzan: unknown split": (
            lambda w: [
                "prepare",
                "gtzan",
                "--root",
                str(w["corpus"]),
                "--out",
                "{root}/g",
                "--split",
                "fault",
            ],
            "gtzan: unknown split 'fault'; set --split to one of ('filtered', 'random')",
        ),
        "ballroom: metadata": (
            lambda w: [
                "prepare",
                "ballroom",
                "--root",
                str(w["corpus"]),
                "--out",
                "{root}/b",
                "--metadata",
                "x",
            ],
            "--metadata is not a setting of ballroom: --root is all it reads",
        ),
        # the same guards under --config name the config's keys
        "config: missing path": (
            lambda w: ["prepare", "--config", "{root}/nowhere.yaml"],
            "nowhere.yaml: no such",
        ),
        "config: empty path": (lambda w: ["prepare", "--config", ""], "argument --config: an empty path"),
        "config: out is a file": (
            lambda w: prepare_config(w, "--data.init_args.cache_dir={file}"),
            "data.init_args.cache_dir {file} is a file",
        ),
        "config: a rate in kHz": (
            lambda w: prepare_config(w, "--data.init_args.sample_rate=16"),
            "data.init_args.sample_rate must be at least 1000, got 16",
        ),
        "config: too many workers": (
            lambda w: prepare_config(w, "--data.init_args.workers=100000"),
            "data.init_args.workers 100000 is more than",
        ),
        "config: not a number": (
            lambda w: prepare_config(w, "--data.init_args.workers=some"),
            "data.init_args.workers: Expected a <class 'int'>",
        ),
    },
    "embed": {
        "missing path": (
            lambda w: ["embed", "--encoder={root}/no-encoder", f"--data={w['data']}", "--out={root}/x"],
            "no-encoder",
        ),
        "out is a file": (
            lambda w: ["embed", f"--encoder={w['encoder']}", f"--data={w['data']}", "--out={file}"],
            "{file}",
        ),
        "empty path": (
            lambda w: ["embed", "--encoder=", f"--data={w['data']}", "--out={root}/x"],
            "argument --encoder: an empty path",
        ),
        "number": (lambda w: embed(w, "--batch-size=0"), "--batch-size"),
        "not a number": (lambda w: embed(w, "--chunk-len=long"), "--chunk-len"),
        "device": (lambda w: embed(w, "--device=cuda"), "--device cuda"),
        "ckpt missing": (lambda w: embed_ckpt(w, "{root}/nosuch.ckpt"), "nosuch.ckpt"),
        "ckpt not a checkpoint": (
            lambda w: embed_ckpt(w, "{file}"),
            "{file} is not a readable PyTorch checkpoint",
        ),
        "ckpt unknown layer": (
            lambda w: embed_ckpt(w, str(w["ckpt"]), "--layers=penultimate,nosuch"),
            "--layers: unknown layer(s) 'nosuch'; this model has representation, frontend",
        ),
        "ckpt and encoder": (
            lambda w: [*embed(w), f"--ckpt={w['ckpt']}"],
            "give --encoder (a Hugging Face encoder) or --ckpt (a musictag checkpoint), not both",
        ),
        "ckpt at another sample rate": (
            lambda w: embed_ckpt(w, str(w["ckpt"]), "--data={root}/data-22k.yaml"),
            "data-22k.yaml is at 22050 Hz but --ckpt {root}/tiny.ckpt takes 16000 Hz",
        ),
    },
    "import-weights": {
        "missing path": (lambda w: import_weights(w, "{root}/nosuch.pth"), "nosuch.pth"),
        "folder as weights": (lambda w: import_weights(w, "{root}"), "is a folder"),
        "empty path": (lambda w: import_weights(w, ""), "argument --weights: an empty path"),
        "out under a file": (lambda w: import_weights(w, str(w["ckpt"]), out="{file}/x.ckpt"), "{file}"),
        "choi: not HDF5": (
            lambda w: [
                "import-weights",
                "--source",
                "choi",
                "--model",
                "crnn",
                "--weights",
                "{file}",
                "--out",
                "{root}/c.ckpt",
            ],
            "--weights {file}: not an HDF5 file",
        ),
        "choi: no model": (
            lambda w: ["import-weights", "--source", "choi", "--weights", "{file}", "--out", "{root}/c.ckpt"],
            "--source choi needs --model cnn or crnn",
        ),
    },
    "export": {
        "missing ckpt": (
            lambda w: export(w, "{root}/nosuch.ckpt"),
            "checkpoint {root}/nosuch.ckpt: no such file",
        ),
        "existing out": (lambda w: export(w, str(w["ckpt"]), "{file}"), "--out {file} exists; pass --force"),
        "out under a file": (lambda w: export(w, str(w["ckpt"]), "{file}/m.onnx"), "{file} is a file"),
        "unexportable operator": (
            lambda w: export(w, str(w["unexportable"])),
            "cannot be exported to ONNX: the exporter cannot write the operator aten.cummax",
        ),
        "number": (lambda w: [*export(w, str(w["ckpt"])), "--opset", "13"], "--opset must be at least 17"),
        "empty path": (lambda w: export(w, ""), "argument --ckpt: an empty path"),
    },
    "compare": {
        "missing path": (
            lambda w: ["compare", "{root}/nosuch.npz", "{file}"],
            "test predictions file {root}/nosuch.npz: no such file",
        ),
        "not predictions": (
            lambda w: ["compare", "{file}", "{file}"],
            "{file} is not the test_predictions.npz of a test",
        ),
        "folder without a test": (
            lambda w: ["compare", "{root}/empty", "{root}/empty"],
            "{root}/empty: no test_predictions.npz in it nor in its version_* folders",
        ),
        "number": (lambda w: ["compare", "{file}", "{file}", "--draws", "0"], "--draws must be at least 1"),
        "not a number": (lambda w: ["compare", "{file}", "{file}", "--draws", "many"], "--draws"),
        "empty path": (lambda w: ["compare", "", "{file}"], "argument run_a: an empty path"),
    },
    "bench": {
        "missing path": (lambda w: ["bench", "--report", "{root}/nosuch.json"], "nosuch.json"),
        "save under a file": (lambda w: ["bench", "--save", "{file}/x.json"], "{file}"),
        "empty path": (lambda w: ["bench", "--save", ""], "argument --save: an empty path"),
        "save onto a user's file": (
            lambda w: ["bench", "--arch", "fcn", "--save", "{file}"],
            "--save {file} exists and is not figures written by musictag bench --save",
        ),
        "too many threads": (lambda w: ["bench", "--threads", "100000"], "--threads 100000 is more than"),
        "number": (lambda w: ["bench", "--threads", "0"], "--threads"),
        "not a number": (lambda w: ["bench", "--steps", "few"], "--steps"),
        "device": (lambda w: ["bench", "--device", "cuda"], "--device cuda"),
        "inference checkpoint missing": (
            lambda w: ["bench", "--inference", "{root}/nosuch.ckpt"],
            "--inference {root}/nosuch.ckpt: no such file",
        ),
    },
    "cv": {
        "missing path": (lambda w: cv(w, "--config={root}/nosuch.yaml"), "nosuch.yaml"),
        "path under a file": (lambda w: cv(w, "--run.save_dir={file}/runs"), "{file}/runs"),
        "number": (lambda w: cv(w, "--folds", "2"), "data folds must be an integer >= 3"),
        "not a number": (lambda w: cv(w, "--folds", "many"), "argument --folds: invalid int value"),
        "fold out of range": (
            lambda w: cv(w, "--data.init_args.fold=3"),
            "data fold must be an integer in 0..2",
        ),
        "collect missing": (
            lambda w: ["cv", "--collect", "{root}/nosuch"],
            "--collect {root}/nosuch: not a folder",
        ),
        "empty path": (lambda w: ["cv", "--collect", ""], "argument --collect: an empty path"),
    },
}


def fill(text: str, w: dict[str, Path]) -> str:
    return text.replace("{root}", str(w["root"])).replace("{file}", str(w["file"]))


def test_every_command_has_cases():
    assert sorted(CASES) == sorted(COMMANDS)


@pytest.mark.parametrize("word", ["nosuch", "tags", "fitt"])
def test_an_unknown_command_is_one_line_listing_every_command(word, capsys):
    code, out, err = run_musictag([word, "--help"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"musictag: error: unknown command {word!r}; choose from fit, validate, test, predict, tag, features, "
        "explain, prepare, embed, import-weights, export, bench, cv, compare (`musictag --help` says what each does)"
    )


@pytest.mark.parametrize(
    ("command", "kind"), [(command, kind) for command, kinds in CASES.items() for kind in kinds]
)
def test_bad_input_is_one_line_and_no_traceback(command, kind, world, monkeypatch, capsys):
    # "a device this machine lacks" on a GPU machine too
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    build, expected = CASES[command][kind]
    argv = [fill(arg, world) for arg in build(world)]
    before = sorted(p.name for p in world["root"].iterdir())
    code, out, err = run_musictag(argv, capsys)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("musictag"), err
    assert fill(expected, world) in errors[0], (expected, err)
    assert world["file"].read_text() == "mine\n"
    assert sorted(p.name for p in world["root"].iterdir()) == before  # nothing written beside the inputs
