"""``gs3d view``: an interactive browser viewer (viser) for a splat file, a mesh or a training run.

``gs3d view SCENE.ply|SCENE.splat|MESH.glb|RUN_DIR [--port 8080] [--host 127.0.0.1]
[--device auto] [--display auto|splats|points|render] [--resolution 512] [--input IMAGE]``: Gaussians
are drawn by the browser's WebGL splats (the default when gs3d renders on a CPU) or rendered by
gs3d's renderer from the browser's camera and streamed as images (the default on CUDA); a
dropdown in the page switches. Meshes are drawn as meshes; a run directory shows its newest
checkpoint's output on a chosen input and follows the training. Needs ``gs3d-core[viewer]``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, threads_option
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION


def view(
    scene: Path = typer.Argument(
        ...,
        help="A 3DGS .ply or .splat, a mesh (.glb, .gltf, .obj, or a .ply with faces), or a "
        "training run directory (gs3d train --out RUN).",
    ),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; 127.0.0.1 keeps the viewer on this machine, 0.0.0.0 opens "
        "it to the network.",
    ),
    display: str = typer.Option(
        "auto",
        "--display",
        help="How Gaussians are shown first (a dropdown in the page switches): splats (viser's "
        "WebGL splats, drawn by the browser's GPU), points (one opaque disc per Gaussian, fast "
        "even in a browser without a GPU), render (gs3d's renderer, exact, streamed as images), "
        "or auto: render when gs3d renders fast (CUDA, or the CPU with numba, which "
        "gs3d-core[viewer] installs), splats otherwise.",
    ),
    resolution: int = typer.Option(
        512,
        "--resolution",
        min=16,
        max=MAX_RESOLUTION,
        help="Pixels on the longer side of a streamed frame.",
    ),
    inputs: list[Path] = typer.Option(
        [],
        "--input",
        help="With a run directory: a picture to generate from, offered first (repeatable; "
        "default: the held-out objects of the run's data).",
    ),
    poll: float = typer.Option(
        3.0, "--poll", min=0.2, help="With a run directory: seconds between checkpoint checks."
    ),
    background: str = typer.Option("white", "--background", help="white, black, gray or r,g,b."),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: int | None = threads_option(),
) -> None:
    """Open a splat file, a mesh or a training run in the browser (viser); Ctrl+C stops it."""
    from gs_core.cli.console import make_console
    from gs_core.cli.options import check_backend, parse_background
    from gs_core.viewer.ports import LOOPBACK_HOSTS, check_port_free
    from gs_core.viewer.server import import_viser, resolve_display

    console = make_console()
    check_backend(backend)
    resolve_display(display, "cpu")  # a bad --display is refused before anything loads
    bg = parse_background(background)
    import_viser()  # before any loading: a missing extra is the first thing to hear about
    check_port_free(host, port)
    if not scene.exists():
        raise GS3DError(f"{scene}: no such file or directory")
    if inputs and not scene.is_dir():
        raise GS3DError(f"--input: only for a training run directory; {scene} is a file")
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.mesh import Mesh

    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    shown, what = _open_scene(scene, inputs, dev, log=lambda line: console.print(line))
    from gs_core.viewer.server import Viewer

    viewer = Viewer(
        shown,
        host=host,
        port=port,
        resolution=resolution,
        background=bg,
        backend=backend,
        device=dev,
        display=display,
        poll_s=poll,
        log=lambda line: console.print(line),
    )
    try:
        if host not in LOOPBACK_HOSTS:
            console.print(
                f"warning: listening on {host}: anyone who can reach this machine can open "
                "the viewer",
                style="yellow",
            )
        console.print(f"gs3d view: {what}")
        if not isinstance(viewer.scene, Mesh):
            console.print(f"display: {viewer.display} (the page's dropdown switches)")
        console.print(f"open {viewer.url} in a browser (Ctrl+C stops the viewer)")
        viewer.wait()
    finally:
        viewer.stop()


def _open_scene(scene: Path, inputs: list[Path], device, log):
    """What the viewer shows (Gaussians, a Mesh or a TrainingRun) and one line describing it."""
    from gs_core.mesh import Mesh

    if scene.is_dir():
        from gs_core.image_inputs import load_rgba
        from gs_core.viewer.training_run import RunInput, TrainingRun, is_run_directory

        if not is_run_directory(scene):
            raise GS3DError(
                f"{scene}: a folder, but not a training run directory (expected config.json and "
                "checkpoints/ as `gs3d train --out` writes them)"
            )
        given = []
        for path in inputs:
            load_rgba(path)  # a bad picture is refused now, not when chosen in the page
            given.append(RunInput(path.name, path, frame=True))
        run = TrainingRun(scene, device=device, extra_inputs=given, log=log)
        ref = run.refresh() and run.checkpoint
        return run, (
            f"run {scene} (method {run.method}, {ref.label if ref else 'no checkpoint'}), "
            f"{len(run.inputs)} input(s); following new checkpoints"
        )
    from gs_core.io.scene_file import load_scene

    loaded = load_scene(scene)
    if isinstance(loaded, Mesh):
        return (
            loaded,
            f"{scene}: mesh of {loaded.num_vertices:,} vertices, {loaded.num_faces:,} faces",
        )
    return loaded, (
        f"{scene}: {loaded.num_gaussians:,} Gaussians (SH degree {loaded.sh_degree}), "
        f"gs3d renderer on {device}"
    )


def register(app: typer.Typer) -> None:
    app.command("view")(view)
