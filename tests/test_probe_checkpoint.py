"""A musictag checkpoint as a frozen encoder (``checkpoint_encoder``, ``musictag embed --ckpt``): a probe
trained live on it and one trained from its embedding cache give the same metrics, for a tiny model and
for the musicnn library's MTT model; the cache holds exactly the checkpoint's layer outputs, and the
frozen network is unchanged by fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers.probe import assert_same_metrics, fit_and_test
from musictag.cli import main
from musictag.testing import tiny_synthetic_args


def embed(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", *args, "--quiet"])
    return int(exit_info.value.code or 0)


def live_and_cached(ckpt: Path, layers: list[str], corpus: Path, tmp_path: Path, time_pool: str = "none"):
    from musictag.inference.loading import load_model

    input_len = load_model(str(ckpt), torch.device("cpu")).input_len
    data_args = {**tiny_synthetic_args(str(corpus)), "train_crop": "start", "chunk_len": input_len}
    data = [f"--data.init_args.{k}={v}" for k, v in data_args.items()]
    frontend = {"name": "checkpoint_encoder", "ckpt": str(ckpt), "layers": layers, "encoder_batch": 1}
    frontend["time_pool"] = time_pool
    live_model = [
        "--model.init_args.representation=waveform",
        "--model.init_args.frontend=" + json.dumps(frontend),
        f"--model.init_args.input_len={input_len}",
    ]
    live = fit_and_test(["--data=datamodules.SyntheticDataModule", *data], live_model, tmp_path, "live")
    config = tmp_path / "data.yaml"
    config.write_text(
        yaml.safe_dump({"data": {"class_path": "datamodules.SyntheticDataModule", "init_args": data_args}})
    )
    cache = tmp_path / "embeddings"
    args = [f"--ckpt={ckpt}", f"--data={config}", f"--out={cache}", f"--layers={','.join(layers)}"]
    assert embed(*args, "--encoder-batch=1", f"--time-pool={time_pool}") == 0
    cached_model = [
        "--model.init_args.representation=" + json.dumps({"name": "embedding", "cache": str(cache)}),
        "--model.init_args.frontend=" + json.dumps({"name": "layer_mix"}),
    ]
    cached_data = [
        "--data=datamodules.EmbeddingDataModule",
        f"--data.init_args.embeddings={cache}",
        f"--data.init_args.batch_size={data_args['batch_size']}",
    ]
    cached = fit_and_test(cached_data, cached_model, tmp_path, "cached")
    return live, cached, cache


def check_rows_and_frozen_weights(ckpt: Path, cache: Path, corpus: Path, runs: Path) -> None:
    """The cache's rows are the checkpoint's float16 ``penultimate`` (its first layer) of the chunks
    evaluation cuts, and the frozen network in the live probe's checkpoint is the checkpoint's own."""
    from datamodules.cache import AudioCache
    from datamodules.embeddings import EmbeddingStore
    from musictag.chunks import chunk_starts, cut_chunks
    from musictag.inference.features import network_features
    from musictag.inference.loading import load_model

    index = json.loads((cache / "index.json").read_text())
    assert index["encoder"]["family"] == "checkpoint" and index["encoder"]["path"] == str(ckpt)
    net = load_model(str(ckpt), torch.device("cpu")).net
    track = sorted(index["tracks"]["test"])[0]
    audio = AudioCache(corpus / "cache").read(track)
    starts = chunk_starts(len(audio), net.input_len, 2, "even")
    found = network_features(net, torch.from_numpy(cut_chunks(audio, starts, net.input_len)), ["penultimate"])
    rows = np.asarray(EmbeddingStore(cache).rows("test", track), dtype=np.float32)
    assert rows.shape == (2, len(index["layers"]), *index["frame_shape"])
    np.testing.assert_array_equal(rows[:, 0, 0], found["penultimate"].half().float().numpy())
    (last,) = (runs / "live").glob("version_0/checkpoints/last.ckpt")
    state = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "net.frontend.net."
    frozen = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    assert frozen.keys() == net.state_dict().keys()
    for key, value in net.state_dict().items():
        assert torch.equal(frozen[key], value), key
    # a probe trained from the cache tags audio: rebuilt on the checkpoint its index.json records, its
    # logits on the chunks are the cached probe's on their cached rows
    (probe,) = (runs / "cached").glob("version_0/checkpoints/last.ckpt")
    from musictag.inference.encoder import CheckpointEncoder
    from musictag.training.module import TaggingModule

    rebuilt = load_model(str(probe), torch.device("cpu"))
    assert isinstance(rebuilt.net.frontend, CheckpointEncoder)
    on_rows = TaggingModule.load_from_checkpoint(str(probe), map_location="cpu", weights_only=True).eval()
    with torch.no_grad():
        live_logits = rebuilt(torch.from_numpy(cut_chunks(audio, starts, net.input_len)))
        cached_logits = on_rows(torch.from_numpy(rows.reshape(len(rows), -1)))
    torch.testing.assert_close(live_logits, cached_logits, rtol=0, atol=1e-5)


@pytest.mark.slow  # the musicnn test below is the fast suite's (the same checks, on a real model)
def test_a_probe_on_a_tiny_checkpoint_is_the_same_live_and_cached(tiny_ckpt, tiny_corpus, tmp_path):
    live, cached, cache = live_and_cached(tiny_ckpt, ["penultimate", "head.0"], tiny_corpus, tmp_path)
    assert_same_metrics(live, cached)
    index = json.loads((cache / "index.json").read_text())
    assert index["layers"] == ["penultimate", "head.0"] and index["frame_shape"] == [1, 8]
    check_rows_and_frozen_weights(tiny_ckpt, cache, tiny_corpus, tmp_path)


def test_the_encoder_refuses_another_rate_length_and_mixed_shapes(tiny_ckpt):
    from musictag.inference.encoder import CheckpointEncoder
    from musictag.inference.loading import load_model
    from musictag.types import ConfigError

    n = load_model(str(tiny_ckpt), torch.device("cpu")).input_len
    with pytest.raises(
        ConfigError, match=f"the data is at 22050 Hz but the checkpoint {tiny_ckpt} takes 16000 Hz"
    ):
        CheckpointEncoder((1, n), 22050, str(tiny_ckpt))
    with pytest.raises(ConfigError, match=f"takes chunks of {n} samples, not 1000"):
        CheckpointEncoder((1, 1000), 16000, str(tiny_ckpt))
    with pytest.raises(ConfigError, match=r"one frame shape .* penultimate \[1, 8\], head.3 \[1, 3\]"):
        CheckpointEncoder((1, n), 16000, str(tiny_ckpt), layers=["penultimate", "head.3"])
    stage = CheckpointEncoder((1, n), 16000, str(tiny_ckpt), layers="frontend", time_pool="mean")
    stage.train()
    assert not stage.net.training and not any(p.requires_grad for p in stage.net.parameters())
    assert stage(torch.zeros(2, 1, n)).shape == (2, stage.frame_shape[1], 1)


@pytest.fixture(scope="module")
def mtt_musicnn(tmp_path_factory) -> Path:
    from helpers.reference import musicnn_models_dir, require_reference
    from musictag.convert.musicnn import import_musicnn

    folder = Path(require_reference(musicnn_models_dir(), "the musicnn wheel's models", "run `make install`"))
    return import_musicnn("MTT_musicnn", folder / "MTT_musicnn", tmp_path_factory.mktemp("mtt") / "mtt.ckpt")


def test_a_probe_on_the_musicnn_mtt_model_is_the_same_live_and_cached(mtt_musicnn, tiny_corpus, tmp_path):
    live, cached, cache = live_and_cached(mtt_musicnn, ["penultimate"], tiny_corpus, tmp_path)
    assert_same_metrics(live, cached)
    index = json.loads((cache / "index.json").read_text())
    assert index["frame_shape"] == [1, 200] and index["chunk_len"] == 48128
    check_rows_and_frozen_weights(mtt_musicnn, cache, tiny_corpus, tmp_path)


def test_embed_resumes_only_on_the_same_checkpoint_file(tiny_ckpt, tiny_corpus, tmp_path, capsys):
    import shutil

    from musictag.testing import TINY_SHORT_CHUNK, save_module_checkpoint
    from musictag.training.module import TaggingModule

    ckpt = tmp_path / "model.ckpt"
    shutil.copy(tiny_ckpt, ckpt)
    config = tmp_path / "data.yaml"
    args = tiny_synthetic_args(str(tiny_corpus))
    config.write_text(
        yaml.safe_dump({"data": {"class_path": "datamodules.SyntheticDataModule", "init_args": args}})
    )
    cache = tmp_path / "embeddings"
    given = [f"--ckpt={ckpt}", f"--data={config}", f"--out={cache}"]
    assert embed(*given) == 0
    assert embed(*given) == 0  # finished, same settings: used again
    torch.manual_seed(1)  # another model of the same shapes at the same path
    other = TaggingModule(n_tags=3, tag_names=["a", "b", "c"], **TINY_SHORT_CHUNK).eval()
    save_module_checkpoint(other, ckpt)
    capsys.readouterr()
    assert embed(*given) == 2
    err = capsys.readouterr().err
    assert "holds a finished embedding cache made with other settings: encoder_sha256" in err
