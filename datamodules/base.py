"""``TaggingDataModule``: the shared base of every corpus DataModule.

A subclass names its tags, how to prepare its cache (``prepare_data``) and how to load it (``load``);
the base cuts chunks and builds the loaders:

- train: one ``chunk_len`` chunk per song per epoch (``train_crop="random"``: instance-level training;
  ``"center"``/``"start"``: a fixed excerpt, for song-level models), batches of ``batch_size`` chunks;
- val/test/predict: one item per song holding its ``n_chunks`` chunks (``chunk_mode``), batches of
  ``eval_batch_size`` songs, never shuffled.

``chunk_len`` defaults to the model's ``input_len``, read from the LightningModule at ``setup``.
"""

from __future__ import annotations

import os
import warnings
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from datamodules.cache import AudioCache
from datamodules.datasets import SongChunks, TrainChunks, WaveAugment
from datamodules.folds import check_fold_args, fold_manifest
from datamodules.loader import BatchLoader, default_workers, make_loader
from datamodules.manifest import Manifest
from datamodules.samplers import EpochSampler, UnrepeatedDistributedSampler
from musictag.chunks import ChunkMode, ChunkPlan, SettingNames
from musictag.guards import at_least
from musictag.types import ConfigError

SPLITS = ("train", "valid", "test")
#: The chunking settings as a DataModule config spells them (in the messages of :class:`ChunkPlan`).
DATA_NAMES = SettingNames("chunk_mode", "n_chunks", "chunk_hop")

#: The init args that name what a DataModule reads (its cache, audio and metadata): never an output.
DATA_PATHS = (
    "cache_dir",
    "root",
    "audio_root",
    "csv",
    "annotations",
    "metadata_dir",
    "splits_dir",
    "published_dir",
)


def data_paths(datamodule: Any) -> list[str]:
    """The files and folders a DataModule (or a mapping of its init args) reads, among :data:`DATA_PATHS`."""
    get = datamodule.get if isinstance(datamodule, Mapping) else lambda n: getattr(datamodule, n, None)
    return [os.fspath(v) for v in map(get, DATA_PATHS) if isinstance(v, (str, os.PathLike))]


