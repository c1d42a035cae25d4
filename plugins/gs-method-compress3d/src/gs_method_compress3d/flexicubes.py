"""FlexiCubes (Shen et al., SIGGRAPH 2023): differentiable Dual Marching Cubes on a deformable grid.

Written from the paper (arXiv:2308.05371, Sec. 4); the case tables come from the program in
:mod:`gs_method_compress3d.flexicubes_tables`. Compress3D (Sec. 3.1) predicts the three inputs
from its decoded triplane: an SDF and a deformation per grid vertex and 21 weights per cube.

The extraction, all vectorised over cubes and edges:

1. Grid vertices move by a deformation bounded to half a cell, so cubes never fold.
2. On each crossed cube edge ``(i, j)`` the crossing is the zero of the alpha-scaled SDF,
   ``u_e = (s_i a_i x_j - s_j a_j x_i) / (s_i a_i - s_j a_j)``, with the cube's
   per-corner weights ``alpha`` (8 per cube).
3. Each surface patch in a cube becomes one dual vertex, the beta-weighted mean of its edge
   crossings, ``v_d = sum_e b_e u_e / sum_e b_e``, with the cube's per-edge ``beta``
   (12 per cube).
4. Every crossed grid edge becomes a quad over the dual vertices of its four cubes, oriented so
   its normal points from inside (SDF < 0) to outside. Quads are split into triangles with the
   cube weight ``gamma``: while training into four triangles around the gamma-weighted mean of
   the quad's vertices (which keeps the split differentiable), otherwise into two triangles along
   the diagonal whose endpoints have the larger product of gammas.
5. ``L_dev`` (the paper's regulariser) is the mean absolute deviation of the distances from each
   dual vertex to its edge crossings, averaged over dual vertices; it keeps dual vertices from
   drifting away from the middle of their crossings where the weights are under-constrained.

Layouts: grid vertex ``(i, j, k)`` (x, y, z) has index ``i + (R+1) j + (R+1)^2 k`` (x fastest);
cube ``(i, j, k)`` has index ``i + R j + R^2 k`` and corners in the tables' order (corner ``c``
at offset ``(c & 1, c >> 1 & 1, c >> 2 & 1)``). ``weights[:, 0:12]`` are beta (cube-edge order of
the tables), ``weights[:, 12:20]`` alpha (corner order), ``weights[:, 20]`` gamma, all raw
(pre-activation); see :func:`weight_activations`. A shape touching the grid's boundary stays
open there: quads need the four cubes around an edge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from gs_core.errors import ValidationError
from gs_method_compress3d.flexicubes_tables import (
    CORNER_OFFSETS,
    EDGE_CORNERS,
    MAX_GROUPS,
    OPPOSITE_FACE,
    dual_tables,
)

NUM_WEIGHTS = 21
# Weights stay in (1 - s, 1 + s): positive, so crossings stay on their edges and dual vertices
# inside the convex hull of their crossings; zero raw weights give plain Dual Marching Cubes.
WEIGHT_SCALE = 0.99
# Just under half a cell: adjacent vertices never meet, even where tanh saturates in float32.
DEFORM_BOUND = 0.5 * (1.0 - 1e-3)


@dataclass(frozen=True, eq=False)
class FlexiCubesOutput:
    """An extracted triangle mesh.

    Fields:
        vertices: ``[V, 3]`` positions (dual vertices, then the quad midpoints when training).
        faces:    ``[F, 3]`` long vertex indices, counter-clockwise seen from outside.
        l_dev:    scalar, the paper's dual-vertex deviation regulariser.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    l_dev: torch.Tensor


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValidationError("resolution", "an integer >= 1", repr(resolution))
    return resolution


