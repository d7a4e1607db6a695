"""A LightningModule that is not a TaggingModule, and its songs: what the evaluation callbacks' tests train."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import Dataset

N_TAGS = 3


class Songs(Dataset):
    """Songs of 8 features whose tags are fixed, noisy functions of the features."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.features = torch.randn(n, 8, generator=g)
        logits = self.features[:, :N_TAGS] + 0.5 * torch.randn(n, N_TAGS, generator=g)
        self.targets = (logits > 0).float()

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.features[i], "y": self.targets[i], "index": torch.tensor(i)}


class PlainModule(pl.LightningModule):
    """Not a TaggingModule: a linear tagger whose evaluation steps return song scores."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, N_TAGS)
        self.tag_names = ["bright", "loud", "fast"]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(self.linear(batch["x"]), batch["y"])

    def _songs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            "scores": torch.sigmoid(self.linear(batch["x"])),
            "targets": batch["y"],
            "index": batch["index"],
        }

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._songs(batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._songs(batch)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._songs(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Worsening(PlainModule):
    """Logs a validation score that only gets worse: the first epoch stays the best."""

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        self.log("val/score", -float(self.current_epoch))
        return self._songs(batch)
