"""`musictag tag` on bad input and at scale: nothing silent, bounded work, batched across files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from helpers.cli import run_musictag
from helpers.trainer import quiet_trainer
from musictag import TaggingModule
from musictag.audio import AudioError
from musictag.testing import TINY_SHORT_CHUNK, save_module_checkpoint, sine, write_audio, write_non_finite


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_musictag(argv, capsys)


def test_non_finite_audio_fails_its_file_and_json_stays_valid(tiny_ckpt, tiny_model, tmp_path, capsys):
    write_audio(tmp_path / "ok.wav", sine(440, 5.0), 16000)
    write_non_finite(tmp_path / "nan.wav", seconds=5.0)
    code, out, err = run(["tag", str(tmp_path), "--ckpt", str(tiny_ckpt), "--format", "json"], capsys)
    assert code == 1
    assert [Path(json.loads(line)["path"]).name for line in out.splitlines()] == ["ok.wav"]
    assert "nan.wav: 80000 of 80000 samples are NaN or Inf" in err
    # a model that scores NaN fails every file; stdout holds no bare NaN
    broken = TaggingModule(n_tags=3, tag_names=["a", "b", "c"], **TINY_SHORT_CHUNK)
    with torch.no_grad():
        for parameter in broken.parameters():
            parameter.fill_(float("nan"))
    bad_ckpt = save_module_checkpoint(broken, tmp_path / "nan.ckpt")
    code, out, err = run(
        ["tag", str(tmp_path / "ok.wav"), "--ckpt", str(bad_ckpt), "--format", "json"], capsys
    )
    assert code == 1 and out == "" and "the model's scores are not finite" in err


def test_nothing_to_tag_is_an_error(tiny_ckpt, tmp_path, capsys):
    from musictag.audio import AUDIO_EXTENSIONS

    EXTENSIONS = ", ".join(AUDIO_EXTENSIONS)  # noqa: N806
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    code, out, err = run(["tag", str(tmp_path / "empty"), "--ckpt", str(tiny_ckpt)], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [  # the one path given, and what is wrong with it: one line
        f"musictag tag: error: nothing to tag: no audio files under {tmp_path / 'empty'} ({EXTENSIONS})"
    ]
    # two paths, two problems: each named, then the error
    code, out, err = run(
        ["tag", str(tmp_path / "empty"), str(tmp_path / "gone.wav"), "--ckpt", str(tiny_ckpt)], capsys
    )
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"musictag tag: skipped {tmp_path / 'gone.wav'}: no such file or folder",
        f"musictag tag: no audio files under {tmp_path / 'empty'} ({EXTENSIONS})",
        "musictag tag: error: nothing to tag: no audio files in the given paths (what was wrong is above)",
    ]
    # an empty folder next to real audio: the others are tagged, the folder is named, exit 1
    write_audio(tmp_path / "song.wav", sine(440, 4.0), 16000)
    code, out, err = run(
        ["tag", str(tmp_path / "empty"), str(tmp_path / "song.wav"), "--ckpt", str(tiny_ckpt)], capsys
    )
    assert code == 1 and "song.wav" in out and "no audio files under" in err


def test_bad_options_get_one_line(tiny_ckpt, tmp_path, capsys):
    write_audio(tmp_path / "song.wav", sine(440, 4.0), 16000)
    song = str(tmp_path / "song.wav")
    code, _, err = run(["tag", song, "--ckpt", str(tiny_ckpt), "--n-chunks", "0"], capsys)
    assert code == 2 and "--n-chunks must be at least 1, got 0" in err and "Traceback" not in err
    code, _, err = run(["tag", song, "--ckpt", str(tiny_ckpt), "--device", "nosuch"], capsys)
    assert (
        code == 2
        and err.strip() == "musictag tag: error: unknown device 'nosuch'; use auto, cpu, cuda, cuda:N or mps"
    )
    if not torch.cuda.is_available():
        code, _, err = run(["tag", song, "--ckpt", str(tiny_ckpt), "--device", "cuda"], capsys)
        assert code == 2 and err.strip() == (
            "musictag tag: error: --device cuda: no CUDA GPU is available here; use --device auto or cpu"
        )
    from musictag.inference.tagging import pick_device

    assert pick_device("cpu") == torch.device("cpu")


def test_chunks_are_capped_at_what_the_file_holds(tiny_model, tmp_path, capsys):
    from musictag.chunks import ChunkPlan
    from musictag.inference.tagging import file_chunk_starts

    chunk = tiny_model.input_len
    plan = ChunkPlan(chunk, 16, "even")
    # shorter than a chunk: once, zero-padded, with a note
    starts, note = file_chunk_starts(chunk // 2, plan)
    assert starts.tolist() == [0] and "shorter than one chunk" in note
    # 100,000 chunks asked of a file with 11 distinct positions: 11
    starts, note = file_chunk_starts(chunk + 10, plan.with_n_chunks(100_000))
    assert starts.tolist() == list(range(11)) and "11 distinct chunk position(s)" in note
    assert file_chunk_starts(chunk * 3, plan)[1] is None
    write_audio(tmp_path / "short.wav", sine(440, 2.0), 16000)  # 2 s < 3.69 s
    code, out, err = run(
        [
            "tag",
            str(tmp_path / "short.wav"),
            "--ckpt",
            str(save_module_checkpoint(tiny_model, tmp_path / "m.ckpt")),
            "--format",
            "json",
            "--timeline",
            "--n-chunks",
            "100000",
        ],
        capsys,
    )
    assert code == 0 and len(json.loads(out)["timeline"]) == 1
    assert "short.wav: shorter than one chunk (59049 samples): tagged once, zero-padded" in err


def test_batches_across_files_give_the_per_file_scores(tiny_model, tmp_path):
    from musictag.chunks import ChunkPlan
    from musictag.inference.tagging import tag_many

    plan = ChunkPlan.for_model(tiny_model, n_chunks=5)
    paths = []
    for i, seconds in enumerate([5.0, 4.0, 7.5, 2.0]):
        paths.append(tmp_path / f"{i}.wav")
        write_audio(paths[-1], sine(220 * (i + 1), seconds), 16000)
    paths.insert(2, tmp_path / "missing.wav")
    one_by_one = [list(tag_many(tiny_model, [p], plan, batch_size=1)) for p in paths]
    batched = list(tag_many(tiny_model, paths, plan, batch_size=7))  # batches straddle files
    assert len(batched) == len(paths)
    for (single,), together in zip(one_by_one, batched, strict=True):
        if isinstance(single, AudioError):
            assert isinstance(together, AudioError) and str(together) == str(single)
            continue
        assert together["path"] == single["path"] and len(together["timeline"]) == len(single["timeline"])
        np.testing.assert_allclose(
            list(together["scores"].values()), list(single["scores"].values()), atol=1e-6
        )
    # the per-chunk scores are the model's on the chunks, and their mean is the song score
    song = batched[0]
    chunk_mean = np.mean([list(c["scores"].values()) for c in song["timeline"]], axis=0)
    np.testing.assert_allclose(list(song["scores"].values()), chunk_mean, atol=1e-6)


def test_a_fit_checkpoint_tags_with_its_run_evaluation_setting(tiny_corpus, tmp_path, capsys):

    from datamodules.synthetic import SyntheticDataModule
    from musictag.testing import tiny_synthetic_args

    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus), n_chunks=3, chunk_mode="sota"))
    module = TaggingModule(n_tags=data.n_tags, tag_names=list(data.tag_names), **TINY_SHORT_CHUNK)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(module, data)
    ckpt = tmp_path / "fit.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert (saved["tag_chunks"], saved["tag_chunk_mode"]) == (3, "sota")
    write_audio(tmp_path / "song.wav", sine(440, 10.0), 16000)
    capsys.readouterr()
    code, out, _ = run(
        ["tag", str(tmp_path / "song.wav"), "--ckpt", str(ckpt), "--format", "json", "--timeline"], capsys
    )
    starts = [c["start_s"] for c in json.loads(out)["timeline"]]
    hop = (160000 - 59049) // 3  # the sota rule
    assert code == 0 and starts == [round(i * hop / 16000, 3) for i in range(3)]
    code, out, _ = run(
        [
            "tag",
            str(tmp_path / "song.wav"),
            "--ckpt",
            str(ckpt),
            "--format",
            "json",
            "--timeline",
            "--n-chunks",
            "5",
        ],
        capsys,
    )
    assert len(json.loads(out)["timeline"]) == 5  # overridden
