"""Screenshots of pages in headless Chromium, for tests that check what a person would see.

The viewer (``gs3d view``) and the comparison report (``gs3d compare``) are pages; their tests
open them in a real browser and look at the pixels. Chromium comes from Debian's ``chromium``
package (``apt-get install chromium``); where it is absent, :func:`require_chromium` skips the
calling test with that reason instead of failing.

:func:`screenshot` suits pages that are complete once loaded: Chromium's own ``--screenshot``
after a budget of virtual time. :class:`LivePage` (and its one-shot :func:`live_screenshot`)
suits pages a server keeps feeding over a websocket (the viewer): virtual time runs ahead of
the server, so it drives the browser over the DevTools protocol instead, waits in real time
until the caller says the page is ready, captures exactly ``size`` pixels, and can capture one
page several times (the browser's start-up is most of the cost). It also counts the frames a
WebGL page draws (:meth:`LivePage.frame_counter`), which is how ``benchmarks/viewer.py``
measures the browser side of ``gs3d view``.

WebGL runs on SwiftShader, Chromium's software (CPU) implementation: a headless machine
without a GPU has nothing else, so frame rates measured here are those of a browser with no
GPU on the same CPU, a worst case for a page such as viser's splat display.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Debian names the binary ``chromium``; other distributions and Google's build use the others.
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_executable() -> str | None:
    """The headless-capable Chromium on ``PATH`` (or ``$GS3D_CHROMIUM``), or ``None``."""
    override = os.environ.get("GS3D_CHROMIUM")
    if override:
        return override if Path(override).exists() else shutil.which(override)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable, or skip the calling pytest test saying how to get one."""
    exe = chromium_executable()
    if exe is None:
        import pytest

        pytest.skip("headless Chromium not found: apt-get install chromium (or set GS3D_CHROMIUM)")
    return exe


