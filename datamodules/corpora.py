"""DataModules of the published corpora and of a user's own audio, over one shared base.

A corpus DataModule reads a *cache folder* — ``manifest.csv`` (the reader's manifest) plus the audio
cache (:mod:`datamodules.cache`) — and prepares it first if it is missing, from ``audio_root`` and the
corpus metadata (``musictag prepare`` does the same from the command line). Once a cache exists, the
metadata is not needed again. Tracks the cache could not use (``report.json``) never reach a loader.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Any

from datamodules.base import TaggingDataModule
from datamodules.cache import AudioCache, CacheError, check_source, claim_cache_dir
from datamodules.manifest import Manifest
from datamodules.prepare import prepare_cache
from musictag.guards import at_least
from musictag.types import ConfigError, Pathlike

MANIFEST = "manifest.csv"


def prepare_corpus(
    manifest: Manifest,
    audio_root: Pathlike,
    cache_dir: Pathlike,
    sample_rate: int = 16000,
    workers: int = 1,
    min_seconds: float = 0.0,
    source: Any = None,
    progress: bool = True,
    tracks_per_shard: int = 128,
) -> AudioCache:
    """Write ``manifest.csv`` and decode every track of ``manifest`` (paths under ``audio_root``) into
    ``cache_dir``, a new or empty folder, or an earlier cache (never a folder of the user's files)."""
    if not os.path.isdir(audio_root):
        raise CacheError(
            f"audio root {audio_root} is not a folder; give the folder that holds the corpus audio"
        )
    if len(manifest) == 0:
        raise CacheError("the metadata lists no tracks; nothing to prepare")
    cache_dir = claim_cache_dir(cache_dir)
    if not AudioCache.exists(cache_dir):
        manifest.write_csv(cache_dir / MANIFEST)
    tracks = [
        (track, os.path.join(audio_root, path))
        for track, path in zip(manifest.ids, manifest.paths, strict=True)
    ]
    return prepare_cache(
        cache_dir,
        tracks,
        sample_rate,
        workers,
        tracks_per_shard,
        min_seconds,
        source=source,
        progress=progress,
    )


class CorpusDataModule(TaggingDataModule):
    """Base of the corpus DataModules: a cache folder, prepared from ``audio_root`` when missing.

    Args:
        cache_dir: the folder holding ``manifest.csv`` and the audio cache.
        audio_root: the corpus audio; needed only to prepare the cache.
        workers: decoding processes when preparing.
        min_seconds: tracks shorter than this are left out (and reported) when preparing.
        tracks_per_shard: tracks per cache shard (the unit of work a resumed preparation redoes).
        **kwargs: :class:`~datamodules.base.TaggingDataModule` arguments.
    """

    corpus = "corpus"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        workers: int = 1,
        min_seconds: float = 0.0,
        tracks_per_shard: int = 128,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        at_least("workers", workers, 1)
        at_least("tracks_per_shard", tracks_per_shard, 1)
        at_least("min_seconds", min_seconds, 0)
        for name, value in (("cache_dir", cache_dir), ("audio_root", audio_root)):
            if value is not None and not os.fspath(value).strip():  # Path("") is ".": the working folder
                raise ConfigError(f"data.init_args.{name} is an empty path; give a folder")
        self.tracks_per_shard = tracks_per_shard
        self.cache_dir = Path(cache_dir)
        self.audio_root = audio_root
        self.workers = workers
        self.min_seconds = min_seconds
        self._metadata_manifest: Manifest | None = None
        self.tag_names = list(self._manifest().tag_names)

    @abstractmethod
    def read_metadata(self) -> Manifest:
        """The corpus manifest from its metadata files (the reader of this corpus)."""

    #: the argument naming this corpus' metadata (for messages)
    metadata_arg = "metadata"

    def metadata_source(self) -> dict[str, Any]:
        """The metadata and reader settings the manifest is made from (recorded in the cache)."""
        return {}

    def source(self) -> dict[str, Any]:
        """What the cache is made from: compared with a cache's record before it is used."""
        return {
            "record": 1,
            "corpus": self.corpus,
            "audio_root": _path(self.audio_root),
            "min_seconds": self.min_seconds,
            **self.metadata_source(),
        }

    def _manifest(self) -> Manifest:
        if (self.cache_dir / MANIFEST).is_file() and AudioCache.exists(self.cache_dir):
            check_source(self.cache_dir, AudioCache(self.cache_dir).source, self.source())
            return Manifest.read_csv(self.cache_dir / MANIFEST)
        if self.audio_root is not None and not os.path.isdir(self.audio_root):
            raise ConfigError(
                f"{self.corpus}: audio root {self.audio_root} not found (and no prepared cache at "
                f"{self.cache_dir}); set data.init_args.audio_root to the corpus audio folder, or "
                "cache_dir to a prepared cache"
            )
        if self._metadata_manifest is None:
            try:
                self._metadata_manifest = self.read_metadata()
            except ConfigError:
                raise
            except (OSError, ValueError) as err:  # the reader's message names the file and the line
                raise ConfigError(
                    f"{self.corpus}: {err} (set data.init_args.{self.metadata_arg}"
                    f"{' or data.init_args.audio_root' if self.metadata_arg == 'annotations' else ''})"
                ) from None
        return self._metadata_manifest

    def prepare_data(self) -> None:
        if AudioCache.exists(self.cache_dir):
            return
        if self.audio_root is None:
            raise ConfigError(
                f"no prepared cache at {self.cache_dir}: give audio_root (and the metadata) to prepare it, "
                f"or run `musictag prepare {self.corpus} --root AUDIO --out {self.cache_dir} ...`"
            )
        cache = prepare_corpus(
            self._manifest(),
            self.audio_root,
            self.cache_dir,
            self.sample_rate,
            self.workers,
            self.min_seconds,
            self.source(),
            tracks_per_shard=self.tracks_per_shard,
        )
        problems = cache.report()
        if problems:
            print(f"musictag: {len(problems)} track(s) left out, listed in {cache.root / 'report.json'}")

    def load(self) -> tuple[Manifest, AudioCache]:
        self.prepare_data()
        return Manifest.read_csv(self.cache_dir / MANIFEST), AudioCache(self.cache_dir)


def _need(value: Any, name: str, corpus: str) -> Any:
    if value is None:
        raise ConfigError(
            f"{corpus}: no prepared cache was found and {name} is not set; set data.init_args.{name} "
            "to read the corpus metadata (and audio_root to prepare the cache)"
        )
    return value


def _path(value: str | os.PathLike | None) -> str | None:
    """A path as recorded in a cache's source: absolute, symlinks resolved."""
    return None if value is None else os.path.realpath(os.path.expanduser(os.fspath(value)))


class MTATDataModule(CorpusDataModule):
    """MagnaTagATune (:mod:`datamodules.mtat`). ``annotations``: ``annotations_final.csv`` (default: in
    ``audio_root``); ``split``: ``clean``, ``all`` or ``published`` (with ``published_dir``). The clean
    split also leaves out clips under 29.1 s when the cache is prepared."""

    corpus = "mtat"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        annotations: str | None = None,
        split: str = "clean",
        published_dir: str | None = None,
        min_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        from datamodules.mtat import MIN_SECONDS_CLEAN

        self.annotations = annotations or (
            os.path.join(audio_root, "annotations_final.csv") if audio_root else None
        )
        self.split, self.published_dir = split, published_dir
        if min_seconds is None:
            min_seconds = MIN_SECONDS_CLEAN if split == "clean" else 0.0
        super().__init__(cache_dir, audio_root, min_seconds=min_seconds, **kwargs)

    metadata_arg = "annotations"

    def metadata_source(self) -> dict[str, Any]:
        return {
            "annotations": _path(self.annotations),
            "split": self.split,
            "published_dir": _path(self.published_dir),
        }

    def read_metadata(self) -> Manifest:
        from datamodules.mtat import read_mtat

        return read_mtat(
            _need(self.annotations, "annotations", self.corpus), self.split, published_dir=self.published_dir
        )


class MSDDataModule(CorpusDataModule):
    """Million Song Dataset, last.fm top-50 (:mod:`datamodules.msd`); ``metadata_dir`` holds the split
    pickles, tag vectors, 7digital maps and ``50tagList.txt``; ``audio_root`` the 7digital previews."""

    corpus = "msd"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        metadata_dir: str | None = None,
        n_train: int | None = None,
        skip_missing: bool = False,
        exclude_published_skips: bool = False,
        **kwargs: Any,
    ) -> None:
        at_least("n_train", n_train, 1)  # 0 is not "all": None is
        self.metadata_dir, self.n_train, self.skip_missing = metadata_dir, n_train, skip_missing
        self.exclude_published_skips = exclude_published_skips
        super().__init__(cache_dir, audio_root, **kwargs)

    metadata_arg = "metadata_dir"

    def metadata_source(self) -> dict[str, Any]:
        return {
            "metadata_dir": _path(self.metadata_dir),
            "n_train": self.n_train,
            "skip_missing": self.skip_missing,
        }

    def read_metadata(self) -> Manifest:
        from datamodules.msd import N_TRAIN, PUBLISHED_SKIPS, read_msd

        metadata = _need(self.metadata_dir, "metadata_dir", self.corpus)
        return read_msd(
            metadata,
            n_train=N_TRAIN if self.n_train is None else self.n_train,
            skip_missing=self.skip_missing,
            exclude=PUBLISHED_SKIPS if self.exclude_published_skips else (),
        )


