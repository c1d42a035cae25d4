"""Analytic silhouette antialiasing (the "antialias" stage of nvdiffrast's decomposition).

Rasterised images are piecewise constant in the vertex positions at silhouettes, so a mask or
depth loss gives vertices no gradient there. Following Laine et al. 2020 (Sec. 3.4), every pair
of horizontally or vertically adjacent pixels that show different faces is examined: the face
in front (the nearer of the two, or the only one) is intersected with the segment between the
two pixel centres; if it leaves the segment through a silhouette edge (a boundary edge, or one
whose face on the other side is not the one seen in the other pixel) at distance ``t`` from its
own pixel centre, the colours are blended as if each pixel were a unit box along that axis:
for ``t > 1/2`` the other pixel takes ``t - 1/2`` of the front colour, for ``t < 1/2`` the front
pixel takes ``1/2 - t`` of the other colour. ``t`` is a differentiable function of the edge's
screen positions, so gradients reach the vertices. A pair is processed along the axis the edge
crosses more steeply (horizontal pairs for edges with ``|dy| >= |dx|``, vertical otherwise):
then each unit of edge length contributes once and ``d(mask area)/d(edge offset)`` equals the
edge length, as for the exact coverage.

Meshes whose neighbouring faces do not share vertex indices (unwelded seams) make every such
edge a silhouette; weld them first for clean gradients.

On the CPU only the pairs that show two different faces are examined; on a GPU every pair is,
with masks instead of compaction (no host sync, so the pass can be recorded in a CUDA graph),
and for float32 on CUDA one Triton kernel each way does it
(:mod:`~gs_core.rendering.mesh_antialias_triton`); the torch code here is its reference.
"""

from __future__ import annotations

import weakref

import torch

from gs_core.errors import ValidationError
from gs_core.rendering.mesh_raster import Rasterization, _dense, _edge_values, _use_triton

# Switch for the CUDA kernels (tests compare them with the torch path by clearing it).
_TRITON_ANTIALIAS = True


def edge_topology(faces: torch.Tensor) -> torch.Tensor:
    """``[F, 3]`` int64: the face across edge ``k`` of each face (edge ``k`` is the one opposite
    vertex ``k``), ``-1`` on boundary and non-manifold edges (shared by more than two faces)."""
    faces = faces.long()
    nf = faces.shape[0]
    a = faces[:, [1, 2, 0]]
    b = faces[:, [2, 0, 1]]
    # Packing the pair into one int64 (indices < 2^31) needs no vertex count: no host sync.
    key = ((torch.minimum(a, b) << 32) | torch.maximum(a, b)).reshape(-1)
    order = torch.argsort(key, stable=True)
    sk = key[order]
    _, inv, counts = torch.unique_consecutive(sk, return_inverse=True, return_counts=True)
    pair = counts[inv] == 2
    first = torch.ones_like(pair)
    first[1:] = sk[1:] != sk[:-1]
    opp = torch.full((nf * 3,), -1, dtype=torch.int64, device=faces.device)
    p = (pair & first).nonzero()[:, 0]
    opp[order[p]] = order[p + 1] // 3
    opp[order[p + 1]] = order[p] // 3
    return opp.reshape(nf, 3)


# Recent topologies by id(faces): render_mesh passes the same faces tensor every step, and the
# argsort + nonzero (a host sync) would otherwise run every call. An entry is used only while
# its weak reference still points at that very tensor, unmodified (same version counter).
_TOPOLOGY_CACHE: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}
_TOPOLOGY_CACHE_SIZE = 8


