"""Per-run metrics: a JSONL file (always) and TensorBoard event files (when available)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gs_core.errors import GS3DError
from gs_core.io.atomic import atomic_write_text


def _tensorboard_writer(directory: Path, mode: str):
    if mode == "off":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if mode == "on":
            raise GS3DError(
                "tensorboard=on but the tensorboard package is not installed "
                "(pip install 'gs3d-core[tensorboard]', or set tensorboard=off)"
            ) from None
        return None
    return SummaryWriter(log_dir=str(directory))


class MetricsLog:
    """Appends ``{"step": s, "time": t, name: value, ...}`` lines to ``metrics.jsonl``.

    On resume from step ``k`` the lines of steps after ``k`` (written by the interrupted run and
    about to be redone) are dropped first, so the file reads as one uninterrupted run.
    """

    def __init__(
        self,
        path: Path,
        tensorboard_dir: Path,
        tensorboard: str = "auto",
        resume_step: int | None = None,
    ):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and path.is_file():
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if _step_of(line) <= resume_step
            ]
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        elif resume_step is None and path.is_file():
            path.unlink()
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        self._tb = _tensorboard_writer(tensorboard_dir, tensorboard)

    @property
    def tensorboard_enabled(self) -> bool:
        return self._tb is not None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record: dict[str, Any] = {"step": step, "time": round(time.time(), 3)}
        record.update({k: float(v) for k, v in metrics.items()})
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, float(v), step)

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def _step_of(line: str) -> float:
    try:
        return float(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf")  # a torn last line from a killed run: drop it


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (skipping a torn last line)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


__all__ = ["MetricsLog", "read_metrics"]
