"""The rasteriser's z-buffer pass as two Triton kernels (CUDA, float32 only).

The torch path in :mod:`gs_core.rendering.mesh_raster` builds a plane table per (view, face)
with a few dozen tensor operations, expands every live face into its (face, pixel) candidates
with ``repeat_interleave`` and scatters packed keys with ``scatter_reduce(amin)``: hundreds of
kernels and host synchronisations. Here ``setup`` builds the same table in one kernel (one lane
per view and face) and ``scatter`` handles one candidate per lane: it finds its face by binary
search in the cumulative candidate counts, evaluates the face's planes and ``atomic_min``\\ s the
packed ``depth_bits << 32 | face`` key. The arithmetic is the torch path's, operation for
operation, with fused multiply-add disabled and correctly rounded divisions, so the keys (hence
``tri_id`` and the depth order) are bit-identical.

Nothing here waits for the GPU: the candidate total is read by the scatter kernel itself, whose
fixed grid of programs strides over however many candidates there are, so the pass has no
data-dependent launch size and can be recorded in a CUDA graph. This module imports Triton;
the rasteriser imports it only on that path, so CPU machines need not have Triton.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# candidates per program (lanes); with little per-lane work, larger blocks amortise the search
BLOCK = 512
# faces per program of the setup kernel
SETUP_BLOCK = 256
# programs of the scatter kernel per multiprocessor: enough to hide the search's latency
PROGRAMS_PER_SM = 8


@triton.jit
def _edge(xa, ya, ia, xb, yb, ib, orient):
    # plane (a, b, c) of the edge a -> b, built from its lower-indexed vertex and negated
    # when swapped, so two faces sharing the edge get exactly opposite planes
    swap = ia > ib
    lox = tl.where(swap, xb, xa)
    loy = tl.where(swap, yb, ya)
    dx = tl.where(swap, xa, xb) - lox
    dy = tl.where(swap, ya, yb) - loy
    sg = tl.where(swap, -1.0, 1.0)
    pa = -dy * sg * orient
    pb = dx * sg * orient
    pc = (dy * lox - dx * loy) * sg * orient
    return pa, pb, pc


@triton.jit
def setup_kernel(
    xy_ptr,
    z_ptr,
    faces_ptr,
    table_ptr,
    counts_ptr,
    x0_ptr,
    y0_ptr,
    bw_ptr,
    base_ptr,
    L,
    F,
    V,
    H,
    W,
    near,
    BLOCK: tl.constexpr,
):
    lane = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = lane < L
    n = lane // F
    f = lane - n * F
    i0 = tl.load(faces_ptr + f * 3 + 0, mask=valid, other=0)
    i1 = tl.load(faces_ptr + f * 3 + 1, mask=valid, other=0)
    i2 = tl.load(faces_ptr + f * 3 + 2, mask=valid, other=0)
    g0, g1, g2 = n * V + i0, n * V + i1, n * V + i2
    x0 = tl.load(xy_ptr + g0 * 2, mask=valid, other=0.0)
    y0 = tl.load(xy_ptr + g0 * 2 + 1, mask=valid, other=0.0)
    x1 = tl.load(xy_ptr + g1 * 2, mask=valid, other=0.0)
    y1 = tl.load(xy_ptr + g1 * 2 + 1, mask=valid, other=0.0)
    x2 = tl.load(xy_ptr + g2 * 2, mask=valid, other=0.0)
    y2 = tl.load(xy_ptr + g2 * 2 + 1, mask=valid, other=0.0)
    z0 = tl.load(z_ptr + g0, mask=valid, other=1.0)
    z1 = tl.load(z_ptr + g1, mask=valid, other=1.0)
    z2 = tl.load(z_ptr + g2, mask=valid, other=1.0)
    lox = tl.minimum(tl.minimum(x0, x1), x2)
    hix = tl.maximum(tl.maximum(x0, x1), x2)
    loy = tl.minimum(tl.minimum(y0, y1), y2)
    hiy = tl.maximum(tl.maximum(y0, y1), y2)
    # pixel i is tested when its centre i + 0.5 lies in [lo, hi]
    bx0 = tl.minimum(tl.maximum(tl.ceil(lox - 0.5), 0.0), W * 1.0)
    bx1 = tl.minimum(tl.maximum(tl.floor(hix - 0.5), -1.0), W - 1.0)
    by0 = tl.minimum(tl.maximum(tl.ceil(loy - 0.5), 0.0), H * 1.0)
    by1 = tl.minimum(tl.maximum(tl.floor(hiy - 0.5), -1.0), H - 1.0)
    e1x, e1y = x1 - x0, y1 - y0
    e2x, e2y = x2 - x0, y2 - y0
    area2 = e1x * e2y - e1y * e2x
    # NaN fails every comparison: faces with a non-finite vertex get no candidates
    live = valid & (z0 > near) & (z1 > near) & (z2 > near)
    live = live & (bx1 >= bx0) & (by1 >= by0) & (tl.abs(area2) > 1e-12)
    live = live & (tl.abs(lox) <= 3.4e38) & (tl.abs(hix) <= 3.4e38)
    live = live & (tl.abs(loy) <= 3.4e38) & (tl.abs(hiy) <= 3.4e38)
    orient = tl.where(area2 >= 0, 1.0, -1.0)
    # edge k joins vertices k + 1 and k + 2
    a0, b0, c0 = _edge(x1, y1, i1, x2, y2, i2, orient)
    a1, b1, c1 = _edge(x2, y2, i2, x0, y0, i0, orient)
    a2, b2, c2 = _edge(x0, y0, i0, x1, y1, i1, orient)
    # 1/z at p = sum_k e_k(p) / (|area2| z_k): a plane too
    aa = tl.maximum(tl.abs(area2), 1e-30)
    one = tl.full([BLOCK], 1.0, tl.float32)
    w0 = tl.math.div_rn(one, aa * z0)
    w1 = tl.math.div_rn(one, aa * z1)
    w2 = tl.math.div_rn(one, aa * z2)
    za = a0 * w0 + a1 * w1 + a2 * w2
    zb = b0 * w0 + b1 * w1 + b2 * w2
    zc = c0 * w0 + c1 * w1 + c2 * w2
    t = table_ptr + lane * 12
    tl.store(t + 0, a0, mask=valid)
    tl.store(t + 1, b0, mask=valid)
    tl.store(t + 2, c0, mask=valid)
    tl.store(t + 3, a1, mask=valid)
    tl.store(t + 4, b1, mask=valid)
    tl.store(t + 5, c1, mask=valid)
    tl.store(t + 6, a2, mask=valid)
    tl.store(t + 7, b2, mask=valid)
    tl.store(t + 8, c2, mask=valid)
    tl.store(t + 9, za, mask=valid)
    tl.store(t + 10, zb, mask=valid)
    tl.store(t + 11, zc, mask=valid)
    ix0 = tl.where(live, bx0, 0.0).to(tl.int64)
    iy0 = tl.where(live, by0, 0.0).to(tl.int64)
    bw = tl.where(live, bx1, 0.0).to(tl.int64) - ix0 + 1
    bh = tl.where(live, by1, 0.0).to(tl.int64) - iy0 + 1
    tl.store(counts_ptr + lane, tl.where(live, bw * bh, 0), mask=valid)
    tl.store(x0_ptr + lane, ix0, mask=valid)
    tl.store(y0_ptr + lane, iy0, mask=valid)
    tl.store(bw_ptr + lane, bw, mask=valid)
    tl.store(base_ptr + lane, n * H * W + iy0 * W + ix0, mask=valid)


@triton.jit
def scatter_kernel(
    keys_ptr,
    table_ptr,
    ends_ptr,
    counts_ptr,
    x0_ptr,
    y0_ptr,
    base_ptr,
    bw_ptr,
    n_live,
    F,
    W,
    n_iter,
    BLOCK: tl.constexpr,
):
    total = tl.load(ends_ptr + n_live - 1)
    n_blocks = (total + BLOCK - 1) // BLOCK
    first = tl.program_id(0).to(tl.int64)
    for blk in range(first, n_blocks, tl.num_programs(0).to(tl.int64)):
        c = blk * BLOCK + tl.arange(0, BLOCK)
        valid = c < total
        # smallest j with ends[j] > c: the face this candidate belongs to (faces with no
        # candidates have ends[j] == ends[j - 1] and are skipped, as by repeat_interleave)
        lo = tl.zeros([BLOCK], dtype=tl.int64)
        hi = lo + n_live
        for _ in range(n_iter):
            mid = (lo + hi) // 2
            e = tl.load(ends_ptr + mid, mask=valid & (mid < n_live), other=0)
            go = (e <= c) & (mid < hi)
            lo = tl.where(go, mid + 1, lo)
            hi = tl.where(go, hi, mid)
        j = tl.minimum(lo, n_live - 1)
        start = tl.load(ends_ptr + j, mask=valid, other=0) - tl.load(
            counts_ptr + j, mask=valid, other=0
        )
        local = c - start
        bw = tl.load(bw_ptr + j, mask=valid, other=1)
        dy = local // bw
        dx = local - dy * bw
        px = (tl.load(x0_ptr + j, mask=valid, other=0) + dx).to(tl.float32) + 0.5
        py = (tl.load(y0_ptr + j, mask=valid, other=0) + dy).to(tl.float32) + 0.5
        t = table_ptr + j * 12
        # e_k = a_k px + b_k py + c_k, rounded after every operation as in torch
        e0 = tl.load(t + 0, mask=valid, other=0.0) * px
        e0 = e0 + tl.load(t + 1, mask=valid, other=0.0) * py
        e0 = e0 + tl.load(t + 2, mask=valid, other=0.0)
        e1 = tl.load(t + 3, mask=valid, other=0.0) * px
        e1 = e1 + tl.load(t + 4, mask=valid, other=0.0) * py
        e1 = e1 + tl.load(t + 5, mask=valid, other=0.0)
        e2 = tl.load(t + 6, mask=valid, other=0.0) * px
        e2 = e2 + tl.load(t + 7, mask=valid, other=0.0) * py
        e2 = e2 + tl.load(t + 8, mask=valid, other=0.0)
        inside = valid & (e0 >= 0) & (e1 >= 0) & (e2 >= 0)
        iz = tl.load(t + 9, mask=valid, other=1.0) * px
        iz = iz + tl.load(t + 10, mask=valid, other=0.0) * py
        iz = iz + tl.load(t + 11, mask=valid, other=0.0)
        # torch's 1.0 / x is reciprocal (an IEEE division) times 1.0
        depth = tl.math.div_rn(tl.full([BLOCK], 1.0, tl.float32), iz)
        depth = tl.maximum(depth, 0.0, propagate_nan=tl.PropagateNan.ALL)
        face = j % F
        key = (depth.to(tl.int32, bitcast=True).to(tl.int64) << 32) | face
        pix = tl.load(base_ptr + j, mask=valid, other=0) + dy * W + dx
        tl.atomic_min(keys_ptr + pix, key, mask=inside, sem="relaxed")


def _programs(device: torch.device) -> int:
    if device.type != "cuda":  # Triton's interpreter (tests on the CPU)
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count * PROGRAMS_PER_SM


def zbuffer_triton(
    xy: torch.Tensor,
    z: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    near_plane: float,
) -> torch.Tensor:
    """Packed nearest-face keys ``[N*H*W]`` int64 (``depth_bits << 32 | face``, or int64 max
    where empty), as :func:`gs_core.rendering.mesh_raster._zbuffer`.

    ``xy [N, V, 2]`` pixel positions and ``z [N, V]`` depths (float32, one CUDA device),
    ``faces [F, 3]`` int64. Three launches (setup, cumulative sum, scatter); no host sync.
    """
    N, V = z.shape
    F = faces.shape[0]
    L = N * F
    dev = xy.device
    keys = torch.full((N * height * width,), torch.iinfo(torch.int64).max, device=dev)
    if L == 0:
        return keys
    table = torch.empty(L, 12, dtype=torch.float32, device=dev)
    ints = torch.empty(5, L, dtype=torch.int64, device=dev)
    counts, x0, y0, bw, base = ints.unbind(0)
    setup_kernel[(_cdiv(L, SETUP_BLOCK),)](
        xy.contiguous(),
        z.contiguous(),
        faces.contiguous(),
        table,
        counts,
        x0,
        y0,
        bw,
        base,
        L,
        F,
        V,
        height,
        width,
        float(near_plane),
        BLOCK=SETUP_BLOCK,
        num_warps=4,
        enable_fp_fusion=False,
    )
    ends = counts.cumsum(0)
    scatter_kernel[(_programs(dev),)](
        keys,
        table,
        ends,
        counts,
        x0,
        y0,
        base,
        bw,
        L,
        F,
        width,
        max(1, L.bit_length()),
        BLOCK=BLOCK,
        num_warps=4,
        enable_fp_fusion=False,
    )
    return keys


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b