class TaggingDataModule(pl.LightningDataModule):
    """Base DataModule for multi-label tagging corpora.

    Args:
        batch_size: training chunks per batch.
        eval_batch_size: songs per evaluation batch (each with ``n_chunks`` chunks); default
            ``max(1, batch_size // 4)``.
        num_workers: reader threads fetching whole batches ahead of the training loop; 0 reads in the
            loop itself. Default: from the cores this process may use (``cores - 1``, at most 4; 0 on a
            machine of 2 cores or fewer, where reading in the loop is fastest).
        worker_type: ``thread`` (default: batches cross no process boundary, see
            :mod:`datamodules.loader`) or ``process`` (torch's ``DataLoader`` workers).
        chunk_len: samples per chunk; default: the model's ``input_len``.
        n_chunks: chunks per evaluation song.
        chunk_mode: ``even`` (chunks cover the whole song), ``sota`` (sota-music-tagging-models' rule),
            ``sliding`` (a window every ``chunk_hop`` samples: songs get different numbers of chunks) or
            ``patches`` (the musicnn library's non-overlapping patches of the whole song's spectrogram;
            the model's spectrogram hop and n_fft place them). Unset: the model's ``tag_chunk_mode`` (the
            setting an imported published model carries; ``even`` for models trained here).
        chunk_hop: hop of the sliding windows; unset: the model's ``tag_chunk_hop``, else ``chunk_len``.
            (``setup`` builds the :class:`~musictag.chunks.ChunkPlan` of these settings and the model:
            ``chunk_plan``, which cuts the val/test/predict songs.)
        train_crop: ``random``, ``center`` or ``start``.
        augment: training waveform augmentation (:class:`~datamodules.datasets.WaveAugment` arguments,
            e.g. ``{gain_db: 6, noise_snr_db: [20, 40]}``); off by default.
        sample_rate: rate of the cached audio; must equal the model's.
        predict_split: the split ``predict`` scores.
        folds, fold, fold_seed: cross-validation: with ``folds=K`` the songs of all splits are pooled
            and dealt into K folds (whole artists together where the corpus knows them, seeded by
            ``fold_seed``); test is fold ``fold``, valid the fold after it (mod K), train the rest
            (:mod:`datamodules.folds`). Unset: the corpus' own splits. ``musictag cv`` runs every fold.
    """

    tag_names: list[str]

    def __init__(
        self,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        worker_type: Literal["thread", "process"] = "thread",
        chunk_len: int | None = None,
        n_chunks: int = 16,
        chunk_mode: ChunkMode | None = None,
        chunk_hop: int | None = None,
        train_crop: str = "random",
        augment: dict[str, Any] | None = None,
        sample_rate: int = 16000,
        predict_split: str = "test",
        folds: int | None = None,
        fold: int | None = None,
        fold_seed: int = 0,
    ) -> None:
        super().__init__()
        check_fold_args(folds, fold)
        self.folds, self.fold, self.fold_seed = folds, fold, fold_seed
        # a 0 or -1 is refused, never taken as "unset" (a 0 eval_batch_size once became the default)
        for name, value in (
            ("batch_size", batch_size),
            ("n_chunks", n_chunks),
            ("eval_batch_size", eval_batch_size),
            ("chunk_len", chunk_len),
            ("chunk_hop", chunk_hop),
            ("sample_rate", sample_rate),
        ):
            at_least(name, value, 1)
        self.batch_size = batch_size
        self.eval_batch_size = max(1, batch_size // 4) if eval_batch_size is None else eval_batch_size
        self.num_workers = default_workers() if num_workers is None else num_workers
        if self.num_workers < 0 or worker_type not in ("thread", "process"):
            raise ConfigError(
                f"num_workers must be >= 0 and worker_type 'thread' or 'process', got {num_workers} and "
                f"{worker_type!r}"
            )
        self.worker_type = worker_type
        self.chunk_len = chunk_len
        self.n_chunks = n_chunks
        self.chunk_mode: ChunkMode | None = chunk_mode
        self.chunk_hop = chunk_hop
        self.chunk_plan: ChunkPlan | None = None  # built at setup, from these settings and the model
        self.train_crop = train_crop
        try:
            self.augment = WaveAugment(**augment) if augment else None
        except TypeError as err:
            raise ConfigError(f"augment: {err}; it takes gain_db, noise_snr_db, max_shift, p") from None
        self.sample_rate = sample_rate
        self.predict_split = predict_split
        self.manifest: Manifest | None = None
        self.datasets: dict[str, Dataset] = {}

    @property
    def n_tags(self) -> int:
        return len(self.tag_names)

    @abstractmethod
    def load(self) -> tuple[Manifest, AudioCache]:
        """The corpus manifest and its prepared audio cache."""

    def setup(self, stage: str | None = None) -> None:
        model = self.trainer.lightning_module if self.trainer is not None else None
        if self.chunk_len is None:
            if model is None or not hasattr(model, "input_len"):
                raise ConfigError("chunk_len is not set and there is no model to take its input_len from")
            self.chunk_len = int(model.input_len)
        if model is not None and getattr(model, "sample_rate", self.sample_rate) != self.sample_rate:
            raise ConfigError(
                f"the model expects {model.sample_rate} Hz audio but the data is at {self.sample_rate} Hz; "
                "set data sample_rate (and prepare the cache) at the model's rate"
            )
        # unset, the mode (and a sliding hop) are the model's tagging setting; patches take its frames
        self.chunk_plan = ChunkPlan.for_model(
            model,
            self.chunk_mode,
            self.n_chunks,
            self.chunk_hop,
            self.chunk_len,
            names=DATA_NAMES,
            refuse_unused=False,
        )
        self.chunk_mode = self.chunk_plan.mode
        manifest, cache = self.load()
        if cache.sample_rate != self.sample_rate:
            raise ConfigError(
                f"the cache at {cache.root} holds {cache.sample_rate} Hz audio, not the {self.sample_rate} Hz "
                "asked for; prepare a cache at that rate or change sample_rate"
            )
        if list(manifest.tag_names) != list(self.tag_names):
            raise ConfigError(
                f"the manifest's tags {manifest.tag_names} differ from the DataModule's {self.tag_names}"
            )
        if self.folds is not None and self.fold is not None:
            # dealt before unreadable tracks are left out, so a song's fold depends on the corpus alone
            manifest = fold_manifest(manifest, self.folds, self.fold, self.fold_seed)
        damaged = cache.damaged_tracks()
        if damaged:
            first = next(iter(damaged.values()))
            rank_zero_warn(
                f"{len(damaged)} track(s) of the cache cannot be read and are left out ({first}); "
                "prepare the cache again to restore them"
            )
        keep = [i for i, track in enumerate(manifest.ids) if track in cache and track not in damaged]
        if len(keep) < len(manifest):
            missing = len(manifest) - len(keep) - sum(t in damaged for t in manifest.ids)
            if missing:
                rank_zero_warn(f"{missing} track(s) of the manifest are not in the cache and are left out")
            manifest = manifest.take(keep)
        self.manifest = manifest
        chunk_len = self.chunk_len
        self.datasets = {
            "train": TrainChunks(
                manifest.split("train"), cache, chunk_len, self.train_crop, self.augment, seed=_global_seed()
            ),
            **{
                split: SongChunks(manifest.split(split), cache, self.chunk_plan)
                for split in ("valid", "test")
            },
        }
        if self.predict_split not in self.datasets:
            raise ConfigError(f"predict_split must be one of {', '.join(SPLITS)}, got {self.predict_split!r}")

    def _loader(self, split: str, train: bool = False) -> BatchLoader | DataLoader:
        """Whole batches (``__getitems__``) of int16 audio, read ahead by ``num_workers`` readers.

        Training is shuffled by :class:`EpochSampler` (seeded by (seed, epoch), sharded under DDP);
        under DDP (the CLI sets ``use_distributed_sampler=False``) evaluation is split by
        :class:`UnrepeatedDistributedSampler`, so every song is scored exactly once across processes.
        Memory is pinned for CUDA devices."""
        dataset = self.datasets[split]
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ConfigError(f"the {split} split of {type(self).__name__} is empty")
        trainer = self.trainer
        pin = trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler: Sampler
        if train:
            sampler = EpochSampler(dataset, world, rank, seed=_global_seed())
        elif world > 1:
            sampler = UnrepeatedDistributedSampler(dataset, world, rank)
        else:
            sampler = SequentialSampler(dataset)
        batch_sampler = BatchSampler(
            sampler,
            self.batch_size if train else self.eval_batch_size,
            drop_last=train and len(dataset) > self.batch_size,  # type: ignore[arg-type]
        )
        return make_loader(dataset, batch_sampler, self.num_workers, self.worker_type, pin)

    def train_dataloader(self) -> BatchLoader | DataLoader:
        loader = self._loader("train", train=True)
        _resume_mid_epoch(loader, self.trainer)
        return loader

    def val_dataloader(self) -> BatchLoader | DataLoader:
        return self._loader("valid")

    def test_dataloader(self) -> BatchLoader | DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> BatchLoader | DataLoader:
        return self._loader(self.predict_split)


def _resume_mid_epoch(loader: BatchLoader | DataLoader, trainer: Any) -> None:
    """After a restore from a mid-epoch checkpoint (SLURM's requeue signal: ``hpc_ckpt_N.ckpt``), start
    the epoch's order where it stopped rather than at its start: the batches trained before the
    checkpoint are not trained again, the rest not skipped."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    sampler = getattr(batch_sampler, "sampler", None)
    if trainer is None or not isinstance(sampler, EpochSampler) or not len(batch_sampler):  # type: ignore[arg-type]
        return
    n_batches = len(batch_sampler)  # type: ignore[arg-type]
    accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
    steps_per_epoch = -(-n_batches // accumulate)
    epoch = int(getattr(trainer, "current_epoch", 0))
    steps_done = int(getattr(trainer, "global_step", 0)) - epoch * steps_per_epoch
    batches_done = min(n_batches, steps_done * accumulate)
    if 0 < batches_done < n_batches:
        sampler.resume(epoch, batches_done * int(batch_sampler.batch_size))  # type: ignore[union-attr]
        # Lightning's warning that a plain DataLoader cannot resume mid-epoch: this one does
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")


def _global_seed() -> int:
    """The seed of ``seed_everything`` (Lightning keeps it in ``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))
