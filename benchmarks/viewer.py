"""Frames per second of ``gs3d view``'s render path for the bundled AGG output.

The bundled AGG model generates Gaussians from one of its bundled examples; the viewer's
:class:`gs_core.viewer.frames.GaussianFrames` then renders them from browser cameras orbiting
the start view (as a person dragging the mouse would), at a 16:9 canvas: full frames with
``--resolution`` pixels on the longer side and the half-size drafts the viewer streams while the
camera moves on a CPU. Each frame is also JPEG-encoded by viser as the viewer sends it (a
server without browsers; viser encodes before it looks for receivers), when viser is installed.

    python3 benchmarks/viewer.py                      # CPU, 512 px, torch backend
    python3 benchmarks/viewer.py --device cuda        # gsplat when installed

Prints one markdown row (the header goes to stderr): frames per second from the median frame
time over ``--frames`` poses after ``--warmup`` frames.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch


def orbit_views(start_eye, target, n: int, aspect: float):
    """``n`` browser cameras on the start view's orbit, 6 degrees apart, as viser reports them."""
    from gs_core.rendering.turntable import DEFAULT_FOV_DEG
    from gs_core.viewer.camera import ViewerCamera

    tx, ty, tz = target
    ox, oy, oz = (e - t for e, t in zip(start_eye, target, strict=True))
    views = []
    for i in range(n):
        a = math.radians(6.0 * i)
        eye = (
            tx + math.cos(a) * ox + math.sin(a) * oz,
            ty + oy,
            tz - math.sin(a) * ox + math.cos(a) * oz,
        )
        views.append(
            ViewerCamera.looking_at(eye, target, fov_y=math.radians(DEFAULT_FOV_DEG), aspect=aspect)
        )
    return views


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--aspect", type=float, default=16 / 9, help="canvas width / height")
    p.add_argument("--example", default="mug_00000", help="bundled AGG example object")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (gs3d default)")
    args = p.parse_args()

    import gs_method_agg
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.image_inputs import load_rgba
    from gs_core.viewer.frames import GaussianFrames
    from gs_core.viewer.server import start_camera

    dev = resolve_device(args.device, field="--device")
    threads = set_cpu_threads(args.threads)
    model = gs_method_agg.load_bundled(device=str(dev))
    inp = load_rgba(gs_method_agg.EXAMPLES_DIR / args.example / "images" / "000.png")
    with torch.no_grad():
        g = model.generate(inp.rgba.to(dev)).gaussians[0]
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
    dw, dh = frames.render(views[0], draft=True).shape[1::-1]
    fps = 1.0 / statistics.median(full)
    dfps = 1.0 / statistics.median(draft)
    where = (
        f"{dev.type} ({threads} thread{'s' if threads != 1 else ''})"
        if dev.type == "cpu"
        else str(dev)
    )
    if dev.type == "cuda":
        where = torch.cuda.get_device_name(dev)
    print(
        "| device | Gaussians | full frame | fps | draft | fps | JPEG by viser |\n"
        "|---|---:|---|---:|---|---:|---|",
        file=sys.stderr,
    )
    print(
        f"| {where} | {g.num_gaussians:,} | {w}x{h} | {fps:.1f} | {dw}x{dh} | {dfps:.1f} | "
        f"{'yes' if send is not None else 'no (viser missing)'} |"
    )
    if send is not None:
        send.server.stop()  # type: ignore[attr-defined]


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
