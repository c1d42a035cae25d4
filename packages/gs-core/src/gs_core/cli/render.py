"""``gs3d render``: turntable animations and contact sheets of a Gaussian splat file or a mesh."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, threads_option
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION


def render_command(
    scene: Path = typer.Argument(
        ...,
        help="A 3DGS .ply (or .splat) file, or a mesh (.glb, .gltf, .obj, or a .ply with faces).",
    ),
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
    resolution: int = typer.Option(
        512, "--resolution", min=8, max=MAX_RESOLUTION, help="Image size in pixels."
    ),
    fov: float = typer.Option(49.1, "--fov", min=1.0, max=170.0, help="Vertical field of view."),
    distance: float | None = typer.Option(
        None, "--distance", help="Camera distance from the scene centre (default: fit the scene)."
    ),
    background: str = typer.Option("white", "--background", help="white, black, gray or r,g,b."),
    fps: int = typer.Option(30, "--fps", min=1, help="Turntable frame rate."),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    threads: int | None = threads_option(),
) -> None:
    """Render a splat file or a mesh as a turntable (GIF/MP4) and/or a contact sheet of views."""
    from gs_core.cli.console import make_console
    from gs_core.cli.options import check_backend, parse_background
    from gs_core.cli.progress import progress
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.imaging import contact_sheet, save_animation, save_image
    from gs_core.io import check_overwrite
    from gs_core.io.outputs import check_distinct_outputs
    from gs_core.mesh import Mesh
    from gs_core.rendering.turntable import check_turntable_path, orbit_azimuths, render_orbit

    if turntable is None and grid is None:
        raise GS3DError("gs3d render: give --turntable OUT.gif|OUT.mp4 and/or --grid OUT.png")
    check_distinct_outputs({"--turntable": turntable, "--grid": grid}, inputs={"SCENE": scene})
    if turntable is not None:
        check_turntable_path(turntable, overwrite)
    if grid is not None:
        check_overwrite(grid, overwrite, directory=False)
    check_backend(backend)
    bg = parse_background(background)
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    if distance is not None and distance <= 0:
        raise GS3DError(f"--distance: expected a positive distance, got {distance}")

    if not scene.is_file():
        raise GS3DError(f"{scene}: file not found")
    from gs_core.io.scene_file import load_scene

    g = load_scene(scene)
    console = make_console()
    if isinstance(g, Mesh):
        kind = (
            "textured"
            if g.texture is not None
            else "coloured"
            if g.vertex_colors is not None
            else "uncoloured"
        )
        console.print(
            f"{scene}: mesh of {g.num_vertices:,} vertices, {g.num_faces:,} faces ({kind}), "
            f"rendering on {dev}"
        )
        g = _mesh_to(g, dev)
    else:
        console.print(
            f"{scene}: {g.num_gaussians:,} Gaussians, SH degree {g.sh_degree}, rendering on {dev}"
        )
        g = g.to(dev)

    def shoot(azimuths: list[float], label: str) -> list:
        with progress(console, f"rendering {label}", len(azimuths)) as update:
            return render_orbit(
                g,
                azimuths,
                elevation=elevation,
                resolution=resolution,
                fov_deg=fov,
                distance=distance,
                background=bg,
                backend=backend,
                chunk=1,  # one frame at a time: 512 px views, and a smooth progress bar
                progress=update,
            )

    if turntable is not None:
        images = shoot(orbit_azimuths(frames), "turntable")
        save_animation(turntable, images, fps=fps, overwrite=overwrite)
        console.print(f"wrote {turntable} ({frames} frames, {resolution}x{resolution})")
    if grid is not None:
        az = orbit_azimuths(views)
        images = shoot(az, "grid")
        sheet = contact_sheet(images, labels=[f"az {a:.0f}" for a in az], background=bg)
        save_image(grid, sheet, overwrite=overwrite)
        console.print(f"wrote {grid} ({views} views, {resolution}x{resolution} each)")


def _mesh_to(mesh, device):
    from gs_core.mesh import Mesh

    def move(t):
        return None if t is None else t.to(device)

    return Mesh(
        vertices=mesh.vertices.to(device),
        faces=mesh.faces.to(device),
        vertex_colors=move(mesh.vertex_colors),
        uvs=move(mesh.uvs),
        texture=move(mesh.texture),
    )


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)
