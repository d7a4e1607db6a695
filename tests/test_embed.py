"""``musictag embed``: the embedding cache holds the encoder's hidden states of exactly the chunks training
and evaluation take, is resumable, and its DataModule serves them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("transformers")

from datamodules.embeddings import EmbeddingDataModule, EmbeddingStore, EmbeddingTrainChunks
from datamodules.manifest import Manifest
from musictag.cli import main
from musictag.stages.registry import ConfigError
from musictag.testing import tiny_synthetic_args
from musictag.testing.encoders import make_tiny_encoder

CHUNK_LEN = 8000


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_tiny_encoder("hubert", tmp_path_factory.mktemp("hubert"))


def data_config(tmp_path, corpus, **overrides):
    init_args = {
        **tiny_synthetic_args(str(corpus)),
        "chunk_len": CHUNK_LEN,
        "train_crop": "random",
        **overrides,
    }
    path = tmp_path / "data.yaml"
    path.write_text(
        yaml.safe_dump({"data": {"class_path": "datamodules.SyntheticDataModule", "init_args": init_args}})
    )
    return path


def embed(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", *args, "--quiet"])
    return exit_info.value.code


def test_embed_stores_the_chunks_of_every_split_and_resumes(encoder, tiny_corpus, tmp_path, capsys):
    from datamodules.cache import AudioCache
    from musictag.chunks import chunk_starts, cut_chunks
    from musictag.stages.frontends.hf_encoder import PretrainedEncoder

    config = data_config(tmp_path, tiny_corpus)
    out = tmp_path / "embeddings"
    args = [f"--encoder={encoder}", f"--data={config}", f"--out={out}", "--layers=0,2", "--encoder-batch=1"]
    assert embed(*args, "--tracks-per-shard=5") == 0
    assert "16 train, 8 valid, 8 test tracks" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["layers"] == [0, 2] and index["frame_shape"] == [99, 32] and index["dtype"] == "float16"
    assert (index["chunk_len"], index["n_chunks"], index["train_crop"]) == (CHUNK_LEN, 2, "random")
    assert len(index["shards"]) == 4 + 2 + 2  # 16 / 8 / 8 tracks, 5 per shard
    # the cached rows are the encoder's float16 hidden states of the chunks evaluation cuts
    stage = PretrainedEncoder((1, CHUNK_LEN), 16000, str(encoder), layers=[0, 2], encoder_batch=1).eval()
    cache = AudioCache(tiny_corpus / "cache")
    store = EmbeddingStore(out)
    manifest = Manifest.read_csv(out / "manifest.csv")
    for split in ("train", "test"):
        track = manifest.split(split).ids[1]
        audio = cache.read(track)
        chunks = torch.from_numpy(
            cut_chunks(audio, chunk_starts(len(audio), CHUNK_LEN, 2, "even"), CHUNK_LEN)
        )
        with torch.no_grad():
            expected = stage.hidden_states(chunks).numpy()
        assert np.array_equal(np.asarray(store.rows(split, track)), expected), split
    # interrupted after two shards: the rerun redoes the rest and gives the same bytes
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    (out / "index.json").unlink()
    for name in ("train-00002", "valid-00000", "valid-00001", "test-00000", "test-00001"):
        (out / "shards" / f"{name}.json").unlink()
    (out / "shards" / "test-00001.f16").write_bytes(b"half-written")
    assert embed(*args, "--tracks-per-shard=5") == 0
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before
    # resuming with other settings is refused
    (out / "index.json").unlink()
    assert embed(*args, "--tracks-per-shard=4") == 2
    assert "holds an unfinished embedding cache with other settings" in capsys.readouterr().err


def test_embed_reads_a_data_section_given_by_path_from_another_cwd(
    encoder, tiny_corpus, tmp_path, monkeypatch
):
    flat = data_config(tmp_path, tiny_corpus)
    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "synthetic.yaml").write_text(
        yaml.safe_dump(yaml.safe_load(flat.read_text())["data"])
    )
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "live.yaml").write_text(
        yaml.safe_dump({"trainer": {"max_epochs": 1}, "data": "../corpora/synthetic.yaml"})
    )
    common = ["--layers=1", "--time-pool=mean"]
    assert embed(f"--encoder={encoder}", f"--data={flat}", f"--out={tmp_path / 'flat'}", *common) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert embed(f"--encoder={encoder}", "--data=../probes/live.yaml", "--out=nested", *common) == 0
    nested, reference = tmp_path / "elsewhere" / "nested", tmp_path / "flat"
    index = json.loads((nested / "index.json").read_text())
    assert index == json.loads((reference / "index.json").read_text())
    for name in index["shards"]:
        assert (nested / name).read_bytes() == (reference / name).read_bytes(), name


def test_embedding_datamodule_serves_the_cache(encoder, tiny_corpus, tmp_path):
    out = tmp_path / "embeddings"
    config = data_config(tmp_path, tiny_corpus)
    assert embed(f"--encoder={encoder}", f"--data={config}", f"--out={out}", "--time-pool=mean") == 0
    datamodule = EmbeddingDataModule(str(out), batch_size=4)
    assert datamodule.tag_names == json.loads((out / "index.json").read_text())["tag_names"]
    datamodule.setup()
    width = 3 * 1 * 32  # all 3 hidden states, one (time-averaged) frame, 32 wide
    train, test = datamodule.datasets["train"], datamodule.datasets["test"]
    assert len(train) == 16 and len(test) == 8
    assert test[0]["audio"].shape == (2, width) and test[0]["audio"].dtype == torch.float32
    # a song with several cached training chunks gives one per epoch, drawn from (seed, epoch, index)
    assert isinstance(train, EmbeddingTrainChunks)
    draws = [train[(3, epoch)]["audio"] for epoch in range(8)]
    assert all(d.shape == (width,) for d in draws)
    assert torch.equal(train[(3, 5)]["audio"], draws[5])
    rows = torch.from_numpy(
        np.asarray(datamodule.datasets["train"].store.rows("train", train.manifest.ids[3]), np.float32)
    )
    assert {int(torch.argmin((rows.reshape(2, -1) - d).abs().sum(1))) for d in draws} == {0, 1}
    batch = next(iter(datamodule.test_dataloader()))
    assert batch["audio"].shape == (1, 2, width)
    # train_chunks="all": each cached chunk of each training song is an example of every epoch
    every = EmbeddingDataModule(str(out), batch_size=4, train_chunks="all")
    every.setup()
    examples = every.datasets["train"]
    assert len(examples) == 16 * 2
    assert torch.equal(examples[7]["audio"], rows[1].reshape(-1)) and int(examples[7]["index"]) == 7
    assert torch.equal(examples[6]["audio"], rows[0].reshape(-1))
    assert torch.equal(examples[7]["target"], train.targets[3])
    seen = torch.cat([b["index"] for b in every.train_dataloader()])
    assert sorted(seen.tolist()) == list(range(32))  # batch 4 divides 32: nothing dropped
    with pytest.raises(ConfigError, match="train_chunks must be 'one' or 'all', got 'some'"):
        EmbeddingDataModule(str(out), train_chunks="some")  # type: ignore[arg-type]


def test_time_pool_mean_is_the_mean_of_the_frames(encoder):
    from musictag.stages.frontends.hf_encoder import PretrainedEncoder

    frames = PretrainedEncoder((1, CHUNK_LEN), 16000, str(encoder), layers="all", float16=False).eval()
    pooled = PretrainedEncoder((1, CHUNK_LEN), 16000, str(encoder), layers="all", time_pool="mean").eval()
    assert pooled.frame_shape == (1, 32)
    wave = torch.randn(2, CHUNK_LEN)
    with torch.no_grad():
        expected = frames.hidden_states(wave).mean(dim=2, keepdim=True).half()
        torch.testing.assert_close(pooled.hidden_states(wave), expected, atol=1e-3, rtol=0)


def test_embed_errors_are_one_line(encoder, tiny_corpus, tmp_path, capsys):
    config = data_config(tmp_path, tiny_corpus, chunk_len=None)
    assert embed(f"--encoder={encoder}", f"--data={config}", f"--out={tmp_path / 'x'}") == 2
    assert (
        capsys.readouterr().err.strip()
        == f"musictag embed: error: {config} sets no chunk_len: give --chunk-len (samples per chunk)"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: {max_epochs: 1}\n")
    assert embed(f"--encoder={encoder}", f"--data={bad}", f"--out={tmp_path / 'x'}") == 2
    assert "has no data section with a class_path" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no complete embedding cache at .*: run `musictag embed"):
        EmbeddingDataModule(str(tmp_path / "missing"))
