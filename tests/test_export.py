"""``musictag export``: ONNX files that give the checkpoint's chunk probabilities in onnxruntime, with
the spectrogram in the graph, and the metadata to tag as ``musictag tag`` does.

Fast: a tiny Short-chunk CNN (dynamic length), a random-init FCN (fixed length) and the musicnn
library's patches model (``center=False`` frames, float16 rounding); the CLI's refusals; the docs'
script. Slow: every preset of the zoo, every imported family, and the acceptance check (the imported
sota MTAT musicnn and fcn on a real recording at 16 kHz against ``musictag tag --timeline``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.cli import run_musictag
from helpers.stages import UNEXPORTABLE_BACKEND
from musictag.guards import InputError
from musictag.testing import TINY_SHORT_CHUNK, save_module_checkpoint, sine, write_audio
from musictag.training.module import TaggingModule

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]


def session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_scores(module: TaggingModule, wave: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.probabilities(module(torch.from_numpy(wave))).numpy()


def assert_equal_to_torch(module: TaggingModule, path: Path, batches=(1, 3), tol: float = 1e-4) -> None:
    """onnxruntime gives the module's probabilities on ``batches`` of chunks (and on longer input when
    the length is dynamic)."""
    run = session(path)
    rng = np.random.default_rng(0)
    length = module.input_len
    for batch in batches:
        wave = (rng.standard_normal((batch, length)) * 0.1).astype(np.float32)
        got = run.run(["scores"], {"waveform": wave})[0]
        assert got.shape == (batch, module.net.n_tags)
        np.testing.assert_allclose(got, torch_scores(module, wave), atol=tol)
    dynamic = run.get_modelmeta().custom_metadata_map["dynamic_length"]
    # a network that takes any length, but whose length the exporter cannot write as a symbol (a GRU on
    # it, a length divided twice), is exported at one chunk's length
    assert dynamic in (("true", "false") if module.net.variable_length else ("false",))
    if dynamic == "true":
        wave = (rng.standard_normal((2, length + 3001)) * 0.1).astype(np.float32)
        np.testing.assert_allclose(
            run.run(["scores"], {"waveform": wave})[0], torch_scores(module, wave), atol=tol
        )
    else:
        assert run.get_inputs()[0].shape == ["batch", length]


@pytest.fixture(scope="module")
def tiny(tiny_ckpt, tmp_path_factory) -> tuple[TaggingModule, Path]:
    """The tiny model and its export by the CLI (one export for the fast tests: the exporter takes
    seconds), made over an existing file with ``--force`` after a refusal without it."""
    from musictag.inference.loading import load_model

    folder = tmp_path_factory.mktemp("onnx")
    out = folder / "tiny.onnx"
    out.write_bytes(b"mine")
    argv = ["export", "--ckpt", str(tiny_ckpt), "--out", str(out)]
    code, printed, err = run_cli(argv)
    assert code == 2 and printed == "" and out.read_bytes() == b"mine"
    assert (
        err.strip()
        == f"musictag export: error: --out {out} exists; pass --force to replace it (nothing was written)"
    )
    code, printed, err = run_cli([*argv, "--force"])
    assert code == 0 and printed.strip() == f"musictag export: wrote {out}", err
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.onnx"]  # no temporary left behind
    return load_model(str(tiny_ckpt), torch.device("cpu")), out


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``musictag ARGV`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from musictag.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 0
    return code, out.getvalue(), err.getvalue()


def test_the_tiny_model_is_checked_and_equal_to_torch_for_any_batch_and_length(tiny):
    module, path = tiny
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} >= {"STFT"}  # the spectrogram is in the graph
    assert_equal_to_torch(module, path)
    run = session(path)
    (inp,), (out,) = run.get_inputs(), run.get_outputs()
    assert (inp.name, inp.type, out.name) == ("waveform", "tensor(float)", "scores")
    assert inp.shape == ["batch", "samples"] and out.shape == ["batch", 3]
    longer = (np.random.default_rng(1).standard_normal((2, module.input_len + 5000)) * 0.1).astype(np.float32)
    np.testing.assert_allclose(
        run.run(["scores"], {"waveform": longer})[0], torch_scores(module, longer), atol=1e-4
    )


def test_metadata_says_how_tag_cuts_and_averages(tiny):
    import musictag

    module, path = tiny
    meta = session(path).get_modelmeta().custom_metadata_map
    assert meta == {
        "musictag_version": musictag.__version__,
        "tag_names": '["a", "b", "c"]',
        "sample_rate": "16000",
        "chunk_len": str(module.input_len),
        "chunk_mode": "even",
        "n_chunks": "16",
        "chunk_hop": "",
        "n_fft": "",
        "aggregate": "mean",
        "task": "multilabel",
        "dynamic_length": "true",
        "mp3_decoder_delay": "0",
    }


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["fcn", "musicnn_tf"])
def test_presets_equal_torch(arch, tmp_path):
    from musictag.inference.onnx_export import export_model

    torch.manual_seed(0)
    module = TaggingModule(arch=arch, n_tags=5).eval()
    path = export_model(module, tmp_path / f"{arch}.onnx")
    assert_equal_to_torch(module, path, batches=(1, 3) if arch == "fcn" else (3,))
    meta = session(path).get_modelmeta().custom_metadata_map
    assert meta["dynamic_length"] == {"fcn": "false", "musicnn_tf": "true"}[arch]


@pytest.mark.slow
def test_multiclass_scores_are_softmax(tmp_path):
    from musictag.inference.onnx_export import export_model

    torch.manual_seed(0)
    module = TaggingModule(n_tags=3, task="multiclass", **TINY_SHORT_CHUNK).eval()
    path = export_model(module, tmp_path / "mc.onnx")
    wave = (np.random.default_rng(2).standard_normal((2, module.input_len)) * 0.1).astype(np.float32)
    got = session(path).run(["scores"], {"waveform": wave})[0]
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, torch_scores(module, wave), atol=1e-4)


@pytest.mark.slow  # fast in tests/test_bad_input_every_command.py
def test_an_unexportable_operator_is_named_and_nothing_is_written(tmp_path, capsys):
    torch.manual_seed(0)
    module = TaggingModule(n_tags=2, **(TINY_SHORT_CHUNK | {"backend": UNEXPORTABLE_BACKEND})).eval()
    ckpt = save_module_checkpoint(module, tmp_path / "cummax.ckpt")
    code, out, err = run_musictag(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"musictag export: error: {ckpt} cannot be exported to ONNX: the exporter cannot write the "
        "operator aten.cummax"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cummax.ckpt"]


def test_onnx_tagger_gives_what_tag_gives(tiny, tmp_path):
    from musictag.inference.onnx_runtime import OnnxTagger
    from musictag.inference.tagging import tag_file

    module, path = tiny
    song = tmp_path / "song.wav"
    write_audio(song, np.concatenate([sine(440.0, 3.0, 22050), sine(880.0, 3.0, 22050)]), 22050)
    expected = tag_file(module, song)
    got = OnnxTagger(path, threads=1).tag(song)
    assert [row["start_s"] for row in got["timeline"]] == [row["start_s"] for row in expected["timeline"]]
    for want, have in zip(expected["timeline"], got["timeline"], strict=True):
        np.testing.assert_allclose(list(have["scores"].values()), list(want["scores"].values()), atol=1e-4)
    np.testing.assert_allclose(list(got["scores"].values()), list(expected["scores"].values()), atol=1e-4)


def docs_script() -> str:
    text = (REPO / "docs" / "export.md").read_text()
    (script,) = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M) if "sys.argv" in b]
    return script


def test_the_docs_script_gives_the_song_scores_of_tag(tiny, tmp_path):
    from musictag.inference.tagging import tag_file

    module, path = tiny
    song = tmp_path / "song.wav"
    write_audio(song, np.stack([sine(330.0, 4.0, 44100), sine(660.0, 4.0, 44100)], axis=1), 44100)
    script = tmp_path / "tag_onnx.py"
    script.write_text(docs_script())
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(song)], capture_output=True, text=True, check=True
    )
    got = json.loads(done.stdout)
    expected = tag_file(module, song)["scores"]
    assert list(got) == list(expected)
    np.testing.assert_allclose(list(got.values()), list(expected.values()), atol=1e-4)


def test_refusals_before_anything_runs(tiny_ckpt, tmp_path):
    from musictag.inference.onnx_export import export_model, export_onnx

    with pytest.raises(InputError, match="is a folder"):
        export_onnx(str(tiny_ckpt), tmp_path)
    with pytest.raises(InputError, match="opset 17 or later"):
        export_model(TaggingModule(n_tags=2, **TINY_SHORT_CHUNK), tmp_path / "m.onnx", opset=13)
    assert list(tmp_path.iterdir()) == []


# --- slow: the whole zoo, the imported families, the acceptance check ----------------------------------
@pytest.mark.slow
def test_every_preset_of_the_zoo_equals_torch(tmp_path):
    """Random-init presets of 5 tags (the factories at their default budget), batches of 1 and 3."""
    from musictag.inference.onnx_export import export_model
    from musictag.models.presets import preset_names

    for arch in preset_names():
        torch.manual_seed(0)
        module = TaggingModule(arch=arch, n_tags=5).eval()
        path = export_model(module, tmp_path / f"{arch}.onnx")
        assert_equal_to_torch(module, path)
        path.unlink()


def _probe_chunks(reference, length: int) -> np.ndarray:
    probe = np.load(reference("sota/probe.npy"))
    return np.stack([probe[:length], probe[-length:]]).astype(np.float32)


@pytest.mark.slow
def test_every_imported_sota_checkpoint_equals_torch(reference, tmp_path):
    from helpers.reference import SOTA_CHECKPOINTS
    from musictag.convert.sota import import_sota
    from musictag.inference.loading import load_model
    from musictag.inference.onnx_export import export_onnx

    for checkpoint in SOTA_CHECKPOINTS:
        dataset, arch = checkpoint.split("/")
        weights = reference(f"sota/models/{checkpoint}/best_model.pth")
        ckpt = import_sota(arch, dataset, weights, tmp_path / f"{dataset}_{arch}.ckpt")
        path = export_onnx(str(ckpt), tmp_path / f"{dataset}_{arch}.onnx")
        module = load_model(str(ckpt), torch.device("cpu"))
        wave = _probe_chunks(reference, module.input_len)
        got = session(path).run(["scores"], {"waveform": wave})[0]
        np.testing.assert_allclose(got, torch_scores(module, wave), atol=1e-4, err_msg=checkpoint)


@pytest.mark.slow
def test_every_musicnn_library_model_equals_torch(tmp_path):
    from helpers.reference import musicnn_models_dir, require_reference
    from musictag.convert.musicnn import MUSICNN_MODELS, import_musicnn
    from musictag.inference.loading import load_model
    from musictag.inference.onnx_export import export_onnx
    from musictag.inference.onnx_runtime import OnnxTagger
    from musictag.inference.tagging import tag_file

    folder = Path(require_reference(musicnn_models_dir(), "the musicnn wheel's models", "run `make install`"))
    for name in MUSICNN_MODELS:
        ckpt = import_musicnn(name, folder / name, tmp_path / f"{name}.ckpt")
        path = export_onnx(str(ckpt), tmp_path / f"{name}.onnx")
        module = load_model(str(ckpt), torch.device("cpu"))
        wave = (np.random.default_rng(3).standard_normal((3, module.input_len)) * 0.1).astype(np.float32)
        got = session(path).run(["scores"], {"waveform": wave})[0]
        np.testing.assert_allclose(got, torch_scores(module, wave), atol=1e-4, err_msg=name)
        assert session(path).get_modelmeta().custom_metadata_map["chunk_mode"] == "patches"
        song = REPO / "tests" / "reference_musicnn" / "song_44k_stereo.mp3"  # patches cut as tag cuts them
        expected, got = tag_file(module, song), OnnxTagger(path, threads=1).tag(song)
        assert [r["start_s"] for r in got["timeline"]] == [r["start_s"] for r in expected["timeline"]]
        np.testing.assert_allclose(list(got["scores"].values()), list(expected["scores"].values()), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["hubert", "wav2vec2", "wavlm", "whisper", "clap", "ast"])
def test_hugging_face_probes_are_exported_or_refused_in_one_line(family, tmp_path, capsys):
    """Probes on the waveform encoders, Whisper and CLAP export (equal to torch); AST's Kaldi fbank does not
    (the exporter has no ``hann_window``): one line naming it, nothing written."""
    from musictag.testing.encoders import TINY_ENCODERS, make_tiny_encoder

    encoder = make_tiny_encoder(family, tmp_path / "encoder")
    capsys.readouterr()  # the encoder's own progress bar
    rate = TINY_ENCODERS[family][1]
    torch.manual_seed(0)
    module = TaggingModule(
        n_tags=2,
        representation="waveform",
        frontend={"name": "hf_encoder", "path": str(encoder), "layers": [1]},
        backend="global_mean",
        head={"name": "mlp", "hidden": []},
        input_len=rate,
        sample_rate=rate,
    ).eval()
    ckpt = save_module_checkpoint(module, tmp_path / "probe.ckpt")
    out = tmp_path / "probe.onnx"
    code, printed, err = run_musictag(["export", "--ckpt", str(ckpt), "--out", str(out)], capsys)
    if family == "ast":
        assert code == 2 and printed == "" and not out.exists()
        assert err.strip() == (
            f"musictag export: error: {ckpt} cannot be exported to ONNX: the exporter cannot write the "
            "operator aten.hann_window"
        )
    else:
        assert code == 0, err
        assert_equal_to_torch(module, out)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["musicnn", "fcn"])
def test_acceptance_sota_mtat_chunk_scores_equal_tag_timeline_on_a_real_recording(
    arch, reference, tmp_path, capsys
):
    """The imported sota MTAT model, exported: onnxruntime on the chunks of a real recording at 16 kHz
    gives ``musictag tag --timeline``'s chunk scores to 1e-4."""
    from musictag.audio import load_audio
    from musictag.chunks import ChunkPlan, cut_chunks
    from musictag.convert.sota import import_sota
    from musictag.inference.tagging import file_chunk_starts

    audio, _ = load_audio(reference("choi/audio/bensound-cute.mp3"), 16000)
    song = tmp_path / "cute_16k.wav"
    write_audio(song, audio, 16000)
    ckpt = import_sota(
        arch, "mtat", reference(f"sota/models/mtat/{arch}/best_model.pth"), tmp_path / "m.ckpt"
    )
    out = tmp_path / "m.onnx"
    assert run_musictag(["export", "--ckpt", str(ckpt), "--out", str(out)], capsys)[0] == 0
    code, printed, err = run_musictag(
        ["tag", str(song), "--ckpt", str(ckpt), "--format", "json", "--timeline", "--device", "cpu"], capsys
    )
    assert code == 0, err
    tagged = json.loads(printed)
    run = session(out)
    meta = run.get_modelmeta().custom_metadata_map
    plan = ChunkPlan(int(meta["chunk_len"]), int(meta["n_chunks"]), meta["chunk_mode"])  # type: ignore[arg-type]
    wave, rate = load_audio(song, int(meta["sample_rate"]))
    starts, _ = file_chunk_starts(len(wave), plan)
    chunks = cut_chunks(wave, starts, plan.chunk_len)
    got = np.concatenate(
        [run.run(["scores"], {"waveform": chunks[i : i + 4]})[0] for i in range(0, len(chunks), 4)]
    )
    tags = json.loads(meta["tag_names"])
    expected = np.array([[row["scores"][t] for t in tags] for row in tagged["timeline"]])
    assert len(expected) == len(got) == 16
    assert [row["start_s"] for row in tagged["timeline"]] == [round(int(s) / rate, 3) for s in starts]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got.mean(axis=0), [tagged["scores"][t] for t in tags], atol=1e-4)