def grid_vertices(
    resolution: int,
    scale: float = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Vertices of a ``resolution^3``-cube grid spanning ``[-scale/2, scale/2]^3``.

    Returns ``[(resolution + 1)^3, 3]``, x fastest.
    """
    r = _check_resolution(resolution)
    if not scale > 0:
        raise ValidationError("scale", "a positive number", repr(scale))
    t = torch.linspace(-scale / 2, scale / 2, r + 1, device=device, dtype=dtype)
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    return torch.stack([x, y, z], dim=-1).reshape(-1, 3)


def grid_cubes(resolution: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Corner vertex indices of each cube: ``[resolution^3, 8]`` long, cube ``i + R j + R^2 k``."""
    r = _check_resolution(resolution)
    n = r + 1
    a = torch.arange(r, device=device)
    k, j, i = torch.meshgrid(a, a, a, indexing="ij")
    base = (i + n * j + n * n * k).reshape(-1, 1)
    off = torch.as_tensor(CORNER_OFFSETS, device=device)
    corner = off[:, 0] + n * off[:, 1] + n * n * off[:, 2]
    return base + corner


def weight_activations(
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw cube weights ``[..., 21]`` to ``(beta [..., 12], alpha [..., 8], gamma [...])``.

    beta and alpha through ``1 + 0.99 tanh`` (positive, 1 at zero); gamma through a sigmoid
    scaled to ``(0.005, 0.995)`` (positive, so the weighted quad midpoint is always defined).
    """
    beta = 1.0 + WEIGHT_SCALE * torch.tanh(weights[..., :12])
    alpha = 1.0 + WEIGHT_SCALE * torch.tanh(weights[..., 12:20])
    gamma = WEIGHT_SCALE * torch.sigmoid(weights[..., 20]) + (1.0 - WEIGHT_SCALE) / 2
    return beta, alpha, gamma


@functools.lru_cache(maxsize=8)
def _tables_on(device: torch.device) -> dict[str, torch.Tensor]:
    t = dual_tables()
    return {
        "edge_group": torch.tensor(t.edge_group, dtype=torch.long, device=device),
        "num_groups": torch.tensor(t.num_groups, dtype=torch.long, device=device),
        "double_pass": torch.tensor(t.double_pass, device=device),
        "edge_corners": torch.as_tensor(EDGE_CORNERS, device=device),
        "ring": torch.as_tensor(_ring_tables(), device=device),
    }


def _ring_tables() -> list[list[list[int]]]:
    """For a grid edge along axis ``a``, its four cubes in counter-clockwise order seen from
    ``+a``: ``[3, 4, 4]`` rows ``(dx, dy, dz, local edge index)`` (cube = lower vertex + d)."""
    rows = []
    for a in range(3):
        o0, o1 = [x for x in range(3) if x != a]
        # (p, q) with p x q = +a, so counter-clockwise in (p, q) is counter-clockwise from +a.
        p, q = (o1, o0) if a == 1 else (o0, o1)
        ring = []
        for dp, dq in ((-1, -1), (0, -1), (0, 0), (-1, 0)):
            d = [0, 0, 0]
            d[p], d[q] = dp, dq
            # In a cube displaced by -1 along an axis the edge sits at that axis' bit 1.
            b0, b1 = -d[o0], -d[o1]
            ring.append([d[0], d[1], d[2], 4 * a + b0 + 2 * b1])
        rows.append(ring)
    return rows


def _describe(t) -> str:
    if not isinstance(t, torch.Tensor):
        return type(t).__name__
    return f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)} on {t.device}"


def _validate(sdf, deform, weights, resolution, scale) -> None:
    r = _check_resolution(resolution)
    if isinstance(scale, bool) or not (isinstance(scale, int | float) and scale > 0):
        raise ValidationError("scale", "a positive number", repr(scale))
    nv, nc = (r + 1) ** 3, r**3
    if not isinstance(sdf, torch.Tensor) or sdf.shape != (nv,) or not sdf.is_floating_point():
        raise ValidationError("sdf", f"a float tensor [{nv}] ((resolution+1)^3)", _describe(sdf))
    for name, t, shape, what in (
        ("deform", deform, (nv, 3), f"[{nv}, 3]"),
        ("weights", weights, (nc, NUM_WEIGHTS), f"[{nc}, {NUM_WEIGHTS}] (resolution^3 cubes)"),
    ):
        if t is None:
            continue
        if (
            not isinstance(t, torch.Tensor)
            or t.shape != shape
            or not t.is_floating_point()
            or t.device != sdf.device
        ):
            raise ValidationError(
                name, f"None or a float tensor {what} on sdf's device ({sdf.device})", _describe(t)
            )


def flexicubes_mesh(
    sdf: torch.Tensor,
    deform: torch.Tensor | None,
    weights: torch.Tensor | None,
    resolution: int,
    scale: float = 1.0,
    training: bool = True,
) -> FlexiCubesOutput:
    """Extract the FlexiCubes mesh of one shape.

    Args:
        sdf:        ``[N_v]`` signed distances at the grid vertices (negative inside),
                    ``N_v = (resolution + 1)^3``.
        deform:     ``[N_v, 3]`` raw deformations (``tanh``-bounded to just under half a cell), or
                    ``None`` for the regular grid.
        weights:    ``[N_c, 21]`` raw cube weights (beta 12, alpha 8, gamma 1; see
                    :func:`weight_activations`), ``N_c = resolution^3``; ``None`` is plain Dual
                    Marching Cubes.
        resolution: cubes per side.
        scale:      side of the grid's cube, centred at the origin.
        training:   four-triangle differentiable quad split; otherwise the gamma diagonal split.

    Returns:
        :class:`FlexiCubesOutput`; differentiable w.r.t. ``sdf`` (through the crossings),
        ``deform`` and ``weights`` (gamma only when ``training``). Geometry is computed in
        float32 (float64 if ``sdf`` is float64) with autocast off, whatever the inputs' dtype:
        half-precision crossings would misplace vertices by a sizeable part of a cell.
    """
    _validate(sdf, deform, weights, resolution, scale)
    dtype = torch.float64 if sdf.dtype == torch.float64 else torch.float32
    with torch.autocast(sdf.device.type, enabled=False):
        return _extract(
            sdf.to(dtype),
            None if deform is None else deform.to(dtype),
            None if weights is None else weights,
            resolution,
            float(scale),
            training,
        )


def _extract(sdf, deform, weights, resolution, scale, training) -> FlexiCubesOutput:
    device, dtype = sdf.device, sdf.dtype
    tb = _tables_on(device)
    r = resolution
    n = r + 1
    cell = scale / r

    inside = sdf < 0
    occ = inside.reshape(n, n, n)  # [k, j, i]

    # --- surface cubes and their patch tables -------------------------------------------------
    # Configurations from shifted views of the occupancy grid: no [N_c, 8] gather over all cubes.
    config = torch.zeros(r, r, r, dtype=torch.uint8, device=device)
    for c, (di, dj, dk) in enumerate(CORNER_OFFSETS.tolist()):
        config |= occ[dk : dk + r, dj : dj + r, di : di + r].to(torch.uint8) << c
    config = config.reshape(-1)  # [N_c], cube i + R j + R^2 k
    surf = torch.nonzero((config != 0) & (config != 255)).squeeze(-1)  # [S]
    num_surf = surf.numel()
    cfg = config[surf].long()
    ci, cj, ck = surf % r, (surf // r) % r, surf // (r * r)

    # Flip an ambiguous face when the cubes on both sides would each pass one patch through it
    # twice (a non-manifold edge otherwise); both cubes see the same test, so they agree.
    double_self = tb["double_pass"][cfg]  # [S, 6]
    flips = torch.zeros_like(double_self)
    for axis, (coord, stride) in enumerate(((ci, 1), (cj, r), (ck, r * r))):
        for side in range(2):
            face = 2 * axis + side
            step = 1 if side else -1
            ok = (coord + step >= 0) & (coord + step < r)
            nbr = (surf + step * stride).clamp(0, r**3 - 1)
            double_nbr = tb["double_pass"][config[nbr].long(), int(OPPOSITE_FACE[face])]
            flips[:, face] = double_self[:, face] & double_nbr & ok
    flip_mask = (flips.long() << torch.arange(6, device=device)).sum(-1)
    key = cfg + 256 * flip_mask
    groups = tb["edge_group"][key]  # [S, 12], -1 where not crossed
    num_groups = tb["num_groups"][key]  # [S]

    if weights is None:
        beta = torch.ones(num_surf, 12, device=device, dtype=dtype)
        alpha = torch.ones(num_surf, 8, device=device, dtype=dtype)
        gamma = torch.full((num_surf,), 0.5, device=device, dtype=dtype)
    else:
        beta, alpha, gamma = weight_activations(weights[surf].to(dtype))

    # --- edge crossings and dual vertices -------------------------------------------------------
    # Only the corners of surface cubes are ever positioned (and deformed).
    off = torch.as_tensor(CORNER_OFFSETS, device=device)  # [8, 3]
    coords = torch.stack([ci, cj, ck], -1)[:, None, :] + off  # [S, 8, 3] (i, j, k)
    corners = coords[..., 0] + n * coords[..., 1] + n * n * coords[..., 2]  # [S, 8]
    xs = coords.to(dtype) * cell - scale / 2
    if deform is not None:
        xs = xs + (DEFORM_BOUND * cell) * torch.tanh(deform[corners].to(dtype))
    ss = sdf[corners] * alpha  # [S, 8]
    lo, hi = tb["edge_corners"][:, 0], tb["edge_corners"][:, 1]
    s_i, s_j = ss[:, lo], ss[:, hi]  # [S, 12]
    crossed = groups >= 0
    denom = torch.where(crossed, s_i - s_j, torch.ones_like(s_i))  # signs differ: never zero
    u = (s_i[..., None] * xs[:, hi] - s_j[..., None] * xs[:, lo]) / denom[..., None]  # [S,12,3]

    slot = torch.arange(MAX_GROUPS, device=device)
    member = (groups[..., None] == slot).to(dtype)  # [S, 12, G]
    wb = member * beta[..., None]
    v = torch.einsum("seg,sed->sgd", wb, u) / wb.sum(1).clamp_min(1e-12)[..., None]  # [S, G, 3]
    valid = slot < num_groups[:, None]  # [S, G]
    vid = torch.cumsum(valid.reshape(-1).long(), 0) - 1  # dual vertex id of (cube, slot)
    dual_v = v.reshape(-1, 3)[valid.reshape(-1)]  # [D, 3]

    # --- L_dev: mean absolute deviation of crossing distances per dual vertex -------------------
    own_v = torch.gather(v, 1, groups.clamp_min(0)[..., None].expand(-1, -1, 3))  # [S, 12, 3]
    dist = torch.sqrt(((u - own_v) ** 2).sum(-1) + 1e-20) * crossed  # [S, 12]
    count = member.sum(1).clamp_min(1.0)  # [S, G]
    mean_d = (member * dist[..., None]).sum(1) / count
    dev = (dist[..., None] - mean_d[:, None, :]).abs() * member
    mad = dev.sum(1) / count  # [S, G]
    num_dual = valid.sum()
    l_dev = (mad * valid).sum() / num_dual.clamp_min(1)

    # --- quads over crossed grid edges ----------------------------------------------------------
    edge_mask = torch.zeros(3, n, n, n, dtype=torch.bool, device=device)
    inner = slice(1, n - 1)
    edge_mask[0, inner, inner, : n - 1] = occ[inner, inner, :-1] != occ[inner, inner, 1:]
    edge_mask[1, inner, : n - 1, inner] = occ[inner, :-1, inner] != occ[inner, 1:, inner]
    edge_mask[2, : n - 1, inner, inner] = occ[:-1, inner, inner] != occ[1:, inner, inner]
    hit = torch.nonzero(edge_mask)  # [M, 4] (axis, k, j, i)
    axis, ek, ej, ei = hit.unbind(-1)
    ring = tb["ring"][axis]  # [M, 4, 4]
    qi, qj, qk = ei[:, None] + ring[..., 0], ej[:, None] + ring[..., 1], ek[:, None] + ring[..., 2]
    cube_ids = qi + r * qj + r * r * qk  # [M, 4]
    surf_of_cube = torch.full((r**3,), -1, dtype=torch.long, device=device)
    surf_of_cube[surf] = torch.arange(num_surf, device=device)
    sidx = surf_of_cube[cube_ids]  # every cube around a crossed edge is a surface cube
    grp = groups[sidx, ring[..., 3]]
    quad = vid[sidx * MAX_GROUPS + grp]  # [M, 4]
    # Normal along +axis when the edge's lower vertex is inside; reverse the ring otherwise.
    lower_inside = occ[ek, ej, ei]
    quad = torch.where(lower_inside[:, None], quad, quad[:, [0, 3, 2, 1]])
    quad_gamma = gamma[torch.where(lower_inside[:, None], sidx, sidx[:, [0, 3, 2, 1]])]

    # --- triangulation --------------------------------------------------------------------------
    if training:
        w = quad_gamma / quad_gamma.sum(-1, keepdim=True)
        mid = (dual_v[quad] * w[..., None]).sum(1)  # [M, 3]
        mid_id = dual_v.shape[0] + torch.arange(quad.shape[0], device=device)
        nxt = quad[:, [1, 2, 3, 0]]
        faces = torch.stack([quad, nxt, mid_id[:, None].expand_as(quad)], -1).reshape(-1, 3)
        vertices = torch.cat([dual_v, mid], 0)
    else:
        split02 = quad_gamma[:, 0] * quad_gamma[:, 2] >= quad_gamma[:, 1] * quad_gamma[:, 3]
        t02 = torch.stack([quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]], 1)
        t13 = torch.stack([quad[:, [0, 1, 3]], quad[:, [1, 2, 3]]], 1)
        faces = torch.where(split02[:, None, None], t02, t13).reshape(-1, 3)
        vertices = dual_v
    return FlexiCubesOutput(vertices=vertices, faces=faces, l_dev=l_dev)


def flexicubes_mesh_batch(
    sdf: torch.Tensor,
    deform: torch.Tensor | None,
    weights: torch.Tensor | None,
    resolution: int,
    scale: float = 1.0,
    training: bool = True,
) -> list[FlexiCubesOutput]:
    """:func:`flexicubes_mesh` over ``B`` shapes: ``sdf [B, N_v]``, ``deform [B, N_v, 3]``,
    ``weights [B, N_c, 21]`` (either may be ``None``). Meshes differ in size, so a list."""
    if not isinstance(sdf, torch.Tensor) or sdf.dim() != 2:
        got = tuple(sdf.shape) if isinstance(sdf, torch.Tensor) else type(sdf).__name__
        raise ValidationError("sdf", "a float tensor [B, N_v]", str(got))
    b = sdf.shape[0]
    for name, t in (("deform", deform), ("weights", weights)):
        if t is not None and (not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[0] != b):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValidationError(name, f"a tensor with leading batch size {b}", str(got))
    return [
        flexicubes_mesh(
            sdf[i],
            None if deform is None else deform[i],
            None if weights is None else weights[i],
            resolution,
            scale,
            training,
        )
        for i in range(b)
    ]
