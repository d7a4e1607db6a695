"""One 2-process fit → test → predict sequence of the tiny model, as ``tests/test_distributed.py`` runs it.

``python tools/ddp_sequence.py WORKDIR spawn`` runs it with ``ddp_spawn`` in this process (fit on 2
processes, test on 1, test and predict on 2); under ``torchrun --nproc_per_node=2 tools/ddp_sequence.py
WORKDIR ddp`` every process runs fit, test and predict with ``ddp``. ``tools/repeat-ddp.sh`` repeats it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from musictag.cli import main
from musictag.testing import cli_args


def sequence(workdir: Path, mode: str) -> None:
    """The commands of one sequence; each ``main`` returns normally or the process fails."""
    sys.argv = ["musictag"]
    args = cli_args("fit", str(workdir / "corpus"), str(workdir / "runs"))
    args = [
        a for a in args if not a.startswith(("--data.init_args.n_clips", "--data.init_args.test_fraction"))
    ]
    args += ["--data.init_args.n_clips=30", "--data.init_args.test_fraction=0.3"]
    strategy = "ddp_spawn" if mode == "spawn" else "ddp"
    ddp = ["--trainer.devices=2", f"--trainer.strategy={strategy}"]
    test = [a if a != "fit" else "test" for a in args] + ["--ckpt_path=best"]
    predict = [a if a != "fit" else "predict" for a in args] + ["--ckpt_path=best"]
    main([*args, "--trainer.max_epochs=1", *ddp])
    if mode == "spawn":
        main(test)  # 1 process between the 2-process runs, as the test does
    main([*test, *ddp])
    main([*predict, *ddp])


if __name__ == "__main__":
    sequence(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "spawn")
