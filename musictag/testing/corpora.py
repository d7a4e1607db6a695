"""Tiny corpora in the official layouts of MTAT, MSD, MTG-Jamendo and the folder/CSV format, for tests.

Each corpus has real audio files (MP3 mostly, a stereo 44.1 kHz WAV, a FLAC), one file shorter than a
training chunk, one empty file and one corrupt file. The generators return what a test checks:
the track ids that must be left out of the cache and why.
"""

from __future__ import annotations

import csv
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musictag.audio import write_audio
from musictag.types import Pathlike

SAMPLE_RATE = 16000


@dataclass
class DummyCorpus:
    """Where a generated corpus lies and what its cache must report."""

    audio_root: Path
    metadata: Path
    bad: dict[str, str] = field(default_factory=dict)  # track id → problem
    short: str = ""  # the id of the track shorter than a chunk (kept, zero-padded)
    stereo: str = ""  # the id of the stereo 44.1 kHz track
    n_train: int = 0  # MSD: train ids at the head of the train list


VALID, TEST = (3, 5, 10), (6, 9, 12)


def split_of(index: int) -> str:
    """Three valid and three test songs whose tags (below) give every tag a positive and a negative."""
    return "valid" if index in VALID else "test" if index in TEST else "train"


def tags_of(index: int, tags: list[str]) -> list[str]:
    """Tag ``j`` of song ``index``: bit ``j % 4`` of ``index % 15 + 1`` (never no tag)."""
    code = index % 15 + 1
    return [tag for j, tag in enumerate(tags) if (code >> (j % 4)) & 1]


def _tone(index: int, seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    rng = np.random.default_rng(index)
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * (110.0 * (1 + index % 7)) * t) + 0.02 * rng.standard_normal(len(t))
    return audio.astype(np.float32)


def _write_tracks(root: Path, rel_paths: list[str], seconds: float) -> tuple[dict[int, str], int, int]:
    """Audio for every path; the last three are empty, corrupt and short; one is stereo 44.1 kHz."""
    n = len(rel_paths)
    empty, corrupt, short, stereo = n - 3, n - 2, n - 1, 0
    for i, rel in enumerate(rel_paths):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if i == empty:
            path.write_bytes(b"")
        elif i == corrupt:
            path.write_bytes(b"\x00not an mp3\xff" * 80)
        elif i == stereo:  # the generators give this track a .wav path
            audio = _tone(i, seconds, 44100)
            write_audio(path, np.stack([audio, 0.5 * audio], axis=1), 44100)
        else:
            write_audio(path, _tone(i, 2.0 if i == short else seconds), SAMPLE_RATE)
    return {empty: "empty", corrupt: "unreadable"}, short, stereo


