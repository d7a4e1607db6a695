"""Tiny corpora in the official layouts of MTAT, MSD, MTG-Jamendo and the folder/CSV format, for tests
(and of the genre corpora GTZAN and Ballroom, with their own broken files: see their generators).

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


def _unreadable_wav(path: Path) -> None:
    """A RIFF/WAVE file whose format chunk is malformed (no decoder opens it)."""
    write_audio(path, _tone(0, 0.5), SAMPLE_RATE)
    data = bytearray(path.read_bytes())
    data[20:22] = (0x1234).to_bytes(2, "little")  # an unknown format code in 'fmt '
    path.write_bytes(bytes(data))


def _write_broken(paths: dict[str, Path]) -> dict[str, str]:
    """The broken files every genre corpus gets: name → path; returns name → the problem reported."""
    _unreadable_wav(paths["unreadable"])
    paths["empty"].write_bytes(b"")
    paths["not_audio"].write_text("this is a text file with a .wav name\n" * 20)
    return {"unreadable": "unreadable", "empty": "empty", "not_audio": "unreadable"}


def make_gtzan_corpus(root: Pathlike, per_genre: int = 3, seconds: float = 2.0) -> DummyCorpus:
    """``root/genres/<genre>/<genre>.000NN.wav`` for the first ``per_genre`` excerpts of every genre (one
    as ``.au``), a ``splits`` folder of the three filtered split files naming them (one train, one valid,
    the rest test), and broken files: ``jazz.00054.wav`` unreadable (as in the shared WAV copy, and listed
    in train), an empty and a non-audio excerpt (listed), a listed excerpt that is not there
    (``metal.00099``), a stray file in the root and in a genre folder. ``classical.00000`` is the ``.au``.

    ``bad`` maps each broken excerpt's id to its problem; ``metadata`` is the splits folder."""
    import soundfile as sf

    from datamodules.gtzan import GENRES

    root = Path(root)
    lists: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for g, genre in enumerate(GENRES):
        (root / "genres" / genre).mkdir(parents=True, exist_ok=True)
        for n in range(per_genre):
            stem = f"{genre}.{n:05d}"
            audio = _tone(10 * g + n, seconds, 22050)
            if (g, n) == (1, 0):  # classical.00000 as the public archive has it
                sf.write(root / "genres" / genre / f"{stem}.au", audio, 22050, format="AU", subtype="PCM_16")
            else:
                write_audio(root / "genres" / genre / f"{stem}.wav", audio, 22050)
            lists["train" if n == 0 else "valid" if n == 1 else "test"].append(f"{genre}/{stem}.wav")
    names = {"unreadable": "jazz.00054", "empty": "rock.00090", "not_audio": "pop.00091"}
    problems = _write_broken({k: root / "genres" / v.split(".")[0] / f"{v}.wav" for k, v in names.items()})
    lists["train"] += [f"{v.split('.')[0]}/{v}.wav" for v in names.values()]
    lists["test"].append("metal/metal.00099.wav")  # listed, but not in this copy
    problems["missing"] = "missing"
    names["missing"] = "metal.00099"
    (root / "genres" / "README.txt").write_text("stray file\n")
    (root / "genres" / "blues" / "notes.txt").write_text("stray file\n")
    splits = root / "splits"
    splits.mkdir()
    for split, entries in lists.items():
        (splits / f"{split}_filtered.txt").write_text("\n".join(entries) + "\n")
    return DummyCorpus(root, splits, {names[k]: p for k, p in problems.items()})


#: The ten style folders of BallroomData.zip.
BALLROOM_FOLDERS = (
    "ChaChaCha", "Jive", "Quickstep", "Rumba-American", "Rumba-International", "Rumba-Misc", "Samba", "Tango",
    "VienneseWaltz", "Waltz",
)  # fmt: skip


def make_ballroom_corpus(
    root: Pathlike, per_folder: int = 2, seconds: float = 2.5, sample_rate: int = 44100
) -> DummyCorpus:
    """``root/BallroomData/<folder>/Media-1NNNNN.wav`` (``per_folder`` each, mono, ``sample_rate``) with
    broken files in the style folders (an unreadable WAV, an empty one, a text file named ``.wav``), a
    macOS ``._`` fork, and stray files (``BallroomData/allBallroomFiles``, ``root/README.txt``).

    ``bad`` maps each broken excerpt's id (``<folder>/<stem>``) to its problem."""
    root = Path(root)
    data = root / "BallroomData"
    for f, folder in enumerate(BALLROOM_FOLDERS):
        (data / folder).mkdir(parents=True, exist_ok=True)
        for n in range(per_folder):
            write_audio(
                data / folder / f"Media-1{f:02d}{n:03d}.wav",
                _tone(f + 3 * n, seconds, sample_rate),
                sample_rate,
            )
    names = {"unreadable": "Jive/Media-broken", "empty": "Tango/Media-empty", "not_audio": "Waltz/Media-text"}
    problems = _write_broken({k: data / f"{v}.wav" for k, v in names.items()})
    (data / "Samba" / "._Media-100000.wav").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    (data / "allBallroomFiles").write_text("./ChaChaCha/Media-100000.wav\n")
    (root / "README.txt").write_text("stray file\n")
    return DummyCorpus(root, root, {names[k]: p for k, p in problems.items()})
