"""Orbit views around a set of Gaussians or a mesh: scene framing, orbit renders and turntable
animations.

``gs3d render``, ``gs3d generate --turntable`` and ``gs3d demo`` all go through these functions,
so a turntable looks the same whichever command wrote it and whatever the scene is made of:
Gaussians go through ``render()``, meshes through ``render_mesh()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from gs_core.cameras import Cameras
from gs_core.errors import GS3DError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh

# What the orbit functions take: Gaussians (means ``[N, 3]``) or a triangle mesh.
Scene = Gaussians | Mesh
# Headlight shading of meshes: ambient + diffuse * |n . view ray|. Without it an uncoloured mesh
# is a flat grey silhouette; |.| so faces wound inwards still light up.
MESH_AMBIENT = 0.45
# The vertical field of view of the procedural datasets' cameras (and of the turntables so far).
DEFAULT_FOV_DEG = 49.1
# Splats farther from the robust centre than this many robust radii are strays, not the object.
STRAY_RADIUS = 1.5
TURNTABLE_SUFFIXES = (".gif", ".mp4")


def frame_scene(
    scene: Scene, fov_deg: float = DEFAULT_FOV_DEG
) -> tuple[tuple[float, float, float], float]:
    """Orbit target and camera distance that fit the scene's bounding sphere in the view.

    Gaussians unbatched (means ``[N, 3]``): uses those with opacity > 0.05; robust
    (1st-99th percentile) bounds find the object, then every splat within
    :data:`STRAY_RADIUS` of its radius is framed exactly, so thin extremities stay in the
    picture and a few stray splats far away do not shrink the object to a dot.
    A mesh: the centre of its bounding box and the farthest vertex a face uses (exact bounds;
    a mesh has no stray splats).
    """
    if isinstance(scene, Mesh):
        return _frame_mesh(scene, fov_deg)
    g = scene
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
    # The percentiles also cut thin extremities (a hat, a lamp's stem: under 1% of the splats
    # along an axis). Only splats beyond STRAY_RADIUS x the robust radius are strays; the frame
    # fits all the others exactly.
    near = means[(means - center).norm(dim=-1) <= STRAY_RADIUS * radius]
    if near.shape[0]:
        center = (near.amin(0) + near.amax(0)) / 2
        radius = float((near - center).norm(dim=-1).max())
    radius += 2.0 * float(g.scales.median())
    return _fit(center, radius, fov_deg)


def _frame_mesh(mesh: Mesh, fov_deg: float) -> tuple[tuple[float, float, float], float]:
    mesh.validate()
    with torch.no_grad():
        used = mesh.vertices[mesh.faces.reshape(-1).unique()].double()
        center = (used.amin(0) + used.amax(0)) / 2
        radius = float((used - center).norm(dim=-1).max())
    return _fit(center, radius, fov_deg)


def _fit(
    center: torch.Tensor, radius: float, fov_deg: float
) -> tuple[tuple[float, float, float], float]:
    radius = max(radius, 1e-3)
    distance = radius / math.sin(math.radians(fov_deg) / 2) * 1.05
    return tuple(float(v) for v in center), distance  # type: ignore[return-value]


def orbit_azimuths(n: int) -> list[float]:
    """``n`` evenly spaced azimuths in degrees, starting at 0."""
    return [360.0 * i / n for i in range(n)]


def render_orbit(
    scene: Scene,
    azimuths: Sequence[float],
    *,
    elevation: float = 15.0,
    resolution: int = 256,
    fov_deg: float = DEFAULT_FOV_DEG,
    distance: float | None = None,
    background: float | Sequence[float] = 1.0,
    backend: str = "auto",
    chunk: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Renders ``[resolution, resolution, 3]`` float in [0, 1], one per azimuth (degrees).

    ``scene`` is Gaussians (means ``[N, 3]``) or a :class:`Mesh`; meshes are rendered with
    :func:`~gs_core.rendering.mesh_render.render_mesh` under a headlight (``backend`` applies to
    Gaussians only). The cameras orbit the scene centre found by :func:`frame_scene` at
    ``distance`` (default: the distance that fits the scene) and ``elevation`` degrees.
    ``progress(done, total)`` is called after each chunk of ``chunk`` views.
    """
    if not isinstance(scene, Gaussians | Mesh):
        raise GS3DError(f"scene: expected Gaussians or a Mesh, got {type(scene).__name__}")
    target, fit = frame_scene(scene, fov_deg)
    dist = fit if distance is None else distance
    if dist <= 0:
        raise GS3DError(f"distance: expected a positive camera distance, got {dist}")
    from gs_core.rendering.api import render

    cams = Cameras.orbit(
        list(azimuths),
        elevation,
        radius=dist,
        fov_deg=fov_deg,
        width=resolution,
        height=resolution,
        target=target,
        device=scene.vertices.device if isinstance(scene, Mesh) else scene.device,
    )
    images: list[np.ndarray] = []
    total = len(azimuths)
    with torch.no_grad():
        for a in range(0, total, chunk):
            views = cams.select(slice(a, a + chunk))
            if isinstance(scene, Mesh):
                rgb = _shaded_mesh(scene, views, background)
            else:
                rgb = render(scene, views, background=background, backend=backend).rgb
            images += [im.clamp(0, 1).float().cpu().numpy() for im in rgb]
            if progress is not None:
                progress(len(images), total)
    return images


