"""Perspective-correct barycentrics and depth of every pixel as one Triton kernel each way
(CUDA, float32 only).

The torch path (:func:`gs_core.rendering.mesh_raster._perspective_bary`) gathers each pixel's
face and evaluates its three edge functions with autograd: about 30 kernels forward and 50
backward over every pixel. Here one lane handles one pixel, forward and backward, with the same
formulas (the edge functions evaluated from each edge's lower-indexed vertex); the backward
adds each pixel's gradient into its face's vertices with atomics. Results match the torch path
to rounding (not bit for bit: divisions here are not correctly rounded).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# pixels per program
BLOCK = 256


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
def _load_face(tri_ptr, faces_ptr, xy_ptr, z_ptr, p, valid, HW, W, V):
    t = tl.load(tri_ptr + p, mask=valid, other=-1)
    hit = valid & (t >= 0)
    tc = tl.where(hit, t, 0)
    n = p // HW
    r = p - n * HW
    y = r // W
    px = (r - y * W).to(tl.float32) + 0.5
    py = y.to(tl.float32) + 0.5
    i0 = tl.load(faces_ptr + tc * 3 + 0, mask=hit, other=0)
    i1 = tl.load(faces_ptr + tc * 3 + 1, mask=hit, other=1)
    i2 = tl.load(faces_ptr + tc * 3 + 2, mask=hit, other=2)
    g0, g1, g2 = n * V + i0, n * V + i1, n * V + i2
    # a unit triangle where nothing is hit keeps the arithmetic finite
    x0 = tl.load(xy_ptr + g0 * 2, mask=hit, other=0.0)
    y0 = tl.load(xy_ptr + g0 * 2 + 1, mask=hit, other=0.0)
    x1 = tl.load(xy_ptr + g1 * 2, mask=hit, other=1.0)
    y1 = tl.load(xy_ptr + g1 * 2 + 1, mask=hit, other=0.0)
    x2 = tl.load(xy_ptr + g2 * 2, mask=hit, other=0.0)
    y2 = tl.load(xy_ptr + g2 * 2 + 1, mask=hit, other=1.0)
    z0 = tl.load(z_ptr + g0, mask=hit, other=1.0)
    z1 = tl.load(z_ptr + g1, mask=hit, other=1.0)
    z2 = tl.load(z_ptr + g2, mask=hit, other=1.0)
    return hit, px, py, g0, g1, g2, i0, i1, i2, x0, y0, x1, y1, x2, y2, z0, z1, z2


@triton.jit
def forward_kernel(
    tri_ptr, faces_ptr, xy_ptr, z_ptr, bary_ptr, depth_ptr, P, HW, W, V, BLOCK: tl.constexpr
):
    p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = p < P
    hit, px, py, g0, g1, g2, i0, i1, i2, x0, y0, x1, y1, x2, y2, z0, z1, z2 = _load_face(
        tri_ptr, faces_ptr, xy_ptr, z_ptr, p, valid, HW, W, V
    )
    e0 = _edge(x1, y1, i1, x2, y2, i2, px, py)
    e1 = _edge(x2, y2, i2, x0, y0, i0, px, py)
    e2 = _edge(x0, y0, i0, x1, y1, i1, px, py)
    area = e0 + e1 + e2
    w0 = e0 / area / z0
    w1 = e1 / area / z1
    w2 = e2 / area / z2
    inv = w0 + w1 + w2
    zero = tl.zeros([BLOCK], tl.float32)
    tl.store(bary_ptr + p * 3 + 0, tl.where(hit, w0 / inv, zero), mask=valid)
    tl.store(bary_ptr + p * 3 + 1, tl.where(hit, w1 / inv, zero), mask=valid)
    tl.store(bary_ptr + p * 3 + 2, tl.where(hit, w2 / inv, zero), mask=valid)
    tl.store(depth_ptr + p, tl.where(hit, 1.0 / inv, zero), mask=valid)


@triton.jit
def backward_kernel(
    tri_ptr,
    faces_ptr,
    xy_ptr,
    z_ptr,
    gbary_ptr,
    gdepth_ptr,
    gxy_ptr,
    gz_ptr,
    P,
    HW,
    W,
    V,
    BLOCK: tl.constexpr,
):
    p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = p < P
    hit, px, py, g0, g1, g2, i0, i1, i2, x0, y0, x1, y1, x2, y2, z0, z1, z2 = _load_face(
        tri_ptr, faces_ptr, xy_ptr, z_ptr, p, valid, HW, W, V
    )
    e0 = _edge(x1, y1, i1, x2, y2, i2, px, py)
    e1 = _edge(x2, y2, i2, x0, y0, i0, px, py)
    e2 = _edge(x0, y0, i0, x1, y1, i1, px, py)
    area = e0 + e1 + e2
    b0, b1, b2 = e0 / area, e1 / area, e2 / area
    w0, w1, w2 = b0 / z0, b1 / z1, b2 / z2
    inv = w0 + w1 + w2
    gb0 = tl.load(gbary_ptr + p * 3 + 0, mask=hit, other=0.0)
    gb1 = tl.load(gbary_ptr + p * 3 + 1, mask=hit, other=0.0)
    gb2 = tl.load(gbary_ptr + p * 3 + 2, mask=hit, other=0.0)
    gd = tl.load(gdepth_ptr + p, mask=hit, other=0.0)
    # bary_j = w_j / inv, depth = 1 / inv, inv = sum_k w_k
    common = (gb0 * w0 + gb1 * w1 + gb2 * w2) / (inv * inv) + gd / (inv * inv)
    gw0, gw1, gw2 = gb0 / inv - common, gb1 / inv - common, gb2 / inv - common
    # w_j = b_j / z_j
    gz0, gz1, gz2 = -gw0 * w0 / z0, -gw1 * w1 / z1, -gw2 * w2 / z2
    gbb0, gbb1, gbb2 = gw0 / z0, gw1 / z1, gw2 / z2
    # b_j = e_j / area, area = sum_k e_k
    ce = (gbb0 * e0 + gbb1 * e1 + gbb2 * e2) / (area * area)
    ge0, ge1, ge2 = gbb0 / area - ce, gbb1 / area - ce, gbb2 / area - ce
    # e_j = cross(v_b - v_a, p - v_a) over edge j = (a, b) = (j + 1, j + 2)
    gx0 = ge1 * (py - y2) + ge2 * (y1 - py)
    gy0 = ge1 * (x2 - px) + ge2 * (px - x1)
    gx1 = ge0 * (y2 - py) + ge2 * (py - y0)
    gy1 = ge0 * (px - x2) + ge2 * (x0 - px)
    gx2 = ge0 * (py - y1) + ge1 * (y0 - py)
    gy2 = ge0 * (x1 - px) + ge1 * (px - x0)
    tl.atomic_add(gxy_ptr + g0 * 2, gx0, mask=hit, sem="relaxed")
    tl.atomic_add(gxy_ptr + g0 * 2 + 1, gy0, mask=hit, sem="relaxed")
    tl.atomic_add(gxy_ptr + g1 * 2, gx1, mask=hit, sem="relaxed")
    tl.atomic_add(gxy_ptr + g1 * 2 + 1, gy1, mask=hit, sem="relaxed")
    tl.atomic_add(gxy_ptr + g2 * 2, gx2, mask=hit, sem="relaxed")
    tl.atomic_add(gxy_ptr + g2 * 2 + 1, gy2, mask=hit, sem="relaxed")
    tl.atomic_add(gz_ptr + g0, gz0, mask=hit, sem="relaxed")
    tl.atomic_add(gz_ptr + g1, gz1, mask=hit, sem="relaxed")
    tl.atomic_add(gz_ptr + g2, gz2, mask=hit, sem="relaxed")


def _grid(n: int) -> tuple[int]:
    return ((n + BLOCK - 1) // BLOCK,)


class _PerspectiveBary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xy, z, tri, faces, width):
        N, V = z.shape
        P = tri.numel()
        bary = torch.empty(P, 3, dtype=xy.dtype, device=xy.device)
        depth = torch.empty(P, dtype=xy.dtype, device=xy.device)
        HW = P // N
        forward_kernel[_grid(P)](
            tri, faces, xy, z, bary, depth, P, HW, width, V, BLOCK=BLOCK, num_warps=4
        )
        ctx.save_for_backward(xy, z, tri, faces)
        ctx.width = width
        return bary, depth

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_bary, g_depth):
        xy, z, tri, faces = ctx.saved_tensors
        N, V = z.shape
        P = tri.numel()
        gxy = torch.zeros_like(xy)
        gz = torch.zeros_like(z)
        backward_kernel[_grid(P)](
            tri,
            faces,
            xy,
            z,
            g_bary.contiguous(),
            g_depth.contiguous(),
            gxy,
            gz,
            P,
            P // N,
            ctx.width,
            V,
            BLOCK=BLOCK,
            num_warps=4,
        )
        return gxy, gz, None, None, None


def perspective_bary_triton(
    xy: torch.Tensor, z: torch.Tensor, tri: torch.Tensor, faces: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentrics ``[N*H*W, 3]`` and depth ``[N*H*W]`` of every pixel, zero where
    ``tri [N*H*W]`` (int64 face per pixel, ``-1`` empty) is empty; differentiable w.r.t.
    ``xy [N, V, 2]`` (pixels) and ``z [N, V]`` (camera depth). ``faces [F, 3]`` int64."""
    return _PerspectiveBary.apply(
        xy.contiguous(), z.contiguous(), tri.contiguous(), faces.contiguous(), width
    )
