"""The rasteriser's z-buffer pass as one Triton kernel (CUDA, float32 only).

The torch path in :mod:`gs_core.rendering.mesh_raster` expands every live face into its
(face, pixel) candidates with ``repeat_interleave`` and a dozen gathers, then scatters packed
keys with ``scatter_reduce(amin)``: a few hundred kernels and most of the rasteriser's GPU time.
Here one lane handles one candidate: it finds its face by binary search in the cumulative
candidate counts, evaluates the face's plane table (built by the torch path, so both read the
same numbers) and ``atomic_min``\\ s the packed ``depth_bits << 32 | face`` key. The arithmetic
is the torch path's, operation for operation, with fused multiply-add disabled and a correctly
rounded division, so the keys (and hence ``tri_id`` and the depth order) are bit-identical.
Triton is imported only when this path runs: CPU machines need not have it.
"""

from __future__ import annotations

import functools

import torch

# candidates per program (lanes); with little per-lane work, larger blocks amortise the search
BLOCK = 512


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def zbuffer_kernel(
        keys_ptr,
        table_ptr,
        ends_ptr,
        counts_ptr,
        x0_ptr,
        y0_ptr,
        base_ptr,
        bw_ptr,
        face_ptr,
        total,
        n_live,
        W,
        n_iter,
        BLOCK: tl.constexpr,
    ):
        c = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
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
        face = tl.load(face_ptr + j, mask=valid, other=0)
        key = (depth.to(tl.int32, bitcast=True).to(tl.int64) << 32) | face
        pix = tl.load(base_ptr + j, mask=valid, other=0) + dy * W + dx
        tl.atomic_min(keys_ptr + pix, key, mask=inside, sem="relaxed")

    return zbuffer_kernel


def zbuffer_scatter_triton(
    keys: torch.Tensor,
    table: torch.Tensor,
    ends: torch.Tensor,
    counts: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    base_pix: torch.Tensor,
    bw: torch.Tensor,
    face: torch.Tensor,
    total: int,
    W: int,
) -> None:
    """``atomic_min`` every inside candidate's packed key into ``keys [N*H*W]`` int64, in place.

    Per live face (``L`` of them, all on one CUDA device): ``table [L, 12]`` float32 (three edge
    planes and the ``1/z`` plane, ``(a, b, c)`` each), ``ends``/``counts [L]`` int64 cumulative
    and own candidate counts (0 for skipped faces), ``x0``/``y0``/``bw [L]`` int64 bounding-box
    corner and width, ``base_pix [L]`` int64 flat index of the corner pixel, ``face [L]`` int64
    face index; ``total = ends[-1]``.
    """
    n_live = ends.numel()
    if total == 0 or n_live == 0:
        return
    n_iter = max(1, int(n_live).bit_length())
    grid = ((total + BLOCK - 1) // BLOCK,)
    _kernel()[grid](
        keys,
        table.contiguous(),
        ends.contiguous(),
        counts.contiguous(),
        x0.contiguous(),
        y0.contiguous(),
        base_pix.contiguous(),
        bw.contiguous(),
        face.contiguous(),
        total,
        n_live,
        W,
        n_iter,
        BLOCK=BLOCK,
        num_warps=4,
        enable_fp_fusion=False,
    )
