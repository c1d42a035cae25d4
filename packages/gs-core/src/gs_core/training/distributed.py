"""Process-group setup for data-parallel training launched by ``torchrun``.

``torchrun --nproc_per_node=G ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address; a plain ``python`` launch sets none of them and trains in one process.
The backend is NCCL when training on CUDA and gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gs_core.errors import GS3DError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise GS3DError(
            f"environment variable {name}={raw!r}: expected an integer (set by torchrun)"
        ) from None


def resolve_device(preference: str, local_rank: int) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    pref = preference.strip().lower()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GS3DError(
                f"device '{preference}': CUDA is not available on this machine (use device=cpu)"
            )
        dev = torch.device(pref)
        index = local_rank if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise GS3DError(
                f"device '{preference}' (local rank {local_rank}): only {torch.cuda.device_count()} CUDA "
                "device(s) visible; launch at most that many processes per node"
            )
        return torch.device("cuda", index)
    raise GS3DError(f"device '{preference}': expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def setup_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the torchrun job if there is one and pick this process's device."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = resolve_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world == 1 or dist.is_initialized():
        if dist.is_initialized():
            world, rank = dist.get_world_size(), dist.get_rank()
        return DistInfo(rank, world, local_rank, device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_available():
        raise GS3DError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    try:
        if backend == "nccl":
            dist.init_process_group(backend, device_id=device)
        else:
            dist.init_process_group(backend)
    except (RuntimeError, ValueError) as e:
        raise GS3DError(f"could not join the distributed job ({backend}): {e}") from None
    return DistInfo(rank, world, local_rank, device, initialized_here=True)


def teardown_distributed(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.is_distributed:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def all_reduce_sum_(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (no-op in one process)."""
    if info.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


__all__ = [
    "DistInfo",
    "all_reduce_sum_",
    "barrier",
    "resolve_device",
    "setup_distributed",
    "teardown_distributed",
]
