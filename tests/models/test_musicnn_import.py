"""The musicnn library's models reproduce its taggrams; its preprocessing and patches without the models.

References (``tests/reference_musicnn``, made by ``make_references.py`` with the library itself): two
files (44.1 kHz stereo MP3, 16 kHz mono WAV), the library's taggram of each with each model, its
whole-file log-mel spectrograms, librosa's mel filterbank, and its ``extract_features=True`` layers
(as they should be: the library's extractor repeats the first patch's cnn1-cnn3 and penultimate). The tests that need the models read the
musicnn wheel that ``make install`` unpacks into ``.venv/musicnn-0.1.0`` (or ``$MUSICNN_MODELS``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.cli import run_musictag
from helpers.reference import musicnn_models_dir, require_reference
from musictag.audio import load_audio
from musictag.chunks import chunk_starts, cut_chunks
from musictag.convert.musicnn import MSD_TAGS, MTT_TAGS, MUSICNN_MODELS, convert_musicnn, import_musicnn
from musictag.convert.tf_checkpoint import CheckpointError, TFCheckpoint
from musictag.guards import InputError
from musictag.inference.features import layer_names, network_features
from musictag.models import build
from musictag.models.presets import MUSICNN_LIB_MEL
from musictag.stages.registry import ConfigError
from musictag.stages.representations.mel import MelSpectrogram

REFERENCE = Path(__file__).resolve().parents[1] / "reference_musicnn"
FILES = ("song_44k_stereo.mp3", "song_16k_mono.wav")


def models_dir() -> Path:
    return Path(
        require_reference(
            musicnn_models_dir(),
            "the musicnn wheel's models",
            "run `make install` (it unpacks musicnn 0.1.0 from the package index) or set $MUSICNN_MODELS",
        )
    )


@pytest.fixture(scope="module")
def taggrams() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "taggrams.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def library_features() -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{model: {file: {layer: the library's array}}}``, from its int16 steps and their scale."""
    found: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with np.load(REFERENCE / "features.npz") as data:
        for key in data.files:
            if not key.endswith("/scale"):
                model, name, layer = key.split("/")
                steps = data[key].astype(np.float32)
                found.setdefault(model, {}).setdefault(name, {})[layer] = steps * data[f"{key}/scale"]
    return found


MUSICNN_LAYERS = ["timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]
VGG_LAYERS = ["pool1", "pool2", "pool3", "pool4", "pool5"]


def assert_library_features(ours: dict[str, np.ndarray], library: dict[str, np.ndarray], what: str) -> None:
    """Every layer of the library's: its shape, and its values to 1e-3 of its largest ``|value|``."""
    for layer, expected in library.items():
        assert ours[layer].shape == expected.shape, f"{what} {layer}"
        peak = np.abs(expected).max()
        assert peak > 0 and np.abs(ours[layer] - expected).max() <= 1e-3 * peak, f"{what} {layer}"


@pytest.fixture(scope="module")
def spectrograms() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "spectrograms.npz") as data:
        return {key: data[key] for key in data.files}


# --- without the models -------------------------------------------------------------------------
def library_mel(**changes: object) -> MelSpectrogram:
    args = {k: v for k, v in MUSICNN_LIB_MEL.items() if k != "name"} | changes
    return MelSpectrogram(**args, input_bn=False).eval()


def test_mel_filterbank_is_librosas(spectrograms):
    np.testing.assert_allclose(library_mel().fb.T.numpy(), spectrograms["mel_fb"], atol=1e-6)


@pytest.mark.parametrize("name", FILES)
def test_patches_are_the_librarys_spectrogram_patches(name, spectrograms):
    """Chunks cut by the ``patches`` rule, through the representation, are the library's whole-file
    float16 mel spectrogram cut into 187-frame patches: equal, or one float16 step apart where the
    float32 powers fall either side of a rounding boundary."""
    audio, _ = load_audio(REFERENCE / name, 16000)
    library = spectrograms[name]  # (frames, 96) float16
    starts = chunk_starts(len(audio), 48128, 16, "patches", 256, 512)
    assert len(starts) == len(library) // 187 >= 2
    with torch.no_grad():
        chunks = torch.from_numpy(cut_chunks(audio, starts, 48128))
        power = library_mel(compression="none")(chunks)[:, 0].numpy().astype(np.float16)  # (patches, 96, 187)
        log_mel = library_mel()(chunks)[:, 0].numpy()
    expected = library[: len(starts) * 187].reshape(len(starts), 187, 96).transpose(0, 2, 1)
    steps = np.abs(power.view(np.int16).astype(np.int32) - expected.view(np.int16).astype(np.int32))
    assert steps.max() <= 1 and np.mean(steps == 0) > 0.99
    expected_log = np.log10(10000 * expected.astype(np.float32) + 1)
    assert np.abs(log_mel - expected_log).max() < 2e-3


