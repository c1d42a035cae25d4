"""Triangle rasterisation and attribute interpolation, pure PyTorch (any device).

The first two stages of the decomposition of Laine et al. 2020, "Modular Primitives for
High-Performance Differentiable Rendering" (nvdiffrast): ``rasterize`` finds, for every pixel
centre, the nearest triangle covering it and its perspective-correct barycentrics;
``interpolate`` turns per-vertex (or per-corner) attributes into images. Texture sampling is in
``mesh_texture`` and silhouette antialiasing in ``mesh_antialias``.

Conventions are those of ``render()``: ``Cameras`` in OpenCV (x right, y down, z forward), pixel
centres at ``+0.5``, depth is camera-space z. Triangles are rendered double-sided; a triangle
with a vertex in front of ``near_plane`` is culled whole (no clipping), and triangles of zero
screen area or with a non-finite vertex are skipped.

On the CPU only the covered pixels are processed. On a GPU every pixel is, with fixed shapes and
masks instead of compaction, so nothing waits for the device (no ``nonzero``, no ``.item()``):
the launches queue ahead of the GPU and the whole pass can be recorded in a CUDA graph. Float32
on CUDA runs the z-buffer and the barycentrics as Triton kernels
(:mod:`~gs_core.rendering.mesh_zbuffer_triton`, :mod:`~gs_core.rendering.mesh_bary_triton`); the
torch code here is their reference.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError

# Candidate (triangle, pixel) pairs tested at once: bounds the rasteriser's working memory to
# roughly 100 bytes per candidate, whatever the mesh and image size.
DEFAULT_CHUNK = 1 << 22

_EMPTY_KEY = torch.iinfo(torch.int64).max
_LOW32 = (1 << 32) - 1

# Switches for the CUDA kernels (tests compare them with the torch path by clearing them).
_TRITON_ZBUFFER = True
_TRITON_BARY = True


class Rasterization(NamedTuple):
    """What ``rasterize`` returns (``...`` = batch dims, ``C`` cameras).

    tri_id: ``[..., C, H, W]`` int64 index of the visible face, ``-1`` where empty.
    bary:   ``[..., C, H, W, 3]`` perspective-correct barycentrics of the face's three
            vertices (zeros where empty); differentiable w.r.t. vertex positions.
    depth:  ``[..., C, H, W]`` camera-space z of the visible surface, 0 where empty;
            differentiable w.r.t. vertex positions.
    """

    tri_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor


def check_mesh_tensors(verts: torch.Tensor, faces: torch.Tensor) -> None:
    """Raise one ``ValidationError`` naming the field for tensors the rasteriser cannot take.

    ``verts [..., V, 3]`` float, finite, ``V >= 1``; ``faces [F, 3]`` integer, ``F >= 1``, indices
    in ``[0, V)``. Degenerate faces are allowed (they are skipped when rasterising).
    """
    if not isinstance(verts, torch.Tensor) or verts.ndim < 2 or verts.shape[-1] != 3:
        raise ValidationError("verts", "a float tensor [..., V, 3]", _desc(verts))
    if not verts.is_floating_point():
        raise ValidationError("verts", "a float tensor [..., V, 3]", str(verts.dtype))
    if verts.shape[-2] == 0:
        raise ValidationError("verts", "at least one vertex", "an empty mesh (V = 0)")
    if not isinstance(faces, torch.Tensor) or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValidationError("faces", "an integer tensor [F, 3]", _desc(faces))
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise ValidationError("faces", "an integer tensor [F, 3]", str(faces.dtype))
    if faces.shape[0] == 0:
        raise ValidationError("faces", "at least one face", "an empty mesh (F = 0)")
    if faces.device != verts.device:
        raise ValidationError("faces", f"a tensor on {verts.device}", str(faces.device))
    with torch.no_grad():
        # One host sync for all three statistics (each sync stalls the GPU launch queue).
        stats = torch.stack(
            [faces.min().long(), faces.max().long(), (~torch.isfinite(verts)).sum()]
        ).tolist()
        lo, hi, bad = stats
        if lo < 0 or hi >= verts.shape[-2]:
            raise ValidationError(
                "faces", f"indices in [0, {verts.shape[-2]})", f"range [{lo}, {hi}]"
            )
        if bad:
            raise ValidationError("verts", "finite values", f"{bad} NaN/Inf entries")


def _view_layout(verts: torch.Tensor, cameras: Cameras) -> tuple[tuple[int, ...], torch.Tensor]:
    """Batch shape of the output and, for each of the ``N = prod(batch) * C`` views, the index
    of its vertex set in ``verts.reshape(-1, V, 3)``."""
    vb, cb = tuple(verts.shape[:-2]), cameras.batch_shape
    if vb and cb and vb != cb:
        raise ValidationError(
            "cameras", f"batch shape {vb} (the vertices' leading dims) or none", f"{cb}"
        )
    batch = vb or cb
    nb = 1
    for s in batch:
        nb *= s
    c = cameras.n_cameras
    views = torch.arange(nb * c, device=verts.device)
    mesh_of_view = views // c if vb else torch.zeros_like(views)
    return batch, mesh_of_view


def _camera_mats(cameras: Cameras, batch, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    vm = cameras.viewmats.to(device=device, dtype=dtype)
    ks = cameras.Ks.to(device=device, dtype=dtype)
    shape = (*batch, cameras.n_cameras)
    return vm.expand(*shape, 4, 4).reshape(-1, 4, 4), ks.expand(*shape, 3, 3).reshape(-1, 3, 3)


def project_vertices(verts: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel positions and camera-space depths of the vertices in every camera.

    Args:
        verts: ``[..., V, 3]`` world positions (``...`` empty, or the cameras' batch shape).
        cameras: ``[..., C]``.

    Returns:
        ``xy [..., C, V, 2]`` in pixels (centres at +0.5) and ``z [..., C, V]``; differentiable.
        Points at or behind the camera get a clamped, meaningless ``xy``.
    """
    batch, mesh_of_view = _view_layout(verts, cameras)
    vm, ks = _camera_mats(cameras, batch, verts.dtype, verts.device)
    V = verts.shape[-2]
    v = verts.reshape(-1, V, 3)
    v = v[mesh_of_view] if verts.ndim > 2 else v.expand(vm.shape[0], V, 3)
    xy, z = project_points(v, vm, ks)
    c = cameras.n_cameras
    return xy.reshape(*batch, c, V, 2), z.reshape(*batch, c, V)


