"""Exact vectorised ray casting of procedural objects: RGBA, depth and normal maps.

Each pixel centre inside the object's screen-space bounding box gets one ray, intersected
analytically with the parts whose own bounding boxes hold the pixel; pixels on silhouettes, part
boundaries and texture edges (where neighbouring centre samples differ) are then re-cast with an
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


Rect = tuple[int, int, int, int]  # x0, x1, y0, y1 (inclusive pixel ranges)


def sphere_rects(
    c2w: np.ndarray, K: np.ndarray, width: int, height: int, center, radius: float
) -> list[Rect | None]:
    """Per view, the pixels whose centres can see a world sphere: the exact screen-space
    bounding box of its projection, padded by one pixel (None: off screen)."""
    R = c2w[:, :3, :3]
    pc = np.einsum(
        "vji,vj->vi", R, np.asarray(center, np.float64)[None] - c2w[:, :3, 3]
    )  # camera frame
    r = float(radius)
    out: list[Rect | None] = []
    for vi in range(c2w.shape[0]):
        x, y, z = pc[vi]
        bounds = []
        for a, f, cpix, size in (
            (x, K[vi, 0, 0], K[vi, 0, 2], width),
            (y, K[vi, 1, 1], K[vi, 1, 2], height),
        ):
            if z <= 0 or z * z - r * r <= 1e-9:
                bounds.append((0, size - 1))  # the camera is (nearly) inside: the whole view
                continue
            # Planes through the camera centre tangent to the sphere have slopes m = a / z with
            # (a - m z)^2 = r^2 (1 + m^2).
            root = r * np.sqrt(max(a * a + z * z - r * r, 0.0))
            m_lo = (a * z - root) / (z * z - r * r)
            m_hi = (a * z + root) / (z * z - r * r)
            lo = int(np.ceil(f * m_lo + cpix - 0.5)) - 1
            hi = int(np.floor(f * m_hi + cpix - 0.5)) + 1
            bounds.append((max(lo, 0), min(hi, size - 1)))
        (x0, x1), (y0, y1) = bounds
        out.append(None if x1 < x0 or y1 < y0 else (x0, x1, y0, y1))
    return out


def _clip(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None or b is None:
        return None
    x0, x1, y0, y1 = max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])
    return None if x1 < x0 or y1 < y0 else (x0, x1, y0, y1)


def _union(rects: list[Rect | None]) -> Rect | None:
    rects = [r for r in rects if r is not None]
    if not rects:
        return None
    return (
        min(r[0] for r in rects),
        max(r[1] for r in rects),
        min(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _rect_indices(rect: Rect, row_stride: int, x_origin: int = 0, y_origin: int = 0) -> np.ndarray:
    x0, x1, y0, y1 = rect
    return (
        (np.arange(y0, y1 + 1) - y_origin)[:, None] * row_stride
        + (np.arange(x0, x1 + 1) - x_origin)[None, :]
    ).reshape(-1)


def cast(
    obj: ProceduralObject,
    rays_world,
    candidates: list[np.ndarray] | None = None,
    sphere_test: bool = False,
) -> Hits:
    """First hits of world rays ``(ox, oy, oz, dx, dy, dz)`` (``[N]`` float32 each, unit ``d``).

    ``candidates`` optionally gives, per part, the only rays that can hit it (its screen box,
    see :func:`render_views`), and ``sphere_test`` further culls those against the part's
    bounding sphere; without candidates every ray is culled against the bounding spheres.
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
        active = _sphere_candidates(
            (*o_obj, dx, dy, dz), obj.to_object(np.zeros(3)), obj.radius / obj.scale
        )
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
        sub = tuple(a[idx] for a in rays_a)
        if candidates is not None and sphere_test:
            c, r = part.shape.bound_sphere()
            keep = _sphere_candidates(sub, c, r * 1.001 + 1e-6)
            if keep.size < idx.size:
                idx = idx[keep]
                sub = tuple(a[keep] for a in sub)
        t = part.shape.intersect(sub)
        closer = t < t_a[idx]
        sel = idx[closer]
        t_a[sel] = t[closer]
        part_a[sel] = i
    if active is None:
        return Hits(t_a * s, part_a)
    best_t[active] = t_a * s
    best_part[active] = part_a
    return Hits(best_t, best_part)


