"""``musictag import-weights``: published weights (sota-music-tagging-models, the musicnn library) into a
musictag checkpoint. The conversions are :mod:`musictag.convert.sota` and :mod:`musictag.convert.musicnn`."""

from __future__ import annotations

import argparse

from musictag.guards import given_path


def main(argv: list[str] | None = None) -> int:
    """``musictag import-weights --source sota --arch ARCH --dataset DATASET --weights PTH --out CKPT``,
    or ``--source musicnn --model MODEL --weights DIR --out CKPT``. An existing ``--out`` is replaced
    only with ``--force``; the inputs are never written."""
    from musictag.convert.musicnn import MUSICNN_MODELS, import_musicnn
    from musictag.convert.sota import SOTA_ARCHITECTURES, import_sota

    parser = argparse.ArgumentParser(prog="musictag import-weights", description=main.__doc__)
    parser.add_argument(
        "--source",
        choices=["sota", "musicnn"],
        default="sota",
        help="sota-music-tagging-models (Won et al. 2020), or the musicnn library (pip install musicnn)",
    )
    parser.add_argument("--arch", help=f"sota: one of {', '.join(sorted(SOTA_ARCHITECTURES))}")
    parser.add_argument("--dataset", choices=["mtat", "msd", "jamendo"], help="sota: the training corpus")
    parser.add_argument(
        "--model", choices=list(MUSICNN_MODELS), help="musicnn: the model (its folder in the musicnn wheel)"
    )
    parser.add_argument(
        "--weights",
        type=given_path,
        required=True,
        help="sota: the published best_model.pth; musicnn: the model's folder",
    )
    parser.add_argument(
        "--out", type=given_path, required=True, help="the musictag checkpoint to write (a new file)"
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    if args.source == "sota" and not (args.arch and args.dataset):
        parser.error("--source sota needs --arch and --dataset")
    if args.source == "musicnn" and not args.model:
        parser.error(f"--source musicnn needs --model ({', '.join(MUSICNN_MODELS)})")
    if args.source == "musicnn":
        path = import_musicnn(args.model, args.weights, args.out, force=args.force)
    else:
        path = import_sota(args.arch, args.dataset, args.weights, args.out, force=args.force)
    print(f"musictag import-weights: wrote {path}")
    return 0
