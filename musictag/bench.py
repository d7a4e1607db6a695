"""``musictag bench``: training throughput of every architecture on this machine.

One step = forward, BCE-with-logits, backward and an Adam update on a random batch at the
architecture's input length, like a training step of ``TaggingModule``; the representation (mel,
harmonic filterbank) runs inside the network on the device, once per batch. Prints samples/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from musictag.models import available, build


def step_throughput(
    arch: str, batch_size: int, steps: int, warmup: int, device: torch.device, bf16: bool
) -> tuple[int, float, float]:
    """(parameters, input seconds, samples/s) of training steps of ``arch``."""
    torch.manual_seed(0)
    net = build(arch, n_tags=50).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    wave = torch.randn(batch_size, net.input_len, device=device) * 0.1
    target = torch.randint(0, 2, (batch_size, 50), device=device).float()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def one_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = net(wave)
        F.binary_cross_entropy_with_logits(logits.float(), target).backward()
        optimizer.step()

    for _ in range(warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return net.n_params(), net.input_len / net.sample_rate, batch_size * steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musictag bench", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=None, help="architectures (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per architecture")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--precision", choices=["auto", "32", "bf16"], default="auto", help="auto: bf16 on GPU"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--data", action="store_true", help="also the data pipeline (prepare and loader throughput)"
    )
    parser.add_argument("--data-only", action="store_true", help="only the data pipeline")
    args = parser.parse_args(argv)
    if args.data or args.data_only:
        from musictag.bench_data import main as data_main

        data_main()
        if args.data_only:
            return 0

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.arch or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown architecture(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"# musictag bench: forward+backward+Adam, batch {args.batch_size}, {where}, {'bf16' if bf16 else 'fp32'}"
    )
    print(f"{'architecture':<18} {'params':>12} {'input s':>8} {'samples/s':>10}")
    for name in names:
        params, seconds, rate = step_throughput(name, args.batch_size, args.steps, args.warmup, device, bf16)
        print(f"{name:<18} {params:>12,d} {seconds:>8.2f} {rate:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
