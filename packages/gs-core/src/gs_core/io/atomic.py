"""Atomic file writes: a reader never sees a half-written file, and a crash leaves no debris."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gs_core.errors import GS3DError


class OutputExistsError(GS3DError, FileExistsError):
    """An output path exists and overwriting was not allowed."""


def check_overwrite(path: str | Path, overwrite: bool) -> None:
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path}: already exists (pass overwrite=True / --overwrite to replace it)"
        )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    Works for files and directories. On error the temporary is removed and ``path`` is
    untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        if tmp_path.is_dir() and path.is_dir():
            # os.replace cannot replace a non-empty directory: swap through a second name.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp_path, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, path)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
