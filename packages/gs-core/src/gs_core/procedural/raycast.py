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


def screen_candidates(obj: ProceduralObject, c2w: np.ndarray, K: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """Per part, the indices (into the view-major ``[V * H * W]`` pixel-centre rays) of the
    pixels inside the exact screen-space bounding box of the part's bounding sphere."""
    V, H, W = c2w.shape[0], height, width
    R = c2w[:, :3, :3]
    o = c2w[:, :3, 3]
    out = []
    grid_cache: dict[tuple[int, int, int, int], np.ndarray] = {}
    for part in obj.parts:
        c_obj, r_obj = part.shape.bound_sphere()
        c = obj.to_world(c_obj)
        r = r_obj * obj.scale * 1.001 + 1e-6
        pc = np.einsum("vji,vj->vi", R, c[None] - o)  # camera-frame centres [V, 3]
        idx = []
        for vi in range(V):
            x, y, z = pc[vi]
            bounds = []
            for a, f, cpix, size in ((x, K[vi, 0, 0], K[vi, 0, 2], W), (y, K[vi, 1, 1], K[vi, 1, 2], H)):
                if z * z - r * r <= 1e-9 or z <= 0:
                    bounds.append((0, size - 1))  # the camera is (nearly) inside: whole view
                    continue
                # Planes through the camera centre tangent to the sphere: slopes m = a / z with
                # (a - m z)^2 = r^2 (1 + m^2).
                root = r * np.sqrt(max(a * a + z * z - r * r, 0.0))
                m_lo = (a * z - root) / (z * z - r * r)
                m_hi = (a * z + root) / (z * z - r * r)
                lo = int(np.ceil(f * m_lo + cpix - 0.5)) - 1
                hi = int(np.floor(f * m_hi + cpix - 0.5)) + 1
                bounds.append((max(lo, 0), min(hi, size - 1)))
            (x0, x1), (y0, y1) = bounds
            if x1 < x0 or y1 < y0:
                continue
            key = (x0, x1, y0, y1)
            if key not in grid_cache:
                grid_cache[key] = (np.arange(y0, y1 + 1)[:, None] * W + np.arange(x0, x1 + 1)[None, :]).reshape(-1)
            idx.append(grid_cache[key] + vi * H * W)
        out.append(np.concatenate(idx) if idx else np.zeros(0, np.int64))
    return out


def cast(obj: ProceduralObject, rays_world, candidates: list[np.ndarray] | None = None) -> Hits:
    """First hits of world rays ``(ox, oy, oz, dx, dy, dz)`` (``[N]`` float32 each, unit ``d``).

    ``candidates`` optionally gives, per part, the only rays that can hit it (see
    :func:`screen_candidates`); otherwise rays are culled against each part's bounding sphere.
    """
    ox, oy, oz, dx, dy, dz = rays_world
    n = ox.shape[0]
    s = F32(obj.scale)
    off = obj.offset
    best_t = np.full(n, np.inf, np.float32)
    best_part = np.full(n, -1, np.int16)
    if candidates is None:
        # Object frame: p_obj = (p_world - offset) / scale; directions are unchanged, so the
        # ray parameter scales by 1 / scale.
        o_obj = ((ox - F32(off[0])) / s, (oy - F32(off[1])) / s, (oz - F32(off[2])) / s)
        active = _sphere_candidates((*o_obj, dx, dy, dz), obj.to_object(np.zeros(3)), obj.radius / obj.scale)
        rays_a = tuple(a[active] for a in (*o_obj, dx, dy, dz))
    else:
        active = None
        rays_a = (*((a - F32(b)) / s for a, b in zip((ox, oy, oz), off, strict=True)), dx, dy, dz)
    m = rays_a[0].shape[0]
    t_a = np.full(m, np.inf, np.float32)
    part_a = np.full(m, -1, np.int16)
    for i, part in enumerate(obj.parts):
        if candidates is None:
            c, r = part.shape.bound_sphere()
            idx = _sphere_candidates(rays_a, c, r * 1.001 + 1e-6)
        else:
            idx = candidates[i]
        if idx.size == 0:
            continue
        t = part.shape.intersect(tuple(a[idx] for a in rays_a))
        closer = t < t_a[idx]
        sel = idx[closer]
        t_a[sel] = t[closer]
        part_a[sel] = i
    if active is None:
        return Hits(t_a * s, part_a)
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
    hit_idx = np.nonzero(hits.part >= 0)[0]
    order = np.argsort(hits.part[hit_idx], kind="stable")
    hit_idx = hit_idx[order]
    bounds = np.searchsorted(hits.part[hit_idx], np.arange(len(obj.parts) + 1))
    for i, part in enumerate(obj.parts):
        idx = hit_idx[bounds[i] : bounds[i + 1]]
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


def pixel_rays(c2w: np.ndarray, K: np.ndarray, view: np.ndarray | None, u: np.ndarray, v: np.ndarray):
    """World rays through pixel coordinates ``(u, v)`` (pixel centres at +0.5).

    With ``view [N]``, ray ``i`` belongs to camera ``view[i]`` and ``u, v`` are ``[N]``; with
    ``view=None``, ``u, v`` are ``[P]`` and every camera gets all ``P`` pixels (``N = V * P``,
    view-major). Returns the SoA rays and ``1 / |d_cam|`` (it turns ``t`` into z-depth).
    """
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    fx, fy, cx, cy = f32(K[:, 0, 0]), f32(K[:, 1, 1]), f32(K[:, 0, 2]), f32(K[:, 1, 2])
    R = [[f32(c2w[:, i, j]) for j in range(3)] for i in range(3)]
    o = [f32(c2w[:, i, 3]) for i in range(3)]
    u, v = f32(u), f32(v)
    if view is None:
        # [V, 1] per-camera constants broadcast against [1, P] pixels: no gathers.
        col = lambda a: a[:, None]  # noqa: E731
        u, v = u[None, :], v[None, :]
    else:
        col = lambda a: a[view]  # noqa: E731
    x = (u - col(cx)) / col(fx)
    y = (v - col(cy)) / col(fy)
    inv_norm = F32(1.0) / np.sqrt(x * x + y * y + F32(1.0))
    d = [(col(R[i][0]) * x + col(R[i][1]) * y + col(R[i][2])) * inv_norm for i in range(3)]
    shape = d[0].shape
    orig = [np.broadcast_to(col(o[i]), shape) for i in range(3)]
    flat = lambda a: np.ascontiguousarray(a).reshape(-1)  # noqa: E731
    return (flat(orig[0]), flat(orig[1]), flat(orig[2]), flat(d[0]), flat(d[1]), flat(d[2])), flat(inv_norm)


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
    yy, xx = np.divmod(np.arange(H * W, dtype=np.int64), W)
    px_u = xx.astype(np.float32) + F32(0.5)
    px_v = yy.astype(np.float32) + F32(0.5)
    rays, inv_norm = pixel_rays(c2w, K, None, px_u, px_v)
    candidates = screen_candidates(obj, c2w, K, W, H)
    hits = cast(obj, rays, candidates)
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
            d = part_img[tuple(a)] != part_img[tuple(b)]
            for c in range(3):
                ch = rgb_img[..., c]
                d |= np.abs(ch[tuple(a)] - ch[tuple(b)]) > F32(EDGE_COLOR_THRESHOLD)
            edge[tuple(a)] |= d
            edge[tuple(b)] |= d
        idx = np.nonzero(edge.reshape(-1))[0]
        if idx.size:
            S = int(antialias)
            offs = (np.arange(S) + 0.5) / S - 0.5
            oy_, ox_ = np.meshgrid(offs, offs, indexing="ij")
            ox_, oy_ = ox_.reshape(-1), oy_.reshape(-1)
            ns = S * S
            view, pix = np.divmod(idx, H * W)
            sub_view = np.repeat(view, ns)
            sub_u = (px_u[pix][:, None] + ox_[None]).reshape(-1)
            sub_v = (px_v[pix][:, None] + oy_[None]).reshape(-1)
            sub_rays, _ = pixel_rays(c2w, K, sub_view, sub_u, sub_v)
            # A sub-pixel ray can only hit the parts whose screen box holds its pixel.
            in_box = np.zeros(V * H * W, bool)
            sub_cands = []
            for cand in candidates:
                in_box[cand] = True
                pix_sel = np.nonzero(in_box[idx])[0]
                in_box[cand] = False
                sub_cands.append((pix_sel[:, None] * ns + np.arange(ns)[None]).reshape(-1))
            sub_hits = cast(obj, sub_rays, sub_cands)
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
