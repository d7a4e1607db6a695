"""On a CUDA device (marker ``gpu``; skipped without one): the representations equal CPU's, every
architecture trains in bf16-mixed and 16-mixed, the training step never synchronises, the demo fits and
tests in bf16-mixed, and imported published checkpoints give the CPU scores (``musictag tag`` too).

Run with ``make test-gpu`` (``pytest -m gpu``). TF32 is switched off for the comparisons: it trades
float32 matmul/convolution precision (~1e-3) for speed, and these tests hold the GPU to 1e-4.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.reference import reference_root
from musictag.chunks import chunk_starts, cut_chunks
from musictag.models import available, build
from musictag.testing import last_logged

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

REPO = Path(__file__).resolve().parents[2]
# $MUSICTAG_REFERENCE (reference_root) as everywhere else: on a GPU machine the reference data travels
# with the checkout rather than beside it.
SOTA = Path(reference_root()) / "sota"
CHECKPOINTS = sorted(
    str(p.relative_to(SOTA / "models").parent) for p in SOTA.glob("models/*/*/best_model.pth")
)
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def full_float32() -> Iterator[None]:
    """TF32 off during each test; the global switches a test's Trainer flips are restored after it: the
    demo's ``deterministic: true`` would otherwise hold every later test of the process (in whatever order
    pytest-xdist deals them) to deterministic kernels, which some CUDA backward passes do not have."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def music_like(n_samples: int, batch: int = 2) -> torch.Tensor:
    """Tones over noise: every frequency bin holds power, so dB values compare at float32 precision."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(n_samples) / 16000
    tones = sum(0.2 * torch.sin(2 * torch.pi * f * t) for f in (110.0, 440.0, 1234.5, 3000.0))
    return tones + 0.05 * torch.randn(batch, n_samples, generator=generator)


@pytest.mark.parametrize("arch", ["short_chunk", "fcn", "harmonic_cnn", "musicnn", "transformer"])
def test_representation_on_gpu_equals_cpu(arch):
    net = build(arch, n_tags=50).eval()
    wave = music_like(net.input_len)
    with torch.no_grad():
        on_cpu = net.representation(wave)
        on_gpu = net.representation.to(CUDA)(wave.to(CUDA)).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("arch", available())
def test_every_architecture_trains_in_mixed_precision(arch, precision):
    torch.manual_seed(0)
    net = build(arch, n_tags=50).to(CUDA).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16-mixed")
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    wave = music_like(net.input_len).to(CUDA)
    target = torch.randint(0, 2, (2, 50), device=CUDA).float()
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(2):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            spec = net.representation(wave)
            logits = net(wave)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    assert spec.dtype == torch.float32  # representations stay float32 under autocast
    assert torch.isfinite(loss), f"{arch} {precision}: loss {loss}"
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_training_step_never_synchronises(tmp_path):
    """``torch.cuda.set_sync_debug_mode("error")`` around the batch hook and the training step.

    Not around the first training step: Lightning registers a logged name on its first ``self.log`` by
    moving the accumulators it has just made on the CPU to the device, a blocking host-to-device copy,
    once per run (later epochs reset them on the device)."""
    import lightning.pytorch as pl

    from datamodules.synthetic import SyntheticDataModule
    from musictag import TaggingModule
    from musictag.testing import MASKED_MEL, TINY_SHORT_CHUNK, tiny_synthetic_args

    class Strict(TaggingModule):
        steps = 0

        def on_after_batch_transfer(self, batch, dataloader_idx):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return super().on_after_batch_transfer(batch, dataloader_idx)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        def training_step(self, batch, batch_idx):
            Strict.steps += 1
            if Strict.steps == 1:
                return super().training_step(batch, batch_idx)
            torch.cuda.set_sync_debug_mode("error")
            try:
                return super().training_step(batch, batch_idx)
            finally:
                torch.cuda.set_sync_debug_mode("default")

    pl.seed_everything(0)
    augment = {"gain_db": 6.0, "noise_snr_db": [10, 30]}
    data = SyntheticDataModule(**tiny_synthetic_args(str(tmp_path / "corpus")), augment=augment)
    mel = MASKED_MEL
    module = Strict(n_tags=data.n_tags, **{**TINY_SHORT_CHUNK, "representation": mel})
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
    )
    trainer.fit(module, data)
    assert Strict.steps == 4


def run_cli(argv: list[str], monkeypatch) -> None:
    from musictag.cli import main

    monkeypatch.setattr(sys, "argv", ["musictag"])
    try:
        main(argv)
    except SystemExit as stop:
        assert not stop.code, f"musictag {argv[0]} exited with {stop.code}"


def test_demo_fits_and_tests_in_bf16_on_gpu(tmp_path, monkeypatch):
    common = [
        "--config",
        str(REPO / "experiments" / "demo.yaml"),
        "--trainer.accelerator=gpu",
        "--trainer.devices=1",
        "--trainer.precision=bf16-mixed",
        "--trainer.enable_progress_bar=false",
        f"--data.init_args.root={tmp_path / 'demo'}",
        f"--run.save_dir={tmp_path / 'runs'}",
    ]
    run_cli(["fit", *common], monkeypatch)
    run_cli(["test", *common, "--ckpt_path=best"], monkeypatch)
    scores = last_logged(tmp_path / "runs" / "demo" / "version_1" / "metrics.csv")
    # the demo reaches ROC-AUC ~0.99 / PR-AUC ~0.98 in fp32 on CPU
    assert scores["test/roc_auc"] > 0.95 and scores["test/pr_auc"] > 0.9, scores


@pytest.mark.skipif(not SOTA.is_dir(), reason="shared/reference/sota not present")
@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_published_checkpoints_score_as_on_cpu(checkpoint):
    from musictag.convert.sota import convert_sota_state_dict, load_state_dict_file, sota_preset

    dataset, arch = checkpoint.split("/")
    net = build(sota_preset(arch, dataset), n_tags=50).eval()
    state = load_state_dict_file(SOTA / "models" / checkpoint / "best_model.pth")
    net.load_state_dict(convert_sota_state_dict(state, net))
    probe = np.load(SOTA / "probe.npy")
    chunks = torch.from_numpy(
        cut_chunks(probe, chunk_starts(len(probe), net.input_len, 16, "sota"), net.input_len)
    )
    with torch.no_grad():
        on_cpu = torch.sigmoid(torch.cat([net(part) for part in chunks.split(4)]))
        net.to(CUDA)
        on_gpu = torch.sigmoid(torch.cat([net(part.to(CUDA)) for part in chunks.split(4)])).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=0, atol=1e-4)
    expected = np.load(SOTA / "expected_probe_outputs.npz")[f"{checkpoint}/probe_song"]
    np.testing.assert_allclose(on_gpu.mean(dim=0).numpy(), expected, atol=1e-4)


@pytest.mark.skipif(not SOTA.is_dir(), reason="shared/reference/sota not present")
def test_tag_on_gpu_gives_the_cpu_scores(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    wav = tmp_path / "probe.wav"
    sf.write(wav, np.load(SOTA / "probe.npy"), 16000, subtype="FLOAT")
    ckpt = tmp_path / "musicnn-mtat.ckpt"
    weights = SOTA / "models" / "mtat" / "musicnn" / "best_model.pth"
    run_cli(
        [
            "import-weights",
            "--source",
            "sota",
            "--arch",
            "musicnn",
            "--dataset",
            "mtat",
            "--weights",
            str(weights),
            "--out",
            str(ckpt),
        ],
        monkeypatch,
    )
    capsys.readouterr()
    results = {}
    for device in ("cpu", "cuda"):
        run_cli(["tag", str(wav), "--ckpt", str(ckpt), "--format", "json", "--device", device], monkeypatch)
        results[device] = json.loads(capsys.readouterr().out)
    assert list(results["cuda"]["scores"]) == list(results["cpu"]["scores"])
    np.testing.assert_allclose(
        list(results["cuda"]["scores"].values()), list(results["cpu"]["scores"].values()), atol=1e-4
    )
