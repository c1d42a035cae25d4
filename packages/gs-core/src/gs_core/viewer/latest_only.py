"""A background thread that draws only the newest request: the viewer's render throttle.

A browser sends a camera message for every mouse move, far more often than a CPU renders a
frame. Requests that arrive while a frame is being drawn replace each other, so a camera that
moved ten times during one slow render is drawn once, at its last pose; nothing queues up and
the picture never lags behind the mouse by more than one frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestOnlyWorker(Generic[T]):
    """Runs ``draw(item, draft)`` on its own thread for the latest submitted item only.

    With ``settle_s`` set, each new item is first drawn with ``draft=True`` (a cheap image while
    the user drags) and drawn again with ``draft=False`` once no newer item has come for
    ``settle_s`` seconds; without it every item is drawn once with ``draft=False``.
    ``on_error(exc)`` receives what ``draw`` raised; the worker carries on with the next item.
    """

    def __init__(
        self,
        draw: Callable[[T, bool], None],
        *,
        settle_s: float | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "gs3d-viewer-render",
    ):
        if settle_s is not None and settle_s < 0:
            raise ValueError(f"settle_s: expected seconds >= 0, got {settle_s}")
        self._draw = draw
        self._settle_s = settle_s
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: T | None = None
        self._has_pending = False
        self._last: T | None = None
        self._has_last = False
        self._final_due = False
        self._last_submit = 0.0
        self._closed = False
        self.drawn = 0  # frames drawn, drafts included (read by tests and the status line)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Ask for ``item`` to be drawn, replacing any request not yet started."""
        with self._cond:
            self._pending, self._has_pending = item, True
            self._last_submit = time.monotonic()
            self._cond.notify()

    def redraw(self) -> None:
        """Draw the last item again (the scene changed under an unchanged camera)."""
        with self._cond:
            if self._has_pending or not self._has_last:
                return
            self._pending, self._has_pending = self._last, True
            self._last_submit = time.monotonic()
            self._cond.notify()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop after the frame in progress; pending requests are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _next(self) -> tuple[T, bool] | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._has_pending:
                    item = self._pending
                    self._pending, self._has_pending = None, False
                    return item, self._settle_s is not None  # type: ignore[return-value]
                if self._final_due:
                    wait = self._last_submit + float(self._settle_s) - time.monotonic()  # type: ignore[arg-type]
                    if wait <= 0:
                        self._final_due = False
                        return self._last, False  # type: ignore[return-value]
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            item, draft = job
            try:
                self._draw(item, draft)
            except Exception as e:  # a failed frame must not end the viewer
                if self._on_error is not None:
                    self._on_error(e)
            with self._cond:
                self._last, self._has_last = item, True
                self.drawn += 1
                if draft:
                    self._final_due = True


__all__ = ["LatestOnlyWorker"]
