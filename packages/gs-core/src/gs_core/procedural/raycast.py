"""Exact vectorised ray casting of procedural objects: RGBA, depth and normal maps.

Every pixel centre gets one ray intersected analytically with every part (culled by bounding
spheres); pixels on silhouettes, part boundaries and texture edges are then re-cast with an
``S x S`` stratified sub-pixel grid and averaged, so edges are anti-aliased the way a camera
integrates a pixel (alpha = covered fraction). Depth and normals come from the centre ray.

Cameras follow :class:`gs_core.cameras.Cameras`: OpenCV camera-to-world ``[V, 4, 4]`` and
intrinsics ``[V, 3, 3]`` with pixel centres at ``+0.5``. Depth is the camera-space ``z``
(what gsplat renders as depth), 0 where the ray misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gs_core.errors import ValidationError
from gs_core.procedural.objects import ProceduralObject
from gs_core.procedural.shading import lambert

F32 = np.float32
# A pixel is re-cast when any colour channel differs from a neighbour's by more than this.
EDGE_COLOR_THRESHOLD = 0.06


@dataclass
class Hits:
    """Result of :func:`cast`: ``t [N]`` world distance (inf: miss), ``part [N]`` (-1: miss)."""

    t: np.ndarray
    part: np.ndarray


def _sphere_candidates(rays, center, radius) -> np.ndarray:
    """Indices of the rays that meet the sphere in front of their origin."""
    ox, oy, oz, dx, dy, dz = rays
    cx, cy, cz = (F32(v) for v in center)
    px, py, pz = ox - cx, oy - cy, oz - cz
    b = px * dx + py * dy + pz * dz
    c = px * px + py * py + pz * pz - F32(radius * radius)
    # Meets the sphere iff the discriminant b^2 - c >= 0 and the far root -b + sqrt(.) > 0.
    disc = b * b - c
    return np.nonzero((disc >= 0) & ((b < 0) | (c < 0)))[0]


def cast(obj: ProceduralObject, rays_world) -> Hits:
    """First hits of world rays ``(ox, oy, oz, dx, dy, dz)`` (``[N]`` float32 each, unit ``d``)."""
    ox, oy, oz, dx, dy, dz = rays_world
    n = ox.shape[0]
    s = F32(obj.scale)
    off = obj.offset
    # Object frame: p_obj = (p_world - offset) / scale; directions are unchanged, so the ray
    # parameter scales by 1 / scale.
    o_obj = ((ox - F32(off[0])) / s, (oy - F32(off[1])) / s, (oz - F32(off[2])) / s)
    best_t = np.full(n, np.inf, np.float32)
    best_part = np.full(n, -1, np.int16)
    bound_c = obj.to_object(np.zeros(3))
    _, bound_r = obj.world_bound()
    active = _sphere_candidates((*o_obj, dx, dy, dz), bound_c, bound_r / obj.scale)
    if active.size == 0:
        return Hits(best_t, best_part)
    rays_a = tuple(a[active] for a in (*o_obj, dx, dy, dz))
    t_a = np.full(active.size, np.inf, np.float32)
    part_a = np.full(active.size, -1, np.int16)
    for i, part in enumerate(obj.parts):
        c, r = part.shape.bound_sphere()
        idx = _sphere_candidates(rays_a, c, r * 1.001 + 1e-6)
        if idx.size == 0:
            continue
        t = part.shape.intersect(tuple(a[idx] for a in rays_a))
        closer = t < t_a[idx]
        sel = idx[closer]
        t_a[sel] = t[closer]
        part_a[sel] = i
    best_t[active] = t_a * s
    best_part[active] = part_a
    return Hits(best_t, best_part)


def shade(obj: ProceduralObject, rays_world, hits: Hits) -> tuple[np.ndarray, np.ndarray]:
    """Radiance ``[N, 3]`` and world normals ``[N, 3]`` of the hit rays (zeros for misses)."""
    ox, oy, oz, dx, dy, dz = rays_world
    n = ox.shape[0]
    rgb = np.zeros((n, 3), np.float32)
    nrm = np.zeros((n, 3), np.float32)
    s = F32(obj.scale)
    off = obj.offset
    for i, part in enumerate(obj.parts):
        idx = np.nonzero(hits.part == i)[0]
        if idx.size == 0:
            continue
        t = hits.t[idx] / s
        px = (ox[idx] - F32(off[0])) / s + t * dx[idx]
        py = (oy[idx] - F32(off[1])) / s + t * dy[idx]
        pz = (oz[idx] - F32(off[2])) / s + t * dz[idx]
        lx, ly, lz = part.shape.to_local(px, py, pz)
        nx, ny, nz = part.shape.dir_to_world(*part.shape.normal_local(lx, ly, lz))
        albedo = part.texture.albedo(lx, ly, lz)
        rgb[idx] = lambert(albedo, nx, ny, nz)
        nrm[idx, 0], nrm[idx, 1], nrm[idx, 2] = nx, ny, nz
    return rgb, nrm


def pixel_rays(c2w: np.ndarray, K: np.ndarray, view: np.ndarray, u: np.ndarray, v: np.ndarray):
    """World rays through pixel coordinates ``(u, v)`` (``[N]``, pixel centres at +0.5) of
    cameras ``view [N]``; returns the SoA rays and ``1 / |d_cam|`` (converts t to z-depth)."""
    Kv = K[view]
    x = ((u - Kv[:, 0, 2]) / Kv[:, 0, 0]).astype(np.float32)
    y = ((v - Kv[:, 1, 2]) / Kv[:, 1, 1]).astype(np.float32)
    inv_norm = F32(1.0) / np.sqrt(x * x + y * y + F32(1.0))
    R = c2w[:, :3, :3].astype(np.float32)[view]
    dx = (R[:, 0, 0] * x + R[:, 0, 1] * y + R[:, 0, 2]) * inv_norm
    dy = (R[:, 1, 0] * x + R[:, 1, 1] * y + R[:, 1, 2]) * inv_norm
    dz = (R[:, 2, 0] * x + R[:, 2, 1] * y + R[:, 2, 2]) * inv_norm
    o = c2w[:, :3, 3].astype(np.float32)[view]
    return (o[:, 0].copy(), o[:, 1].copy(), o[:, 2].copy(), dx, dy, dz), inv_norm


@dataclass
class RenderedViews:
    """``rgba [V, H, W, 4]`` uint8 (straight alpha), ``depth [V, H, W]`` float32 z-depth
    (0 = background), ``normals [V, H, W, 3]`` float32 world unit normals (0 = background)."""

    rgba: np.ndarray
    depth: np.ndarray
    normals: np.ndarray


def render_views(
    obj: ProceduralObject, c2w: np.ndarray, K: np.ndarray, width: int, height: int, antialias: int = 4
) -> RenderedViews:
    """Ray cast ``V`` views: OpenCV ``c2w [V, 4, 4]``, ``K [V, 3, 3]``; ``antialias`` = S for the
    ``S x S`` sub-pixel grid on edge pixels (1 disables it)."""
    c2w = np.asarray(c2w, np.float64)
    K = np.asarray(K, np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValidationError("c2w", "camera-to-world matrices [V, 4, 4]", f"shape {c2w.shape}")
    if K.shape != (c2w.shape[0], 3, 3):
        raise ValidationError("K", f"intrinsics [{c2w.shape[0]}, 3, 3]", f"shape {K.shape}")
    if antialias < 1:
        raise ValidationError("antialias", "an integer >= 1", repr(antialias))
    V, H, W = c2w.shape[0], int(height), int(width)
    view = np.repeat(np.arange(V), H * W)
    yy, xx = np.divmod(np.arange(H * W), W)
    u = np.tile(xx, V).astype(np.float64) + 0.5
    v = np.tile(yy, V).astype(np.float64) + 0.5
    rays, inv_norm = pixel_rays(c2w, K, view, u, v)
    hits = cast(obj, rays)
    rgb, nrm = shade(obj, rays, hits)
    hit = hits.part >= 0
    depth = np.where(hit, hits.t * inv_norm, 0).astype(np.float32)
    alpha = hit.astype(np.float32)

    if antialias > 1:
        part_img = hits.part.reshape(V, H, W)
        rgb_img = rgb.reshape(V, H, W, 3)
        edge = np.zeros((V, H, W), bool)
        for axis in (1, 2):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis], b[axis] = slice(1, None), slice(None, -1)
            diff = part_img[tuple(a)] != part_img[tuple(b)]
            cdiff = np.abs(rgb_img[tuple(a)] - rgb_img[tuple(b)]).max(-1) > EDGE_COLOR_THRESHOLD
            d = diff | cdiff
            edge[tuple(a)] |= d
            edge[tuple(b)] |= d
        idx = np.nonzero(edge.reshape(-1))[0]
        if idx.size:
            S = int(antialias)
            offs = (np.arange(S) + 0.5) / S - 0.5
            oy_, ox_ = np.meshgrid(offs, offs, indexing="ij")
            ox_, oy_ = ox_.reshape(-1), oy_.reshape(-1)
            ns = S * S
            sub_view = np.repeat(view[idx], ns)
            sub_u = (u[idx][:, None] + ox_[None]).reshape(-1)
            sub_v = (v[idx][:, None] + oy_[None]).reshape(-1)
            sub_rays, _ = pixel_rays(c2w, K, sub_view, sub_u, sub_v)
            sub_hits = cast(obj, sub_rays)
            sub_rgb, _ = shade(obj, sub_rays, sub_hits)
            cover = (sub_hits.part >= 0).reshape(-1, ns)
            a_sub = cover.mean(1, dtype=np.float32)
            premult = sub_rgb.reshape(-1, ns, 3).sum(1) / F32(ns)
            rgb[idx] = np.where(a_sub[:, None] > 0, premult / np.maximum(a_sub, F32(1e-8))[:, None], 0)
            alpha[idx] = a_sub

    rgba = np.empty((V * H * W, 4), np.uint8)
    rgba[:, :3] = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    rgba[:, 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return RenderedViews(
        rgba=rgba.reshape(V, H, W, 4), depth=depth.reshape(V, H, W), normals=nrm.reshape(V, H, W, 3)
    )