def project_points(
    verts: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``xy [N, V, 2]`` (pixels) and ``z [N, V]`` of ``verts [N, V, 3]`` (or ``[V, 3]``, shared)
    in ``N`` cameras given as matrices ``viewmats [N, 4, 4]`` and ``Ks [N, 3, 3]`` (the
    tensor-only core of :func:`project_vertices`, for code that holds no ``Cameras``)."""
    rot, t = viewmats[:, :3, :3], viewmats[:, None, :3, 3]
    cam = verts @ rot.transpose(1, 2) + t  # [N, V, 3]
    z = cam[..., 2]
    # x = fx X / z + cx, y = fy Y / z + cy as one product with [[fx, fy]] and one sum
    f = torch.stack([Ks[:, 0, 0], Ks[:, 1, 1]], -1)[:, None]  # [N, 1, 2]
    c = torch.stack([Ks[:, 0, 2], Ks[:, 1, 2]], -1)[:, None]
    xy = f * cam[..., :2] / z.clamp_min(1e-8)[..., None] + c
    return xy, z


def _edge_values(
    fv: torch.Tensor, fi: torch.Tensor, px: torch.Tensor, py: torch.Tensor
) -> torch.Tensor:
    """Edge functions ``[P, 3]`` of pixel ``(px, py)`` w.r.t. the edge opposite each vertex.

    Each edge is evaluated from its lower-indexed vertex and the sign flipped afterwards, so two
    faces sharing an edge compute bit-identical values of opposite sign: no pixel centre on a
    shared edge falls through both (a watertight rasteriser without wider arithmetic).
    ``fv [P, 3, 2]`` are the face's vertex positions, ``fi [P, 3]`` their indices.
    """
    # All three edges at once (few kernels: this runs per covered pixel, forward and
    # backward); edge k joins vertices k + 1 and k + 2 (rolls of the corner axis).
    va, vb = fv.roll(-1, 1), fv.roll(-2, 1)  # [P, 3, 2]
    swap = fi.roll(-1, 1) > fi.roll(-2, 1)  # [P, 3]
    lo = torch.where(swap[..., None], vb, va)
    d = torch.where(swap[..., None], va, vb) - lo
    e = d[..., 0] * (py[:, None] - lo[..., 1]) - d[..., 1] * (px[:, None] - lo[..., 0])
    return torch.where(swap, -e, e)


def rasterize(
    verts: torch.Tensor,
    faces: torch.Tensor,
    cameras: Cameras,
    *,
    near_plane: float = 0.01,
    chunk: int = DEFAULT_CHUNK,
    check: bool = True,
) -> Rasterization:
    """Depth-tested rasterisation of ``verts [..., V, 3]`` / ``faces [F, 3]`` into ``cameras``.

    Every face is tested against the pixel centres inside its screen bounding box, in chunks of
    at most ``chunk`` (face, pixel) candidates; the nearest covering face per pixel wins through
    one ``scatter_reduce(amin)`` on keys packing (depth bits, face index), so ties go to the
    lower face index and the result is deterministic. Barycentrics and depth are then
    recomputed with autograd for the winning faces only: gradients reach vertex positions
    through the interior (for silhouettes use ``antialias``).

    Args:
        verts: world positions; leading dims ``...`` are none, or equal the cameras' batch dims
            (one mesh per batch element, sharing ``faces``).
        faces: int64 (or other integer) vertex indices, shared by the batch.
        cameras: ``[..., C]`` cameras; without batch dims they are shared by all meshes.
        near_plane: faces with a vertex at ``z <= near_plane`` are culled.
        chunk: candidates tested at once by the torch z-buffer (memory bound; the CUDA kernel
            needs no chunks).
        check: validate the inputs (one ``ValidationError`` naming the field; one host sync).
            Without it, faces with a non-finite vertex are skipped, but out-of-range indices are
            undefined behaviour.

    Returns:
        ``Rasterization(tri_id [..., C, H, W], bary [..., C, H, W, 3], depth [..., C, H, W])``.
    """
    if not isinstance(cameras, Cameras):
        raise ValidationError("cameras", "a gs_core.Cameras", type(cameras).__name__)
    if check:
        check_mesh_tensors(verts, faces)
    xy, z = project_vertices(verts, cameras)
    return rasterize_projected(
        xy, z, faces, cameras.width, cameras.height, near_plane=near_plane, chunk=chunk
    )


def rasterize_projected(
    xy: torch.Tensor,
    z: torch.Tensor,
    faces: torch.Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    chunk: int = DEFAULT_CHUNK,
) -> Rasterization:
    """:func:`rasterize` of already projected vertices: ``xy [..., C, V, 2]`` and
    ``z [..., C, V]`` from :func:`project_vertices` (or :func:`project_points`), into images of
    ``width x height``. No validation; gradients flow to ``xy`` and ``z``."""
    faces = faces.long()
    lead = xy.shape[:-2]
    H, W = height, width
    V = xy.shape[-2]
    xy = xy.reshape(-1, V, 2)
    z = z.reshape(-1, V)
    N = xy.shape[0]
    shape = (*lead, H, W)

    with torch.no_grad():
        key = _zbuffer(xy.detach(), z.detach(), faces, H, W, near_plane, chunk)
        hit = key != _EMPTY_KEY
        tri = torch.where(hit, key & _LOW32, -1)  # [N*H*W]

    if _use_triton(xy, _TRITON_BARY):
        from gs_core.rendering.mesh_bary_triton import perspective_bary_triton

        bary, depth = perspective_bary_triton(xy, z, tri, faces, W)
        return Rasterization(tri.reshape(shape), bary.reshape(*shape, 3), depth.reshape(shape))

    # Differentiable barycentrics: every pixel on accelerators (fixed shapes), the covered ones
    # on the CPU.
    dense = _dense(xy)
    pix = torch.arange(N * H * W, device=xy.device) if dense else hit.nonzero()[:, 0]
    f = tri.clamp_min(0) if dense else tri[pix]
    view = pix // (H * W)
    py = ((pix % (H * W)) // W).to(xy.dtype) + 0.5
    px = (pix % W).to(xy.dtype) + 0.5
    fi = faces[f]  # [P, 3]
    # index_select rather than advanced indexing: its backward is an index_add, where
    # indexing's is a sort-based index_put (the costliest kernel of the backward on CUDA).
    gi = (view[:, None] * V + fi).reshape(-1)
    fv = xy.reshape(N * V, 2).index_select(0, gi).reshape(-1, 3, 2)  # [P, 3, 2]
    fz = z.reshape(N * V).index_select(0, gi).reshape(-1, 3)  # [P, 3]
    if dense:
        # Empty pixels see a unit triangle at depth 1, which keeps every value and gradient
        # finite; their results are masked to 0 below.
        unit = torch.eye(3, 2, dtype=fv.dtype, device=fv.device)  # made there: no copy
        fv = torch.where(hit[:, None, None], fv, unit)
        fz = torch.where(hit[:, None], fz, 1.0)
    bary, depth = _perspective_bary(fv, fz, fi, px, py)
    if dense:
        return Rasterization(
            tri.reshape(shape),
            torch.where(hit[:, None], bary, 0.0).reshape(*shape, 3),
            torch.where(hit, depth, 0.0).reshape(shape),
        )
    bary_img = torch.zeros(N * H * W, 3, dtype=xy.dtype, device=xy.device)
    depth_img = torch.zeros(N * H * W, dtype=xy.dtype, device=xy.device)
    bary_img = bary_img.index_put((pix,), bary)
    depth_img = depth_img.index_put((pix,), depth)
    return Rasterization(tri.reshape(shape), bary_img.reshape(*shape, 3), depth_img.reshape(shape))


def _dense(t: torch.Tensor) -> bool:
    """Process every pixel (fixed shapes, no host sync) rather than the covered ones: on every
    device but the CPU, where a sync costs nothing and compaction saves the work."""
    return t.device.type != "cpu"


def _perspective_bary(fv, fz, fi, px, py) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective-correct barycentrics ``[P, 3]`` and depth ``[P]``: screen-space barycentrics
    ``b`` interpolate ``1/z`` linearly, so ``bary_i = (b_i / z_i) / sum_j (b_j / z_j)`` and
    ``depth = 1 / sum_j (b_j / z_j)``."""
    e = _edge_values(fv, fi, px, py)
    area = e.sum(-1, keepdim=True)  # edge functions sum to twice the signed area
    b = e / area
    w = b / fz
    inv_z = w.sum(-1)
    return w / inv_z[:, None], 1.0 / inv_z


def _zbuffer(xy, z, faces, H, W, near_plane, chunk) -> torch.Tensor:
    """Packed nearest-face keys ``[N*H*W]`` int64: ``depth_bits << 32 | face`` (or empty).

    Each live face becomes 12 numbers: three edge functions and ``1/z`` as planes
    ``a x + b y + c`` over the screen (``1/z`` is affine in screen space), so testing a
    candidate pixel is one gather and a few multiply-adds. Edge planes are built from the
    lower-indexed vertex and oriented by the face's sign of area, both exact operations, so two
    consistently wound faces sharing an edge get exactly opposite planes (watertight).
    """
    if _use_triton(xy, _TRITON_ZBUFFER):
        from gs_core.rendering.mesh_zbuffer_triton import zbuffer_triton

        return zbuffer_triton(xy, z, faces, H, W, near_plane)
    N, F = xy.shape[0], faces.shape[0]
    V = xy.shape[1]
    dev, dt = xy.device, xy.dtype
    keys = torch.full((N * H * W,), _EMPTY_KEY, dtype=torch.int64, device=dev)
    gidx = (torch.arange(N, device=dev)[:, None] * V + faces.reshape(1, -1)).reshape(-1)
    fv = xy.reshape(N * V, 2).index_select(0, gidx).reshape(N * F, 3, 2)
    fz = z.reshape(N * V).index_select(0, gidx).reshape(N * F, 3)
    # elementwise over the corners (faster on the CPU than reductions over a middle dim)
    lo = torch.minimum(torch.minimum(fv[:, 0], fv[:, 1]), fv[:, 2])
    hi = torch.maximum(torch.maximum(fv[:, 0], fv[:, 1]), fv[:, 2])
    # Pixel i is tested when its centre i + 0.5 lies in [lo, hi].
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, W)
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, W - 1)
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, H)
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, H - 1)
    # (NaN fails every comparison: faces with a non-finite vertex are not live)
    ok = (fz[:, 0] > near_plane) & (fz[:, 1] > near_plane) & (fz[:, 2] > near_plane)
    ok &= (x1 >= x0) & (y1 >= y0) & torch.isfinite(hi - lo).all(-1)
    live = ok.nonzero()[:, 0]
    if live.numel() == 0:
        return keys
    fv, fz = fv[live], fz[live]
    x0, x1, y0, y1 = x0[live], x1[live], y0[live], y1[live]
    fi = faces[live % F]
    x0, y0 = x0.long(), y0.long()
    bw = x1.long() - x0 + 1
    counts = bw * (y1.long() - y0 + 1)
    # Edge k joins vertices k + 1 and k + 2 (rolls of the corner axis), all edges at once.
    va, vb = fv.roll(-1, 1), fv.roll(-2, 1)  # [L, 3, 2]
    swap = fi.roll(-1, 1) > fi.roll(-2, 1)  # [L, 3]
    lo = torch.where(swap[..., None], vb, va)
    d = torch.where(swap[..., None], va, vb) - lo
    sgn = torch.where(swap, -1.0, 1.0).to(dt)[..., None]
    # e(p) = d.x (p.y - lo.y) - d.y (p.x - lo.x)
    ep = (
        torch.stack([-d[..., 1], d[..., 0], d[..., 1] * lo[..., 0] - d[..., 0] * lo[..., 1]], -1)
        * sgn
    )  # [L, 3 edges, (a, b, c)]
    # Twice the signed area: the sum of the three edge functions at any point (take p = 0
    # relative to vertex 0 for accuracy).
    e1, e2 = fv[:, 1] - fv[:, 0], fv[:, 2] - fv[:, 0]
    area2 = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    nondegen = area2.abs() > 1e-12
    orient = torch.where(area2 >= 0, 1.0, -1.0).to(dt)
    ep = ep * orient[:, None, None]
    # 1/z at p = sum_k b_k / z_k with b_k = e_k(p) / |area2| (oriented planes): a plane too.
    # The sum is written out so its order is the Triton kernel's.
    wz = 1.0 / (area2.abs().clamp_min(1e-30)[:, None] * fz)  # [L, 3]
    pz = ep * wz[..., None]
    zp = pz[:, 0] + pz[:, 1] + pz[:, 2]  # [L, 3]
    table = torch.cat([ep.reshape(-1, 9), zp], 1)  # [L, 12]
    counts = torch.where(nondegen, counts, 0)
    ends = counts.cumsum(0)
    base_pix = (live // F) * (H * W) + y0 * W + x0
    meta = torch.stack([base_pix, bw, live % F], 1)
    # Runs of at most `chunk` candidates (a face larger than the chunk forms a run of its own).
    # The common case, everything in one run, costs a single host sync.
    n_live = live.numel()
    grand = int(ends[-1])
    bounds = [0, n_live]
    if grand > chunk:
        bounds = [0]
        while bounds[-1] < n_live:
            start = bounds[-1]
            base = int(ends[start - 1]) if start else 0
            nxt = int(torch.searchsorted(ends, base + chunk, right=True))
            bounds.append(max(nxt, start + 1))
    for s, t in zip(bounds[:-1], bounds[1:], strict=True):
        cnt = counts[s:t]
        total = grand if len(bounds) == 2 else int(cnt.sum())
        if total == 0:
            continue
        j = torch.repeat_interleave(torch.arange(s, t, device=dev), cnt, output_size=total)
        local = torch.arange(total, device=dev) - (ends - counts).index_select(0, j)
        local = local + (int(ends[s - 1]) if s else 0)
        m = meta.index_select(0, j)
        w = m[:, 1]
        dy, dx = local // w, local % w
        px = (x0.index_select(0, j) + dx).to(dt) + 0.5
        py = (y0.index_select(0, j) + dy).to(dt) + 0.5
        tab = table.index_select(0, j)
        e = tab[:, 0:9:3] * px[:, None] + tab[:, 1:9:3] * py[:, None] + tab[:, 2:9:3]
        inside = (e >= 0).all(-1)
        inv_z = tab[:, 9] * px + tab[:, 10] * py + tab[:, 11]
        # Candidates outside their face scatter the empty key (a no-op under amin) instead of
        # being compacted first: fewer kernels.
        depth = (1.0 / inv_z).float().clamp_min(0)
        k = (depth.view(torch.int32).long() << 32) | m[:, 2]
        k = torch.where(inside, k, _EMPTY_KEY)
        pix = m[:, 0] + dy * W + dx
        keys.scatter_reduce_(0, pix, k, reduce="amin")
    return keys


def _use_triton(xy: torch.Tensor, switch: bool) -> bool:
    """A Triton kernel runs for float32 on CUDA when Triton imports and its switch is on."""
    if not (switch and xy.is_cuda and xy.dtype == torch.float32):
        return False
    from gs_core.triton_support import triton_available

    return triton_available()


def interpolate(
    attr: torch.Tensor,
    rast: Rasterization,
    faces: torch.Tensor | None = None,
    *,
    check: bool = True,
) -> torch.Tensor:
    """Interpolate attributes over the rasterised faces with the perspective-correct barycentrics.

    Args:
        attr: per-vertex ``[V, K]`` (with ``faces``), per-corner ``[F, 3, K]`` (``faces`` not
            needed; e.g. flat normals or UVs with seams), or either with the rasterised
            batch dims in front (``[..., V, K]`` / ``[..., F, 3, K]``, one set per mesh).
        rast: the output of ``rasterize``.
        faces: ``[F, 3]`` vertex indices, for per-vertex attributes.
        check: refuse, in one ``ValidationError``, faces indexing past ``attr``'s vertices or
            rasterised face ids past its faces (one host sync; callers that validated the
            mesh pass ``False``).

    Returns:
        ``[..., C, H, W, K]``, zeros where no face is visible; differentiable w.r.t. ``attr``
        and ``rast.bary``.
    """
    tri, bary = rast.tri_id, rast.bary
    lead = tri.shape[:-3]
    C, H, W = tri.shape[-3:]
    per_corner = faces is None
    core = 3 if per_corner else 2
    if not isinstance(attr, torch.Tensor) or attr.ndim < core:
        want = "[..., F, 3, K]" if per_corner else "[..., V, K]"
        raise ValidationError("attr", f"a tensor {want}", _desc(attr))
    if per_corner and attr.shape[-2] != 3:
        raise ValidationError(
            "attr", "per-corner values [..., F, 3, K] (or pass faces)", _desc(attr)
        )
    ab = tuple(attr.shape[:-core])
    if ab and ab != tuple(lead):
        raise ValidationError("attr", f"leading dims {tuple(lead)} or none", _desc(attr))
    if not per_corner and (
        not isinstance(faces, torch.Tensor) or faces.ndim != 2 or faces.shape[1] != 3
    ):
        raise ValidationError("faces", "an integer tensor [F, 3]", _desc(faces))
    if check:
        _check_indices(attr, tri, faces, per_corner)
    K = attr.shape[-1]
    n_sets = 1
    for s in ab:
        n_sets *= s
    flat_tri = tri.reshape(-1)
    # Every pixel on accelerators (empty ones have zero barycentrics, so they interpolate to 0
    # with no mask and no host sync), the covered ones on the CPU.
    dense = _dense(flat_tri)
    pix = None if dense else (flat_tri >= 0).nonzero()[:, 0]
    f = flat_tri.clamp_min(0) if dense else flat_tri[pix]
    if not ab:
        set_idx = torch.zeros_like(f)
    elif dense:
        set_idx = torch.arange(n_sets, device=f.device).repeat_interleave(C * H * W)
    else:
        set_idx = pix // (C * H * W)
    if per_corner:
        nf = attr.shape[-3]
        corner = attr.reshape(n_sets * nf, 3, K).index_select(0, set_idx * nf + f)  # [P, 3, K]
    else:
        nv = attr.shape[-2]
        gi = (set_idx[:, None] * nv + faces.long()[f]).reshape(-1)
        corner = attr.reshape(n_sets * nv, K).index_select(0, gi).reshape(-1, 3, K)
    b = bary.reshape(-1, 3)
    b = (b if dense else b.index_select(0, pix)).to(attr.dtype)
    vals = (b[..., None] * corner).sum(-2)
    if dense:
        return vals.reshape(*lead, C, H, W, K)
    out = torch.zeros(flat_tri.numel(), K, dtype=vals.dtype, device=vals.device)
    out = out.index_put((pix,), vals)
    return out.reshape(*lead, C, H, W, K)


def _check_indices(attr, tri, faces, per_corner: bool) -> None:
    """Indices that would read past ``attr``: one ``ValidationError`` naming the field."""
    with torch.no_grad():
        if per_corner:
            hi = int(tri.max()) if tri.numel() else -1
            if hi >= attr.shape[-3]:
                raise ValidationError(
                    "attr",
                    f"per-corner values of at least {hi + 1} faces (rasterised)",
                    _desc(attr),
                )
        elif faces.numel():
            lo, hi = torch.stack([faces.min(), faces.max()]).tolist()
            if lo < 0 or hi >= attr.shape[-2]:
                raise ValidationError(
                    "faces", f"indices in [0, {attr.shape[-2]}) (attr's vertices)", f"[{lo}, {hi}]"
                )


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)}"
    return type(x).__name__
