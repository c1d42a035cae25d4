"""Writing safetensors files with the permissions of any other file the user creates.

``safetensors.torch.save_file`` creates its file with mode 0600 whatever the umask, so a
checkpoint saved on a shared machine could be read by its owner only. Every gs3d safetensors
write goes through :func:`save_tensors`, which gives the file the mode ``open()`` would have
(0666 less the process umask).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def default_file_mode() -> int:
    """``0o666`` less the process umask (read without changing it where /proc says it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: swap it out and back (not thread-safe; rare path)
    os.umask(mask)
    return 0o666 & ~mask


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """``safetensors.torch.save_file(tensors, path, metadata)`` with the default file mode.

    Args:
        tensors: name -> contiguous tensor (safetensors refuses shared storage).
        path: the file to write (callers make it atomic by writing a temporary path).
        metadata: string -> string header entries.
    """
    from safetensors.torch import save_file

    path = Path(path)
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, default_file_mode())
    return path


__all__ = ["default_file_mode", "save_tensors"]
