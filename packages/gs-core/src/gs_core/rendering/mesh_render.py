"""``render_mesh``: RGB, mask, depth and normals of a ``Mesh``, differentiable, any device.

Composes the stages of ``mesh_raster`` (rasterise, interpolate), ``mesh_texture`` and
``mesh_antialias`` with the conventions of the Gaussian ``render()``: same ``Cameras``, images
``[C, H, W, ch]``, RGB composited over ``background``, depth (camera z) and normals composited
over 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.rendering import mesh_raster
from gs_core.rendering.api import _background
from gs_core.rendering.mesh_antialias import antialias as antialias_fn
from gs_core.rendering.mesh_antialias import edge_topology
from gs_core.rendering.mesh_raster import (
    Rasterization,
    interpolate,
    project_points,
    rasterize_projected,
)
from gs_core.rendering.mesh_texture import texture

ATTRIBUTES = ("rgb", "alpha", "depth", "normal")
# Meshes without colours or texture render in one neutral grey, so shape stays visible on
# both white and black backgrounds.
UNCOLOURED = 0.7


@dataclass
class MeshRenderOutput:
    """Images for ``C`` cameras (``None`` for attributes not asked for).

    rgb:    ``[C, H, W, 3]`` surface colour function, texture or vertex colours, composited over
            the background.
    alpha:  ``[C, H, W, 1]`` coverage mask (fractional at antialiased silhouettes).
    depth:  ``[C, H, W, 1]`` camera-space z, composited over 0 (as ``render``'s "RGB+D").
    normal: ``[C, H, W, 3]`` world-space unit normals (face or vertex), composited over 0.
    meta:   ``rast`` (the ``Rasterization``) and ``xy`` (vertex pixel positions).
    """

    rgb: torch.Tensor | None
    alpha: torch.Tensor | None
    depth: torch.Tensor | None = None
    normal: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit normals ``[F, 3]`` of ``verts [V, 3]`` / ``faces [F, 3]`` by the right-hand rule
    (counter-clockwise winding seen from outside points outwards); zero for degenerate faces."""
    v = verts[faces.long()]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``[V, 3]``."""
    v = verts[faces.long()]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)  # 2 * area * normal
    acc = torch.zeros_like(verts).index_add(0, faces.long().reshape(-1), n.repeat_interleave(3, 0))
    return acc / acc.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def render_mesh(
    mesh: Mesh,
    cameras: Cameras,
    *,
    background: torch.Tensor | Sequence[float] | float | None = 1.0,
    attributes: Sequence[str] = ATTRIBUTES,
    antialias: bool = True,
    normals: Literal["face", "vertex"] = "face",
    mip: bool = True,
    near_plane: float = 0.01,
    surface_color: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> MeshRenderOutput:
    """Render ``mesh`` from ``cameras [C]`` (no batch dims).

    Differentiable w.r.t. vertex positions (interior through barycentrics and depth, silhouettes
    through ``antialias``), vertex colours, the texture and whatever ``surface_color`` reads.
    Colour comes from ``surface_color`` when given, else the texture when the mesh has one, else
    vertex colours, else a uniform grey (0.7). For a training loop of fixed shapes on CUDA,
    :class:`GraphedMeshRenderer` replays the same computation from CUDA graphs.

    Args:
        background: RGB behind the mesh: a float, 3 floats or a tensor broadcastable to
            ``[C, 3]``; ``None`` is black.
        attributes: which of "rgb", "alpha", "depth", "normal" to compute.
        antialias: analytic silhouette antialiasing (needed for geometry gradients from masks).
        normals: "face" (flat, exact for polyhedra) or "vertex" (smooth, area-weighted).
        mip: mip-mapped texture sampling.
        near_plane: faces with a vertex nearer than this are culled.
        surface_color: deferred shading: ``fn(points [P, 3]) -> rgb [P, 3]``, called once with
            the world-space surface point seen by each pixel (vertex positions interpolated
            with the perspective-correct barycentrics), as neural-field decoders colour their
            extracted meshes (a colour MLP queried at surface points, e.g. Compress3D, GET3D).
            On accelerators every pixel is passed (empty ones at the origin, then masked), so
            no host synchronisation; on the CPU only the covered ones.
    """
    if not isinstance(mesh, Mesh):
        raise ValidationError("mesh", "a gs_core.Mesh", type(mesh).__name__)
    # Empty meshes, NaN vertices and out-of-range faces: one line naming the Mesh field
    # here, rather than a failure deep in the rasteriser (degenerate faces are skipped there).
    mesh.validate()
    _check_cameras(cameras)
    attrs = _check_options(attributes, normals)
    verts, faces = mesh.vertices, mesh.faces.long()
    if cameras.device != verts.device or cameras.viewmats.dtype != verts.dtype:
        cameras = cameras.to(device=verts.device, dtype=verts.dtype)
    bg = _background_rgb(background, cameras.n_cameras, verts.dtype, verts.device)
    chans, rast, xy = _shade(
        verts,
        faces,
        cameras.viewmats,
        cameras.Ks,
        cameras.width,
        cameras.height,
        vertex_colors=mesh.vertex_colors,
        uvs=mesh.uvs,
        tex=mesh.texture,
        bg=bg,
        attrs=attrs,
        antialias=antialias,
        normals=normals,
        mip=mip,
        near_plane=near_plane,
        topology=None,
        surface_color=surface_color,
    )
    return MeshRenderOutput(
        rgb=chans.get("rgb"),
        alpha=chans.get("alpha"),
        depth=chans.get("depth"),
        normal=chans.get("normal"),
        meta={"rast": rast, "xy": xy if antialias else None},
    )


def _check_cameras(cameras) -> None:
    if not isinstance(cameras, Cameras):
        raise ValidationError("cameras", "a gs_core.Cameras", type(cameras).__name__)
    if cameras.batch_shape:
        raise ValidationError("cameras", "cameras [C] without batch dims", repr(cameras))


def _check_options(attributes, normals) -> tuple[str, ...]:
    attrs = tuple(attributes)
    bad = [a for a in attrs if a not in ATTRIBUTES]
    if bad or not attrs:
        raise ValidationError("attributes", f"a non-empty subset of {ATTRIBUTES}", repr(attributes))
    if normals not in ("face", "vertex"):
        raise ValidationError("normals", "'face' or 'vertex'", repr(normals))
    return attrs


def _background_rgb(background, n_cameras: int, dtype, device) -> torch.Tensor | None:
    """``[C, 3]`` or ``None``; numbers are checked on the host (no device round trip)."""
    numbers = background if isinstance(background, Sequence) else [background]
    if (
        background is not None
        and not isinstance(background, torch.Tensor)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
    ):
        if not all(math.isfinite(float(v)) for v in numbers):
            raise ValidationError("background", "finite values", repr(background))
        return _background(background, (n_cameras,), dtype, device, check=False)
    return _background(background, (n_cameras,), dtype, device, check=True)


def _shade(
    verts: torch.Tensor,
    faces: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    vertex_colors: torch.Tensor | None,
    uvs: torch.Tensor | None,
    tex: torch.Tensor | None,
    bg: torch.Tensor | None,
    attrs: tuple[str, ...],
    antialias: bool,
    normals: str,
    mip: bool,
    near_plane: float,
    topology: torch.Tensor | None,
    surface_color: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], Rasterization, torch.Tensor]:
    """The images of ``verts [V, 3]`` / ``faces [F, 3]`` (int64, indices already validated) in
    cameras ``viewmats [C, 4, 4]``, ``Ks [C, 3, 3]``; no host synchronisation on a GPU. ``uvs`` are per
    vertex ``[V, 2]`` or per corner ``[F, 3, 2]``; ``bg [C, 3]`` or ``None``."""
    dtype = verts.dtype
    xy, z = project_points(verts, viewmats, Ks)
    rast = rasterize_projected(xy, z, faces, width, height, near_plane=near_plane)
    mask = rast.tri_id >= 0
    m = mask[..., None].to(dtype)
    C, H, W = rast.tri_id.shape

    chans: dict[str, torch.Tensor] = {}
    if "rgb" in attrs:
        if surface_color is not None:
            rgb = _deferred_colors(surface_color, verts, faces, rast, mask)
        elif tex is not None:
            corner = uvs.ndim == 3
            uv = interpolate(uvs.to(dtype), rast, None if corner else faces, check=False)
            rgb = texture(tex.to(dtype), uv, mip=mip, mask=mask)
        elif vertex_colors is not None:
            rgb = interpolate(vertex_colors.to(dtype), rast, faces, check=False)
        else:
            rgb = m.expand(C, H, W, 3) * UNCOLOURED
        if bg is not None:
            rgb = rgb * m + bg[:, None, None, :] * (1 - m)
        chans["rgb"] = rgb
    if "alpha" in attrs:
        chans["alpha"] = m
    if "depth" in attrs:
        chans["depth"] = rast.depth[..., None]
    if "normal" in attrs:
        if normals == "face":
            # constant over a face: a gather, no interpolation
            fn = face_normals(verts, faces)
            n = fn.index_select(0, rast.tri_id.clamp_min(0).reshape(-1)).reshape(C, H, W, 3) * m
        else:
            n = interpolate(vertex_normals(verts, faces), rast, faces, check=False)
            n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)
        chans["normal"] = n

    if antialias:
        names = list(chans)
        sizes = [chans[k].shape[-1] for k in names]
        stacked = antialias_fn(
            torch.cat([chans[k] for k in names], -1), rast, xy, faces, topology, check=False
        )
        chans = dict(zip(names, stacked.split(sizes, -1), strict=True))
    return chans, rast, xy


def _deferred_colors(
    fn: Callable[[torch.Tensor], torch.Tensor],
    verts: torch.Tensor,
    faces: torch.Tensor,
    rast: Rasterization,
    mask: torch.Tensor,
) -> torch.Tensor:
    """``fn`` at each pixel's surface point: ``[C, H, W, 3]``, zeros where nothing is seen."""
    points = interpolate(verts, rast, faces, check=False)  # [C, H, W, 3]
    C, H, W, _ = points.shape
    flat = points.reshape(-1, 3)
    dense = mesh_raster._dense(points)
    pix = None if dense else mask.reshape(-1).nonzero()[:, 0]
    vals = fn(flat if dense else flat.index_select(0, pix))
    if not isinstance(vals, torch.Tensor) or vals.shape != (
        flat.shape[0] if dense else pix.shape[0],
        3,
    ):
        raise ValidationError(
            "surface_color", "a function returning rgb [P, 3] for points [P, 3]", _desc(vals)
        )
    vals = vals.to(verts.dtype)
    if dense:
        return vals.reshape(C, H, W, 3) * mask[..., None].to(vals.dtype)
    out = vals.new_zeros(C * H * W, 3).index_put((pix,), vals)
    return out.reshape(C, H, W, 3)


class GraphedMeshRenderer:
    """:func:`render_mesh` for one mesh topology, replayed from CUDA graphs (forward and
    backward): for training loops on CUDA whose mesh connectivity, camera count and image size
    stay fixed while vertex positions, colours or the texture and the cameras change (a mesh
    fit, DreamGaussian's texture stage).

    A recording is made on the first call with each combination of shapes and of which inputs
    require grad (:class:`~gs_core.cuda_graphs.GraphedFunction`), after two eager warm-up
    passes; later calls copy their inputs in and replay one graph forward and one backward.
    The options are those of :func:`render_mesh`; ``faces [F, 3]`` and (for textures)
    ``uvs`` (per vertex ``[V, 2]`` or per corner ``[F, 3, 2]``) are fixed here, on the CUDA
    device the renderer runs on.

    Calls check shapes and devices on the host only: faces are checked against the vertex
    count once per count, and faces with a non-finite vertex are skipped, not reported (use
    :func:`render_mesh` or ``Mesh.validate`` to find them). Each call must be back-propagated
    (if at all) before the next call.
    """

    def __init__(
        self,
        faces: torch.Tensor,
        *,
        uvs: torch.Tensor | None = None,
        background: torch.Tensor | Sequence[float] | float | None = 1.0,
        attributes: Sequence[str] = ATTRIBUTES,
        antialias: bool = True,
        normals: Literal["face", "vertex"] = "face",
        mip: bool = True,
        near_plane: float = 0.01,
    ):
        if (
            not isinstance(faces, torch.Tensor)
            or faces.ndim != 2
            or faces.shape[1] != 3
            or faces.is_floating_point()
            or faces.dtype == torch.bool
            or faces.shape[0] == 0
        ):
            raise ValidationError("faces", "a non-empty integer tensor [F, 3]", _desc(faces))
        if faces.device.type != "cuda":
            raise ValidationError("faces", "a tensor on a CUDA device", str(faces.device))
        if int(faces.min()) < 0:
            raise ValidationError("faces", "non-negative vertex indices", f"min {int(faces.min())}")
        self.faces = faces.long().contiguous()
        self.uvs = None
        if uvs is not None:
            corner = (self.faces.shape[0], 3, 2)
            if not isinstance(uvs, torch.Tensor) or not (
                (uvs.ndim == 2 and uvs.shape[1] == 2) or tuple(uvs.shape) == corner
            ):
                raise ValidationError("uvs", f"a tensor [V, 2] or {list(corner)}", _desc(uvs))
            if uvs.device != faces.device or not bool(torch.isfinite(uvs).all()):
                raise ValidationError("uvs", f"finite values on {faces.device}", _desc(uvs))
            self.uvs = uvs.detach().float().contiguous()
        self.attributes = _check_options(attributes, normals)
        self.background = background
        self.options = {
            "antialias": bool(antialias),
            "normals": normals,
            "mip": bool(mip),
            "near_plane": float(near_plane),
        }
        # edge topology once: the graphs must not sort (a host sync) on every call
        self.topology = edge_topology(self.faces) if antialias else None
        self._max_index = int(self.faces.max())
        self._checked_counts: set[int] = set()
        self._graphs: dict[tuple, Any] = {}

    def __call__(
        self,
        vertices: torch.Tensor,
        cameras: Cameras,
        *,
        vertex_colors: torch.Tensor | None = None,
        texture: torch.Tensor | None = None,
    ) -> MeshRenderOutput:
        """Render ``vertices [V, 3]`` (float32) with ``vertex_colors [V, 3]`` or ``texture
        [Ht, Wt, 3]`` (needs ``uvs``; or neither: grey) from ``cameras [C]``.

        Returns a :class:`MeshRenderOutput` as :func:`render_mesh`'s (``meta`` holds
        ``tri_id [C, H, W]``); differentiable w.r.t. the inputs that require grad.
        """
        dev = self.faces.device
        if (
            not isinstance(vertices, torch.Tensor)
            or vertices.ndim != 2
            or vertices.shape[1] != 3
            or vertices.dtype != torch.float32
            or vertices.device != dev
        ):
            raise ValidationError("vertices", f"a float32 tensor [V, 3] on {dev}", _desc(vertices))
        V = vertices.shape[0]
        if V not in self._checked_counts:
            if self._max_index >= V:
                raise ValidationError(
                    "faces", f"indices in [0, {V})", f"max index {self._max_index}"
                )
            if self.uvs is not None and self.uvs.ndim == 2 and self.uvs.shape[0] != V:
                raise ValidationError("uvs", f"[{V}, 2] (one per vertex)", _desc(self.uvs))
            self._checked_counts.add(V)
        _check_cameras(cameras)
        if cameras.device != dev or cameras.viewmats.dtype != torch.float32:
            raise ValidationError("cameras", f"float32 cameras on {dev}", repr(cameras))
        extra: tuple[torch.Tensor, ...] = ()
        mode = "grey"
        if texture is not None:
            if self.uvs is None:
                raise ValidationError("texture", "uvs given to GraphedMeshRenderer", "none")
            if (
                not isinstance(texture, torch.Tensor)
                or texture.ndim != 3
                or texture.shape[-1] != 3
                or texture.device != dev
            ):
                raise ValidationError("texture", f"a tensor [Ht, Wt, 3] on {dev}", _desc(texture))
            extra, mode = (texture,), "texture"
        elif vertex_colors is not None:
            if not isinstance(vertex_colors, torch.Tensor) or tuple(vertex_colors.shape) != (
                V,
                3,
            ):
                raise ValidationError("vertex_colors", f"a tensor [{V}, 3]", _desc(vertex_colors))
            if vertex_colors.device != dev:
                raise ValidationError("vertex_colors", f"a tensor on {dev}", _desc(vertex_colors))
            extra, mode = (vertex_colors,), "vertex"
        key = (mode, cameras.n_cameras, cameras.width, cameras.height)
        graphed = self._graphs.get(key)
        if graphed is None:
            # imported here: it registers module hooks, which plain rendering does not need
            from gs_core.cuda_graphs import GraphedFunction

            graphed = GraphedFunction(self._function(mode, *key[1:]))
            self._graphs[key] = graphed
        outs = graphed(vertices, cameras.viewmats, cameras.Ks, *extra)
        images = dict(zip(self.attributes, outs[:-1], strict=True))
        return MeshRenderOutput(
            rgb=images.get("rgb"),
            alpha=images.get("alpha"),
            depth=images.get("depth"),
            normal=images.get("normal"),
            meta={"tri_id": outs[-1]},
        )

    def _function(self, mode: str, n_cameras: int, width: int, height: int):
        bg = _background_rgb(self.background, n_cameras, torch.float32, self.faces.device)

        def render(verts, viewmats, Ks, *extra):
            chans, rast, _ = _shade(
                verts,
                self.faces,
                viewmats,
                Ks,
                width,
                height,
                vertex_colors=extra[0] if mode == "vertex" else None,
                uvs=self.uvs,
                tex=extra[0] if mode == "texture" else None,
                bg=bg,
                attrs=self.attributes,
                topology=self.topology,
                **self.options,
            )
            return (*(chans[a] for a in self.attributes), rast.tri_id)

        return render


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)} on {x.device}"
    return type(x).__name__