def shade(
    obj: ProceduralObject,
    rays_world,
    hits: Hits,
    rgb_out: np.ndarray | None = None,
    normals_out: np.ndarray | None = None,
    dest: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Radiance and world normals of the hit rays.

    By default returns ``[N, 3]`` arrays (zeros for misses). With ``rgb_out`` (and optionally
    ``normals_out``), writes ray ``i``'s values to row ``dest[i]`` of those arrays instead (rows
    of misses are left untouched) and returns them.
    """
    n = hits.t.shape[0]
    if rgb_out is None:
        rgb_out = np.zeros((n, 3), np.float32)
        normals_out = np.zeros((n, 3), np.float32)
    hit_idx = np.nonzero(hits.part >= 0)[0]
    if hit_idx.size == 0:
        return rgb_out, normals_out
    # Group the hits by part once; each part then works on a contiguous slice.
    part_of = hits.part[hit_idx]
    order = np.argsort(part_of, kind="stable")
    hit_idx = hit_idx[order]
    bounds = np.searchsorted(part_of[order], np.arange(len(obj.parts) + 1))
    s = F32(obj.scale)
    t = hits.t[hit_idx] / s
    p = [
        (rays_world[k][hit_idx] - F32(obj.offset[k])) / s + t * rays_world[3 + k][hit_idx]
        for k in range(3)
    ]
    rgb_s = np.empty((hit_idx.size, 3), np.float32)
    nrm_s = np.empty((hit_idx.size, 3), np.float32) if normals_out is not None else None
    for i, part in enumerate(obj.parts):
        a, b = bounds[i], bounds[i + 1]
        if a == b:
            continue
        lx, ly, lz = part.shape.to_local(p[0][a:b], p[1][a:b], p[2][a:b])
        nx, ny, nz = part.shape.dir_to_world(*part.shape.normal_local(lx, ly, lz))
        rgb_s[a:b] = lambert(part.texture.albedo(lx, ly, lz), nx, ny, nz)
        if nrm_s is not None:
            nrm_s[a:b, 0], nrm_s[a:b, 1], nrm_s[a:b, 2] = nx, ny, nz
    rows = hit_idx if dest is None else dest[hit_idx]
    rgb_out[rows] = rgb_s
    if nrm_s is not None:
        normals_out[rows] = nrm_s
    return rgb_out, normals_out


def pixel_rays(c2w: np.ndarray, K: np.ndarray, view: np.ndarray, u: np.ndarray, v: np.ndarray):
    """World rays through pixel coordinates ``u, v [N]`` (pixel centres at +0.5) of cameras
    ``view [N]`` (sorted ascending). Returns the SoA rays and ``1 / |d_cam|`` (turns t into
    z-depth)."""
    n = u.shape[0]
    out = [np.empty(n, np.float32) for _ in range(7)]
    bounds = np.searchsorted(view, np.arange(c2w.shape[0] + 1))
    for vi in range(c2w.shape[0]):
        a, b = bounds[vi], bounds[vi + 1]
        if a == b:
            continue
        # Per-camera constants are scalars here: no per-ray gathers.
        Kv, M = K[vi], c2w[vi].astype(np.float32)
        x = (u[a:b] - F32(Kv[0, 2])) / F32(Kv[0, 0])
        y = (v[a:b] - F32(Kv[1, 2])) / F32(Kv[1, 1])
        inv = F32(1.0) / np.sqrt(x * x + y * y + F32(1.0))
        for k in range(3):
            out[k][a:b] = M[k, 3]
            out[3 + k][a:b] = (M[k, 0] * x + M[k, 1] * y + M[k, 2]) * inv
        out[6][a:b] = inv
    return tuple(out[:6]), out[6]


@dataclass
class RenderedViews:
    """``rgba [V, H, W, 4]`` uint8 (straight alpha), ``depth [V, H, W]`` float32 z-depth
    (0 = background), ``normals [V, H, W, 3]`` float32 world unit normals (0 = background)."""

    rgba: np.ndarray
    depth: np.ndarray
    normals: np.ndarray


def render_views(
    obj: ProceduralObject,
    c2w: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    antialias: int = 3,
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
    HW = H * W

    # Only pixels inside the object's bounding-sphere box get a ray; part candidates are the
    # pixels of the part's box, as indices into that compacted ray list (and into the image).
    obj_sphere = sphere_rects(c2w, K, W, H, np.zeros(3), obj.radius)
    part_rects = [
        [
            _clip(r, o)
            for r, o in zip(
                sphere_rects(c2w, K, W, H, obj.to_world(c), rad * obj.scale * 1.001 + 1e-6),
                obj_sphere,
                strict=True,
            )
        ]
        for c, rad in (p.shape.bound_sphere() for p in obj.parts)
    ]
    # The object's box per view: the union of its parts' boxes (tighter than its own sphere's).
    obj_rects = [_union([pr[vi] for pr in part_rects]) for vi in range(V)]
    chunks: dict[str, list[np.ndarray]] = {"pix": [], "view": [], "u": [], "v": []}
    offsets = []
    start = 0
    for vi, rect in enumerate(obj_rects):
        offsets.append(start)
        if rect is None:
            continue
        x0, x1, y0, y1 = rect
        nx, ny = x1 - x0 + 1, y1 - y0 + 1
        chunks["pix"].append(_rect_indices(rect, W) + vi * HW)
        chunks["view"].append(np.full(nx * ny, vi, np.int64))
        chunks["u"].append(np.tile(np.arange(x0, x1 + 1, dtype=np.float32) + F32(0.5), ny))
        chunks["v"].append(np.repeat(np.arange(y0, y1 + 1, dtype=np.float32) + F32(0.5), nx))
        start += nx * ny
    pix, view, px_u, px_v = (
        np.concatenate(c) if c else np.zeros(0, np.int64 if k in ("pix", "view") else np.float32)
        for k, c in chunks.items()
    )
    cand_active, cand_global = [], []
    for rects in part_rects:
        act, glob = [], []
        for vi in range(V):
            r = _clip(rects[vi], obj_rects[vi])
            if r is None:
                continue
            o = obj_rects[vi]
            act.append(_rect_indices(r, o[1] - o[0] + 1, o[0], o[2]) + offsets[vi])
            if antialias > 1:
                glob.append(_rect_indices(r, W) + vi * HW)
        cand_active.append(np.concatenate(act) if act else np.zeros(0, np.int64))
        cand_global.append(np.concatenate(glob) if glob else np.zeros(0, np.int64))

    rays, inv_norm = pixel_rays(c2w, K, view, px_u, px_v)
    hits = cast(obj, rays, cand_active)

    part_img = np.full(V * HW, -1, np.int16)
    part_img[pix] = hits.part
    rgb = np.zeros((V * HW, 3), np.float32)
    nrm = np.zeros((V * HW, 3), np.float32)
    shade(obj, rays, hits, rgb, nrm, dest=pix)
    depth = np.zeros(V * HW, np.float32)
    depth[pix] = np.where(hits.part >= 0, hits.t * inv_norm, 0)
    alpha = (part_img >= 0).astype(np.float32)

    if antialias > 1:
        part3 = part_img.reshape(V, H, W)
        rgb4 = rgb.reshape(V, H, W, 3)
        edge = np.zeros((V, H, W), bool)
        for axis in (1, 2):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis], b[axis] = slice(1, None), slice(None, -1)
            a, b = tuple(a), tuple(b)
            d = part3[a] != part3[b]
            for c in range(3):
                ch = rgb4[..., c]
                d |= np.abs(ch[a] - ch[b]) > F32(EDGE_COLOR_THRESHOLD)
            edge[a] |= d
            edge[b] |= d
        idx = np.nonzero(edge.reshape(-1))[0]
        if idx.size:
            S = int(antialias)
            ns = S * S
            offs = (np.arange(S, dtype=np.float32) + F32(0.5)) / F32(S) - F32(0.5)
            oy_, ox_ = (g.reshape(-1) for g in np.meshgrid(offs, offs, indexing="ij"))
            e_view, e_pix = np.divmod(idx, HW)
            ey, ex = np.divmod(e_pix, W)
            sub_u = ((ex.astype(np.float32) + F32(0.5))[:, None] + ox_[None]).reshape(-1)
            sub_v = ((ey.astype(np.float32) + F32(0.5))[:, None] + oy_[None]).reshape(-1)
            sub_rays, _ = pixel_rays(c2w, K, np.repeat(e_view, ns), sub_u, sub_v)
            # A sub-pixel ray can only hit the parts whose box holds its pixel.
            in_box = np.zeros(V * HW, bool)
            sub_cands = []
            for cand in cand_global:
                in_box[cand] = True
                sel = np.nonzero(in_box[idx])[0]
                in_box[cand] = False
                sub_cands.append((sel[:, None] * ns + np.arange(ns)[None]).reshape(-1))
            sub_hits = cast(obj, sub_rays, sub_cands, sphere_test=True)
            sub_rgb, _ = shade(obj, sub_rays, sub_hits, np.zeros((sub_u.size, 3), np.float32))
            cover = (sub_hits.part >= 0).reshape(-1, ns)
            a_sub = cover.mean(1, dtype=np.float32)
            premult = sub_rgb.reshape(-1, ns, 3).sum(1) / F32(ns)
            rgb[idx] = np.where(
                a_sub[:, None] > 0, premult / np.maximum(a_sub, F32(1e-8))[:, None], 0
            )
            alpha[idx] = a_sub

    # Radiance and coverage are in [0, 1] by construction; quantise in place.
    rgba = np.empty((V * HW, 4), np.uint8)
    rgb *= F32(255)
    rgb += F32(0.5)
    np.minimum(rgb, F32(255), out=rgb)
    rgba[:, :3] = rgb
    alpha *= F32(255)
    alpha += F32(0.5)
    rgba[:, 3] = alpha
    return RenderedViews(
        rgba=rgba.reshape(V, H, W, 4), depth=depth.reshape(V, H, W), normals=nrm.reshape(V, H, W, 3)
    )