def make_folder_corpus(root: Pathlike, n_tracks: int = 16, seconds: float = 4.0) -> DummyCorpus:
    """``root/tags.csv`` (``path,tags,split``) and the audio under ``root/audio``."""
    root = Path(root)
    tags = ["rock", "jazz", "vocal", "piano"]
    rel = [
        f"audio/{'stereo' if i == 0 else i}.{'wav' if i == 0 else ('flac' if i == 1 else 'mp3')}"
        for i in range(n_tracks)
    ]
    bad, short, stereo = _write_tracks(root, rel, seconds)
    with open(root / "tags.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "tags", "split"])
        for i, path in enumerate(rel):
            writer.writerow([path, ";".join(tags_of(i, tags)), split_of(i)])
    return DummyCorpus(root, root / "tags.csv", {rel[i]: p for i, p in bad.items()}, rel[short], rel[stereo])


def make_jamendo_corpus(root: Pathlike, n_tracks: int = 18, seconds: float = 4.0) -> DummyCorpus:
    """``root/splits/split-0/autotagging_top50tags-*.tsv`` (CRLF, trailing tag fields) and ``root/audio/NN/ID.mp3``."""
    root = Path(root)
    ids = [1000 + 37 * i for i in range(n_tracks)]
    rel = [f"{i % 100:02d}/{i}.{'wav' if n == 0 else 'mp3'}" for n, i in enumerate(ids)]
    bad, short, stereo = _write_tracks(root / "audio", rel, seconds)
    tags = ["genre---rock", "genre---pop", "instrument---guitar", "mood/theme---happy"]
    split_dir = root / "splits" / "split-0"
    split_dir.mkdir(parents=True)
    for split, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
        for n in (n for n in range(n_tracks) if split_of(n) == split):
            lines.append(
                "\t".join(
                    [
                        f"track_{ids[n]:07d}",
                        f"artist_{n:06d}",
                        f"album_{n:06d}",
                        rel[n],
                        f"{seconds:.1f}",
                        *tags_of(n, tags),
                    ]
                )
            )
        (split_dir / f"autotagging_top50tags-{name}.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    track_id = {n: f"track_{ids[n]:07d}" for n in range(n_tracks)}
    return DummyCorpus(
        root / "audio",
        root / "splits",
        {track_id[i]: p for i, p in bad.items()},
        track_id[short],
        track_id[stereo],
    )


def make_mtat_corpus(root: Pathlike, n_tracks: int = 20, seconds: float = 4.0) -> DummyCorpus:
    """``root/annotations_final.csv`` (tab-separated, quoted, clip_id + tag columns + mp3_path) and the clips."""
    from datamodules.mtat import TOP50_TAGS

    root = Path(root)
    folder_of = {"train": "0123456789ab", "valid": "c", "test": "def"}
    rel = []
    for i in range(n_tracks):
        folders = folder_of[split_of(i)]
        rel.append(
            f"{folders[i % len(folders)]}/artist_{i}-album-{i:02d}-title-30-59.{'wav' if i == 0 else 'mp3'}"
        )
    bad, short, stereo = _write_tracks(root, rel, seconds)
    columns = [*TOP50_TAGS, "extra tag one", "extra tag two"]
    with open(root / "annotations_final.csv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL)
        writer.writerow(["clip_id", *columns, "mp3_path"])
        for i, path in enumerate(rel):
            flags = [1 if tag in tags_of(i, columns) else 0 for tag in columns]
            writer.writerow([str(2 + 3 * i), *flags, path])
    clip = {i: str(2 + 3 * i) for i in range(n_tracks)}
    return DummyCorpus(
        root, root / "annotations_final.csv", {clip[i]: p for i, p in bad.items()}, clip[short], clip[stereo]
    )


def make_msd_corpus(root: Pathlike, n_tracks: int = 18, seconds: float = 4.0) -> DummyCorpus:
    """A metadata folder of Python-2-style pickles (bytes ids) and 7digital previews ``X/Y/ID.clip.mp3``."""
    root = Path(root)
    ids = [f"TR{'ABCDEFGH'[i % 8]}{i:04d}AB128F9318{i:03d}" for i in range(n_tracks)]
    seven = [str(8_000_000 + 4_711 * i) for i in range(n_tracks)]
    rel = [f"{s[0]}/{s[1]}/{s}.clip.{'wav' if i == 0 else 'mp3'}" for i, s in enumerate(seven)]
    bad, short, stereo = _write_tracks(root / "audio", rel, seconds)
    meta = root / "metadata"
    meta.mkdir(parents=True)
    tags = ["rock", "pop", "Hip-Hop", "female vocalists", "chillout"]
    train = [ids[i].encode() for i in range(n_tracks) if split_of(i) == "train"]
    valid = [ids[i].encode() for i in range(n_tracks) if split_of(i) == "valid"]
    test = [ids[i].encode() for i in range(n_tracks) if split_of(i) == "test"]

    def dump(name: str, obj: object) -> None:
        with open(meta / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    dump("filtered_list_train.cP", train + valid)
    dump("filtered_list_test.cP", test)
    vectors = {
        ids[i].encode(): np.array([[1 if t in tags_of(i, tags) else 0] for t in tags], dtype=np.int64)
        for i in range(n_tracks)
    }
    dump("msd_id_to_tag_vector.cP", vectors)
    dump("MSD_id_to_7D_id.pkl", {ids[i].encode(): seven[i].encode() for i in range(n_tracks)})
    dump("7D_id_to_path.pkl", {seven[i].encode(): rel[i].encode() for i in range(n_tracks)})
    (meta / "50tagList.txt").write_text("\n".join(tags) + "\n")
    return DummyCorpus(
        root / "audio", meta, {ids[i]: p for i, p in bad.items()}, ids[short], ids[stereo], len(train)
    )