def test_patch_starts_follow_the_whole_file_frames():
    # 10 s at 16 kHz: 626 centred frames -> 3 patches of 187; patch i starts n_fft/2 before frame 187·i
    np.testing.assert_array_equal(chunk_starts(160000, 48128, 16, "patches", 256, 512), [-256, 47616, 95488])
    assert len(chunk_starts(1000, 48128, 16, "patches", 256, 512)) == 1  # shorter than a patch: one, padded
    chunk = cut_chunks(np.arange(1, 11, dtype=np.float32), np.array([-3]), 6)
    np.testing.assert_array_equal(chunk[0], [0, 0, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="needs the spectrogram's hop and n_fft"):
        chunk_starts(160000, 48128, 16, "patches")


def test_evaluation_cuts_patches_with_the_models_frames(tiny_corpus):
    """``chunk_mode: patches`` in a DataModule (``musictag test``) takes hop and n_fft from the model."""
    from types import SimpleNamespace

    from datamodules.synthetic import SyntheticDataModule
    from musictag.testing import tiny_synthetic_args
    from musictag.training.module import TaggingModule

    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus), chunk_mode="patches"))
    data.trainer = SimpleNamespace(lightning_module=TaggingModule(n_tags=data.n_tags, arch="musicnn_tf"))
    data.setup("test")
    song = data.datasets["test"][0]["audio"]  # 4 s: 251 frames, one patch of 187 starting 256 samples early
    assert song.shape == (1, 48128)
    audio = data.datasets["test"].cache.read(data.datasets["test"].manifest.ids[0])
    torch.testing.assert_close(song[0, 256:], torch.from_numpy(audio[: 48128 - 256]))
    assert not song[0, :256].any()
    waveform = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus), chunk_mode="patches"))
    waveform.trainer = SimpleNamespace(lightning_module=TaggingModule(n_tags=data.n_tags, arch="sample_cnn"))
    with pytest.raises(ConfigError, match="chunk_mode patches cuts a spectrogram's frames"):
        waveform.setup("test")


# --- with the models ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    folder = models_dir()
    out = tmp_path_factory.mktemp("musicnn")
    return {model: import_musicnn(model, folder / model, out / f"{model}.ckpt") for model in MUSICNN_MODELS}


@pytest.fixture(scope="module")
def taggers(imported) -> dict[str, object]:
    import musictag

    return {model: musictag.load(ckpt, device="cpu") for model, ckpt in imported.items()}


@pytest.mark.parametrize("model", list(MUSICNN_MODELS))
def test_parameter_counts_equal_the_checkpoint_tensors(model):
    checkpoint = TFCheckpoint(models_dir() / model)
    trainable = [
        n
        for n in checkpoint.names()
        if not n.endswith(("/Adam", "/Adam_1", "moving_mean", "moving_variance")) and "power" not in n
    ]
    preset = MUSICNN_MODELS[model][0]
    count = sum(int(np.prod(checkpoint.shape(n))) for n in trainable)
    assert (
        build(preset, n_tags=50).n_params()
        == count
        == {"musicnn_tf": 787_159, "musicnn_vgg": 605_748}[preset]
    )


@pytest.mark.parametrize("model", list(MUSICNN_MODELS))
def test_taggrams_reproduce_the_library(model, taggers, taggrams):
    tagger = taggers[model]
    assert tagger.tags == list(MTT_TAGS if model.startswith("MTT") else MSD_TAGS)
    assert tagger.tags == list(taggrams[f"{model}/tags"])
    for name, result in zip(FILES, tagger.tag_many([REFERENCE / n for n in FILES]), strict=True):
        ours = np.array([[chunk["scores"][t] for t in tagger.tags] for chunk in result["timeline"]])
        library = taggrams[f"{model}/{name}"]
        assert ours.shape == library.shape
        np.testing.assert_allclose(ours, library, atol=1e-3, err_msg=f"{model} {name}")
        song = library.mean(axis=0)
        library_top = [tagger.tags[i] for i in np.argsort(song)[::-1][:5]]
        assert [tag for tag, _ in result["top"]] == library_top
        np.testing.assert_allclose(list(result["scores"].values()), song, atol=1e-3)
        assert [c["start_s"] for c in result["timeline"]] == [
            round(i * 187 * 256 / 16000, 3) for i in range(len(library))
        ]


