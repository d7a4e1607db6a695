"""Input standardisation from training-set statistics (Pons et al. 2016: "normalisation over the whole
training set"): the mean and standard deviation of every mel band, computed once before training.

A representation built with ``standardize: true`` (:class:`~musictag.stages.representations.mel.MelSpectrogram`)
holds the statistics as buffers. :func:`fit_band_statistics`, called when ``fit`` starts, makes one pass
over the training loader (one chunk of every training song, as an epoch draws them), accumulates each
band's sum and sum of squares over every frame in float64 (summed over processes under DDP) and stores
mean and standard deviation. A model whose statistics are already set (a resumed run, a checkpoint's
weights) keeps them.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from musictag.audio import to_float
from musictag.types import ConfigError


def standardized_stages(net: torch.nn.Module) -> list[Any]:
    """The representations of ``net`` that standardise their bands."""
    return [
        m for m in net.modules() if getattr(m, "standardize", False) and hasattr(m, "set_band_statistics")
    ]


@torch.no_grad()
def band_statistics(
    stage: Any, batches: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames, per-band sums and sums of squares ``(n_mels,)`` (float64) of ``stage.compressed`` over the
    ``audio`` of ``batches``."""
    count = torch.zeros((), dtype=torch.float64, device=device)
    total = torch.zeros(stage.n_mels, dtype=torch.float64, device=device)
    squares = torch.zeros(stage.n_mels, dtype=torch.float64, device=device)
    for batch in batches:
        audio = to_float(batch["audio"].to(device))
        bands = stage.compressed(audio.reshape(-1, audio.shape[-1])).double()  # (B, n_mels, T)
        count += bands.shape[0] * bands.shape[2]
        total += bands.sum(dim=(0, 2))
        squares += bands.square().sum(dim=(0, 2))
    return count, total, squares


def fit_band_statistics(module: Any) -> None:
    """Set the band statistics of every standardising representation of ``module.net`` that has none,
    from one pass over the training loader of ``module.trainer.datamodule``."""
    stages = [s for s in standardized_stages(module.net) if not bool(s.statistics_fitted)]
    if not stages:
        return
    trainer = module.trainer
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None:
        raise ConfigError(
            "representation standardize: true takes its statistics from the training set, which needs a "
            "DataModule (data: in the config)"
        )
    loader = datamodule.train_dataloader()
    for stage in stages:
        count, total, squares = band_statistics(stage, loader, module.device)
        count, total, squares = (trainer.strategy.reduce(t, reduce_op="sum") for t in (count, total, squares))
        if float(count) == 0:
            raise ConfigError("representation standardize: true, but the training loader yielded no audio")
        mean = total / count
        std = (squares / count - mean.square()).clamp(min=0).sqrt()
        stage.set_band_statistics(mean.float(), std.float())
        rank_zero_info(
            f"musictag: band statistics of {int(count):,} training frames: mean {float(mean.mean()):.3f}, "
            f"std {float(std.mean()):.3f} (averaged over the {stage.n_mels} bands)"
        )
