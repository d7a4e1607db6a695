"""``musictag explain AUDIO... --ckpt CKPT --out DIR``: where in each file its tags come from.

Every file (folders are searched recursively) is cut into chunks as ``musictag tag`` cuts it; for the
``--top-k`` best-scored tags (or the ``--tags`` given) each chunk's saliency by ``--method``
(``gradcam``, ``integrated_gradients``; ``attention``/``rollout`` for transformer back ends; default
``attention`` where the back end has it, else ``gradcam``) is stitched over the whole file and written
to ``DIR/<file name>.npz`` (``saliency`` (tags, frames), ``frequency_saliency`` (tags, bins, frames)
where the method gives one, ``times_s``, ``tags``, ``scores`` = ``tag``'s song scores, ``method``) and
drawn as ``DIR/<file name>.png`` (the spectrogram, one heat row per tag under it). An existing file is
never replaced; a file that cannot be read is reported and skipped (exit status 1); a setting that is
wrong is one line before the model runs (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musictag.audio import AudioError
from musictag.chunks import ChunkPlan
from musictag.cli.features import exit_status, targets
from musictag.cli.tag import FLAGS, audio_parser, audio_to_use, check_audio_numbers
from musictag.guards import at_least, check_output_file, given_path, pick_device
from musictag.inference.explain import choose_tags, explain_file, plot_explanation, write_npz
from musictag.inference.saliency import METHODS, check_method
from musictag.inference.tagging import check_batch_memory, load_model


def _parser() -> argparse.ArgumentParser:
    parser = audio_parser("musictag explain", __doc__.splitlines()[0])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--tags", default=None, help="comma-separated tags to explain (default: the top-k)")
    chosen.add_argument("--top-k", type=int, default=3, help="explain each file's K best-scored tags")
    parser.add_argument("--method", default=None, help=f"one of {', '.join(METHODS)} (default: see above)")
    parser.add_argument("--steps", type=int, default=32, help="integrated_gradients: steps along the path")
    parser.add_argument("--out", type=given_path, required=True, metavar="DIR", help="the folder to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    at_least("--top-k", args.top_k)
    at_least("--steps", args.steps)
    check_audio_numbers(args)
    device = pick_device(args.device)
    found, files = audio_to_use(args.audio, "musictag explain", "explain")
    model = load_model(args.ckpt, device)
    method = check_method(model.net, args.method, "--method")
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()] if args.tags is not None else None
    if tags is not None:
        choose_tags(model.tag_names, None, tags, args.top_k)  # unknown names: one line, before any work
    plan = ChunkPlan.for_model(model, args.chunk_mode, args.n_chunks, args.hop, names=FLAGS)
    batch_size = args.batch_size or 8
    check_batch_memory(batch_size, model.input_len)
    npz = targets(args.out, files, [*args.audio, args.ckpt])
    pngs = {path: target.with_suffix(".png") for path, target in npz.items()}
    for target in pngs.values():
        check_output_file(
            target,
            "--out",
            inputs=[*args.audio, args.ckpt],
            hint="give another --out folder, or move that file away",
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)  # checked writable above; made once all checks passed
    failed = 0
    for path in files:
        try:
            explanation = explain_file(model, path, plan, tags, args.top_k, method, batch_size, args.steps)
        except AudioError as err:
            failed += 1
            print(f"musictag explain: skipped {err}", file=sys.stderr)
            continue
        write_npz(explanation, npz[path])
        plot_explanation(explanation, pngs[path])
        listed = ", ".join(
            f"{tag} {score:.3f}" for tag, score in zip(explanation.tags, explanation.scores, strict=True)
        )
        print(f"{npz[path]} (+ .png): {explanation.method}, {len(explanation.times_s)} frames; {listed}")
    return exit_status("explain", found, len(files), failed)
