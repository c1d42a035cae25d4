"""Silhouette antialiasing as one Triton kernel each way (CUDA, float32 only).

The torch path (:func:`gs_core.rendering.mesh_antialias.antialias`) examines every pair of
neighbouring pixels with about a hundred tensor operations forward and more backward. Here one
lane handles one pair (horizontal pairs first, then vertical ones, in one launch) with the same
decisions (front face, the edge the segment leaves through, interior transitions, the steepness
rule) and the same blend; the forward adds the blend into a copy of the colours and the
backward adds the gradients of the colours and of the edge's two vertices, with atomics. Both
paths pick the first of exactly tied exit edges, and the kernels round as torch does (no fused
multiply-add, correctly rounded divisions), so the decisions agree but for the rare pair whose
edge values tie to within the rounding of a differently ordered sum.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# pixel pairs per program
BLOCK = 128


@triton.jit
def _edge(xa, ya, ia, xb, yb, ib, px, py):
    swap = ia > ib
    lox = tl.where(swap, xb, xa)
    loy = tl.where(swap, yb, ya)
    dx = tl.where(swap, xa, xb) - lox
    dy = tl.where(swap, ya, yb) - loy
    e = dx * (py - loy) - dy * (px - lox)
    return tl.where(swap, -e, e)


@triton.jit
def _exit_time(ef, eo):
    crossing = (eo < 0) & (ef >= 0)
    # exit times lie in [0, 1]; 1e30 marks an edge the segment does not leave through
    return tl.where(crossing, tl.math.div_rn(ef, tl.maximum(ef - eo, 1e-30)), 1e30)


@triton.jit
def _pair(
    q,
    valid,
    tri_ptr,
    zf_ptr,
    faces_ptr,
    topo_ptr,
    xy_ptr,
    QX,
    H,
    W,
    V,
):
    # decisions of pair q: keep, front and other pixel, the exit edge's vertex rows and
    # positions, both pixel centres, t, e_f, the denominator and the orientation sign
    HW = H * W
    is_x = q < QX
    qy = q - QX
    # horizontal pairs: (n, y, x) with x < W - 1; vertical: y < H - 1
    wx = tl.maximum(W - 1, 1)  # a one-pixel-wide image has no horizontal pairs
    nx = q // (H * wx)
    rx = q - nx * (H * wx)
    ax = nx * HW + (rx // wx) * W + rx % wx
    hy = tl.maximum(H - 1, 1) * W
    ny = qy // hy
    ay = ny * HW + (qy - ny * hy)
    n = tl.where(is_x, nx, ny)
    a = tl.where(is_x, ax, ay)
    b = a + tl.where(is_x, 1, W)
    ta = tl.load(tri_ptr + a, mask=valid, other=-1)
    tb = tl.load(tri_ptr + b, mask=valid, other=-1)
    cand = valid & (ta != tb) & ((ta >= 0) | (tb >= 0))
    za = tl.load(zf_ptr + a, mask=cand, other=0.0)
    zb = tl.load(zf_ptr + b, mask=cand, other=0.0)
    a_front = (ta >= 0) & ((tb < 0) | (za <= zb))
    tf = tl.where(a_front, ta, tb)
    to = tl.where(a_front, tb, ta)
    pf = tl.where(a_front, a, b)
    po = tl.where(a_front, b, a)
    tfc = tl.where(cand, tf, 0)
    i0 = tl.load(faces_ptr + tfc * 3 + 0, mask=cand, other=0)
    i1 = tl.load(faces_ptr + tfc * 3 + 1, mask=cand, other=1)
    i2 = tl.load(faces_ptr + tfc * 3 + 2, mask=cand, other=2)
    g0, g1, g2 = n * V + i0, n * V + i1, n * V + i2
    x0 = tl.load(xy_ptr + g0 * 2, mask=cand, other=0.0)
    y0 = tl.load(xy_ptr + g0 * 2 + 1, mask=cand, other=0.0)
    x1 = tl.load(xy_ptr + g1 * 2, mask=cand, other=1.0)
    y1 = tl.load(xy_ptr + g1 * 2 + 1, mask=cand, other=0.0)
    x2 = tl.load(xy_ptr + g2 * 2, mask=cand, other=0.0)
    y2 = tl.load(xy_ptr + g2 * 2 + 1, mask=cand, other=1.0)
    rf = pf % HW
    yf = rf // W
    pfx = (rf - yf * W).to(tl.float32) + 0.5
    pfy = yf.to(tl.float32) + 0.5
    ro = po % HW
    yo = ro // W
    pox = (ro - yo * W).to(tl.float32) + 0.5
    poy = yo.to(tl.float32) + 0.5
    f0 = _edge(x1, y1, i1, x2, y2, i2, pfx, pfy)
    f1 = _edge(x2, y2, i2, x0, y0, i0, pfx, pfy)
    f2 = _edge(x0, y0, i0, x1, y1, i1, pfx, pfy)
    o0 = _edge(x1, y1, i1, x2, y2, i2, pox, poy)
    o1 = _edge(x2, y2, i2, x0, y0, i0, pox, poy)
    o2 = _edge(x0, y0, i0, x1, y1, i1, pox, poy)
    sgn = tl.where(f0 + f1 + f2 >= 0, 1.0, -1.0)
    f0, f1, f2 = f0 * sgn, f1 * sgn, f2 * sgn
    o0, o1, o2 = o0 * sgn, o1 * sgn, o2 * sgn
    t0 = _exit_time(f0, o0)
    t1 = _exit_time(f1, o1)
    t2 = _exit_time(f2, o2)
    # first minimum (as torch's min over a dim)
    k = tl.where(t1 < t0, 1, 0)
    tmin = tl.minimum(t0, t1)
    k = tl.where(t2 < tmin, 2, k)
    tmin = tl.minimum(tmin, t2)
    # a segment leaving through a vertex ties two edges: interior when either tied edge
    # leads into the face seen in the other pixel
    lim = tmin + 1e-6
    nb0 = tl.load(topo_ptr + tfc * 3 + 0, mask=cand, other=-1)
    nb1 = tl.load(topo_ptr + tfc * 3 + 1, mask=cand, other=-1)
    nb2 = tl.load(topo_ptr + tfc * 3 + 2, mask=cand, other=-1)
    interior = ((t0 <= lim) & (nb0 == to)) | ((t1 <= lim) & (nb1 == to))
    interior = (interior | ((t2 <= lim) & (nb2 == to))) & (to >= 0)
    # exit edge k joins vertices k + 1 and k + 2
    ga = tl.where(k == 0, g1, tl.where(k == 1, g2, g0))
    gb = tl.where(k == 0, g2, tl.where(k == 1, g0, g1))
    xa = tl.where(k == 0, x1, tl.where(k == 1, x2, x0))
    ya = tl.where(k == 0, y1, tl.where(k == 1, y2, y0))
    xb = tl.where(k == 0, x2, tl.where(k == 1, x0, x1))
    yb = tl.where(k == 0, y2, tl.where(k == 1, y0, y1))
    steep = tl.abs(yb - ya) >= tl.abs(xb - xa)
    keep = cand & (tmin < 1e30) & (~interior) & (steep == is_x)
    e_f = tl.where(k == 0, f0, tl.where(k == 1, f1, f2))
    e_o = tl.where(k == 0, o0, tl.where(k == 1, o1, o2))
    den = tl.where(keep, e_f - e_o, 1.0)
    ratio = tl.math.div_rn(e_f, den)
    t = tl.minimum(tl.maximum(ratio, 0.0), 1.0)
    return keep, pf, po, ga, gb, xa, ya, xb, yb, pfx, pfy, pox, poy, t, ratio, e_f, den, sgn


@triton.jit
def forward_kernel(
    col_ptr,
    out_ptr,
    tri_ptr,
    zf_ptr,
    faces_ptr,
    topo_ptr,
    xy_ptr,
    Q,
    QX,
    H,
    W,
    V,
    K,
    BLOCK: tl.constexpr,
    KB: tl.constexpr,
):
    q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = q < Q
    keep, pf, po, ga, gb, xa, ya, xb, yb, pfx, pfy, pox, poy, t, ratio, e_f, den, sgn = _pair(
        q, valid, tri_ptr, zf_ptr, faces_ptr, topo_ptr, xy_ptr, QX, H, W, V
    )
    w_o = tl.where(keep, tl.maximum(t - 0.5, 0.0), 0.0)
    w_f = tl.where(keep, tl.maximum(0.5 - t, 0.0), 0.0)
    ch = tl.arange(0, KB)
    m2 = keep[:, None] & (ch < K)[None, :]
    cf = tl.load(col_ptr + pf[:, None] * K + ch[None, :], mask=m2, other=0.0)
    co = tl.load(col_ptr + po[:, None] * K + ch[None, :], mask=m2, other=0.0)
    tl.atomic_add(
        out_ptr + po[:, None] * K + ch[None, :],
        w_o[:, None] * (cf - co),
        mask=m2,
        sem="relaxed",
    )
    tl.atomic_add(
        out_ptr + pf[:, None] * K + ch[None, :],
        w_f[:, None] * (co - cf),
        mask=m2,
        sem="relaxed",
    )


@triton.jit
def backward_kernel(
    col_ptr,
    gout_ptr,
    gcol_ptr,
    gxy_ptr,
    tri_ptr,
    zf_ptr,
    faces_ptr,
    topo_ptr,
    xy_ptr,
    Q,
    QX,
    H,
    W,
    V,
    K,
    BLOCK: tl.constexpr,
    KB: tl.constexpr,
):
    q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = q < Q
    keep, pf, po, ga, gb, xa, ya, xb, yb, pfx, pfy, pox, poy, t, ratio, e_f, den, sgn = _pair(
        q, valid, tri_ptr, zf_ptr, faces_ptr, topo_ptr, xy_ptr, QX, H, W, V
    )
    w_o = tl.where(keep, tl.maximum(t - 0.5, 0.0), 0.0)
    w_f = tl.where(keep, tl.maximum(0.5 - t, 0.0), 0.0)
    ch = tl.arange(0, KB)
    m2 = keep[:, None] & (ch < K)[None, :]
    cf = tl.load(col_ptr + pf[:, None] * K + ch[None, :], mask=m2, other=0.0)
    co = tl.load(col_ptr + po[:, None] * K + ch[None, :], mask=m2, other=0.0)
    g_po = tl.load(gout_ptr + po[:, None] * K + ch[None, :], mask=m2, other=0.0)
    g_pf = tl.load(gout_ptr + pf[:, None] * K + ch[None, :], mask=m2, other=0.0)
    # out[po] += w_o (cf - co), out[pf] += w_f (co - cf)
    d_pf = w_o[:, None] * g_po - w_f[:, None] * g_pf
    tl.atomic_add(gcol_ptr + pf[:, None] * K + ch[None, :], d_pf, mask=m2, sem="relaxed")
    tl.atomic_add(gcol_ptr + po[:, None] * K + ch[None, :], -d_pf, mask=m2, sem="relaxed")
    diff = cf - co
    # clamp_min passes the gradient at its bound, as torch's
    g_t = tl.where(t - 0.5 >= 0, tl.sum(g_po * diff, 1), 0.0)
    g_t = g_t + tl.where(0.5 - t >= 0, tl.sum(g_pf * diff, 1), 0.0)
    g_t = tl.where(keep & (ratio >= 0) & (ratio <= 1), g_t, 0.0)
    # t = e_f / (e_f - e_o), both edge values multiplied by sgn
    inv = 1.0 / den
    g_ef = g_t * (inv - e_f * inv * inv) * sgn
    g_eo = g_t * (e_f * inv * inv) * sgn
    # e = cross(v_b - v_a, p - v_a) at the front (f) and other (o) pixel centres
    gxa = g_ef * (yb - pfy) + g_eo * (yb - poy)
    gya = g_ef * (pfx - xb) + g_eo * (pox - xb)
    gxb = g_ef * (pfy - ya) + g_eo * (poy - ya)
    gyb = g_ef * (xa - pfx) + g_eo * (xa - pox)
    tl.atomic_add(gxy_ptr + ga * 2, gxa, mask=keep, sem="relaxed")
    tl.atomic_add(gxy_ptr + ga * 2 + 1, gya, mask=keep, sem="relaxed")
    tl.atomic_add(gxy_ptr + gb * 2, gxb, mask=keep, sem="relaxed")
    tl.atomic_add(gxy_ptr + gb * 2 + 1, gyb, mask=keep, sem="relaxed")


def _launch_shape(H: int, W: int, N: int, K: int) -> tuple[int, int, tuple[int], int]:
    qx = N * H * (W - 1)
    q = qx + N * (H - 1) * W
    kb = 1
    while kb < K:
        kb *= 2
    return q, qx, ((max(q, 1) + BLOCK - 1) // BLOCK,), kb


class _Antialias(torch.autograd.Function):
    @staticmethod
    def forward(ctx, col, xy, tri, zf, faces, topology, height, width):
        N, V = xy.shape[0], xy.shape[1]
        K = col.shape[-1]
        Q, QX, grid, KB = _launch_shape(height, width, N, K)
        out = col.clone()
        if Q:
            forward_kernel[grid](
                col, out, tri, zf, faces, topology, xy, Q, QX, height, width, V, K,
                BLOCK=BLOCK, KB=KB, num_warps=4, enable_fp_fusion=False,
            )  # fmt: skip
        ctx.save_for_backward(col, xy, tri, zf, faces, topology)
        ctx.size = (height, width)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out):
        col, xy, tri, zf, faces, topology = ctx.saved_tensors
        height, width = ctx.size
        N, V = xy.shape[0], xy.shape[1]
        K = col.shape[-1]
        Q, QX, grid, KB = _launch_shape(height, width, N, K)
        g_out = g_out.contiguous()
        g_col = g_out.clone()
        g_xy = torch.zeros_like(xy)
        if Q:
            backward_kernel[grid](
                col, g_out, g_col, g_xy, tri, zf, faces, topology, xy, Q, QX, height, width, V,
                K, BLOCK=BLOCK, KB=KB, num_warps=4, enable_fp_fusion=False,
            )  # fmt: skip
        return g_col, g_xy, None, None, None, None, None, None


def antialias_triton(
    col: torch.Tensor,
    xy: torch.Tensor,
    tri: torch.Tensor,
    zf: torch.Tensor,
    faces: torch.Tensor,
    topology: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """Antialiased ``col [N*H*W, K]`` (float32); differentiable w.r.t. ``col`` and the vertex
    pixel positions ``xy [N, V, 2]``. ``tri [N*H*W]`` int64 face per pixel (``-1`` empty),
    ``zf [N*H*W]`` its depth (``inf`` where empty), ``faces`` / ``topology [F, 3]`` int64."""
    return _Antialias.apply(
        col.contiguous(),
        xy.contiguous(),
        tri.contiguous(),
        zf.contiguous(),
        faces.contiguous(),
        topology.contiguous(),
        height,
        width,
    )
