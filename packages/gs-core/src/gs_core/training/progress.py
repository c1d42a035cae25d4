"""Progress display on the main process: a rich bar on a terminal, plain lines in log files."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _fmt_terms(terms: dict[str, float], limit: int = 6) -> str:
    items = list(terms.items())[:limit]
    return " ".join(f"{k} {v:.4g}" for k, v in items)


# In ``lines`` mode, a line at least this often even between logged steps: slow steps (large
# models on a CPU) would otherwise leave a log silent for minutes.
LINE_EVERY_S = 10.0


class ProgressDisplay:
    """``mode``: ``bar`` (rich), ``lines`` (a line per logged step, and at least one every
    :data:`LINE_EVERY_S` seconds), ``off``, or ``auto`` (a bar when stderr is a terminal, else
    lines)."""

    def __init__(
        self,
        mode: str,
        total: int,
        start: int,
        enabled: bool = True,
        console: Console | None = None,
    ):
        self.enabled = enabled
        self.console = console or Console(
            stderr=True, highlight=False, markup=False, quiet=not enabled
        )
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode = mode if enabled else "off"
        self.total = total
        self._t0 = time.perf_counter()
        self._start = start
        self._last_line = self._t0
        self._bar: Progress | None = None
        if self.mode == "bar":
            self._bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[terms]}"),
                console=self.console,
                refresh_per_second=4,
            )
            self._task = self._bar.add_task(
                "train", total=total, completed=start, speed="", terms=""
            )
            self._bar.start()

    def update(self, step: int, its: float, terms: dict[str, float], logged: bool = True) -> None:
        """Called after every step; ``logged``: the step is one the metrics log records."""
        now = time.perf_counter()
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(
                self._task, completed=step, speed=f"{its:.2f} it/s", terms=_fmt_terms(terms)
            )
        elif self.mode == "lines" and (logged or now - self._last_line >= LINE_EVERY_S):
            self._last_line = now
            eta = (self.total - step) / its if its > 0 else float("nan")
            eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta == eta else "?"
            print(
                f"step {step}/{self.total} | {its:.2f} it/s | ETA {eta_s} | {_fmt_terms(terms, 12)}",
                file=sys.stderr,
                flush=True,
            )

    def message(self, text: str, always: bool = False) -> None:
        """Print above the bar; ``always`` also when the display is off (warnings)."""
        if self.mode != "off" or always:
            self.console.print(text, soft_wrap=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["ProgressDisplay"]
