"""What a comparison ran on, and the peak memory each method took there.

Peak memory is measured where the method's work lives: on a CUDA device, torch's maximum
allocated bytes (reset before each method, so one method's peak is not another's); on the CPU,
the process's peak resident set size. Linux lets a process reset that peak (writing ``5`` to
``/proc/self/clear_refs`` resets ``VmHWM``), so each method gets its own; where it cannot, the
value is the peak since the process started and its name says so.
"""

from __future__ import annotations

import contextlib
import platform
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from gs_core.devices import available_cores

CUDA_MEASURE = "CUDA max allocated"
RSS_MEASURE = "CPU peak RSS"
RSS_SINCE_START = "CPU peak RSS since process start"

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def describe_device(device: torch.device) -> str:
    """One line naming the device: ``cuda:0 (NVIDIA H200, 139.8 GiB)`` or ``cpu (model, N
    cores, T torch threads)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    model = _cpu_model() or platform.machine() or "unknown CPU"
    return (
        f"{device.type} ({model}, {available_cores()} cores, "
        f"{torch.get_num_threads()} torch threads)"
    )


def _cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else None


def memory_measure(device: torch.device) -> str:
    """The name of what :class:`PeakMemory` measures on ``device``."""
    if device.type == "cuda":
        return CUDA_MEASURE
    return RSS_MEASURE if _resettable_rss() else RSS_SINCE_START


def _resettable_rss() -> bool:
    try:
        return _STATUS.is_file() and "VmHWM" in _STATUS.read_text() and _CLEAR_REFS.exists()
    except OSError:
        return False


def _vm_hwm_bytes() -> int | None:
    m = re.search(r"^VmHWM:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux kB


@dataclass
class PeakMemory:
    """``peak.bytes`` after ``with measure_peak(device) as peak:``; ``peak.measure`` names it."""

    measure: str
    bytes: int | None = None


@contextlib.contextmanager
def measure_peak(device: torch.device) -> Iterator[PeakMemory]:
    """Measure the peak memory of the block on ``device`` (see the module docstring).

    The value is set even when the block raises, so a method that runs out of memory still
    reports how far it got.
    """
    peak = PeakMemory(memory_measure(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    elif peak.measure == RSS_MEASURE:
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:  # a locked-down /proc: fall back to the peak since start
            peak.measure = RSS_SINCE_START
    try:
        yield peak
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak.bytes = int(torch.cuda.max_memory_allocated(device))
        elif peak.measure == RSS_MEASURE:
            peak.bytes = _vm_hwm_bytes()
        else:
            peak.bytes = _ru_maxrss_bytes()


__all__ = [
    "CUDA_MEASURE",
    "RSS_MEASURE",
    "RSS_SINCE_START",
    "PeakMemory",
    "describe_device",
    "measure_peak",
    "memory_measure",
]
