"""Bake the colours of a Gaussian set (or of a colour function of surface points:
:func:`bake_surface_colors`) into the UV texture of a mesh.

Texel-centric (a gather, not a scatter): the mesh is rasterised in UV space, so each texel
inside a UV island knows its 3D point and face; each texel is then projected into every view
of the Gaussians, kept where the mesh itself is visible there (depth test) and seen head-on
enough (view cosine), and its colour is the cosine-weighted mean of the Gaussian renders at
the projected points. Texels no view sees take the mesh's vertex colours; a band of texels
around every island is dilated so mip-mapped sampling does not bleed the empty texture in.
The views and thresholds follow DreamGaussian's baking unless a parameter's doc says why not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.meshing.colors import gaussian_vertex_colors
from gs_core.rendering.api import render
from gs_core.rendering.mesh_raster import Rasterization, interpolate, project_vertices, rasterize

# DreamGaussian's 26 baking views: elevations 0, -45, +45 at 8 azimuths, plus near-poles (89.9,
# not 90, so the y-up look-at stays defined).
BAKE_AZIMUTHS = (0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0)
BAKE_ELEVATIONS = (0.0, -45.0, 45.0)
POLE_ELEVATION = 89.9


def bake_views(
    mesh: Mesh, resolution: int = 512, fov_deg: float = 49.1, margin: float = 1.1
) -> Cameras:
    """DreamGaussian's 26 orbit cameras ``[26]`` around ``mesh``: 8 azimuths x elevations
    (0, -45, 45) plus top and bottom, aimed at the bounding-box centre from the distance at
    which the bounding sphere fills the field of view to ``1 / margin``."""
    v = mesh.vertices.detach().double()
    centre = 0.5 * (v.amin(0) + v.amax(0))
    r = float((v - centre).norm(dim=-1).max().clamp_min(1e-6))
    dist = margin * r / math.sin(math.radians(fov_deg) / 2)
    az = [a for _ in BAKE_ELEVATIONS for a in BAKE_AZIMUTHS] + [0.0, 0.0]
    el = [e for e in BAKE_ELEVATIONS for _ in BAKE_AZIMUTHS] + [-POLE_ELEVATION, POLE_ELEVATION]
    return Cameras.orbit(
        az,
        el,
        radius=dist,
        fov_deg=fov_deg,
        width=resolution,
        height=resolution,
        target=centre.tolist(),
        device=mesh.vertices.device,
        dtype=torch.float32,
    )


def uv_rasterize(mesh: Mesh, size: int) -> Rasterization:
    """Rasterise ``mesh``'s faces at their UVs into a ``size x size`` texture grid.

    Texel ``(row i, column j)`` has its centre at ``u = (j + 0.5) / size``,
    ``v = 1 - (i + 0.5) / size`` (``v = 1`` is the first row, as ``gs_core.rendering``'s texture
    sampling). Every UV vertex is put at depth 1 in front of an identity camera, so the
    rasteriser's barycentrics are the affine UV-space ones. Returns ``tri_id [1, size, size]``
    (``-1`` outside the UV islands) and ``bary [1, size, size, 3]``.
    """
    uv = mesh.uvs.detach().to(torch.float32)
    pos = torch.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size, torch.ones_like(uv[:, 0])], -1)
    dev = pos.device
    cam = Cameras(
        viewmats=torch.eye(4, device=dev)[None],
        Ks=torch.eye(3, device=dev)[None],
        width=size,
        height=size,
    )
    return rasterize(pos, mesh.faces.long(), cam, check=False)


def bake_texture(
    mesh: Mesh,
    gaussians: Gaussians,
    *,
    size: int = 1024,
    views: Cameras | None = None,
    resolution: int = 512,
    min_cosine: float = 0.5,
    min_alpha: float = 0.5,
    dilation: int | None = None,
    backend: str = "auto",
) -> Mesh:
    """The mesh with a ``size x size`` texture baked from renders of ``gaussians``.

    Args:
        mesh: a mesh with ``uvs [V, 2]`` (e.g. from :func:`~gs_core.meshing.unwrap_uv`) whose
            surface lies where the Gaussians are (e.g. from
            :func:`~gs_core.meshing.gaussians_to_mesh`); any device, the baking runs there.
        gaussians: one unbatched set ``[N]``, on the mesh's device.
        size: texture side in texels (DreamGaussian: 1024).
        views: cameras ``[C]`` to bake from; default :func:`bake_views` (DreamGaussian's 26).
        resolution: render size of the default views (DreamGaussian: 512); ignored with
            ``views``.
        min_cosine: a view contributes to a texel only where ``|n . v| > min_cosine`` (face
            normal ``n``, unit direction ``v`` to the camera); DreamGaussian: 0.5. The absolute
            value makes baking independent of the winding. Contributions are weighted by
            ``|n . v|`` and averaged over views, where DreamGaussian keeps the first view that
            covers a texel: the mean has no seams where the covering view changes.
        min_alpha: a view contributes only where the Gaussians' accumulated opacity exceeds
            this; the colour is the render over black divided by that opacity, so the
            background never mixes into silhouette texels (DreamGaussian composites on white).
        dilation: texels outside the UV islands within this many texels of one (8-connected
            steps) take the mean colour of their already-filled neighbours, so bilinear and
            mip sampling near island borders do not blend the empty texture in; default
            ``max(2, size // 32)`` (DreamGaussian: 32 at 1024). Texels beyond it are filled
            from a pull-push pyramid of the islands' colours, so coarse mip levels (which
            average far texels together) blend only the islands' own colours.
        backend: Gaussian renderer backend (see :func:`gs_core.rendering.render`).

    Texels no view sees (occluded everywhere, or only at grazing angles) take the vertex
    colours interpolated over their face: the mesh's own, or else
    :func:`~gs_core.meshing.gaussian_vertex_colors` of the Gaussians.

    The visibility test keeps a texel in a view when its camera depth is at most the mesh's
    depth at its pixel plus three pixel footprints (the depth change across a pixel of a
    face at the steepest kept angle, with margin) plus 0.5% of the mesh's bounding radius.

    Returns:
        A new :class:`~gs_core.Mesh` with the same vertices, faces, UVs and vertex colours and
        ``texture [size, size, 3]`` in ``[0, 1]``.

    Raises:
        ValidationError: naming ``mesh.uvs`` for a mesh without UVs, ``gaussians`` for a batched
            or empty set, or the out-of-range parameter.
    """
    if not isinstance(mesh, Mesh):
        raise ValidationError("mesh", "a gs_core.Mesh", type(mesh).__name__)
    mesh.validate()
    if mesh.uvs is None:
        raise ValidationError("mesh.uvs", "UVs (run unwrap_uv first)", "none")
    if not isinstance(gaussians, Gaussians) or gaussians.batch_shape != ():
        raise ValidationError("gaussians", "one unbatched Gaussians set [N]", repr(gaussians))
    if gaussians.num_gaussians == 0:
        raise ValidationError("gaussians", "at least one Gaussian", "an empty set")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8192:
        raise ValidationError("size", "an int in [1, 8192]", repr(size))
    if not 0 <= min_cosine < 1:
        raise ValidationError("min_cosine", "a float in [0, 1)", repr(min_cosine))
    if not 0 <= min_alpha < 1:
        raise ValidationError("min_alpha", "a float in [0, 1)", repr(min_alpha))
    if dilation is None:
        dilation = max(2, size // 32)
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValidationError("dilation", "a non-negative int", repr(dilation))
    if views is None:
        views = bake_views(mesh, resolution)
    elif not isinstance(views, Cameras) or views.batch_shape != ():
        raise ValidationError("views", "gs_core.Cameras [C] without batch dims", repr(views))

    dev = mesh.vertices.device
    g = gaussians.detach().to(dev)
    verts = mesh.vertices.detach().float()
    faces = mesh.faces.long()
    with torch.no_grad():
        # Texels: their 3D points and face normals.
        rast = uv_rasterize(mesh, size)
        tri = rast.tri_id.reshape(-1)
        inside = (tri >= 0).nonzero()[:, 0]  # [P] texel indices inside the islands
        pts = interpolate(verts, rast, faces, check=False).reshape(-1, 3)[inside]  # [P, 3]
        tri_v = verts[faces]
        fn = torch.linalg.cross(tri_v[:, 1] - tri_v[:, 0], tri_v[:, 2] - tri_v[:, 0], dim=-1)
        fn = fn / fn.norm(dim=-1, keepdim=True).clamp_min(1e-20)
        nrm = fn[tri[inside]]  # [P, 3]
        bound = float((verts - 0.5 * (verts.amin(0) + verts.amax(0))).norm(dim=-1).max())

        acc = torch.zeros(inside.numel(), 3, device=dev)
        wsum = torch.zeros(inside.numel(), device=dev)
        views = views.to(device=dev, dtype=torch.float32)
        # One view at a time bounds memory to one render and one texel projection.
        for c in range(views.n_cameras):
            cam = views.select(slice(c, c + 1))
            col, w = _view_contribution(
                g, verts, faces, cam, pts, nrm, min_cosine, min_alpha, bound, backend
            )
            acc += w[:, None] * col
            wsum += w

        # Holes: vertex colours interpolated over the texel's face.
        vc = mesh.vertex_colors
        if vc is None:
            vc = gaussian_vertex_colors(Mesh(vertices=verts, faces=faces), g).vertex_colors
        fallback = interpolate(vc.detach().float(), rast, faces, check=False)
        fallback = fallback.reshape(-1, 3)[inside]
        seen = wsum > 0
        colours = torch.where(seen[:, None], acc / wsum.clamp_min(1e-12)[:, None], fallback)
        return _textured(mesh, size, inside, colours, dilation)


def bake_surface_colors(
    mesh: Mesh,
    color_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    size: int = 1024,
    dilation: int | None = None,
) -> Mesh:
    """The mesh with a ``size x size`` texture of ``color_fn`` at each texel's surface point.

    For meshes extracted from a neural field with its own colour head (a colour MLP queried at
    surface points: Compress3D, GET3D): each texel inside a UV island is the function at its 3D
    point, so the texture holds the field's colour at texel density rather than vertex colours
    interpolated over faces.

    Args:
        mesh: a mesh with ``uvs [V, 2]`` (e.g. from :func:`~gs_core.meshing.unwrap_uv`).
        color_fn: ``points [P, 3]`` (world space, the mesh's device) -> RGB ``[P, 3]``; called
            once, under ``torch.no_grad``; values are clamped to ``[0, 1]``.
        size, dilation: as :func:`bake_texture`.

    Returns:
        A new :class:`~gs_core.Mesh` with the same vertices, faces, UVs and vertex colours and
        ``texture [size, size, 3]``.
    """
    if not isinstance(mesh, Mesh):
        raise ValidationError("mesh", "a gs_core.Mesh", type(mesh).__name__)
    mesh.validate()
    if mesh.uvs is None:
        raise ValidationError("mesh.uvs", "UVs (run unwrap_uv first)", "none")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8192:
        raise ValidationError("size", "an int in [1, 8192]", repr(size))
    if dilation is None:
        dilation = max(2, size // 32)
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValidationError("dilation", "a non-negative int", repr(dilation))
    with torch.no_grad():
        rast = uv_rasterize(mesh, size)
        tri = rast.tri_id.reshape(-1)
        inside = (tri >= 0).nonzero()[:, 0]
        verts = mesh.vertices.detach().float()
        pts = interpolate(verts, rast, mesh.faces.long(), check=False).reshape(-1, 3)[inside]
        colours = color_fn(pts)
        if not isinstance(colours, torch.Tensor) or colours.shape != (pts.shape[0], 3):
            raise ValidationError(
                "color_fn", "a function returning rgb [P, 3] for points [P, 3]", repr(colours)
            )
        return _textured(mesh, size, inside, colours, dilation)


def _textured(
    mesh: Mesh, size: int, inside: torch.Tensor, colours: torch.Tensor, dilation: int
) -> Mesh:
    """``mesh`` with the texture whose texels ``inside [P]`` (flat indices) are ``colours
    [P, 3]`` (clamped to [0, 1]), grown beyond the islands by :func:`_dilate`."""
    dev = colours.device
    tex = torch.zeros(size * size, 3, device=dev)
    filled = torch.zeros(size * size, dtype=torch.bool, device=dev)
    tex[inside] = colours.float().clamp(0, 1)
    filled[inside] = True
    tex = _dilate(tex.reshape(size, size, 3), filled.reshape(size, size), dilation)
    return Mesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        vertex_colors=mesh.vertex_colors,
        uvs=mesh.uvs,
        texture=tex.to(mesh.vertices.dtype),
    )


def _view_contribution(
    g: Gaussians,
    verts: torch.Tensor,
    faces: torch.Tensor,
    cam: Cameras,
    pts: torch.Tensor,
    nrm: torch.Tensor,
    min_cosine: float,
    min_alpha: float,
    bound: float,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours ``[P, 3]`` and weights ``[P]`` (0 where not kept) of texel points ``pts [P, 3]``
    (face normals ``nrm [P, 3]``) in one camera."""
    H, W = cam.height, cam.width
    out = render(g, cam, background=0.0, mode="RGB", backend=backend)
    img = torch.cat([out.rgb[0], out.alpha[0]], -1).float()  # [H, W, 4], premultiplied
    depth = rasterize(verts, faces, cam, check=False)
    hit = depth.tri_id[0] >= 0
    zbuf = depth.depth[0]

    xy, z = project_vertices(pts, cam)
    xy, z = xy[0], z[0]  # [P, 2], [P]
    px = xy[:, 0].floor().long()
    py = xy[:, 1].floor().long()
    on = (z > 0) & (px >= 0) & (px < W) & (py >= 0) & (py < H)
    pxc, pyc = px.clamp(0, W - 1), py.clamp(0, H - 1)
    fx = float(cam.Ks[0, 0, 0])
    tol = 3.0 * z / fx + 0.005 * bound
    visible = on & hit[pyc, pxc] & (z <= zbuf[pyc, pxc] + tol)

    to_cam = cam.centers[0][None] - pts
    cos = (nrm * to_cam).sum(-1).abs() / to_cam.norm(dim=-1).clamp_min(1e-12)

    # Bilinear lookup at the projected point (pixel centres at +0.5, as the renderer).
    grid = torch.stack([xy[:, 0] / W * 2 - 1, xy[:, 1] / H * 2 - 1], -1)
    s = F.grid_sample(
        img.permute(2, 0, 1)[None],
        grid[None, :, None, :],
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )[0, :, :, 0].T  # [P, 4]
    alpha = s[:, 3]
    keep = visible & (cos > min_cosine) & (alpha > min_alpha)
    colour = s[:, :3] / alpha.clamp_min(1e-6)[:, None]
    return colour, torch.where(keep, cos, torch.zeros_like(cos))


def _dilate(tex: torch.Tensor, filled: torch.Tensor, steps: int) -> torch.Tensor:
    """Grow ``tex [S, S, 3]`` from ``filled [S, S]`` by ``steps`` 8-connected rings, each new
    texel the mean of its filled neighbours; the rest by :func:`_pull_push`."""
    if not bool(filled.any()):
        return tex
    t = (tex * filled[..., None]).permute(2, 0, 1)[None]  # [1, 3, S, S]
    m = filled[None, None].to(t.dtype)
    ones = torch.ones(1, 1, 3, 3, dtype=t.dtype, device=t.device)
    for _ in range(steps):
        cnt = F.conv2d(m, ones, padding=1)
        new = (cnt > 0) & (m == 0)
        if not bool(new.any()):
            break
        total = F.conv2d(t, ones.expand(3, 1, 3, 3), padding=1, groups=3)
        t = torch.where(new, total / cnt.clamp_min(1), t)
        m = torch.where(new, torch.ones_like(m), m)
    return _pull_push(t, m)[0].permute(1, 2, 0)


def _pull_push(t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Fill the texels of ``t [1, 3, S, S]`` where ``m [1, 1, S, S]`` is 0 from a pyramid of
    masked means (pull: halve, averaging filled texels only; push: each empty texel takes the
    upsampled coarser level), so every texel gets a smooth blend of the nearest islands."""
    if (t.shape[-1] <= 1 and t.shape[-2] <= 1) or bool((m > 0).all()):
        return t
    tm = F.avg_pool2d(t * m, 2, ceil_mode=True)
    mm = F.avg_pool2d(m, 2, ceil_mode=True)
    coarse_m = (mm > 0).to(t.dtype)
    coarse = _pull_push(tm / mm.clamp_min(1e-12) * coarse_m, coarse_m)
    up = F.interpolate(coarse, scale_factor=2, mode="nearest")[..., : t.shape[-2], : t.shape[-1]]
    return torch.where(m > 0, t, up)
