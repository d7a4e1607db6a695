"""Make the musicnn reference data of ``tests/models/test_musicnn_import.py`` (run once; never imported by tests).

Needs a scratch environment OUTSIDE the project with the musicnn library and the TensorFlow it works
with (TensorFlow 2.16+ with tf_keras restores MTT_musicnn wrongly)::

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" "librosa==0.11.*" soundfile
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfvenv/bin/python tests/reference_musicnn/make_references.py tests/reference_musicnn

(``... make_references.py tests/reference_musicnn features`` writes ``features.npz`` alone, from the clips
already there, leaving every other file as it is.)

It writes into the given folder:
- ``song_44k_stereo.mp3`` (44.1 kHz stereo MP3, 10 s) and ``song_16k_mono.wav`` (16 kHz mono, 6.2 s):
  synthesized music (drums, bass, chords), deterministic;
- ``taggrams.npz``: for every model and file, ``<model>/<file>`` = the library's taggram
  ``(n_patches, 50)`` from ``musicnn.extractor.extractor(file, model, extract_features=False)``;
- ``spectrograms.npz``: for every file, the float16 mel power ``(frames, 96)`` behind the library's
  whole-file log-mel spectrogram (``musicnn.extractor.batch_data``, which is ``log10(10000·x + 1)`` of
  it), and ``mel_fb``, librosa's default filterbank ``(96, 257)``;
- ``tiny_tf_checkpoint/tiny.index`` + ``.data-00000-of-00001``: a small checkpoint written by TensorFlow's
  own ``SaveV2`` (many names sharing prefixes, several dtypes and shapes), with ``tiny_expected.npz``
  holding its tensors, for the bundle reader's test;
- ``features.npz``: for every model of :data:`FEATURE_FILES`, ``<model>/<file>/<layer>`` = what
  ``extractor(file, model, extract_features=True)`` returns for each of the model's layers (musicnn:
  timbral, temporal, cnn1, cnn2, cnn3, mean_pool, max_pool, penultimate; VGG: pool1 ... pool5), *as it
  should be*, stored as int16 steps of ``<model>/<file>/<layer>/scale`` (the layer's largest ``|value|``
  / 32767: every value to 2e-5 of it, where float16 would be 5e-4).

The library's extractor gets the features of a file of more than one TensorFlow batch wrong
(``configuration.BATCH_SIZE`` is 1 patch, so every file longer than one 3-s patch): its loop over the
later batches unpacks the mid-end and dense outputs into ``midend1_, midend2_, midend3_, backend_`` but
appends ``cnn1_, cnn2_, cnn3_, penultimate_``, the first batch's arrays, again. Its ``cnn1``, ``cnn2``,
``cnn3`` and ``penultimate`` thus repeat the first patch for every patch; its taggram and other layers
(and the VGG models' layers, whose names match) are right. Both clips reach the bug (3 and 2 patches).
:func:`library_features` runs the library's own graph one patch at a time instead and joins the patches
as the extractor does (each patch's array ``np.squeeze``-d and concatenated along time, except
mean_pool, max_pool and penultimate, which stay ``(patches, C)``); :func:`write_features` checks that the
extractor agrees with it on every layer but those four, and differs on those.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
#: The files each model's features are stored for: the VGG's pool1 is 565k values a patch, so those
#: models keep the shorter clip (2 patches) alone, to hold features.npz under 3 MB.
FEATURE_FILES = {
    "MTT_musicnn": ("song_44k_stereo.mp3", "song_16k_mono.wav"),
    "MSD_musicnn": ("song_44k_stereo.mp3", "song_16k_mono.wav"),
    "MTT_vgg": ("song_16k_mono.wav",),
    "MSD_vgg": ("song_16k_mono.wav",),
}
MUSICNN_LAYERS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate")
VGG_LAYERS = ("pool1", "pool2", "pool3", "pool4", "pool5")
#: The layers the extractor does not squeeze: one row per patch.
PER_PATCH = ("mean_pool", "max_pool", "penultimate")
#: The layers the extractor's loop gets wrong after the first batch.
MIXED_UP = ("cnn1", "cnn2", "cnn3", "penultimate")


def synth_song(seconds: float, rate: int, seed: int, bpm: float, root_hz: float, channels: int) -> np.ndarray:
    """Drums (kick, noise snare, hi-hat), a bass line and sawtooth chords: ``(n, channels)`` float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    beat = 60.0 / bpm
    out = np.zeros(n)
    for k in range(int(seconds / beat) + 1):
        start = int(k * beat * rate)
        length = min(n - start, int(0.25 * rate))
        if length <= 0:
            continue
        env = np.exp(-np.arange(length) / (0.04 * rate))
        tt = np.arange(length) / rate
        if k % 2 == 0:  # kick
            out[start : start + length] += 0.8 * env * np.sin(2 * np.pi * (60 + 60 * np.exp(-tt * 30)) * tt)
        else:  # snare
            out[start : start + length] += 0.4 * env * rng.standard_normal(length)
        hat = start + int(beat * rate / 2)
        if hat < n:
            h = min(n - hat, int(0.05 * rate))
            out[hat : hat + h] += 0.15 * np.exp(-np.arange(h) / (0.01 * rate)) * rng.standard_normal(h)
    progression = (0, 5, 3, 4)
    for k, step in enumerate(progression * int(seconds // (4 * beat) + 1)):
        start, stop = int(k * 4 * beat * rate), min(n, int((k + 1) * 4 * beat * rate))
        if start >= n:
            break
        tt = t[start:stop]
        f0 = root_hz * 2 ** (step / 12)
        out[start:stop] += 0.3 * np.sin(2 * np.pi * f0 / 2 * tt)  # bass
        for interval in (0, 4, 7):  # sawtooth chord
            f = 2 * f0 * 2 ** (interval / 12)
            out[start:stop] += 0.06 * (2 * ((f * tt) % 1.0) - 1)
    out /= np.abs(out).max() * 1.25
    if channels == 1:
        return out[:, None].astype(np.float32)
    delayed = np.roll(out, int(0.01 * rate)) * 0.8 + 0.05 * rng.standard_normal(n) * 0.1
    return np.stack([out, delayed], axis=1).astype(np.float32)


def write_audio(folder: Path) -> list[Path]:
    mp3 = folder / "song_44k_stereo.mp3"
    sf.write(mp3, synth_song(10.0, 44100, 1, 128, 110.0, 2), 44100, format="MP3", subtype="MPEG_LAYER_III")
    wav = folder / "song_16k_mono.wav"
    sf.write(wav, synth_song(6.2, 16000, 2, 90, 82.4, 1), 16000, subtype="PCM_16")
    return [mp3, wav]


def write_taggrams(folder: Path, files: list[Path]) -> None:
    from musicnn.extractor import extractor

    taggrams = {}
    for model in MODELS:
        for path in files:
            taggram, tags = extractor(str(path), model=model, extract_features=False)
            taggrams[f"{model}/{path.name}"] = np.asarray(taggram, dtype=np.float32)
            taggrams[f"{model}/tags"] = np.asarray(tags)
            top = np.argsort(taggram.mean(axis=0))[::-1][:5]
            print(model, path.name, taggram.shape, [tags[i] for i in top])
    np.savez_compressed(folder / "taggrams.npz", **taggrams)


def write_spectrograms(folder: Path, files: list[Path]) -> None:
    import librosa
    from musicnn.extractor import batch_data

    arrays = {}
    for path in files:
        log_mel = batch_data(str(path), 187, 187)[1]  # log10(10000·x + 1) of the float16 mel power x
        power = ((10.0 ** log_mel.astype(np.float64) - 1.0) / 10000.0).astype(np.float16)  # x, exactly
        assert np.array_equal(np.log10(10000 * power + 1), log_mel)
        arrays[path.name] = power
    arrays["mel_fb"] = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).astype(np.float32)
    np.savez_compressed(folder / "spectrograms.npz", **arrays)


def write_tiny_checkpoint(folder: Path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {
        "scalar_int64": np.array(-123456789012, dtype=np.int64),
        "conv/kernel": rng.standard_normal((3, 2, 1, 4)).astype(np.float32),
        "conv/bias": rng.standard_normal(4).astype(np.float32),
        "half/values": rng.standard_normal(7).astype(np.float16),
        "double/matrix": rng.standard_normal((2, 3)).astype(np.float64),
        "ints/vector": np.arange(-5, 6, dtype=np.int32),
        "flags": np.array([True, False, True]),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    for i in range(150):  # enough names for several restart points and data blocks of the index table
        tensors[f"layer_{i:03d}/batch_normalization/moving_variance"] = rng.random(i % 5 + 1).astype(
            np.float32
        )
    prefix = folder / "tiny_tf_checkpoint" / "tiny"
    prefix.parent.mkdir(exist_ok=True)
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[k]) for k in names],
    )
    np.savez_compressed(folder / "tiny_expected.npz", **{k.replace("/", "|"): v for k, v in tensors.items()})