def cached_edge_topology(faces: torch.Tensor) -> torch.Tensor:
    """``edge_topology(faces)``, reused while ``faces`` is the same, unmodified tensor."""
    if faces.is_inference():  # no version counter to tell a modified tensor
        return edge_topology(faces)
    hit = _TOPOLOGY_CACHE.get(id(faces))
    if hit is not None and hit[0]() is faces and hit[1] == faces._version:
        return hit[2]
    topo = edge_topology(faces)
    while len(_TOPOLOGY_CACHE) >= _TOPOLOGY_CACHE_SIZE:
        _TOPOLOGY_CACHE.pop(next(iter(_TOPOLOGY_CACHE)))
    key = id(faces)
    _TOPOLOGY_CACHE[key] = (
        weakref.ref(faces, lambda _r, k=key: _TOPOLOGY_CACHE.pop(k, None)),
        faces._version,
        topo,
    )
    return topo


def antialias(
    color: torch.Tensor,
    rast: Rasterization,
    xy: torch.Tensor,
    faces: torch.Tensor,
    topology: torch.Tensor | None = None,
    *,
    check: bool = True,
) -> torch.Tensor:
    """Blend ``color [..., C, H, W, K]`` across silhouette edges; see the module docstring.

    Args:
        color: shaded image with the background already composited (so silhouettes blend
            towards it); any channels (RGB, alpha, depth, normals, features).
        rast: the ``rasterize`` output the image was shaded from.
        xy: ``[..., C, V, 2]`` vertex pixel positions from ``project_vertices`` (with the
            autograd graph to the vertices).
        faces: ``[F, 3]`` the rasterised faces.
        topology: ``edge_topology(faces)``; when ``None``, computed or taken from a cache of
            recent faces tensors.
        check: refuse faces indexing past ``xy``'s vertices (one ``ValidationError``, one host
            sync; callers that validated the mesh pass ``False``).

    Returns:
        ``[..., C, H, W, K]``; differentiable w.r.t. ``color`` and ``xy``.
    """
    tri, depth = rast.tri_id, rast.depth
    if not isinstance(color, torch.Tensor) or color.shape[:-1] != tri.shape:
        raise ValidationError(
            "color",
            f"a tensor [..., C, H, W, K] with [..., C, H, W] = {tuple(tri.shape)}",
            _desc(color),
        )
    if not isinstance(xy, torch.Tensor) or xy.shape[:-2] != tri.shape[:-2] or xy.shape[-1] != 2:
        raise ValidationError(
            "xy",
            f"vertex pixel positions [..., C, V, 2] with [..., C] = {tuple(tri.shape[:-2])}",
            _desc(xy),
        )
    if not isinstance(faces, torch.Tensor) or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValidationError("faces", "an integer tensor [F, 3]", _desc(faces))
    if check and faces.numel():
        lo, hi = torch.stack([faces.min(), faces.max()]).tolist()
        if lo < 0 or hi >= xy.shape[-2]:
            raise ValidationError(
                "faces", f"indices in [0, {xy.shape[-2]}) (xy's vertices)", f"[{lo}, {hi}]"
            )
    if topology is None:
        topology = cached_edge_topology(faces)
    elif not isinstance(topology, torch.Tensor) or topology.shape != faces.shape:
        raise ValidationError(
            "topology", f"edge_topology(faces) [{faces.shape[0]}, 3]", _desc(topology)
        )
    faces = faces.long()
    H, W = tri.shape[-2:]
    K = color.shape[-1]
    tri = tri.reshape(-1, H, W)
    N = tri.shape[0]
    zf = torch.where(tri >= 0, depth.detach().reshape(N, H, W), torch.inf)
    pos = xy.reshape(N, -1, 2)
    if _use_triton(pos, _TRITON_ANTIALIAS) and color.dtype == torch.float32:
        from gs_core.rendering.mesh_antialias_triton import antialias_triton

        out = antialias_triton(
            color.reshape(-1, K), pos, tri.reshape(-1), zf.reshape(-1), faces, topology, H, W
        )
        return out.reshape(color.shape)
    col = color.reshape(N * H * W, K)
    out = col
    dense = _dense(pos)
    for step_x in (True, False):
        if step_x:
            ta, tb, za, zb = tri[:, :, :-1], tri[:, :, 1:], zf[:, :, :-1], zf[:, :, 1:]
        else:
            ta, tb, za, zb = tri[:, :-1], tri[:, 1:], zf[:, :-1], zf[:, 1:]
        cand = (ta != tb) & ((ta >= 0) | (tb >= 0))
        if dense:
            # every pair, the non-candidates weighted 0 below (fixed shapes, no host sync)
            n, y, x = (
                i.reshape(-1)
                for i in torch.meshgrid(
                    *(torch.arange(s, device=tri.device) for s in cand.shape), indexing="ij"
                )
            )
            cand = cand.reshape(-1)
        else:
            idx = cand.nonzero()
            if idx.numel() == 0:
                continue
            n, y, x = idx.unbind(1)
        ta, tb, za, zb = ta[n, y, x], tb[n, y, x], za[n, y, x], zb[n, y, x]
        flat_a = n * (H * W) + y * W + x
        flat_b = flat_a + (1 if step_x else W)
        a_front = (ta >= 0) & ((tb < 0) | (za <= zb))
        tf = torch.where(a_front, ta, tb)
        to = torch.where(a_front, tb, ta)
        if dense:
            tf = tf.clamp_min(0)  # pairs of two empty pixels; never kept
        pf = torch.where(a_front, flat_a, flat_b)
        po = torch.where(a_front, flat_b, flat_a)
        fi = faces[tf]
        # index_select: its backward is an index_add (indexing's is a sort-based index_put)
        nv = pos.shape[1]
        fv = pos.reshape(-1, 2).index_select(0, (n[:, None] * nv + fi).reshape(-1))
        fv = fv.reshape(-1, 3, 2)  # [P, 3, 2]

        def centre(flat):
            r = flat % (H * W)
            return (r % W).to(pos.dtype) + 0.5, (r // W).to(pos.dtype) + 0.5

        ef = _edge_values(fv, fi, *centre(pf))
        eo = _edge_values(fv, fi, *centre(po))
        sgn = torch.where(ef.sum(-1, keepdim=True) >= 0, 1.0, -1.0).to(ef.dtype)
        ef, eo = ef * sgn, eo * sgn
        with torch.no_grad():
            crossing = (eo < 0) & (ef >= 0)
            tk = torch.where(crossing, ef / (ef - eo).clamp_min(1e-30), torch.inf)
            tmin, k = tk.min(-1)
            # The segment may leave through a vertex, where two edges tie (and which one argmin
            # names differs between devices): the transition is interior when either tied edge
            # leads into the face seen in the other pixel.
            tied = tk <= tmin[:, None] + 1e-6
            interior = (tied & (topology[tf] == to[:, None]) & (to[:, None] >= 0)).any(-1)
            va = fv.detach()[torch.arange(k.numel(), device=k.device), (k + 1) % 3]
            vb = fv.detach()[torch.arange(k.numel(), device=k.device), (k + 2) % 3]
            d = (vb - va).abs()
            steep = d[:, 1] >= d[:, 0]
            keep = torch.isfinite(tmin) & ~interior
            keep &= steep if step_x else ~steep
            if dense:
                keep &= cand
        # Pairs that are not kept get weight 0 rather than being compacted away (no host
        # sync); their denominator is replaced by 1 so no NaN reaches the gradients.
        e_f = ef.gather(1, k[:, None])[:, 0]
        e_o = eo.gather(1, k[:, None])[:, 0]
        t = (e_f / torch.where(keep, e_f - e_o, 1.0)).clamp(0, 1)
        cf, co = col.index_select(0, pf), col.index_select(0, po)
        zero = t.new_zeros(())
        w_other = torch.where(keep, (t - 0.5).clamp_min(0), zero)[:, None]
        w_front = torch.where(keep, (0.5 - t).clamp_min(0), zero)[:, None]
        out = out.index_add(0, po, w_other * (cf - co))
        out = out.index_add(0, pf, w_front * (co - cf))
    return out.reshape(color.shape)


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)}"
    return type(x).__name__
