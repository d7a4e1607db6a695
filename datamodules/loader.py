"""``BatchLoader``: whole batches from ``dataset.__getitems__``, read ahead by threads.

Why threads and not torch's worker processes: a batch of chunks is a few memory-mapped slices copied
into one int16 array, and numpy copies without holding the GIL, so reader threads overlap with the
training loop (and with each other, and with the disk on a cold cache) at the cost of a memcpy. Worker
processes must ship every batch through shared memory instead: on a 2-core machine torch's worker queue
moves ~2–7k chunks/s of 59,049 samples whatever the batch or block size, while the same batches read by
threads arrive an order of magnitude faster (``musictag bench --data-only``). ``worker_type="process"``
keeps torch's ``DataLoader`` (same batch sampler, same ``__getitems__``) for datasets whose items cost
CPU time rather than copies.

Order and content do not depend on the number of threads: batch ``i`` is read by thread ``i % N`` and
handed out in sampler order. With ``pin_memory`` each batch is copied into page-locked memory in its
thread, so the host-to-device copy that Lightning issues with ``non_blocking=True`` overlaps with compute.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, default_collate

from musictag.guards import usable_cores

Batch = dict[str, torch.Tensor]


def default_workers() -> int:
    """Reader threads when ``num_workers`` is not given: ``cores - 1`` (at most 4) of the cores this
    process may use, and none on a machine of 1 or 2 cores, where no core is left for a reader to run
    on: there the loop reading its own batches is as fast as 2 reader threads (``musictag bench
    --data-only`` on a shared 2-core machine, five runs: medians of 18.5k–37.4k against 19.1k–31.4k
    chunks/s, each ahead in some) and leaves both cores to the training step."""
    cores = usable_cores()
    return 0 if cores <= 2 else min(4, cores - 1)


def pin(batch: Batch) -> Batch:
    return {key: value.pin_memory() for key, value in batch.items()}


class BatchLoader:
    """Iterate ``batch_sampler``'s batches of keys as ``dataset.__getitems__(keys)`` dicts.

    Args:
        dataset: has ``__getitems__(keys) -> dict of tensors`` (one whole batch), or items to collate.
        batch_sampler: yields lists of keys; its ``sampler`` gets Lightning's ``set_epoch``.
        num_workers: reader threads (0: read in the calling thread, when the next batch is asked for).
        pin_memory: copy batches into page-locked memory (for CUDA devices).
        prefetch: batches each thread reads ahead.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_sampler: BatchSampler,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch: int = 2,
    ) -> None:
        if num_workers < 0 or prefetch < 1:
            raise ValueError(f"need num_workers >= 0 and prefetch >= 1, got {num_workers} and {prefetch}")
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers, self.pin_memory, self.prefetch = num_workers, pin_memory, prefetch
        self.pin_device = torch.cuda.current_device() if pin_memory and torch.cuda.is_available() else None

    @property
    def sampler(self) -> Any:
        return self.batch_sampler.sampler

    @property
    def batch_size(self) -> int:
        return self.batch_sampler.batch_size

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def fetch(self, keys: list[Any]) -> Batch:
        getitems = getattr(self.dataset, "__getitems__", None)
        batch = getitems(keys) if getitems is not None else collate_items([self.dataset[k] for k in keys])
        return pin(batch) if self.pin_memory else batch

    def __iter__(self) -> Iterator[Batch]:
        # Generators: nothing is drawn from the sampler before the first batch is asked for, as with
        # torch's DataLoader, because Lightning may call iter() before set_epoch of the epoch.
        if self.num_workers == 0:
            return (self.fetch(keys) for keys in self.batch_sampler)
        return _threaded(self)


def _threaded(loader: BatchLoader) -> Iterator[Batch]:
    """Batches read by ``loader.num_workers`` threads, yielded in order; the threads stop when the
    iteration ends or is abandoned (the generator's ``finally``)."""
    batches = list(loader.batch_sampler)  # at the first next(): after set_epoch, this epoch's order
    n_threads = min(loader.num_workers, max(1, len(batches)))
    stop = threading.Event()
    queues: list[queue.Queue] = [queue.Queue(maxsize=loader.prefetch) for _ in range(n_threads)]

    def work(rank: int) -> None:
        if loader.pin_device is not None:
            torch.cuda.set_device(loader.pin_device)
        for number in range(rank, len(batches), n_threads):
            try:
                item: Batch | BaseException = loader.fetch(batches[number])
            except BaseException as err:  # noqa: BLE001  (handed to the consumer, raised there)
                item = err
            if not _put(queues[rank], item, stop) or isinstance(item, BaseException):
                return

    threads = [
        threading.Thread(target=work, args=(r,), daemon=True, name=f"musictag-reader-{r}")
        for r in range(n_threads)
    ]
    for thread in threads:
        thread.start()
    try:
        for number in range(len(batches)):
            item = queues[number % n_threads].get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for q in queues:  # unblock threads waiting to put
            while not q.empty():
                q.get_nowait()


def _put(target: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def collate_items(items: list[Batch]) -> Batch:
    """One batch from the items of a dataset without ``__getitems__``: stacked, or (songs with different
    numbers of chunks) padded with a ``chunk_mask``."""
    from datamodules.datasets import collate_songs

    shapes = {tuple(item["audio"].shape) for item in items}
    return default_collate(items) if len(shapes) == 1 else collate_songs(items)


def _whole_batch(batch: Batch | list[Batch]) -> Batch:
    """``collate_fn`` for batches that ``__getitems__`` already assembled (or items to collate)."""
    return collate_items(batch) if isinstance(batch, list) else batch


def make_loader(
    dataset: Dataset,
    batch_sampler: BatchSampler,
    num_workers: int,
    worker_type: str = "thread",
    pin_memory: bool = False,
) -> BatchLoader | DataLoader:
    """The loader of a DataModule: :class:`BatchLoader` threads, or torch worker processes."""
    if worker_type == "thread":
        return BatchLoader(dataset, batch_sampler, num_workers, pin_memory)
    if worker_type == "process":
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=_whole_batch,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=pin_memory,
        )
    raise ValueError(f"unknown worker_type {worker_type!r}; use 'thread' or 'process'")
