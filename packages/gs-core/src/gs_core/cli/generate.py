"""``gs3d generate``: run any registered method on one image and write its Gaussians as a PLY.

``gs3d generate IMAGE --method NAME -o OUT.ply [--checkpoint DIR] [--turntable OUT.gif]``; without
``--checkpoint`` the method's bundled ``default_checkpoint`` is used (never random weights).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.errors import GS3DError

# An RGB image's border is "flat" when its pixels stay this close to their median colour.
FLAT_BORDER_TOLERANCE = 0.04
# Pixels farther than this from the background colour are the object.
MASK_TOLERANCE = 0.02


def mask_from_flat_background(rgb, path: Path):
    """RGB ``[H, W, 3]`` float -> (RGBA ``[H, W, 4]``, background colour) from a flat border.

    Raises :class:`GS3DError` when the border is not one colour (no reliable mask).
    """
    import numpy as np

    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]], axis=0)
    bg = np.median(border, axis=0)
    spread = np.abs(border - bg).max(-1)
    if np.quantile(spread, 0.95) > FLAT_BORDER_TOLERANCE:
        raise GS3DError(
            f"{path}: RGB image without an alpha channel, and its border is not one flat colour, so "
            "the object mask cannot be derived. Pass an RGBA PNG whose alpha is the object mask "
            "(e.g. cut the background out with rembg: `rembg i in.png out.png`)."
        )
    alpha = (np.abs(rgb - bg).max(-1) > MASK_TOLERANCE).astype(np.float32)
    return np.concatenate([rgb, alpha[..., None]], -1), bg


def load_rgba(path: Path, console) -> torch.Tensor:  # noqa: F821
    """``[1, 4, H, W]`` RGBA in [0, 1]; RGB inputs get the mask of their flat background."""
    import torch

    from gs_core.imaging import load_image

    img = load_image(path)
    if img.shape[-1] == 3:
        img, bg = mask_from_flat_background(img, path)
        rgb255 = ", ".join(str(round(float(v) * 255)) for v in bg)
        console.print(
            f"{path} has no alpha channel: the object mask was taken from its flat background colour "
            f"({rgb255}): pixels within {MASK_TOLERANCE:.0%} of it are background "
            f"({100 * (1 - img[..., 3].mean()):.0f}% of the image). Pass an RGBA PNG to control the mask."
        )
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()


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
        help="Checkpoint directory or hub id [default: the method's bundled one].",
    ),
    turntable: Path | None = typer.Option(
        None, "--turntable", help="Also write a turntable animation (.gif or .mp4)."
    ),
    frames: int = typer.Option(36, "--frames", min=2, help="Turntable frames."),
    size: int = typer.Option(256, "--size", min=16, help="Turntable frame size in pixels."),
    elevation: float = typer.Option(
        15.0, "--elevation", help="Turntable camera elevation in degrees."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Generate 3D Gaussians from one image with a registered method."""
    import torch
    from rich.console import Console

    from gs_core.evaluation.predictors import load_method
    from gs_core.io import check_overwrite, save_ply

    console = Console(stderr=True, highlight=False)
    check_overwrite(out, overwrite)
    if turntable is not None:
        check_overwrite(turntable, overwrite)
        if turntable.suffix.lower() not in (".gif", ".mp4"):
            raise GS3DError(f"--turntable {turntable}: expected a .gif or .mp4 file name")
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    rgba = load_rgba(image, console)
    model = load_method(method, checkpoint, dev)
    with torch.no_grad():
        result = model.generate(rgba.to(dev))
    if result.gaussians is None:
        raise GS3DError(f"method '{method}' produced no Gaussians (mesh-only output)")
    g = result.gaussians
    g = g[0] if g.batch_shape else g
    save_ply(out, g.detach().to("cpu"), overwrite=overwrite)
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    console.print(f"{method}: {g.num_gaussians} Gaussians -> {out} ({parts})")
    if turntable is not None:
        write_turntable(g, turntable, frames, size, elevation, overwrite)
        console.print(f"turntable: {turntable}")


def write_turntable(
    gaussians, path: Path, frames: int, size: int, elevation: float, overwrite: bool
) -> Path:
    """Render an orbit around the Gaussians' bounding sphere into an animation."""
    import torch

    from gs_core.cameras import Cameras
    from gs_core.cli.render import frame_scene
    from gs_core.imaging import save_animation
    from gs_core.rendering import render

    fov = 49.1
    target, distance = frame_scene(gaussians, fov)
    az = torch.arange(frames, dtype=torch.float64) * (360.0 / frames)
    cams = Cameras.orbit(
        az, elevation, distance, fov, size, size, target=target, device=gaussians.device
    )
    images = []
    with torch.no_grad():
        for i in range(0, frames, 8):
            r = render(gaussians, cams.select(slice(i, i + 8)), background=1.0)
            images += [im.clamp(0, 1).cpu().numpy() for im in r.rgb]
    return save_animation(path, images, fps=12, overwrite=overwrite)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
