"""``musictag import-weights``: published weights (sota-music-tagging-models, the musicnn library, Choi et
al.'s Keras taggers) into a musictag checkpoint. The conversions are :mod:`musictag.convert.sota`,
:mod:`musictag.convert.musicnn` and :mod:`musictag.convert.choi`."""

from __future__ import annotations

import argparse

from musictag.guards import given_path


def main(argv: list[str] | None = None) -> int:
    """``musictag import-weights --source sota --arch ARCH --dataset DATASET --weights PTH --out CKPT``,
    ``--source musicnn --model MODEL --weights DIR --out CKPT``, or ``--source choi --model cnn|crnn
    --weights FILE.h5 --out CKPT``. An existing ``--out`` is replaced
    only with ``--force``; the inputs are never written."""
    from musictag.convert.choi import CHOI_MODELS, import_choi
    from musictag.convert.musicnn import MUSICNN_MODELS, import_musicnn
    from musictag.convert.sota import SOTA_ARCHITECTURES, import_sota

    parser = argparse.ArgumentParser(prog="musictag import-weights", description=main.__doc__)
    parser.add_argument(
        "--source",
        choices=["sota", "musicnn", "choi"],
        default="sota",
        help="sota-music-tagging-models (Won et al. 2020), the musicnn library (pip install musicnn), or "
        "Choi et al.'s Keras taggers (music-auto_tagging-keras)",
    )
    parser.add_argument("--arch", help=f"sota: one of {', '.join(sorted(SOTA_ARCHITECTURES))}")
    parser.add_argument("--dataset", choices=["mtat", "msd", "jamendo"], help="sota: the training corpus")
    parser.add_argument(
        "--model",
        choices=[*MUSICNN_MODELS, *CHOI_MODELS],
        help="musicnn: the model (its folder in the musicnn wheel); choi: cnn or crnn",
    )
    parser.add_argument(
        "--statistics",
        choices=["running", "track", "batch"],
        help="choi: where batch normalisation takes its statistics at inference (default: the model's; "
        "batch makes scores depend on the batch, to check published numbers only)",
    )
    parser.add_argument(
        "--weights",
        type=given_path,
        required=True,
        help="sota: the published best_model.pth; musicnn: the model's folder; choi: the Keras .h5",
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
    if args.source == "choi" and args.model not in CHOI_MODELS:
        parser.error(f"--source choi needs --model {' or '.join(CHOI_MODELS)}")
    if args.statistics and args.source != "choi":
        parser.error("--statistics is for --source choi")
    if args.source == "musicnn" and args.model not in MUSICNN_MODELS:
        parser.error(f"--source musicnn needs --model ({', '.join(MUSICNN_MODELS)})")
    if args.source == "choi":
        path = import_choi(args.model, args.weights, args.out, force=args.force, statistics=args.statistics)
    elif args.source == "musicnn":
        path = import_musicnn(args.model, args.weights, args.out, force=args.force)
    else:
        path = import_sota(args.arch, args.dataset, args.weights, args.out, force=args.force)
    print(f"musictag import-weights: wrote {path}")
    return 0