def test_one_file_and_a_batch_of_files_agree(taggers):
    tagger = taggers["MTT_musicnn"]
    alone = tagger.tag(REFERENCE / FILES[1])
    together = tagger.tag_many([REFERENCE / FILES[0], REFERENCE / FILES[1]], batch_chunks=4)[1]
    assert alone["path"] == together["path"] and list(alone) == list(together)
    np.testing.assert_allclose(list(alone["scores"].values()), list(together["scores"].values()), atol=1e-6)


def test_another_models_folder_or_a_changed_shape_is_refused(imported, monkeypatch, tmp_path):
    folder = models_dir()
    with pytest.raises(ConfigError, match=r"MTT_vgg holds MTT_vgg .*, not MTT_musicnn: give --model MTT_vgg"):
        import_musicnn("MTT_musicnn", folder / "MTT_vgg", tmp_path / "x.ckpt")
    with pytest.raises(ConfigError, match=r"is not a TensorFlow checkpoint folder"):
        import_musicnn("MSD_vgg", tmp_path, tmp_path / "x.ckpt")
    with pytest.raises(ConfigError, match="unknown musicnn model 'MSD_musicnn_big'"):
        import_musicnn("MSD_musicnn_big", folder / "MTT_vgg", tmp_path / "x.ckpt")
    checkpoint = TFCheckpoint(folder / "MTT_vgg")
    entry = checkpoint.entries["dense/kernel"]
    monkeypatch.setitem(
        checkpoint.entries, "dense/kernel", entry.__class__(**{**entry.__dict__, "shape": (128, 50)})
    )
    with pytest.raises(
        CheckpointError, match=r"^tensor dense/kernel in .* has shape \(128, 50\), expected \(256, 50\)$"
    ):
        convert_musicnn(checkpoint, build("musicnn_vgg", n_tags=50), "musicnn_vgg")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cli_imports_tags_as_json_and_plots(tmp_path, capsys, taggers):
    from musictag.cli import main

    ckpt = tmp_path / "MTT_musicnn.ckpt"
    weights = models_dir() / "MTT_musicnn"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "import-weights",
                "--source",
                "musicnn",
                "--model",
                "MTT_musicnn",
                "--weights",
                str(weights),
                "--out",
                str(ckpt),
            ]
        )
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"musictag import-weights: wrote {ckpt}"
    song = REFERENCE / FILES[0]
    plots = tmp_path / "plots"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "tag",
                str(song),
                "--ckpt",
                str(ckpt),
                "--format",
                "json",
                "--timeline",
                "--plot",
                str(plots),
                "--device",
                "cpu",
            ]
        )
    assert done.value.code == 0
    result = json.loads(capsys.readouterr().out)
    expected = json.loads(json.dumps(taggers["MTT_musicnn"].tag(song)))
    assert list(result) == list(expected) and result["top"] == expected["top"]
    np.testing.assert_allclose(list(result["scores"].values()), list(expected["scores"].values()), atol=1e-6)
    png = (plots / "song_44k_stereo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert [p.name for p in plots.iterdir()] == ["song_44k_stereo.png"]


def test_musictag_test_scores_songs_as_tag_does(imported, taggers, tmp_path, monkeypatch):
    """``musictag test`` of the imported checkpoint (as ``pretrained``: its architecture, weights and
    ``patches`` chunking, no data ``chunk_mode`` given) gives each song the scores ``musictag tag`` gives
    its file (up to the cache's int16 samples)."""
    import csv

    from musictag.cli import main
    from musictag.testing.corpora import make_mtat_corpus

    corpus = make_mtat_corpus(tmp_path / "corpus", seconds=7.0)
    monkeypatch.setattr(sys, "argv", ["musictag"])
    main(
        [
            "test",
            "--data=datamodules.MTATDataModule",
            f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            f"--data.init_args.audio_root={corpus.audio_root}",
            f"--data.init_args.annotations={corpus.metadata}",
            "--data.init_args.split=all",
            "--model=musictag.TaggingModule",
            f"--model.init_args.pretrained={imported['MTT_musicnn']}",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            f"--run.save_dir={tmp_path / 'runs'}",
        ]
    )
    predictions = np.load(next((tmp_path / "runs").rglob("test_predictions.npz")))
    with open(tmp_path / "cache" / "manifest.csv") as f:
        paths = {
            row["id"]: row["path"] for row in csv.DictReader(line for line in f if not line.startswith("#"))
        }
    assert list(predictions["tag_names"]) == list(MTT_TAGS) and len(predictions["song_ids"]) == 3
    for song_id, scores in zip(predictions["song_ids"], predictions["scores"], strict=True):
        tagged = taggers["MTT_musicnn"].tag(corpus.audio_root / paths[song_id])
        assert len(tagged["timeline"]) == 2
        np.testing.assert_allclose(scores, list(tagged["scores"].values()), atol=1e-3)


# --- the library's feature names ----------------------------------------------------------------
def test_reference_features_cover_every_layer_of_both_architectures(library_features):
    assert sorted(library_features) == sorted(MUSICNN_MODELS)
    for model, files in library_features.items():
        assert sorted(files) == sorted(FILES if "musicnn" in model else FILES[1:])
        for layers in files.values():
            assert list(layers) == (MUSICNN_LAYERS if "musicnn" in model else VGG_LAYERS)


@pytest.mark.parametrize("model", list(MUSICNN_MODELS))
def test_features_reproduce_the_librarys_extractor(model, taggers, library_features, taggrams):
    """``.features()`` with the library's names: its layers, shapes and chunk order, to 1e-3 of each
    layer's largest value (of each file's patches; the library's own extractor gets cnn1-cnn3 and
    penultimate of every patch after the first wrong)."""
    tagger = taggers[model]
    names = MUSICNN_LAYERS if "musicnn" in model else VGG_LAYERS
    listed = layer_names(tagger.model.net)
    assert listed[: listed.index("penultimate") + 1] == [  # the generic names first, then the library's
        "representation",
        "frontend",
        "backend",
        *(f"head.{i}" for i in range(7 if "musicnn" in model else 2)),
        "penultimate",
    ]
    assert [n for n in listed if n in names and n != "penultimate"] == [
        n for n in names if n != "penultimate"
    ]
    for name, library in library_features[model].items():
        ours = tagger.features(REFERENCE / name, names)
        assert_library_features(ours, library, f"{model} {name}")
        assert len(ours["start_s"]) == len(taggrams[f"{model}/{name}"])  # one chunk per library patch


def test_per_chunk_library_features_are_one_patch_each(taggers):
    net = taggers["MTT_vgg"].model.net
    arrays = network_features(net, torch.zeros(3, net.input_len), ["pool1", "pool5", "penultimate"])
    assert {k: tuple(v.shape) for k, v in arrays.items()} == {
        "pool1": (3, 92, 48, 128),
        "pool5": (3, 2, 128),  # the frequency axis of 1 squeezed, as the library squeezes each patch
        "penultimate": (3, 256),
    }
    net = taggers["MSD_musicnn"].model.net
    arrays = network_features(net, torch.zeros(2, net.input_len), ["timbral", "cnn3", "max_pool", "backend"])
    assert arrays["timbral"].shape == (2, 187, 408) and arrays["cnn3"].shape == (2, 187, 64)
    torch.testing.assert_close(arrays["max_pool"], arrays["backend"][:, :753])


def test_features_command_writes_the_librarys_layers(imported, library_features, tmp_path, capsys):
    out = tmp_path / "features"
    for model in ("MTT_musicnn", "MSD_musicnn"):
        argv = ["features", *(str(REFERENCE / n) for n in FILES), "--ckpt", str(imported[model])]
        code, printed, err = run_musictag(
            [*argv, "--layers", ",".join(MUSICNN_LAYERS), "--out", str(out / model)], capsys
        )
        assert code == 0, err
        assert printed.splitlines()[0].endswith(
            "timbral (561, 408), temporal (561, 153), cnn1 (561, 64), "
            "cnn2 (561, 64), cnn3 (561, 64), mean_pool (3, 753), "
            "max_pool (3, 753), penultimate (3, 200)"
        )
        for name in FILES:
            with np.load((out / model / name).with_suffix(".npz")) as saved:
                assert sorted(saved.files) == sorted([*MUSICNN_LAYERS, "start_s"])
                assert_library_features(dict(saved), library_features[model][name], f"{model} {name}")


def test_an_unknown_library_name_is_one_line_listing_the_models_names(imported, taggers, tmp_path, capsys):
    argv = ["features", str(REFERENCE / FILES[1]), "--ckpt", str(imported["MTT_musicnn"])]
    code, printed, err = run_musictag(
        [*argv, "--layers", "timbral,pool1", "--out", str(tmp_path / "f")], capsys
    )
    assert code == 2 and not printed and not (tmp_path / "f").exists()
    assert err.strip().splitlines() == [
        "musictag features: error: --layers: unknown layer(s) 'pool1'; this model has representation, frontend, "
        "backend, head.0, head.1, head.2, head.3, head.4, head.5, head.6, penultimate, timbral, temporal, "
        "cnn1, cnn2, cnn3, mean_pool, max_pool"
    ]
    with pytest.raises(
        InputError, match=r"^layers: unknown layer\(s\) 'timbral'; .* penultimate, pool1, pool2, "
    ):
        taggers["MSD_vgg"].features(REFERENCE / FILES[1], ["pool5", "timbral"])