def _shaded_mesh(mesh: Mesh, cameras: Cameras, background: float | Sequence[float]) -> torch.Tensor:
    """``[C, H, W, 3]`` RGB of ``mesh`` lit by a light at each camera, over ``background``."""
    from gs_core.rendering.api import _background
    from gs_core.rendering.mesh_render import render_mesh

    out = render_mesh(mesh, cameras, background=0.0, attributes=("rgb", "alpha", "normal"))
    # Rendered over black, rgb is colour x coverage and normal is normal x coverage, so the
    # shading below keeps the antialiased edges and compositing over the background is exact.
    _, rays = cameras.rays()  # [C, H, W, 3] per-pixel view directions: a true headlight
    alpha = out.alpha.clamp(0, 1)
    cos = (out.normal * rays.to(out.normal.dtype)).sum(-1, keepdim=True).abs()
    cos = (cos / alpha.clamp_min(1e-6)).clamp(max=1)  # undo the coverage weighting
    rgb = out.rgb * (MESH_AMBIENT + (1 - MESH_AMBIENT) * cos)
    C, dtype, dev = out.rgb.shape[0], out.rgb.dtype, out.rgb.device
    bg = _background(background, (C,), dtype, dev, check=True)
    if bg is not None:
        rgb = rgb + bg[:, None, None, :] * (1 - alpha)
    return rgb


def check_turntable_path(path: str | Path, overwrite: bool = False) -> Path:
    """Fail before any rendering when ``path`` cannot be written as a turntable animation."""
    from gs_core.io import check_overwrite

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TURNTABLE_SUFFIXES:
        raise GS3DError(f"--turntable {path}: expected a .gif or .mp4 file name")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise GS3DError(
                f"--turntable {path}: MP4 needs imageio-ffmpeg "
                "(pip install 'gs3d-core[video]'); or write a .gif"
            ) from None
    check_overwrite(path, overwrite, directory=False)
    return path


def write_turntable(
    scene: Scene,
    path: str | Path,
    *,
    frames: int = 36,
    resolution: int = 256,
    elevation: float = 15.0,
    fov_deg: float = DEFAULT_FOV_DEG,
    distance: float | None = None,
    fps: int = 12,
    background: float | Sequence[float] = 1.0,
    backend: str = "auto",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render a ``frames``-view orbit of ``scene`` (Gaussians with means ``[N, 3]``, or a
    :class:`Mesh`) into a GIF or MP4."""
    from gs_core.imaging import save_animation

    path = check_turntable_path(path, overwrite)
    images = render_orbit(
        scene,
        orbit_azimuths(frames),
        elevation=elevation,
        resolution=resolution,
        fov_deg=fov_deg,
        distance=distance,
        background=background,
        backend=backend,
        progress=progress,
    )
    return save_animation(path, images, fps=fps, overwrite=overwrite)


__all__ = [
    "DEFAULT_FOV_DEG",
    "MESH_AMBIENT",
    "Scene",
    "check_turntable_path",
    "frame_scene",
    "orbit_azimuths",
    "render_orbit",
    "write_turntable",
]
