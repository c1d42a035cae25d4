"""Frames per second of ``gs3d view`` for the bundled AGG output, both displays.

The bundled AGG model generates Gaussians (16,384) from one of its bundled examples. Then:

* **gs3d renderer, in process**: :class:`gs_core.viewer.frames.GaussianFrames` renders them from
  browser cameras orbiting the start view (6 degrees apart, as a person dragging the mouse),
  full frames at ``--resolution`` and the drafts the viewer streams while the camera moves on a
  CPU (their size steered to take about ``DRAFT_TARGET_S``; the size they settle at is
  printed). Each frame is also JPEG-encoded by viser as the viewer sends it (a server without
  browsers; viser encodes before it looks for receivers).
* **in headless Chromium** (skipped with ``--no-browser`` or when Chromium or viser is
  missing): ``gs3d view``'s own server (:class:`gs_core.viewer.server.Viewer`) with a page of
  ``--resolution`` x ``--resolution / --aspect`` CSS pixels open. The server turns every
  browser's camera around the object at 90 degrees/s in 60 steps/s for ``--seconds`` while the
  page counts the animation frames in which WebGL drew (``LivePage.frame_counter``). Measured
  for viser's WebGL splats at device pixel ratio 1 (every canvas pixel) and 0.5 (viser's
  ``?fixedDpr=0.5``: a quarter of the pixels, stretched), and for the streamed gs3d renderer,
  where the figure is the frames the server rendered and sent meanwhile (each browser camera
  message is a request; the worker drafts the newest). WebGL in headless Chromium is
  SwiftShader, a software implementation on the same CPU: on a machine without a GPU that is
  what any browser has, and a browser with a GPU draws the splats far faster.

    python3 benchmarks/viewer.py                      # CPU, 512 px, auto backend (numba when installed), browser
    python3 benchmarks/viewer.py --backend torch      # the differentiable torch compositor
    python3 benchmarks/viewer.py --device cuda        # gsplat when installed

Prints a markdown table: frames per second from the median frame time over ``--frames`` poses
after ``--warmup`` frames (in process), or frames counted over ``--seconds`` (browser).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import threading
import time

import torch

DEGREES_PER_S = 90.0
CAMERA_STEPS_PER_S = 60.0


def orbit_views(start_eye, target, n: int, aspect: float, step_deg: float = 6.0):
    """``n`` browser cameras on the start view's orbit, ``step_deg`` apart, as viser reports
    them."""
    from gs_core.rendering.turntable import DEFAULT_FOV_DEG
    from gs_core.viewer.camera import ViewerCamera

    return [
        ViewerCamera.looking_at(
            orbit_eye(start_eye, target, step_deg * i),
            target,
            fov_y=math.radians(DEFAULT_FOV_DEG),
            aspect=aspect,
        )
        for i in range(n)
    ]


def orbit_eye(start_eye, target, degrees: float) -> tuple[float, float, float]:
    """``start_eye`` turned by ``degrees`` about the vertical axis through ``target``."""
    tx, ty, tz = target
    ox, oy, oz = (e - t for e, t in zip(start_eye, target, strict=True))
    a = math.radians(degrees)
    return (
        tx + math.cos(a) * ox + math.sin(a) * oz,
        ty + oy,
        tz - math.sin(a) * ox + math.cos(a) * oz,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--aspect", type=float, default=1.0, help="canvas width / height")
    p.add_argument("--example", default="chair_00017", help="bundled AGG example object")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--seconds", type=float, default=6.0, help="browser orbit per display")
    p.add_argument("--no-browser", action="store_true", help="in-process timings only")
    p.add_argument(
        "--only-points", action="store_true", help="browser rows: the points display only"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (gs3d default)")
    args = p.parse_args()

    import gs_method_agg
    from gs_core.devices import available_cores, resolve_device, set_cpu_threads
    from gs_core.image_inputs import load_rgba
    from gs_core.viewer.camera import render_size
    from gs_core.viewer.frames import DRAFT_TARGET_S, GaussianFrames
    from gs_core.viewer.server import start_camera

    load_at_start = _load()
    dev = resolve_device(args.device, field="--device")
    threads = set_cpu_threads(args.threads)
    model = gs_method_agg.load_bundled(device=str(dev))
    inp = load_rgba(gs_method_agg.EXAMPLES_DIR / args.example / "images" / "000.png")
    with torch.no_grad():
        g = model.generate(inp.rgba.to(dev)).gaussians[0]
    del model
    frames = GaussianFrames(g, resolution=args.resolution, backend=args.backend, device=dev)
    eye, target = start_camera(g)
    views = orbit_views(eye, target, args.warmup + args.frames, args.aspect)
    send = _viser_sender()

    def frame_times(draft: bool) -> list[float]:
        times = []
        for i, view in enumerate(views):
            t0 = time.perf_counter()
            image = frames.render(view, draft=draft)  # synchronised: .cpu() of the image
            if send is not None:
                send(image)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        return times

    full, draft = frame_times(False), frame_times(True)
    w, h = frames.render(views[0]).shape[1::-1]
    dw, dh = render_size(args.aspect, frames.draft_resolution)  # where the steering settled
    if dev.type == "cuda":
        where = f"{torch.cuda.get_device_name(dev)}, {frames.backend_name}"
    else:
        where = f"{dev.type}, {frames.backend_name}, {threads} thread{'s' * (threads != 1)}"
    jpeg = ", JPEG by viser" if send is not None else ""
    rows = [
        ("gs3d renderer, full frames (in process)", f"{where}{jpeg}", f"{w}x{h}",
         1.0 / statistics.median(full)),
        (f"gs3d renderer, drafts (in process; steered to {DRAFT_TARGET_S * 1000:.0f} ms)",
         f"{where}{jpeg}", f"{dw}x{dh}", 1.0 / statistics.median(draft)),
    ]  # fmt: skip
    if send is not None:
        send.server.stop()  # type: ignore[attr-defined]
    if not args.no_browser:
        rows += _browser_rows(g, args, dev, where)
    print(
        f"bundled AGG output of {args.example}: {g.num_gaussians:,} Gaussians; "
        f"{available_cores()} CPU cores, load average {load_at_start} at the start and "
        f"{_load()} at the end (other processes share the machine)"
    )
    print("| display | drawn by | pixels | frames/s |\n|---|---|---|---:|")
    for name, by, size, fps in rows:
        print(f"| {name} | {by} | {size} | {fps:.1f} |")


def _browser_rows(g, args, dev, where: str) -> list[tuple[str, str, str, float]]:
    """Frames per second with a page open in headless Chromium while the camera orbits."""
    from gs_core.testing.browser import LivePage, chromium_executable

    try:
        from gs_core.viewer.server import (
            DISPLAY_POINTS,
            DISPLAY_RENDERER,
            DISPLAY_SPLATS,
            Viewer,
            import_viser,
            start_camera,
        )

        import_viser()
    except Exception as e:  # viser missing: the in-process rows stand alone
        print(f"browser rows skipped: {e}")
        return []
    if chromium_executable() is None:
        print("browser rows skipped: headless Chromium not found (apt-get install chromium)")
        return []
    size = (args.resolution, max(1, round(args.resolution / args.aspect)))
    eye, target = start_camera(g)
    rows = []
    displays = [(DISPLAY_SPLATS, 1.0), (DISPLAY_SPLATS, 0.5), (DISPLAY_POINTS, 1.0),
                (DISPLAY_RENDERER, 1.0)]  # fmt: skip
    if args.only_points:
        displays = [(DISPLAY_POINTS, 1.0)]
    for display, dpr in displays:
        viewer = Viewer(g, port=0, resolution=args.resolution, backend=args.backend, device=dev,
                        display=display)  # fmt: skip
        url = viewer.url + (f"?fixedDpr={dpr}" if dpr != 1.0 else "")
        try:
            with LivePage(url, size=size, timeout_s=120 + 2 * args.seconds) as page:
                page.frame_counter()
                page.wait_until(lambda v=viewer: v.clients > 0, settle_ms=0)
                if display != DISPLAY_RENDERER:  # the scene arrived (and the first sort is done)
                    _wait_drawn(page, quiet_s=1.0)
                else:
                    page.wait_until(lambda v=viewer: v.last_frame is not None, settle_ms=1000)
                drawn, sent = _orbit(viewer, page, eye, target, args.seconds)
        finally:
            viewer.stop()
        w, h = round(size[0] * dpr), round(size[1] * dpr)
        if display == DISPLAY_POINTS:
            rows.append(("browser points (viser WebGL point cloud, one disc per Gaussian)",
                         "headless Chromium, SwiftShader (software WebGL on this CPU)",
                         f"{w}x{h}", drawn))  # fmt: skip
        elif display == DISPLAY_SPLATS:
            rows.append((f"browser splats (viser WebGL), device pixel ratio {dpr:g}",
                         "headless Chromium, SwiftShader (software WebGL on this CPU)",
                         f"{w}x{h}", drawn))  # fmt: skip
        else:
            rows.append((f"gs3d renderer streamed to the page while orbiting (drafts; the page "
                         f"itself redrew {drawn:.1f} times/s)",
                         f"{where}, to headless Chromium on the same CPU",
                         f"{size[0]}x{size[1]} page", sent))  # fmt: skip
    return rows


def _wait_drawn(page, quiet_s: float, timeout_s: float = 120.0) -> None:
    """Until the page has drawn and then stopped drawing for ``quiet_s`` (a scene that
    arrived, sorted and settled)."""
    deadline = time.monotonic() + timeout_s
    last = page.frame_counter()["drawn"]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = page.frame_counter()["drawn"]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif last > 0 and time.monotonic() - quiet_since >= quiet_s:
            return


def _orbit(viewer, page, eye, target, seconds: float) -> tuple[float, float]:
    """Turn every browser's camera for ``seconds``; frames per second drawn by the page and
    streamed by the server meanwhile."""
    stop = threading.Event()

    def turn() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            degrees = DEGREES_PER_S * (time.monotonic() - t0)
            for client in viewer.server.get_clients().values():
                with client.atomic():
                    client.camera.position = orbit_eye(eye, target, degrees)
                    client.camera.look_at = target
            stop.wait(1.0 / CAMERA_STEPS_PER_S)

    mover = threading.Thread(target=turn, daemon=True)
    mover.start()
    try:
        time.sleep(0.5)  # the first camera messages arrive and drawing starts
        a, sent_a = page.frame_counter(), viewer.frames_sent
        time.sleep(seconds)
        b, sent_b = page.frame_counter(), viewer.frames_sent
    finally:
        stop.set()
        mover.join()
    elapsed = (b["ms"] - a["ms"]) / 1000.0
    return (b["drawn"] - a["drawn"]) / elapsed, (sent_b - sent_a) / elapsed


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def _viser_sender():
    """``send(image)`` through viser's background-image path, or ``None`` without viser."""
    try:
        import viser
    except ImportError:
        return None
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)

    def send(image):
        server.scene.set_background_image(image, format="jpeg", jpeg_quality=90)

    send.server = server  # type: ignore[attr-defined]
    return send


if __name__ == "__main__":
    main()
