"""Forward-only compositing of projected Gaussians on the CPU, compiled by numba.

The same image formation and per-pixel rules as :mod:`gs_core.rendering.rasterization` (pixel
centres at +0.5, ``alpha = min(0.999, o * exp(-sigma))``, ``alpha < 1/255`` skipped, a pixel
stops before the Gaussian that would take its transmittance to ``<= 1e-4``, footprints clipped
to the same integer boxes), organised as gsplat's kernels are: entries binned into 16 x 16 pixel
tiles in depth order, then every tile composited front to back by one thread, row by row, with
an early exit once a row's pixels are all finished. It builds no gradient, and is what makes the
torch backend's pictures interactive on a small CPU (``gs3d view``, turntables, evaluation): the
pure-PyTorch compositor pays for autograd-ready bookkeeping (sorting every (pixel, Gaussian)
pair) that an inference frame does not need.

numba is optional (``gs3d-core[viewer]`` or ``gs3d-core[fast-cpu]``); :func:`numba_available`
says whether this path can run. Kernels are compiled on first use and cached on disk.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
import torch

from gs_core.rendering.projection import ALPHA_THRESHOLD
from gs_core.rendering.rasterization import ALPHA_MAX, TRANSMITTANCE_MIN, footprint_boxes

TILE = 16
# One frame at a time per process: numba's fallback threading layer (workqueue, where neither
# OpenMP nor TBB is present) aborts the process when two threads launch parallel kernels at once,
# and a frame already uses every core.
_LAUNCH = threading.Lock()


@functools.cache
def numba_available() -> bool:
    """Whether numba imports here (the fast CPU compositor can run)."""
    try:
        import numba  # noqa: F401
    except Exception:  # an installed but broken numba (llvmlite mismatch) is just "absent"
        return False
    return True


@functools.cache
def _kernels():
    import numba

    @numba.njit(cache=True)
    def bin_tiles(tx0, tx1, ty0, ty1, image_ids, tiles_x, tiles_per_image, n_tiles):
        # Entry lists per tile, in entry (= depth) order: a count, an exclusive prefix sum, a fill.
        n = tx0.shape[0]
        counts = np.zeros(n_tiles + 1, np.int64)
        for v in range(n):
            base = image_ids[v] * tiles_per_image
            for ty in range(ty0[v], ty1[v] + 1):
                for tx in range(tx0[v], tx1[v] + 1):
                    counts[base + ty * tiles_x + tx + 1] += 1
        for t in range(n_tiles):
            counts[t + 1] += counts[t]
        fill = counts[:-1].copy()
        lists = np.empty(counts[n_tiles], np.int32)
        for v in range(n):
            base = image_ids[v] * tiles_per_image
            for ty in range(ty0[v], ty1[v] + 1):
                for tx in range(tx0[v], tx1[v] + 1):
                    t = base + ty * tiles_x + tx
                    lists[fill[t]] = v
                    fill[t] += 1
        return counts, lists

    @numba.njit(parallel=True, cache=True)
    def composite(
        means2d, conics, colors, opacities, x0, x1, y0, y1,
        offsets, lists, tiles_x, tiles_per_image, width, height, backgrounds, out, alphas,
    ):  # fmt: skip
        n_tiles = offsets.shape[0] - 1
        depth = colors.shape[1]
        for t in numba.prange(n_tiles):
            img = t // tiles_per_image
            local = t - img * tiles_per_image
            ty = local // tiles_x
            tx = local - ty * tiles_x
            px0, py0 = tx * TILE, ty * TILE
            px1, py1 = min(px0 + TILE, width) - 1, min(py0 + TILE, height) - 1
            # The tile's entries gathered contiguously (gsplat stages them in shared memory),
            # with the conic halved (sigma = a' dx^2 + b dx dy + c' dy^2), the level above
            # which alpha < 1/255 (sigma > ln(255 o); a 1e-6 slack leaves the boundary to the
            # exact alpha test) and exp(-2 a') for the row recurrence below.
            first, n = offsets[t], offsets[t + 1] - offsets[t]
            gx, gy, ga, gb, gc = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
            go, glevel, gstep = np.empty(n), np.empty(n), np.empty(n)
            bx0, bx1 = np.empty(n, np.int64), np.empty(n, np.int64)
            by0, by1 = np.empty(n, np.int64), np.empty(n, np.int64)
            col = np.empty((n, depth))
            for k in range(n):
                v = lists[first + k]
                gx[k], gy[k] = means2d[v, 0], means2d[v, 1]
                ga[k], gb[k], gc[k] = 0.5 * conics[v, 0], conics[v, 1], 0.5 * conics[v, 2]
                go[k] = opacities[v]
                glevel[k] = math.log(max(opacities[v], 1e-30) / ALPHA_THRESHOLD) + 1e-6
                gstep[k] = math.exp(-conics[v, 0])
                bx0[k], bx1[k], by0[k], by1[k] = x0[v], x1[v], y0[v], y1[v]
                for d in range(depth):
                    col[k, d] = colors[v, d]
            tr = np.empty(TILE)
            acc = np.empty((TILE, depth))
            done = np.empty(TILE, np.bool_)
            # Row by row: the row's pixels walk the entries front to back together and the row
            # stops once all are finished. Along a row sigma is quadratic in x, so exp(-sigma)
            # follows a second-order product recurrence: two exps per (entry, row), not one per
            # pixel (relative error ~1e-15 over a tile's 16 pixels).
            for py in range(py0, py1 + 1):
                cy = py + 0.5
                for i in range(TILE):
                    tr[i] = 1.0
                    done[i] = False
                    for d in range(depth):
                        acc[i, d] = 0.0
                n_open = px1 - px0 + 1
                for k in range(n):
                    if py < by0[k] or py > by1[k]:
                        continue
                    xs, xe = max(bx0[k], px0), min(bx1[k], px1)
                    if xs > xe:
                        continue
                    dx = gx[k] - (xs + 0.5)
                    dy = gy[k] - cy
                    sigma = ga[k] * dx * dx + gc[k] * dy * dy + gb[k] * dx * dy
                    step = ga[k] * (1.0 - 2.0 * dx) - gb[k] * dy  # sigma(x + 1) - sigma(x)
                    e = math.exp(-sigma)
                    q = math.exp(-step)
                    level, op, step2 = glevel[k], go[k], 2.0 * ga[k]
                    for px in range(xs, xe + 1):
                        i = px - px0
                        if not done[i] and sigma >= 0.0 and sigma <= level:
                            alpha = min(ALPHA_MAX, op * e)
                            if alpha >= ALPHA_THRESHOLD:
                                next_tr = tr[i] * (1.0 - alpha)
                                if next_tr <= TRANSMITTANCE_MIN:
                                    done[i] = True
                                    n_open -= 1
                                else:
                                    w = alpha * tr[i]
                                    for d in range(depth):
                                        acc[i, d] += w * col[k, d]
                                    tr[i] = next_tr
                        sigma += step
                        step += step2
                        e *= q
                        q *= gstep[k]
                    if n_open == 0:
                        break
                for px in range(px0, px1 + 1):
                    i = px - px0
                    for d in range(depth):
                        out[img, py, px, d] = acc[i, d] + tr[i] * backgrounds[img, d]
                    alphas[img, py, px, 0] = 1.0 - tr[i]

    return bin_tiles, composite


def composite_numba(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    radii: torch.Tensor,
    image_ids: torch.Tensor,
    n_images: int,
    width: int,
    height: int,
    backgrounds: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``V`` projected entries into ``n_images`` images (no gradients).

    Takes what :func:`gs_core.rendering.rasterization.rasterize_pixels` takes (CPU tensors):
    ``means2d [V, 2]``, ``conics [V, 3]``, ``colors [V, D]``, ``opacities [V]``,
    ``radii [V, 2]`` (all > 0), ``image_ids [V]``, entries sorted front to back, and
    ``backgrounds [n_images, D]`` or ``None``. Returns ``colors [n_images, H, W, D]`` and
    ``alphas [n_images, H, W, 1]`` in the entries' dtype.
    """
    dtype = colors.dtype
    depth = colors.shape[-1]
    bin_tiles, composite = _kernels()
    # The torch compositor's integer boxes.
    x0, x1, y0, y1 = (t.long() for t in footprint_boxes(means2d, radii, width, height))
    seen = (x1 >= x0) & (y1 >= y0)
    # Entries whose box misses the image bin into no tile: an empty tile range.
    tx0 = torch.where(seen, x0 // TILE, 1)
    tx1 = torch.where(seen, x1 // TILE, 0)
    ty0 = torch.where(seen, y0 // TILE, 1)
    ty1 = torch.where(seen, y1 // TILE, 0)
    tiles_x, tiles_y = -(-width // TILE), -(-height // TILE)
    per_image = tiles_x * tiles_y
    n_tiles = n_images * per_image

    def np_(t: torch.Tensor, dt=None) -> np.ndarray:
        a = t.detach().contiguous().numpy()
        return a if dt is None else a.astype(dt, copy=False)

    ids = np_(image_ids, np.int64)
    offsets, lists = bin_tiles(
        np_(tx0), np_(tx1), np_(ty0), np_(ty1), ids, tiles_x, per_image, n_tiles
    )
    f64 = np.float64
    bg = (
        np.zeros((n_images, depth), f64)
        if backgrounds is None
        else np_(backgrounds.reshape(n_images, depth), f64)
    )
    out = np.empty((n_images, height, width, depth), f64)
    alphas = np.empty((n_images, height, width, 1), f64)
    import numba

    # Tiles differ in cost by orders of magnitude (background against the object's middle):
    # small chunks keep the threads busy to the end, where equal static shares would not.
    torch_threads = torch.get_num_threads()
    with _LAUNCH, numba.parallel_chunksize(2):
        composite(
            np_(means2d, f64), np_(conics, f64), np_(colors, f64), np_(opacities, f64),
            np_(x0), np_(x1), np_(y0), np_(y1), offsets, lists, tiles_x, per_image,
            width, height, bg, out, alphas,
        )  # fmt: skip
        # numba's OpenMP layer sets the process's OpenMP thread count, which torch shares:
        # without this, a 1-thread gs3d process (the 2-core default) runs torch on every core
        # after its first frame, and torch's reductions then round differently.
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
    return torch.from_numpy(out).to(dtype), torch.from_numpy(alphas).to(dtype)


__all__ = ["composite_numba", "numba_available"]
