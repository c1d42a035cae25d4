"""Progress of a long ``gs3d`` step, on a terminal and in log files alike.

On a terminal it is a rich bar that disappears when the step ends. Anywhere else (a pipe, a
log file, CI) a bar would be invisible or a mess of carriage returns, so the step prints plain
lines instead: one at the start, one at least every ``LINE_EVERY_S`` seconds or every
``LINE_EVERY_PCT`` percent (but not more often than every ``MIN_GAP_S`` seconds, so a quick
step prints no more than its first and last line), and one at the end. Imported when ``gs3d`` starts: no torch here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console

LINE_EVERY_S = 5.0
LINE_EVERY_PCT = 10
MIN_GAP_S = 1.0

ProgressCallback = Callable[[int, int], None]


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


class _Lines:
    """Plain progress lines: ``label: 12/36 (33%), 0:41 elapsed, about 1:22 left``."""

    def __init__(self, console: Console, label: str, total: int):
        self.console, self.label, self.total = console, label, total
        self.t0 = time.perf_counter()
        self.last_t = self.t0
        self.last_pct = 0
        self.finished = False
        console.print(f"{label}: 0/{total}")

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        if self.finished:
            return
        now = time.perf_counter()
        pct = 100 * done // max(self.total, 1)
        end = done >= self.total
        since = now - self.last_t
        next_pct = pct >= self.last_pct + LINE_EVERY_PCT and since >= MIN_GAP_S
        if not (end or next_pct or since >= LINE_EVERY_S):
            return
        elapsed = now - self.t0
        text = f"{self.label}: {done}/{self.total} ({pct}%), {_clock(elapsed)} elapsed"
        if not end and done > 0:
            text += f", about {_clock(elapsed / done * (self.total - done))} left"
        self.console.print(text)
        self.last_t, self.last_pct, self.finished = now, pct - pct % LINE_EVERY_PCT, end


@contextlib.contextmanager
def progress(
    console: Console, label: str, total: int, *, enabled: bool = True
) -> Iterator[ProgressCallback]:
    """Yield ``update(done, total=None)`` for a step of ``total`` units labelled ``label``.

    A rich bar when ``console`` is a terminal, plain lines otherwise, nothing when not
    ``enabled`` (``--quiet``).
    """
    if not enabled:
        yield lambda done, total=None: None
        return
    if not console.is_terminal:
        yield _Lines(console, label, total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


__all__ = ["LINE_EVERY_PCT", "LINE_EVERY_S", "MIN_GAP_S", "ProgressCallback", "progress"]
