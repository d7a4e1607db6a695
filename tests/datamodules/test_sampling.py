from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.datasets import SongChunks, TrainChunks, WaveAugment, collate_songs
from datamodules.samplers import UnrepeatedDistributedSampler
from musictag.chunks import ChunkPlan, chunk_starts
from musictag.stages.representations.mel import MelSpectrogram
from musictag.training.metrics import aggregate_chunks


@pytest.mark.parametrize(
    "n_songs, world, shards",
    [
        (7, 2, [[0, 2, 4, 6], [1, 3, 5]]),
        (10, 3, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]),
        (2, 4, [[0], [1], [], []]),  # more processes than songs: some score none, none repeats one
    ],
)
def test_every_song_exactly_once_across_ranks(n_songs, world, shards):
    dataset = list(range(n_songs))
    samplers = [UnrepeatedDistributedSampler(dataset, world, rank) for rank in range(world)]
    assert [list(sampler) for sampler in samplers] == shards
    assert [len(sampler) for sampler in samplers] == [len(shard) for shard in shards]


def test_sliding_windows_cover_the_song_end():
    assert chunk_starts(100, 30, 0, "sliding").tolist() == [0, 30, 60, 70]
    assert chunk_starts(100, 30, 0, "sliding", hop=35).tolist() == [0, 35, 70]
    assert chunk_starts(20, 30, 0, "sliding").tolist() == [0]


def test_variable_chunk_counts_are_padded_and_masked():
    items = [
        {"audio": torch.ones(3, 4), "target": torch.tensor([1.0]), "index": torch.tensor(0)},
        {"audio": torch.ones(1, 4), "target": torch.tensor([0.0]), "index": torch.tensor(1)},
    ]
    batch = collate_songs(items)
    assert batch["audio"].shape == (2, 3, 4)
    assert batch["chunk_mask"].tolist() == [[True, True, True], [True, False, False]]
    scores = torch.tensor([[[0.2], [0.4], [0.9]], [[0.6], [0.0], [0.0]]])
    torch.testing.assert_close(
        aggregate_chunks(scores, "mean", batch["chunk_mask"]), torch.tensor([[0.5], [0.6]])
    )
    torch.testing.assert_close(
        aggregate_chunks(scores, "max", batch["chunk_mask"]), torch.tensor([[0.9], [0.6]])
    )
    torch.testing.assert_close(
        aggregate_chunks(scores, "vote", batch["chunk_mask"]), torch.tensor([[1 / 3], [1.0]])
    )


def test_sliding_song_dataset(tiny_corpus):
    from datamodules.cache import AudioCache
    from datamodules.manifest import Manifest

    manifest = Manifest.read_csv(tiny_corpus / "manifest.csv").split("valid")
    dataset = SongChunks(manifest, AudioCache(tiny_corpus / "cache"), ChunkPlan(16000, 0, "sliding", 24000))
    assert dataset[0]["audio"].shape == (3, 16000)  # 4 s at 16 kHz: starts 0, 24000, 48000


def test_a_datamodule_cuts_songs_by_the_plan_of_its_settings_and_the_model(tiny_corpus):
    """Unset, the mode and the sliding hop are the model's; an ``n_chunks`` a whole-song mode does not use
    is ignored (a saved config carries every default), not refused as ``musictag tag`` refuses it."""
    from types import SimpleNamespace

    from datamodules.synthetic import SyntheticDataModule
    from musictag.testing import tiny_synthetic_args

    model = SimpleNamespace(
        input_len=16000, sample_rate=16000, tag_chunk_mode="sliding", tag_chunks=5, tag_chunk_hop=24000
    )
    data = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus), n_chunks=16))
    data.trainer = SimpleNamespace(lightning_module=model)
    data.setup("test")
    assert data.chunk_plan == ChunkPlan(16000, 16, "sliding", 24000) and data.chunk_mode == "sliding"
    assert data.datasets["test"].plan is data.chunk_plan
    assert data.datasets["valid"][0]["audio"].shape == (3, 16000)  # 4 s: starts 0, 24000, 48000
    even = SyntheticDataModule(**tiny_synthetic_args(str(tiny_corpus), chunk_mode="even", chunk_hop=8000))
    even.trainer = SimpleNamespace(lightning_module=model)
    even.setup("test")
    assert even.chunk_plan == ChunkPlan(16000, 2, "even")  # the hop only sliding windows use is dropped
    assert even.datasets["test"][0]["audio"].shape == (2, 16000)


def test_wave_augment_changes_gain_and_adds_noise():
    torch.manual_seed(0)
    audio = torch.sin(torch.linspace(0, 100, 16000))
    out = WaveAugment(gain_db=6.0, noise_snr_db=(10.0, 10.0), p=1.0)(audio)
    residual = out - audio * (out @ audio / (audio @ audio))
    snr = 10 * torch.log10((out - residual).pow(2).mean() / residual.pow(2).mean())
    assert 8.0 < float(snr) < 12.0
    assert not torch.allclose(out, audio)


def test_fixed_crop_with_shift_stays_inside(tiny_corpus):
    from datamodules.cache import AudioCache
    from datamodules.manifest import Manifest

    manifest = Manifest.read_csv(tiny_corpus / "manifest.csv").split("train")
    cache = AudioCache(tiny_corpus / "cache")
    dataset = TrainChunks(manifest, cache, 16000, "center", WaveAugment(max_shift=8000))
    full = cache.read(manifest.ids[0])
    for _ in range(5):
        chunk = dataset[0]["audio"].numpy()
        starts = [s for s in range(0, len(full) - 16000 + 1, 1) if np.array_equal(full[s : s + 16000], chunk)]
        assert starts and abs(starts[0] - (len(full) - 16000) // 2) <= 8000


def test_spec_augment_only_in_training():
    torch.manual_seed(0)
    mel = MelSpectrogram(n_mels=64, freq_masks=2, freq_mask_width=8, time_masks=2, time_mask_width=10)
    wave = torch.randn(3, 16000)
    mel.train()
    masked = mel(wave)
    assert (masked == 0).any()
    mel.eval()
    torch.testing.assert_close(mel(wave), mel(wave))
    assert not (mel(wave) == 0).any()
