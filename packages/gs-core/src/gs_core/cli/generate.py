"""``gs3d generate``: run any registered method on one image and write its Gaussians as a PLY.

``gs3d generate IMAGE --method NAME -o OUT.ply [--checkpoint DIR | --preset P] [--seed S]
[--turntable OUT.gif]``; without ``--checkpoint`` or ``--preset`` the method's bundled
``default_checkpoint`` is used (or its default preset when it has no weights of its own).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, PRESET_HELP, SET_HELP
from gs_core.errors import GS3DError


def generate(
    image: Path = typer.Argument(
        ..., help="Input image: RGBA PNG (alpha = object mask), or RGB on a flat background."
    ),
    method: str = typer.Option(
        ..., "--method", help="Registered method name (see `gs3d plugins`)."
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Output PLY (INRIA 3DGS layout)."),
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
    size: int = typer.Option(256, "--size", min=16, help="Turntable frame size in pixels."),
    elevation: float = typer.Option(
        15.0, "--elevation", help="Turntable camera elevation in degrees."
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Generate 3D Gaussians from one image with a registered method."""
    import torch
    from rich.console import Console

    from gs_core.cli.method_loading import load_method_for_cli
    from gs_core.cli.options import check_backend
    from gs_core.devices import resolve_device
    from gs_core.image_inputs import load_rgba
    from gs_core.io import check_overwrite, save_ply
    from gs_core.rendering.turntable import check_turntable_path, write_turntable

    console = Console(stderr=True, highlight=False)
    check_backend(backend)
    check_overwrite(out, overwrite)
    if turntable is not None:
        check_turntable_path(turntable, overwrite)
    dev = resolve_device(device, field="--device")
    inp = load_rgba(image)
    if inp.mask_note is not None:
        console.print(inp.mask_note)
    model = load_method_for_cli(
        console, method, checkpoint=checkpoint, preset=preset, overrides=overrides, device=dev
    )
    with torch.no_grad():
        result = model.generate(inp.rgba.to(dev), seed=seed)
    if result.gaussians is None:
        raise GS3DError(f"method '{method}' produced no Gaussians (mesh-only output)")
    g = result.gaussians
    g = g[0] if g.batch_shape else g
    save_ply(out, g.detach().to("cpu"), overwrite=overwrite)
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    console.print(f"{method}: {g.num_gaussians} Gaussians -> {out} ({parts})")
    if turntable is not None:
        write_turntable(
            g,
            turntable,
            frames=frames,
            resolution=size,
            elevation=elevation,
            backend=backend,
            overwrite=overwrite,
        )
        console.print(f"turntable: {turntable}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
