"""``gs3d generate``: run any registered method on one image and write its Gaussians as a PLY
and/or its mesh as a GLB/OBJ/PLY.

``gs3d generate IMAGE --method NAME -o OUT.ply [--mesh OUT.glb] [--checkpoint DIR | --preset P]
[--seed S] [--turntable OUT.gif]``; at least one of ``-o`` and ``--mesh``; without ``--checkpoint`` or ``--preset`` the method's bundled
``default_checkpoint`` is used (or its default preset when it has no weights of its own). The
picture is padded to square and its object framed like the training views
(:meth:`gs_core.image_inputs.InputImage.framed`) unless ``--no-recenter``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, PRESET_HELP, SET_HELP, threads_option
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION


def generate(
    image: Path = typer.Argument(
        ..., help="Input image: RGBA PNG (alpha = object mask), or RGB on a flat background."
    ),
    method: str = typer.Option(
        ..., "--method", help="Registered method name (see `gs3d plugins`)."
    ),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Output PLY of the Gaussians (INRIA 3DGS layout)."
    ),
    mesh: Path | None = typer.Option(
        None,
        "--mesh",
        help="Output mesh (.glb, .obj or .ply) of a method that outputs meshes.",
    ),
    checkpoint: str | None = typer.Option(
        None,
        "--checkpoint",
        help="Checkpoint directory or hub id (default: the method's bundled one).",
    ),
    preset: str | None = typer.Option(None, "--preset", help=PRESET_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of a stochastic method (same seed, same output)."
    ),
    turntable: Path | None = typer.Option(
        None, "--turntable", help="Also write a turntable animation (.gif or .mp4)."
    ),
    frames: int = typer.Option(36, "--frames", min=2, help="Turntable frames."),
    size: int = typer.Option(
        256, "--size", min=16, max=MAX_RESOLUTION, help="Turntable frame size in pixels."
    ),
    elevation: float = typer.Option(
        15.0, "--elevation", help="Turntable camera elevation in degrees."
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    no_recenter: bool = typer.Option(
        False,
        "--no-recenter",
        help="Use the picture as it is, without padding it to square and framing the object "
        "like the training views.",
    ),
    threads: int | None = threads_option(),
    as_json: bool = typer.Option(
        False, "--json", help="Print the result as JSON on stdout (messages go to stderr)."
    ),
) -> None:
    """Generate 3D Gaussians (and/or a mesh) from one image with a registered method."""
    import torch

    from gs_core.cli.console import make_console, print_json
    from gs_core.cli.method_loading import load_method_for_cli
    from gs_core.cli.options import check_backend
    from gs_core.cli.progress import progress
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.image_inputs import load_rgba
    from gs_core.io import check_overwrite, save_ply
    from gs_core.io.outputs import check_distinct_outputs
    from gs_core.rendering.turntable import check_turntable_path, write_turntable

    console = make_console()
    check_backend(backend)
    from gs_core.cli.mesh import MESH_SUFFIXES

    if out is None and mesh is None:
        raise GS3DError("gs3d generate: give -o OUT.ply and/or --mesh OUT.glb")
    if mesh is not None and mesh.suffix.lower() not in MESH_SUFFIXES:
        raise GS3DError(
            f"--mesh {mesh}: unsupported mesh format '{mesh.suffix}' "
            f"(expected {', '.join(MESH_SUFFIXES)})"
        )
    check_distinct_outputs(
        {"--out": out, "--mesh": mesh, "--turntable": turntable}, inputs={"IMAGE": image}
    )
    for path in (out, mesh):
        if path is not None:
            check_overwrite(path, overwrite, directory=False)
    if turntable is not None:
        check_turntable_path(turntable, overwrite)
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    inp = load_rgba(image)
    if inp.mask_note is not None:
        console.print(inp.mask_note, markup=False, soft_wrap=True)
    if not no_recenter:
        inp, framing = inp.framed()
        console.print(framing, markup=False, soft_wrap=True)
    bundled_warning = bundled_weights_warning(method, image, checkpoint, preset)
    if bundled_warning is not None:
        console.print(bundled_warning, markup=False, soft_wrap=True, style="yellow")
    model = load_method_for_cli(
        console, method, checkpoint=checkpoint, preset=preset, overrides=overrides, device=dev
    )
    with torch.no_grad():
        result = model.generate(inp.rgba.to(dev), seed=seed)
    # Checked before anything is written, so a refused run leaves no half of its outputs.
    if out is not None and result.gaussians is None:
        raise GS3DError(
            f"-o/--out {out}: method '{method}' outputs meshes only, no Gaussians for a PLY; "
            "write its mesh with --mesh OUT.glb"
        )
    if mesh is not None and not result.meshes:
        raise GS3DError(
            f"--mesh {mesh}: method '{method}' outputs Gaussians only; "
            "extract a mesh from the PLY with `gs3d mesh OUT.ply -o OUT.glb`"
        )
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    g = m = None
    if out is not None:
        g = result.gaussians
        g = g[0] if g.batch_shape else g
        save_ply(out, g.detach().to("cpu"), overwrite=overwrite)
        console.print(f"{method}: {g.num_gaussians} Gaussians -> {out} ({parts})")
    if mesh is not None:
        m = result.meshes[0]  # one mesh per input image; generate takes one image
        m.validate().export(mesh, overwrite=overwrite)
        console.print(f"{method}: mesh of {m.num_vertices} vertices, {m.num_faces} faces -> {mesh}")
    if turntable is not None:
        # The Gaussians when they were written, else the mesh.
        shown = g if g is not None else m
        with progress(console, "rendering turntable", frames) as update:
            write_turntable(
                shown,
                turntable,
                frames=frames,
                resolution=size,
                elevation=elevation,
                backend=backend,
                overwrite=overwrite,
                progress=update,
            )
        console.print(f"turntable: {turntable}")
    if as_json:
        print_json(
            {
                "method": method,
                "image": str(image),
                "output": str(out) if out is not None else None,
                "mesh": str(mesh) if mesh is not None else None,
                "turntable": str(turntable) if turntable is not None else None,
                "num_gaussians": g.num_gaussians if g is not None else None,
                "sh_degree": g.sh_degree if g is not None else None,
                "num_faces": m.num_faces if m is not None else None,
                "seed": seed,
                "device": str(dev),
                "timings_s": dict(result.timings),
            }
        )


def bundled_weights_warning(
    method: str, image: Path, checkpoint: str | None, preset: str | None
) -> str | None:
    """One warning line when a picture meets the weights shipped inside a method's package.

    Those are small models trained on gs3d's procedural world only, so a person's own picture
    gets a rough shape at best; hub checkpoints and the method's own example inputs get no
    warning.
    """
    from gs_core.plugins.registry import get_registry

    spec = get_registry().get_method(method)
    default = spec.default_checkpoint
    if checkpoint is not None or preset is not None or not spec.has_weights or default is None:
        return None
    if not Path(default).is_dir():  # a hub id: not shipped in the package
        return None
    if spec.examples_dir and image.resolve().is_relative_to(Path(spec.examples_dir).resolve()):
        return None
    from gs_core.procedural.templates import CATEGORIES

    return (
        f"warning: the bundled '{method}' weights ({Path(default).name}) know only gs3d's "
        f"procedural objects ({', '.join(CATEGORIES)}); other pictures give a rough shape at "
        "best (train on your own data with `gs3d train`)"
    )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
