"""What ``musictag embed`` checks before it writes anything: its ``--out`` folder
(new, empty or an embedding cache of its own: never a folder of the user's files nor an input), its
numbers, and the settings of a cache already there (a finished one is used again only if made as asked).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from musictag.guards import at_least
from musictag.types import ConfigError

#: The mark of a folder ``musictag embed`` writes (the first file it writes there).
MARK = ".musictag-embeddings"
SETTINGS = "settings.json"
#: Settings that decide what a finished cache holds; ``tracks_per_shard`` only decides how its rows are
#: split into files, so a finished cache is the same for any value of it.
CONTENT_SETTINGS = (
    "encoder",
    "layers",
    "time_pool",
    "encoder_batch",
    "batch_size",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
    "audio_cache",
)
#: The ``index.json`` entries that record a setting (a finished cache whose settings.json is gone).
INDEX_SETTINGS = (
    "layers",
    "time_pool",
    "chunk_len",
    "n_chunks",
    "chunk_mode",
    "chunk_hop",
    "train_crop",
    "sample_rate",
)


def is_embedding_dir(folder: Path) -> bool:
    """Whether ``folder`` is an embedding cache (finished or not) that ``musictag embed`` wrote."""
    from datamodules.embeddings import FORMAT, INDEX

    if (folder / MARK).is_file():
        return True
    for name, keys in ((INDEX, ("format",)), (SETTINGS, ("encoder", "tracks_per_shard", "layers"))):
        try:  # caches from before the mark: their index, or the settings.json of an unfinished one
            record = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and all(k in record for k in keys):
            if name == SETTINGS or record.get("format") == FORMAT:
                return True
    return False


def encoder_id(path: str) -> str:
    """The encoder as recorded: a local folder absolute with symlinks resolved (``./enc`` is ``enc``)."""
    expanded = os.path.expanduser(path)
    return os.path.realpath(expanded) if os.path.exists(expanded) else path


def _differences(old: dict[str, Any], new: dict[str, Any], keys: Any) -> list[str]:
    """``"layers [0, 2] → [0, 1, 2]"`` for each of ``keys`` recorded in both that differs."""
    return [f"{k} {old[k]!r} → {new[k]!r}" for k in keys if k in old and k in new and old[k] != new[k]]


def check_embed_numbers(
    batch_size: int, tracks_per_shard: int, names: tuple[str, str] = ("batch_size", "tracks_per_shard")
) -> None:
    """Refuse a batch or shard size below 1 before anything is loaded or written."""
    at_least(names[0], batch_size, 1)
    at_least(names[1], tracks_per_shard, 1)


def check_settings(out: Path, settings: dict[str, Any]) -> bool:
    """Whether ``out`` holds a finished cache of ``settings`` (``False``: none, or one to resume).

    A finished cache made otherwise, or an unfinished one with other settings, is refused naming each
    setting that differs (old → new), so a rerun never returns a cache of another encoder, layers or
    chunking as if it were the one asked for.
    """
    from datamodules.embeddings import INDEX

    settings_path = out / SETTINGS
    earlier = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    if (out / INDEX).is_file():
        index = json.loads((out / INDEX).read_text())
        recorded = dict(earlier or {k: index[k] for k in INDEX_SETTINGS if k in index})
        if isinstance(recorded.get("encoder"), str):  # recorded as given before paths were resolved
            recorded["encoder"] = encoder_id(recorded["encoder"])
        differ = _differences(recorded, settings, CONTENT_SETTINGS)
        if differ:
            raise ConfigError(
                f"--out {out} holds a finished embedding cache made with other settings: {', '.join(differ)}; "
                f"remove {out} to embed it again with the new settings, or give another --out"
            )
        return True
    if earlier is not None:
        differ = _differences(earlier, settings, settings)
        if differ:
            raise ConfigError(
                f"{out} holds an unfinished embedding cache with other settings ({settings_path}: "
                f"{', '.join(differ)}); remove it or use another folder, or resume with its settings"
            )
    return False
