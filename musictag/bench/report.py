"""``musictag bench --report FILE ...``: the README's markdown tables from saved benchmark figures.

The files are what ``musictag bench --save FILE`` writes or ``--json`` prints: lists of figures of three
kinds, told apart by their fields — training steps (``samples_per_s``: one table per device, a row per
architecture and a column per precision and batch), epochs (``epoch_seconds``) and the data pipeline
(``median``). Files may mix kinds; a configuration measured twice keeps its last figure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PRECISION_ORDER = ("32", "16-mixed", "bf16-mixed")


def load_figures(paths: Iterable[str]) -> list[dict[str, Any]]:
    """Every figure of the files, in order; a file that is not such a list is a one-line error."""
    figures: list[dict[str, Any]] = []
    for path in paths:
        try:
            rows = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{path}: not JSON ({err}); give files written by musictag bench --save"
            ) from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) and kind_of(row) for row in rows):
            raise ValueError(f"{path}: not a list of musictag bench figures (from --save or --json)")
        figures.extend(rows)
    return figures


def kind_of(row: dict[str, Any]) -> str | None:
    if "samples_per_s" in row:
        return "step"
    if "epoch_seconds" in row:
        return "epoch"
    if "median" in row and "what" in row:
        return "data"
    if "backend" in row and "seconds" in row:
        return "inference"
    return None


def rate(samples_per_s: float) -> str:
    return f"{samples_per_s:,.0f}" if samples_per_s >= 100 else f"{samples_per_s:.3g}"


def memory(mib: float) -> str:
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def step_tables(rows: list[dict[str, Any]]) -> list[str]:
    """One table per device: rows architectures (compiled ones apart), columns precision × batch."""
    lines: list[str] = []
    for device in dict.fromkeys(row["device"] for row in rows):
        on_device = [row for row in rows if row["device"] == device]
        columns = sorted(
            {(row["precision"], row["batch"]) for row in on_device},
            key=lambda c: (PRECISION_ORDER.index(c[0]) if c[0] in PRECISION_ORDER else 9, c[0], c[1]),
        )
        layouts: dict[tuple[str, bool], set[bool]] = {}
        for row in on_device:
            layouts.setdefault((row["arch"], row["compile"]), set()).add(row["channels_last"])
        cells: dict[tuple[str, bool, bool], dict[tuple[str, int], str]] = {}
        for row in on_device:
            key = (row["arch"], row["compile"], row["channels_last"])
            cell = f"{rate(row['samples_per_s'])} ({memory(row['peak_memory_mib'])})"
            cells.setdefault(key, {})[(row["precision"], row["batch"])] = cell
        runs = sorted({len(row["runs"]) for row in on_device})
        lines += [
            f"Training steps on {device}: samples/s (median of {'/'.join(map(str, runs))} runs; "
            "in brackets the peak memory, CUDA: allocated by torch, CPU: the process's resident memory).",
            "",
            "| architecture | " + " | ".join(f"{p}, batch {b}" for p, b in columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for (arch, compiled, channels_last), by_column in cells.items():
            label = f"`{arch}`" + (", compiled" if compiled else "")
            if len(layouts[(arch, compiled)]) > 1:
                label += ", channels-last" if channels_last else ", channels-first"
            lines.append(f"| {label} | " + " | ".join(by_column.get(c, "—") for c in columns) + " |")
        lines.append("")
    return lines


def epoch_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "One MTAT-sized epoch through `Trainer.fit` (training, then validation), loader included:",
        "",
        "| architecture | device | precision | batch | compile | training chunks + songs × chunks "
        "| seconds | full MTAT epoch, s |",
        "|---|---|---|---:|---|---|---:|---:|",
    ]
    for row in rows:
        chunks = f"{row['train_chunks']:,} + {row['valid_songs']:,} × {row['chunks_per_song']}"
        lines.append(
            f"| `{row['arch']}` | {row['device']} | {row['precision']} | {row['batch']} | "
            f"{'on' if row['compile'] else 'off'} | {chunks} | {row['epoch_seconds']:.1f} | "
            f"{row['full_mtat_epoch_seconds']:.1f} |"
        )
    return [*lines, ""]


def data_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Data pipeline (median of the runs):",
        "",
        "| what | median | lowest – highest |",
        "|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['kind']}: {row['what']} | {row['median']:,.0f} {row['unit']} | "
            f"{row['low']:,.0f} – {row['high']:,.0f} |"
        )
    return [*lines, ""]


def inference_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Seconds per `tag` of one file, decode included (median of the runs, alternating):",
        "",
        "| model | backend | file | threads | seconds | lowest – highest | speed-up over the musicnn library |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        speedup = f"{row['speedup']:.2f}×" if row.get("speedup") else "—"
        lines.append(
            f"| `{row['model']}` | {row['backend']} | {row['audio']} ({row['audio_seconds']:.0f} s) | "
            f"{row['threads']} | {row['seconds']:.3f} | {row['low']:.3f} – {row['high']:.3f} | {speedup} |"
        )
    return [*lines, ""]


def markdown(figures: list[dict[str, Any]]) -> str:
    """The tables of the figures: training steps, epochs, data pipeline (each only if present)."""
    latest: dict[str, dict[str, Any]] = {}  # a configuration measured twice keeps its last figure
    for row in figures:
        fields = ("arch", "device", "precision", "batch", "compile", "channels_last", "what", "scale",
                  "model", "backend", "audio", "threads")  # fmt: skip
        latest[json.dumps([kind_of(row), *(row.get(f) for f in fields)])] = row
    by_kind: dict[str | None, list[dict[str, Any]]] = {}
    for row in latest.values():
        by_kind.setdefault(kind_of(row), []).append(row)
    lines: list[str] = []
    if "step" in by_kind:
        lines += step_tables(by_kind["step"])
    if "epoch" in by_kind:
        lines += epoch_table(by_kind["epoch"])
    if "data" in by_kind:
        lines += data_table(by_kind["data"])
    if "inference" in by_kind:
        lines += inference_table(by_kind["inference"])
    return "\n".join(lines).rstrip() + "\n"


def main(paths: list[str]) -> int:
    try:
        figures = load_figures(paths)
    except ValueError as err:
        print(f"musictag bench: error: {err}", file=sys.stderr)
        return 2
    print(markdown(figures), end="")
    return 0
