"""``gs3d render``: turntable animations and contact sheets of a Gaussian splat file."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from gs_core.errors import GS3DError


def _parse_background(text: str) -> tuple[float, float, float]:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
        raise GS3DError(
            f"--background: expected white, black, gray or 'r,g,b' with values in [0, 1], got '{text}'"
        )
    return vals  # type: ignore[return-value]


def frame_scene(gaussians, fov_deg: float) -> tuple[tuple[float, float, float], float]:
    """Orbit target and camera distance that fit the scene's bounding sphere in the view.

    Uses Gaussians with opacity > 0.05 and robust (1st-99th percentile) bounds so a few stray
    splats far away do not shrink the object to a dot.
    """
    import torch

    g = gaussians
    keep = g.opacities > 0.05
    means = g.means[keep] if bool(keep.sum() >= 8) else g.means
    means = means.double()
    if means.shape[0] >= 100:
        lo = torch.quantile(means, 0.01, dim=0)
        hi = torch.quantile(means, 0.99, dim=0)
    else:
        lo, hi = means.min(0).values, means.max(0).values
    center = (lo + hi) / 2
    inside = ((means >= lo) & (means <= hi)).all(-1)
    dist = (means[inside] - center).norm(dim=-1)
    radius = float(dist.max()) if dist.numel() else 0.0
    radius += 2.0 * float(g.scales.median())
    radius = max(radius, 1e-3)
    distance = radius / math.sin(math.radians(fov_deg) / 2) * 1.05
    return tuple(float(v) for v in center), distance  # type: ignore[return-value]


def render_command(
    scene: Path = typer.Argument(..., help="A 3DGS .ply (or .splat) file."),
    turntable: Path | None = typer.Option(
        None,
        "--turntable",
        help="Write an orbit animation here (.gif, or .mp4 with imageio-ffmpeg installed).",
    ),
    grid: Path | None = typer.Option(
        None, "--grid", help="Write a contact sheet of --views evenly spaced views here (.png)."
    ),
    frames: int = typer.Option(60, "--frames", min=1, help="Frames of the turntable."),
    views: int = typer.Option(8, "--views", min=1, help="Views in the --grid contact sheet."),
    elevation: float = typer.Option(15.0, "--elevation", help="Camera elevation in degrees."),
    resolution: int = typer.Option(512, "--resolution", min=8, help="Image size in pixels."),
    fov: float = typer.Option(49.1, "--fov", min=1.0, max=170.0, help="Vertical field of view."),
    distance: float | None = typer.Option(
        None, "--distance", help="Camera distance from the scene centre (default: fit the scene)."
    ),
    background: str = typer.Option("white", "--background", help="white, black, gray or r,g,b."),
    fps: int = typer.Option(30, "--fps", min=1, help="Turntable frame rate."),
    backend: str = typer.Option("auto", "--backend", help="auto, torch or gsplat."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Render a splat file as a turntable (GIF/MP4) and/or a contact sheet of views."""
    import torch
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from gs_core.cameras import Cameras
    from gs_core.imaging import contact_sheet, save_animation, save_image
    from gs_core.io import check_overwrite, load_ply, load_splat
    from gs_core.rendering import render

    if turntable is None and grid is None:
        raise GS3DError("gs3d render: give --turntable OUT.gif|OUT.mp4 and/or --grid OUT.png")
    if turntable is not None:
        if turntable.suffix.lower() not in (".gif", ".mp4"):
            raise GS3DError(f"--turntable {turntable}: expected a .gif or .mp4 file name")
        if turntable.suffix.lower() == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise GS3DError(
                    f"--turntable {turntable}: MP4 needs imageio-ffmpeg "
                    "(pip install 'gs-core[video]'); or write a .gif"
                ) from None
        check_overwrite(turntable, overwrite)
    if grid is not None:
        check_overwrite(grid, overwrite)
    if backend not in ("auto", "torch", "gsplat"):
        raise GS3DError(f"--backend: expected auto, torch or gsplat, got '{backend}'")
    bg = _parse_background(background)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise GS3DError(
            f"--device: '{device}' is not a torch device (auto, cpu, cuda, cuda:1)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GS3DError("--device cuda: no CUDA device is available; use --device cpu")

    if not scene.is_file():
        raise GS3DError(f"{scene}: file not found")
    g = load_splat(scene) if scene.suffix.lower() == ".splat" else load_ply(scene)
    console = Console(stderr=True)
    console.print(
        f"{scene}: {g.num_gaussians:,} Gaussians, SH degree {g.sh_degree}, rendering on {dev}"
    )
    g = g.to(dev)
    center, fit = frame_scene(g, fov)
    dist = fit if distance is None else distance
    if dist <= 0:
        raise GS3DError(f"--distance: expected a positive distance, got {dist}")

    def shoot(azimuths: list[float], label: str) -> list:
        cams = Cameras.orbit(
            azimuths,
            elevation,
            radius=dist,
            fov_deg=fov,
            width=resolution,
            height=resolution,
            target=center,
            device=dev,
        )
        images = []
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with torch.no_grad(), Progress(*columns, console=console, transient=True) as bar:
            for i in bar.track(range(len(azimuths))):
                out = render(g, cams.select(i), background=bg, backend=backend)
                images.append(out.rgb[0].clamp(0, 1).cpu().numpy())
        return images

    if turntable is not None:
        az = [360.0 * i / frames for i in range(frames)]
        images = shoot(az, "turntable")
        save_animation(turntable, images, fps=fps, overwrite=overwrite)
        console.print(f"wrote {turntable} ({frames} frames, {resolution}x{resolution})")
    if grid is not None:
        az = [360.0 * i / views for i in range(views)]
        images = shoot(az, "grid")
        sheet = contact_sheet(images, labels=[f"az {a:.0f}" for a in az], background=bg)
        save_image(grid, sheet, overwrite=overwrite)
        console.print(f"wrote {grid} ({views} views, {resolution}x{resolution} each)")


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)