class JamendoDataModule(CorpusDataModule):
    """MTG-Jamendo (:mod:`datamodules.jamendo`): ``splits_dir`` is the dataset's ``data/splits``;
    ``split`` 0-4, ``subset`` top50tags/genre/instrument/moodtheme/all, ``quality`` full or low."""

    corpus = "jamendo"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        splits_dir: str | None = None,
        split: int = 0,
        subset: str = "top50tags",
        quality: str = "full",
        **kwargs: Any,
    ) -> None:
        self.splits_dir, self.split, self.subset, self.quality = splits_dir, split, subset, quality
        super().__init__(cache_dir, audio_root, **kwargs)

    metadata_arg = "splits_dir"

    def metadata_source(self) -> dict[str, Any]:
        return {
            "splits_dir": _path(self.splits_dir),
            "split": self.split,
            "subset": self.subset,
            "quality": self.quality,
        }

    def read_metadata(self) -> Manifest:
        from datamodules.jamendo import read_jamendo

        return read_jamendo(
            _need(self.splits_dir, "splits_dir", self.corpus), self.split, self.subset, self.quality
        )


class FolderDataModule(CorpusDataModule):
    """A user's own audio (:mod:`datamodules.folder`): a CSV of ``path,tags`` (tags joined by ``;``),
    paths relative to ``audio_root`` (default: the CSV's folder), with a split column (``split`` unless
    ``split_column`` names another) or a seeded random split (grouped by the ``artist`` column, or
    ``artist_column``, when there is one)."""

    corpus = "folder"

    def __init__(
        self,
        cache_dir: str,
        csv: str | None = None,
        audio_root: str | None = None,
        split_column: str | None = None,
        artist_column: str | None = None,
        seed: int = 0,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self.csv = csv
        self.split_column, self.artist_column = split_column, artist_column
        self.seed, self.valid_fraction, self.test_fraction = seed, valid_fraction, test_fraction
        if audio_root is None and csv is not None:
            audio_root = str(Path(csv).resolve().parent)
        super().__init__(cache_dir, audio_root, **kwargs)

    metadata_arg = "csv"

    def metadata_source(self) -> dict[str, Any]:
        return {
            "csv": _path(self.csv),
            "split_column": self.split_column,
            "artist_column": self.artist_column,
            "seed": self.seed,
            "valid_fraction": self.valid_fraction,
            "test_fraction": self.test_fraction,
        }

    def read_metadata(self) -> Manifest:
        from datamodules.folder import read_folder

        return read_folder(
            _need(self.csv, "csv", self.corpus),
            self.split_column,
            self.artist_column,
            self.seed,
            self.valid_fraction,
            self.test_fraction,
            audio_root=self.audio_root,
        )


class GTZANDataModule(CorpusDataModule):
    """GTZAN (:mod:`datamodules.gtzan`), 10 genres, single-label: ``split`` ``filtered`` (the fault-filtered
    443/197/290 split; ``splits_dir`` holds its three files, default the shipped copies) or ``random``
    (all 1,000 excerpts: the 10-fold protocol through ``musictag cv --folds 10``; ``seed`` draws an
    80/10/10 split otherwise). ``audio_root`` holds ``genres/``; use ``task: multiclass``."""

    corpus = "gtzan"
    metadata_arg = "splits_dir"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        split: str = "filtered",
        splits_dir: str | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        self.split, self.splits_dir, self.seed = split, splits_dir, seed
        super().__init__(cache_dir, audio_root, **kwargs)

    def metadata_source(self) -> dict[str, Any]:
        return {"split": self.split, "splits_dir": _path(self.splits_dir), "seed": self.seed}

    def read_metadata(self) -> Manifest:
        from datamodules.gtzan import SPLITS, read_gtzan

        if self.split not in SPLITS:  # before the audio root: the split is the user's first mistake
            raise ConfigError(
                f"gtzan: unknown split {self.split!r}; set data.init_args.split to one of {SPLITS}"
            )
        return read_gtzan(
            _need(self.audio_root, "audio_root", self.corpus), self.split, self.splits_dir, self.seed
        )


class BallroomDataModule(CorpusDataModule):
    """Ballroom (:mod:`datamodules.ballroom`): 698 excerpts, 8 classes (the three Rumba folders as one),
    single-label, a seeded random split (``seed``, ``valid_fraction``, ``test_fraction``; the 10-fold
    protocol through ``musictag cv --folds 10``). ``audio_root`` holds ``BallroomData/``, which is also
    the corpus's only metadata; use ``task: multiclass``."""

    corpus = "ballroom"
    metadata_arg = "audio_root"

    def __init__(
        self,
        cache_dir: str,
        audio_root: str | None = None,
        seed: int = 0,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self.seed, self.valid_fraction, self.test_fraction = seed, valid_fraction, test_fraction
        super().__init__(cache_dir, audio_root, **kwargs)

    def metadata_source(self) -> dict[str, Any]:
        return {"seed": self.seed, "valid_fraction": self.valid_fraction, "test_fraction": self.test_fraction}

    def read_metadata(self) -> Manifest:
        from datamodules.ballroom import read_ballroom

        return read_ballroom(
            _need(self.audio_root, "audio_root", self.corpus),
            self.seed,
            self.valid_fraction,
            self.test_fraction,
        )


DATAMODULES: dict[str, type[CorpusDataModule]] = {
    "mtat": MTATDataModule,
    "msd": MSDDataModule,
    "jamendo": JamendoDataModule,
    "folder": FolderDataModule,
    "gtzan": GTZANDataModule,
    "ballroom": BallroomDataModule,
}
