"""``musictag export --ckpt CKPT --out model.onnx``: a checkpoint as one ONNX file, waveform in, chunk
probabilities out, the spectrogram inside the graph (:mod:`musictag.inference.onnx_export`).

An existing ``--out`` is replaced only with ``--force``; a model with an operator the exporter cannot
write is refused in one line naming it (exit status 2, nothing written).
"""

from __future__ import annotations

import argparse

from musictag.guards import at_least, given_path


def main(argv: list[str] | None = None) -> int:
    from musictag.inference.onnx_export import DEFAULT_OPSET, MIN_OPSET, export_onnx

    parser = argparse.ArgumentParser(prog="musictag export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ckpt", type=given_path, required=True, help="a musictag checkpoint (fit, or import-weights)"
    )
    parser.add_argument("--out", type=given_path, required=True, help="the ONNX file to write (a new file)")
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset ({MIN_OPSET} or later; default {DEFAULT_OPSET})",
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    at_least("--opset", args.opset, MIN_OPSET)
    out = export_onnx(args.ckpt, args.out, args.opset, force=args.force)
    print(f"musictag export: wrote {out}")
    return 0
