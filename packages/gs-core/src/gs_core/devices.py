"""Device names and CPU threads, read one way by every command and library entry point."""

from __future__ import annotations

import os
import re

import torch

from gs_core.errors import GS3DError

_CUDA_NAME = re.compile(r"cuda(?::(\d+))?")


def resolve_device(name: str | torch.device = "auto", *, field: str = "device") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:i`` (or a ``torch.device``) -> a usable device.

    ``auto`` is the first CUDA device when one is available, else the CPU. A name that is not
    one of these, ``cuda`` without CUDA, or a CUDA index past the last device raises one
    :class:`GS3DError` line that starts with ``field`` (e.g. ``--device`` in the CLI).
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA_NAME.fullmatch(text)
    if match is None:
        raise GS3DError(f"{field} '{name}': expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise GS3DError(f"{field} {name}: CUDA is not available on this machine; use cpu")
    if match.group(1) is not None:
        index, count = int(match.group(1)), torch.cuda.device_count()
        if index >= count:
            raise GS3DError(
                f"{field} {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    return torch.device(text)


def to_device_async(tensor: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """``tensor`` on ``device`` without making the host wait for the GPU.

    A CPU tensor bound for CUDA is copied through pinned memory with ``non_blocking=True``:
    the plain ``.to("cuda")`` of a pageable tensor synchronises the stream, which in a
    launch-bound loop (small renders, graphed U-Net calls) stalls the host once per copy.
    The pinned block is not reused before the copy has run (torch's caching host allocator
    records it on the stream). Anything else is ``tensor.to(device)``. Not inside a CUDA-graph
    capture: the graph would keep reading that pinned block, which is reused afterwards.
    """
    if device is None:
        return tensor
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        if torch.cuda.is_current_stream_capturing():
            raise GS3DError(
                "to_device_async: a host tensor cannot be copied inside a CUDA-graph capture "
                "(the graph would read a pinned block that is reused); move it before capturing"
            )
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


# On a machine with at most this many cores, one torch thread is the default. Measured on the
# 2-core CPU machine of the README figures, shared with other jobs: `gs3d fit` (preset small,
# 64 px) made 4.97 steps/s with 1 thread and 0.32 with torch's default of 2 at load average 2,
# 0.51-0.55 and 0.07-0.20 at load average 7; at load 7 a 128 px render of 4,096 Gaussians took
# 100 ms (forward, median) / 158 ms (with backward) with 1 thread and 135 / 448 ms with 2. The
# second thread mostly waits for a core another process holds. Larger machines were not
# measured and keep torch's choice.
FEW_CORES = 2


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count deliberately and return the count in effect.

    ``threads``: a count >= 1; ``0`` keeps torch's own choice; ``None`` is the default: torch's
    choice when ``OMP_NUM_THREADS`` says what the user wants, else 1 thread on a machine with at
    most :data:`FEW_CORES` cores (see there) and torch's choice on larger ones.
    """
    if threads is not None and (isinstance(threads, bool) or threads < 0):
        raise GS3DError(f"--threads: expected 0 or a positive count, got {threads}")
    if threads is None:
        few = available_cores() <= FEW_CORES
        threads = 1 if few and not os.environ.get("OMP_NUM_THREADS") else 0
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def child_environment(
    jobs: int, gpu: str | int | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of one of ``jobs`` child processes that run at once on this machine.

    Each child gets its share of the cores as its CPU thread count (``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS``, at least 1) unless the parent's environment already sets one, and
    ``CUDA_VISIBLE_DEVICES=gpu`` when ``gpu`` is given. Without the share every child starts
    torch with a thread per core: on the 16-core H200 machine 12 DD3G runs then held 192 threads,
    and each run's evaluation (SSIM on the CPU) took 80-100 s instead of seconds.
    """
    if jobs < 1:
        raise GS3DError(f"jobs: expected a count >= 1, got {jobs}")
    env = dict(os.environ if base is None else base)
    if not any(env.get(v) for v in _THREAD_VARS):
        share = str(max(1, available_cores() // jobs))
        env.update(dict.fromkeys(_THREAD_VARS, share))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


__all__ = [
    "FEW_CORES",
    "available_cores",
    "child_environment",
    "resolve_device",
    "set_cpu_threads",
]
