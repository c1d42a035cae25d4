"""One reading of a device name for every command and library entry point."""

from __future__ import annotations

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


__all__ = ["resolve_device"]
