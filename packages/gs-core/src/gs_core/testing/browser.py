"""Screenshots of pages in headless Chromium, for tests that check what a person would see.

The viewer (``gs3d view``) and the comparison report (``gs3d compare``) are pages; their tests
open them in a real browser and look at the pixels. Chromium comes from Debian's ``chromium``
package (``apt-get install chromium``); where it is absent, :func:`require_chromium` skips the
calling test with that reason instead of failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

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
