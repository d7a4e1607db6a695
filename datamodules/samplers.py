"""Distributed sampling for evaluation: every song scored exactly once across processes."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


class UnrepeatedDistributedSampler(DistributedSampler):
    """Rank ``r`` of ``R`` takes items ``r, r + R, r + 2R, ...``: no padding, no duplicates.

    PyTorch's ``DistributedSampler`` pads the last round with repeated items so every rank gets the
    same count, which scores those songs twice and biases the metric. Here ranks may get one item
    fewer; evaluation tolerates that (no collective runs per step). Subclassing ``DistributedSampler``
    keeps Lightning from replacing it.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))  # type: ignore[arg-type]
        self.total_size = len(dataset)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


class EpochSampler(DistributedSampler):
    """Training order for one of ``num_replicas`` processes (1 without DDP), shuffled by (seed, epoch).

    It yields ``(index, epoch)`` so the dataset can draw an item's random crop from (seed, epoch,
    index) too: the data of an epoch is then the same with any number of loader workers and whether or
    not the run was resumed before it. Lightning calls :meth:`set_epoch` every epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.resume_at: tuple[int, int] | None = None

    def resume(self, epoch: int, items_done: int) -> None:
        """Epoch ``epoch`` was cut short after ``items_done`` of this process's items (a mid-epoch
        checkpoint): that epoch yields only the rest of its order. The length stays the epoch's, so the
        trainer counts the batches of the whole epoch."""
        self.resume_at = (epoch, items_done) if items_done > 0 else None

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())
        if self.resume_at is not None and self.resume_at[0] == self.epoch:
            indices = indices[self.resume_at[1] :]
        return ((index, self.epoch) for index in indices)
