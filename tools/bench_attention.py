"""Cost of the attention methods: seconds per batch of chunks for an attention preset (random weights;
the cost does not depend on them). Prints wall and CPU seconds per batch, one thread.

    PYTHONPATH=$PWD .venv/bin/python tools/bench_attention.py --arch transformer --chunks 16
"""

from __future__ import annotations

import argparse
import time

import torch

from musictag.inference.attention import attention_saliency
from musictag.models import build


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="transformer")
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--tags", type=int, default=3, help="tags explained per batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build(args.arch, n_tags=50).eval()
    wave = torch.randn(args.chunks, net.input_len) * 0.1
    with torch.no_grad():
        rep = net.representation(wave)
    tags = list(range(args.tags))
    print(
        f"{args.arch}: {args.chunks} chunks of {net.input_len / net.sample_rate:.1f} s, "
        f"{net.shapes['frontend'][-1]} back-end frames, {args.tags} tags, 1 thread"
    )
    rows = {
        "forward (from representation)": lambda: net.from_representation(rep),
        "attention": lambda: attention_saliency(net, rep, tags, "attention"),
        "rollout": lambda: attention_saliency(net, rep, tags, "rollout"),
    }
    for name, fn in rows.items():
        with torch.no_grad():
            wall, cpu = timed(fn, args.repeats)
        print(f"  {name:32s} {wall:7.2f} s wall  {cpu:7.2f} s CPU  per batch")


if __name__ == "__main__":
    main()
