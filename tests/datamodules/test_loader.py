"""The batch loader: whole int16 batches, the same data with any number of readers, DDP shards,
threads that stop, errors that reach the caller, damaged shards left out before an epoch starts."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from datamodules.cache import AudioCache
from datamodules.datasets import SongChunks, TrainChunks, WaveAugment, collate_songs, random_uniforms
from datamodules.loader import BatchLoader
from datamodules.manifest import Manifest
from datamodules.synthetic import SyntheticDataModule
from musictag.chunks import ChunkPlan
from musictag.testing import tiny_synthetic_args


def datamodule(tiny_corpus, **settings) -> SyntheticDataModule:
    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus)), chunk_len=16000, **settings)
    data.setup("fit")
    return data


def epoch_batches(loader, epoch: int) -> list[dict[str, torch.Tensor]]:
    loader.batch_sampler.sampler.set_epoch(epoch)  # as Lightning does
    return list(loader)


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_training_batches_are_int16_and_match_the_cache(tiny_corpus):
    data = datamodule(tiny_corpus)
    batch = next(iter(data.train_dataloader()))
    assert batch["audio"].dtype == torch.int16 and batch["audio"].shape == (4, 16000)
    dataset = data.datasets["train"]
    for row, index in enumerate(batch["index"].tolist()):
        track = dataset.cache.read_int16(dataset.manifest.ids[index])
        chunk = batch["audio"][row].numpy()
        candidates = np.flatnonzero(track[: len(track) - 16000 + 1] == chunk[0])
        starts = [s for s in candidates if np.array_equal(track[s : s + 16000], chunk)]
        assert starts, f"row {row} is not a chunk of song {index}"
        torch.testing.assert_close(batch["target"][row], dataset.targets[index])


@pytest.mark.parametrize("settings", [{"num_workers": 2}, {"num_workers": 1, "worker_type": "process"}])
def test_an_epoch_is_the_same_with_any_reader(tiny_corpus, settings):
    augment = {"gain_db": 6.0, "noise_snr_db": [10, 30], "p": 0.5}
    reference = epoch_batches(datamodule(tiny_corpus, num_workers=0, augment=augment).train_dataloader(), 3)
    other = epoch_batches(datamodule(tiny_corpus, augment=augment, **settings).train_dataloader(), 3)
    assert_same_batches(reference, other)
    assert {"gain", "noise_snr_db"} <= reference[0].keys()
    # a new epoch: another order and other crops; the same epoch again: the same data
    loader = datamodule(tiny_corpus, num_workers=2, augment=augment).train_dataloader()
    assert_same_batches(epoch_batches(loader, 3), reference)
    fourth = epoch_batches(loader, 4)
    assert not all(torch.equal(a["audio"], b["audio"]) for a, b in zip(reference, fourth, strict=True))


def test_crops_depend_only_on_seed_epoch_and_index():
    index = np.arange(10)
    draws = random_uniforms(7, np.full(10, 2), index, 6)
    assert draws.shape == (10, 6) and ((draws >= 0) & (draws < 1)).all()
    np.testing.assert_array_equal(random_uniforms(7, np.full(3, 2), index[[4, 1, 9]], 6), draws[[4, 1, 9]])
    np.testing.assert_array_equal(random_uniforms(7, np.full(10, 2), index, 1), draws[:, :1])
    assert not np.array_equal(random_uniforms(7, np.full(10, 3), index, 6), draws)
    assert not np.array_equal(random_uniforms(8, np.full(10, 2), index, 6), draws)
    many = random_uniforms(0, np.zeros(20000, np.int64), np.arange(20000), 1)[:, 0]
    assert abs(many.mean() - 0.5) < 0.01 and np.histogram(many, bins=10, range=(0, 1))[0].min() > 1800


def test_training_is_sharded_across_processes(tiny_corpus):
    seen = []
    for rank in range(2):
        data = datamodule(tiny_corpus, num_workers=2)
        data.trainer = SimpleNamespace(
            world_size=2, global_rank=rank, accelerator=object(), lightning_module=None
        )
        batches = epoch_batches(data.train_dataloader(), 0)
        seen.append(torch.cat([b["index"] for b in batches]).tolist())
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(16))


def test_evaluation_batches_hold_every_song_once_unpadded(tiny_corpus):
    scored = []
    for rank in range(3):
        data = datamodule(tiny_corpus, num_workers=2)
        data.trainer = SimpleNamespace(
            world_size=3, global_rank=rank, accelerator=object(), lightning_module=None
        )
        for batch in data.val_dataloader():
            assert batch["audio"].dtype == torch.int16 and batch["audio"].shape[1:] == (2, 16000)
            scored += batch["index"].tolist()
    assert sorted(scored) == list(range(8))  # 8 songs over 3 ranks: 3 + 3 + 2, none twice


@pytest.mark.parametrize("mode", ["even", "sliding", "patches"])
def test_evaluation_batch_equals_its_songs(tiny_corpus, mode):
    manifest = Manifest.read_csv(tiny_corpus / "manifest.csv").split("valid")
    cache = AudioCache(tiny_corpus / "cache")
    # patches: chunks of 20 frames of 512 samples every 256, the first starting before the song
    hop, n_fft, chunk_len = (256, 512, 19 * 256 + 512) if mode == "patches" else (30000, None, 20000)
    dataset = SongChunks(manifest, cache, ChunkPlan(chunk_len, 3, mode, hop, n_fft))
    if mode == "patches":
        assert dataset.starts(0)[0] < 0
    batch = dataset.__getitems__([0, 2, 1])
    items = collate_songs([dataset[i] for i in (0, 2, 1)])
    assert batch.keys() == items.keys()
    torch.testing.assert_close(batch["audio"].float() / 32768, items["audio"], rtol=0, atol=0)
    torch.testing.assert_close(batch["index"], items["index"])


def test_one_item_is_float_with_its_augmentation(tiny_corpus):
    manifest = Manifest.read_csv(tiny_corpus / "manifest.csv").split("train")
    cache = AudioCache(tiny_corpus / "cache")
    plain = TrainChunks(manifest, cache, 16000, "center")
    louder = TrainChunks(manifest, cache, 16000, "center", WaveAugment(gain_db=6.0, p=1.0))
    batch = louder.__getitems__([(0, 0), (1, 0)])
    assert ((batch["gain"] >= 10 ** (-6 / 20) - 1e-6) & (batch["gain"] <= 10 ** (6 / 20) + 1e-6)).all()
    assert torch.isinf(batch["noise_snr_db"]).all()
    item = louder[(0, 0)]
    torch.testing.assert_close(item["audio"], plain[(0, 0)]["audio"] * batch["gain"][0])


class Failing(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitems__(self, keys):
        if 5 in keys:
            raise ValueError("cannot read key 5")
        return {"audio": torch.tensor(keys)}


def test_a_reader_error_reaches_the_loop_and_threads_stop():
    sampler = torch.utils.data.BatchSampler(range(8), 2, drop_last=False)
    loader = BatchLoader(Failing(), sampler, num_workers=2)
    iterator = iter(loader)
    assert next(iterator)["audio"].tolist() == [0, 1]
    assert next(iterator)["audio"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="cannot read key 5"):
        next(iterator)
    iterator = iter(BatchLoader(Failing(), torch.utils.data.BatchSampler(range(4), 1, False), 2, prefetch=1))
    next(iterator)
    del iterator  # abandoned mid-epoch: its readers end
    deadline = time.monotonic() + 5
    while any(t.name.startswith("musictag-reader") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "reader threads still running"
        time.sleep(0.05)


def test_a_damaged_shard_is_left_out_before_the_epoch(tmp_path):
    rng = np.random.default_rng(0)
    tracks = [(f"t{i}", (0.1 * rng.standard_normal(20000)).astype(np.float32)) for i in range(4)]
    cache = AudioCache.write(tmp_path / "cache", tracks, 16000)
    shard = tmp_path / "cache" / cache.shards[0]
    shard.write_bytes(shard.read_bytes()[: 2 * 50000])  # t0, t1 whole; t2 cut short; t3 gone
    damaged = AudioCache(tmp_path / "cache").damaged_tracks()
    assert sorted(damaged) == ["t2", "t3"]
    assert "truncated to 50000 samples" in damaged["t2"]

    from musictag.bench.data import CacheDataModule

    manifest = Manifest(
        ("t0", "t1", "t2", "t3"), ("train",) * 4, np.ones((4, 1), np.uint8), ("x",), ("",) * 4
    )
    data = CacheDataModule(manifest, AudioCache(tmp_path / "cache"), batch_size=2, chunk_len=16000)
    with pytest.warns(UserWarning, match="2 track\\(s\\) of the cache cannot be read and are left out"):
        data.setup("fit")
    assert data.datasets["train"].manifest.ids == ("t0", "t1")
    assert sum(len(b["audio"]) for b in data.train_dataloader()) == 2


@pytest.mark.parametrize("workers", [0, 2])
def test_the_epoch_is_read_at_the_first_batch_not_at_iter(tiny_corpus, workers):
    """Lightning may call iter() on the loader before set_epoch: the order must follow set_epoch."""
    loader = datamodule(tiny_corpus, num_workers=workers).train_dataloader()
    expected = epoch_batches(loader, 5)
    loader.batch_sampler.sampler.set_epoch(0)
    iterator = iter(loader)
    loader.batch_sampler.sampler.set_epoch(5)
    assert_same_batches(list(iterator), expected)