def library_features(path: Path, model: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The taggram and the features of ``path`` with the library's graph and weights, run one patch at a
    time and joined as ``extractor(path, model, extract_features=True)`` means to join them."""
    import os

    import librosa
    import musicnn
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models
    from musicnn.extractor import batch_data

    tf.compat.v1.disable_eager_execution()
    n_frames = librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP) + 1
    names = VGG_LAYERS if "vgg" in model else MUSICNN_LAYERS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):  # as the extractor builds it, so that the saver finds every tensor
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *layers = models.define_model(x, is_training, model, 50)
        scores = tf.nn.sigmoid(logits)
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
        batch, _ = batch_data(str(path), n_frames, n_frames)
        patches = [
            sess.run([scores, *layers], {x: batch[i : i + 1], is_training: False}) for i in range(len(batch))
        ]
    taggram = np.concatenate([patch[0] for patch in patches])
    features = {}
    for k, name in enumerate(names, start=1):
        parts = [patch[k] if name in PER_PATCH else np.squeeze(patch[k]) for patch in patches]
        features[name] = np.concatenate(parts, axis=0).astype(np.float32)
    return taggram, features


def write_features(folder: Path) -> None:
    from musicnn.extractor import extractor

    arrays = {}
    for model, files in FEATURE_FILES.items():
        for name in files:
            path = folder / name
            taggram, features = library_features(path, model)
            library_taggram, _, library = extractor(str(path), model=model, extract_features=True)
            np.testing.assert_allclose(taggram, library_taggram, atol=1e-6)
            assert sorted(features) == sorted(library), (sorted(features), sorted(library))
            for layer, value in features.items():
                assert value.shape == library[layer].shape, (model, name, layer, value.shape)
                gap = float(np.abs(value - library[layer]).max())
                assert (gap > 1e-2) == (layer in MIXED_UP and "vgg" not in model), (model, name, layer, gap)
                peak = float(np.abs(value).max())
                scale = np.float32(peak / 32767 if peak > 0 else 1.0)
                stored = np.rint(value / scale).astype(np.int16)
                error = float(np.abs(stored * scale - value).max()) / max(peak, 1e-30)
                assert error < 1e-4, (model, name, layer, error)
                arrays[f"{model}/{name}/{layer}"] = stored
                arrays[f"{model}/{name}/{layer}/scale"] = scale
                print(
                    f"{model} {name} {layer} {value.shape} |max| {peak:.3g}, stored to {error:.1e} of it; "
                    f"the extractor's is {gap:.3g} off"
                )
    np.savez_compressed(folder / "features.npz", **arrays)


def main(folder: str, only: str | None = None) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if only == "features":
        write_features(out)
        return
    write_tiny_checkpoint(out)
    files = write_audio(out)
    write_spectrograms(out, files)
    write_taggrams(out, files)
    write_features(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent), *sys.argv[2:3])
