"""The data stream: a seeded, resumable split of a map-style dataset over processes.

Epoch ``e`` shuffles the indices with a generator seeded by ``seed + e`` (independent of the
global RNG), process ``r`` of ``W`` takes every ``W``-th index starting at ``r`` and cuts them
into micro-batches; the trailing incomplete global batch is dropped. So one process with batch
``W * b`` and ``W`` processes with batch ``b`` see the same samples at every step, and a resumed
run can start in the middle of an epoch without reading the skipped samples.

Random augmentation inside ``Dataset.__getitem__`` is reproduced exactly on resume when it runs
in the main process (``num_workers=0``: the global RNG is checkpointed). In worker processes
it is seeded per epoch, so mid-epoch resumes are exact only for randomness derived from the
sample index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch.utils.data import default_collate as torch_default_collate

from gs_core.errors import GS3DError
from gs_core.training.distributed import DistInfo


def epoch_batches(
    n: int, batch_size: int, rank: int, world_size: int, seed: int, epoch: int, shuffle: bool
) -> list[list[int]]:
    """Index lists of this process's micro-batches in epoch ``epoch``."""
    if shuffle:
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    per_rank = n // (world_size * batch_size) * batch_size
    mine = order[rank::world_size][:per_rank]
    return [mine[i : i + batch_size] for i in range(0, per_rank, batch_size)]


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    return ((seed * 1_000_003 + epoch) * 65_537 + rank) % (2**63 - 1)


class BatchStream:
    """Endless micro-batches for one process, starting after ``position`` already consumed ones.

    ``dataset=None`` yields ``None`` forever (methods that make their own data, e.g.
    per-scene optimisation with random cameras).
    """

    def __init__(
        self,
        dataset: Dataset | None,
        batch_size: int,
        dist: DistInfo,
        seed: int,
        shuffle: bool = True,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        position: int = 0,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.dist = dist
        self.seed = seed
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.collate_fn = collate_fn or torch_default_collate
        self.position = position
        self.epoch = 0
        if dataset is None:
            self.batches_per_epoch = 0
            return
        if isinstance(dataset, IterableDataset):
            raise GS3DError(
                "train_dataset(): the engine needs a map-style Dataset (with __len__ and __getitem__) "
                "to split it over processes and resume mid-epoch; got an IterableDataset"
            )
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise GS3DError(f"train_dataset(): {type(dataset).__name__} has no __len__") from None
        global_batch = batch_size * dist.world_size
        if n < global_batch:
            raise GS3DError(
                f"train_dataset(): {n} samples, fewer than one global batch of {global_batch} "
                f"(batch_size {batch_size} x {dist.world_size} processes); lower batch_size or add data"
            )
        self.num_samples = n
        self.batches_per_epoch = n // global_batch

    def __iter__(self) -> Iterator[Any]:
        if self.dataset is None:
            while True:
                self.position += 1
                yield None
        epoch, offset = divmod(self.position, self.batches_per_epoch)
        while True:
            self.epoch = epoch
            batches = epoch_batches(
                self.num_samples,
                self.batch_size,
                self.dist.rank,
                self.dist.world_size,
                self.seed,
                epoch,
                self.shuffle,
            )[offset:]
            generator = torch.Generator()
            # A private generator: creating the loader must not draw from the global RNG,
            # or a resumed run would see different random numbers than an uninterrupted one.
            generator.manual_seed(_loader_seed(self.seed, epoch, self.dist.rank))
            loader = DataLoader(
                self.dataset,
                batch_sampler=batches,
                num_workers=self.num_workers,
                collate_fn=self.collate_fn,
                pin_memory=self.dist.device.type == "cuda",
                generator=generator,
            )
            for batch in loader:
                self.position += 1
                yield batch
            epoch, offset = epoch + 1, 0


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor (and object with ``.to``, e.g. Cameras, Gaussians) in ``batch``."""
    non_blocking = device.type == "cuda"
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    to = getattr(batch, "to", None)
    if callable(to) and not isinstance(batch, str | bytes | type):
        return to(device)
    return batch


__all__ = ["BatchStream", "epoch_batches", "to_device"]