def screenshot(
    url: str,
    out_png: str | Path,
    *,
    size: tuple[int, int] = (1024, 768),
    wait_ms: int = 3000,
    timeout_s: float = 90.0,
) -> Path:
    """Load ``url`` in headless Chromium and write a PNG of the viewport.

    Args:
        url: ``http://127.0.0.1:PORT/`` or ``file:///...``.
        out_png: where the PNG goes.
        size: viewport ``(width, height)`` in pixels.
        wait_ms: virtual time the page gets to run scripts (websocket messages, WebGL frames)
            before the capture.
        timeout_s: wall-clock limit for the browser process.

    WebGL runs on SwiftShader (software), so pages drawn with three.js (viser) render without a
    GPU. Raises ``RuntimeError`` naming the browser's stderr when no PNG was written.
    """
    exe = chromium_executable()
    if exe is None:
        raise RuntimeError("headless Chromium not found: apt-get install chromium")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gs3d-chromium-") as profile:
        cmd = [
            exe,
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu-sandbox",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={int(wait_ms)}",
            f"--screenshot={out_png}",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if not out_png.exists():
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise RuntimeError(f"Chromium wrote no screenshot of {url}: " + " | ".join(tail))
    return out_png


def live_screenshot(
    url: str,
    out_png: str | Path,
    *,
    size: tuple[int, int] = (1024, 768),
    ready: Callable[[], bool] | None = None,
    settle_ms: int = 500,
    script: str | None = None,
    accept: Callable[[Path], bool] | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Load ``url`` in headless Chromium, wait until ``ready()`` is true, and write a PNG
    (one :class:`LivePage` capture; see there for the arguments)."""
    with LivePage(url, size=size, timeout_s=timeout_s) as page:
        page.wait_until(ready, settle_ms=settle_ms)
        if script is not None:
            page.run(script)
        return page.capture(out_png, accept=accept)


class LivePage:
    """A page open in headless Chromium, driven over the DevTools protocol.

    Args:
        url: the page, typically ``http://127.0.0.1:PORT/`` of a live server.
        size: viewport ``(width, height)`` in CSS pixels (device scale 1), exactly.
        timeout_s: wall-clock limit for everything done with the page.

    Opening waits for the page's load event. Raises ``RuntimeError`` when Chromium is missing,
    fails, or a wait runs past ``timeout_s``.
    """

    def __init__(self, url: str, *, size: tuple[int, int] = (1024, 768), timeout_s: float = 60.0):
        self.url = url
        self.size = size
        self.timeout_s = timeout_s
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LivePage:
        exe = chromium_executable()
        if exe is None:
            raise RuntimeError("headless Chromium not found: apt-get install chromium")
        self.deadline = time.monotonic() + self.timeout_s
        try:
            profile = self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="gs3d-chromium-")
            )
            dt = self._dt = self._stack.enter_context(_DevTools(exe, profile))
            target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self._session = attached["sessionId"]
            w, h = self.size
            metrics = {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}
            dt.call("Emulation.setDeviceMetricsOverride", metrics, self._session)
            dt.call("Page.enable", {}, self._session)
            dt.call("Emulation.setFocusEmulationEnabled", {"enabled": True}, self._session)
            dt.call("Page.bringToFront", {}, self._session)
            dt.call("Page.navigate", {"url": self.url}, self._session)
            dt.wait_event("Page.loadEventFired", self._session, self.deadline)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def wait_until(self, ready: Callable[[], bool] | None, *, settle_ms: int = 500) -> None:
        """Poll ``ready()`` (in this process, every 50 ms; e.g. "the server has sent its frame")
        until it is true, then give the page ``settle_ms`` of real time to receive and paint."""
        while ready is not None and not ready():
            if time.monotonic() > self.deadline:
                raise RuntimeError(
                    f"{self.url}: the page was not ready within {self.timeout_s:.0f} s"
                )
            time.sleep(0.05)
        time.sleep(settle_ms / 1000)

    def run(self, script: str) -> None:
        """Run JavaScript in the page (e.g. to close a notice), then let it repaint."""
        self._dt.call("Runtime.evaluate", {"expression": script}, self._session)
        time.sleep(0.1)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self._dt.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self._session
        )
        if "exceptionDetails" in reply:
            text = reply["exceptionDetails"].get("exception", {}).get("description", "")
            raise RuntimeError(f"{self.url}: script failed: {text or reply['exceptionDetails']}")
        return reply.get("result", {}).get("value")

    def frame_counter(self) -> dict[str, float]:
        """Frames the page has drawn so far: ``{"drawn", "ticks", "ms"}``.

        The first call installs the counter: every WebGL draw or clear call marks the current
        animation frame as drawn, and a ``requestAnimationFrame`` loop counts the animation
        frames (``ticks``) and those that drew (``drawn``), with ``ms`` the page's clock. Two
        readings give frames drawn per second. A page that renders on demand (viser) draws
        nothing while idle, so ``drawn`` is the figure to use; the browser delays animation
        frames while its (software) GPU is behind, so a tick is no faster than the drawing.
        """
        return self.evaluate(_FRAME_COUNTER_JS)

    def capture(self, out_png: str | Path, *, accept: Callable[[Path], bool] | None = None) -> Path:
        """Write a PNG of the viewport. ``accept`` is called with it; while it says ``False`` the
        page is captured again every 250 ms until the deadline (for what the browser draws on
        its own schedule, such as a mesh it parses). The last capture is kept either way."""
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        while True:
            shot = self._dt.call("Page.captureScreenshot", {"format": "png"}, self._session)
            _write_png(out_png, base64.b64decode(shot["data"]))
            if accept is None or accept(out_png) or time.monotonic() > self.deadline:
                return out_png
            time.sleep(0.25)


_FRAME_COUNTER_JS = """(() => {
  let s = window.__gs3dFrames;
  if (!s) {
    s = window.__gs3dFrames = {drawn: 0, ticks: 0, dirty: false};
    const names = ["drawArrays", "drawElements", "drawArraysInstanced", "drawElementsInstanced",
                   "clear"];
    for (const ctx of [window.WebGLRenderingContext, window.WebGL2RenderingContext]) {
      if (!ctx) continue;
      for (const name of names) {
        const f = ctx.prototype[name];
        if (!f) continue;
        ctx.prototype[name] = function (...args) { s.dirty = true; return f.apply(this, args); };
      }
    }
    const tick = () => {
      s.ticks += 1;
      if (s.dirty) { s.drawn += 1; s.dirty = false; }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }
  return {drawn: s.drawn, ticks: s.ticks, ms: performance.now()};
})()"""


def _write_png(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _above_4(fd: int) -> int:
    """``fd`` moved to a number above 4, so that placing the pipe ends at 3 and 4 in the child
    cannot overwrite or close one of them."""
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return high


class _DevTools:
    """Chromium driven over ``--remote-debugging-pipe``: JSON messages ending in a NUL byte,
    commands on the browser's fd 3, replies and events on its fd 4."""

    def __init__(self, exe: str, profile: str):
        cmd_r, self._cmd_w = (_above_4(fd) for fd in os.pipe())
        self._out_r, out_w = (_above_4(fd) for fd in os.pipe())
        args = [
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu-sandbox",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            # A page nobody looks at gets its animation frames throttled to a trickle; a WebGL
            # page (viser) then takes many seconds to show what it was sent.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # A file, not a pipe: Chromium's log lines would fill a pipe nobody reads and stall it.
        self._stderr = Path(profile) / "stderr.log"
        # The pipe ends must be the browser's fds 3 and 4. posix_spawn places them there without
        # running Python in the child (a preexec_fn is unsafe in a process with threads, such as
        # the viewer's) and without a shell (dash cannot name fds above 9).
        self._pid = os.posix_spawn(
            exe,
            [exe, *args],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, str(self._stderr), os.O_WRONLY | os.O_CREAT, 0o600),
                (os.POSIX_SPAWN_DUP2, cmd_r, 3),
                (os.POSIX_SPAWN_DUP2, out_w, 4),
            ],
        )
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._buffer = b""
        self._messages: list[dict[str, Any]] = []

    def __enter__(self) -> _DevTools:
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):
            self._send("Browser.close", {}, None)
        deadline = time.monotonic() + 10
        while os.waitpid(self._pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self._pid, 9)
                os.waitpid(self._pid, 0)
                break
            time.sleep(0.05)
        os.close(self._cmd_w)
        os.close(self._out_r)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("Chromium did not answer in time")
            readable, _, _ = select.select([self._out_r], [], [], left)
            if not readable:
                continue
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                err = self._stderr.read_text(errors="replace") if self._stderr.exists() else ""
                tail = " | ".join(err.strip().splitlines()[-5:])
                raise RuntimeError(f"Chromium exited: {tail}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self, method: str, params: dict[str, Any], session: str | None = None, timeout_s: float = 30
    ) -> dict[str, Any]:
        """Send a command and return its ``result``; events read meanwhile are kept."""
        msg_id = self._send(method, params, session)
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._read(deadline)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"Chromium {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self._messages.append(msg)

    def wait_event(self, method: str, session: str | None, deadline: float) -> dict[str, Any]:
        for i, msg in enumerate(self._messages):
            if msg.get("method") == method and msg.get("sessionId") == session:
                return self._messages.pop(i)
        while True:
            msg = self._read(deadline)
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
