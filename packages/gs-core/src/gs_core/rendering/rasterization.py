"""Sparse front-to-back alpha compositing of projected Gaussians in pure PyTorch.

Implements the 3DGS image formation (Kerbl et al. 2023, Eq. 3) with gsplat's per-pixel rules:
pixel centres at +0.5, ``alpha = min(0.999, o * exp(-sigma))`` with
``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy``, contributions with ``alpha < 1/255`` skipped, and a
pixel stops (exclusively) at the first Gaussian that would take its transmittance to
``<= 1e-4``.

Cost follows the pixels each Gaussian covers: every visible (image, Gaussian) entry enumerates,
row by row, only the pixels inside its ``alpha >= 1/255`` ellipse, so the work is the sum of
footprints, never pixels x Gaussians (no dense all-pairs tensor exists at any point). Entries are
processed front to back in batches of about ``chunk_pairs`` candidate pairs (bounding-box
count), which bounds memory; after each batch, finished pixels are dropped and an integral image
of unfinished pixels lets later entries whose whole box is finished be skipped before
enumeration (the analogue of gsplat's per-tile early exit).

The backward pass is analytic (no autograd graph over the pairs): for the pairs of a pixel in
front-to-back order with weights ``w_i = a_i T_i``, ``C = sum w_i c_i + T_N bg`` and
``A = 1 - T_N``,

    dL/dc_i = w_i g
    dL/da_i = T_i (g . c_i) - (g . (C_fg - S_i) + T_N (g . bg) - gA T_N) / (1 - a_i)

with ``S_i = sum_{j <= i} w_j c_j``. It revisits the chunks saved by the forward pass (their
pixel and entry ids only), recomputing alpha, so memory stays proportional to the composited
pairs. Transmittance and running sums use float64 prefix sums in log space, so segments of many
pixels in one prefix sum do not lose precision.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from gs_core.rendering.projection import ALPHA_THRESHOLD

ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4
_LOG_T_MIN = math.log(TRANSMITTANCE_MIN)
DEFAULT_CHUNK_PAIRS = 1 << 21


def rasterize_pixels(
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
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``V`` projected entries into ``n_images`` images.

    Args:
        means2d: ``[V, 2]`` pixel-space centres.
        conics: ``[V, 3]`` inverse 2D covariance ``(a, b, c)``.
        colors: ``[V, D]`` per-entry features (RGB, depth, ...).
        opacities: ``[V]`` (already multiplied by any anti-aliasing compensation).
        radii: ``[V, 2]`` integer half-extents (all > 0).
        image_ids: ``[V]`` int64 image index of each entry in ``[0, n_images)``.
        backgrounds: ``[n_images, D]`` or ``None`` (zeros).

    Entries must be sorted front to back (by depth; ties keep their order). Returns
    ``colors [n_images, H, W, D]`` (background composited) and ``alphas [n_images, H, W, 1]``.
    Differentiable w.r.t. means2d, conics, colors, opacities and backgrounds.
    """
    return _Rasterize.apply(
        means2d,
        conics,
        colors,
        opacities,
        backgrounds,
        radii,
        image_ids,
        int(n_images),
        int(width),
        int(height),
        int(chunk_pairs),
    )


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    # index_select is several times faster than advanced indexing on CPU.
    return t.index_select(0, idx)


def footprint_boxes(means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int):
    """Inclusive integer pixel boxes ``x0, x1, y0, y1`` (``[V]`` each, float) of entries with
    centres ``means2d [V, 2]`` and half-extents ``radii [V, 2]``: pixel ``j`` has its centre at
    ``j + 0.5``, and the box keeps the centres inside ``[m - r, m + r]``, clipped to the image
    (empty where ``x1 < x0`` or ``y1 < y0``)."""
    mx, my = means2d.detach().unbind(-1)
    rx = radii[:, 0].to(mx.dtype)
    ry = radii[:, 1].to(mx.dtype)
    x0 = torch.ceil(mx - rx - 0.5).clamp(0, width)
    x1 = torch.floor(mx + rx - 0.5).clamp(-1, width - 1)
    y0 = torch.ceil(my - ry - 0.5).clamp(0, height)
    y1 = torch.floor(my + ry - 0.5).clamp(-1, height - 1)
    return x0, x1, y0, y1


class _Footprints:
    """Integer pixel bounding boxes of the entries (non-differentiable), int32."""

    def __init__(self, means2d, radii, image_ids, width, height):
        x0, x1, y0, y1 = (t.to(torch.int32) for t in footprint_boxes(means2d, radii, width, height))
        self.x0, self.y0 = x0, y0
        self.wx = (x1 - x0 + 1).clamp_min(0)
        self.hy = (y1 - y0 + 1).clamp_min(0)
        self.counts = self.wx.long() * self.hy.long()
        self.image_ids = image_ids
        self.height = height


def _candidates(fp: _Footprints, sp, ent: torch.Tensor, width: int):
    """Candidate pairs of entries ``ent``: entry ids, pixel keys and alpha (float).

    Rows of each bounding box are enumerated first. On a row at offset ``dy`` the region
    ``alpha >= 1/255``, i.e. ``sigma <= ln(255 o)``, is an interval of pixel centres (the
    roots of ``0.5 a dx^2 + b dy dx + 0.5 c dy^2 = ln(255 o)``), so only those pixels become
    pairs: about pi/4 of the box, found with no integer division. A 1e-3 px slack keeps
    round-off from dropping a boundary pixel; the caller's alpha test is exact.
    """
    mx, my, ca, cb, cc, op = sp
    dtype, dev = mx.dtype, mx.device
    i32 = torch.int32
    hy = _take(fp.hy, ent)
    row_of = torch.repeat_interleave(hy)
    n_rows = row_of.numel()
    row_ent = _take(ent, row_of)
    ly = torch.arange(n_rows, dtype=i32, device=dev) - _take(
        torch.cumsum(hy, 0, dtype=i32) - hy, row_of
    )
    py = _take(fp.y0, row_ent) + ly
    mx_r, a_r, o_r = _take(mx, row_ent), _take(ca, row_ent), _take(op, row_ent)
    dy = _take(my, row_ent) - (py.to(dtype) + 0.5)
    bdy = _take(cb, row_ent) * dy
    cdy2 = 0.5 * _take(cc, row_ent) * dy * dy
    level = torch.log(o_r * 255.0)
    disc = bdy * bdy - 2.0 * a_r * (cdy2 - level)
    half = torch.sqrt(disc.clamp_min(0.0)) / a_r
    centre = mx_r + bdy / a_r  # pixel-centre x where sigma is smallest on this row
    bx0 = _take(fp.x0, row_ent).to(dtype)
    bx1 = bx0 + _take(fp.wx, row_ent).to(dtype) - 1
    j0 = torch.ceil(centre - half - (0.5 + 1e-3)).clamp(bx0, bx1 + 1)
    j1 = torch.floor(centre + half - (0.5 - 1e-3)).clamp(bx0 - 1, bx1)
    cnt = torch.where(disc >= 0, (j1 - j0 + 1).clamp_min(0), 0.0).to(i32)
    j0i = j0.to(i32)

    pair_of = torch.repeat_interleave(cnt)
    m = pair_of.numel()
    lx = torch.arange(m, dtype=i32, device=dev) - _take(
        torch.cumsum(cnt, 0, dtype=i32) - cnt, pair_of
    )
    rep = _take(row_ent, pair_of)
    img_base = (_take(fp.image_ids, row_ent) * (width * fp.height)).to(i32)
    key = _take(img_base + py * width + j0i, pair_of) + lx
    # sigma = dx (0.5 a dx + b dy) + 0.5 c dy^2 with dx = mean_x - (j + 0.5)
    dx = _take(mx_r - (j0 + 0.5), pair_of) - lx.to(dtype)
    sigma = dx * (_take(0.5 * a_r, pair_of) * dx + _take(bdy, pair_of)) + _take(cdy2, pair_of)
    alpha = (_take(o_r, pair_of) * torch.exp(-sigma)).clamp_max_(ALPHA_MAX)
    return rep, key, sigma, alpha


def _falloff(sp, rep, px, py):
    """Per-pair ``dx, dy, sigma`` with gsplat's conventions (delta = mean - pixel centre)."""
    mx, my, ca, cb, cc = sp[:5]
    dx = _take(mx, rep) - (px.to(mx.dtype) + 0.5)
    dy = _take(my, rep) - (py.to(mx.dtype) + 0.5)
    sigma = 0.5 * (_take(ca, rep) * dx * dx + _take(cc, rep) * dy * dy) + _take(cb, rep) * dx * dy
    return dx, dy, sigma


def _segments(key_sorted: torch.Tensor):
    """Start flags, segment ids and segment keys of a sorted key array."""
    first = torch.ones_like(key_sorted, dtype=torch.bool)
    torch.ne(key_sorted[1:], key_sorted[:-1], out=first[1:])
    seg_id = torch.cumsum(first, 0) - 1
    return first, seg_id, key_sorted[first]


def _segmented_prefix(values: torch.Tensor, running: torch.Tensor, first, seg_id, seg_key):
    """Exclusive per-pixel prefix sums (float64) of ``values`` (sorted by pixel) + ``running``."""
    v = values.double()
    cs = torch.cumsum(v, 0)
    excl = cs - v
    base = _take(running, seg_key) - excl[first]
    return excl + _take(base, seg_id)


def _alive_mask(done: torch.Tensor, fp: _Footprints, ent, n_images, width, height):
    """Entries whose footprint still holds an unfinished pixel (integral-image test)."""
    open_px = (~done).view(n_images, height, width).to(torch.int32)
    integ = torch.zeros((n_images, height + 1, width + 1), dtype=torch.int32, device=done.device)
    integ[:, 1:, 1:] = open_px.cumsum(1).cumsum(2)
    flat = integ.view(-1)
    w1 = width + 1
    img = _take(fp.image_ids, ent).to(torch.int32) * ((height + 1) * w1)
    x0, y0 = _take(fp.x0, ent), _take(fp.y0, ent)
    x1, y1 = x0 + _take(fp.wx, ent), y0 + _take(fp.hy, ent)
    total = _take(flat, img + y1 * w1 + x1) - _take(flat, img + y0 * w1 + x1)
    total = total - _take(flat, img + y1 * w1 + x0) + _take(flat, img + y0 * w1 + x0)
    return total > 0


class _Compositor:
    """Front-to-back compositing state of the forward pass: colour, log-transmittance, finished
    pixels and the composited (pixel, entry) pairs of every batch (kept for the backward)."""

    def __init__(self, sp, cols, fp, n_images, width, height):
        dev = sp[0].device
        n_pix = n_images * width * height
        self.sp, self.cols, self.fp, self.width = sp, cols, fp, width
        self.acc = torch.zeros((len(cols), n_pix), dtype=torch.float64, device=dev)
        self.log_t = torch.zeros(n_pix, dtype=torch.float64, device=dev)
        self.done: torch.Tensor | None = None
        self.chunks: list[tuple[torch.Tensor, torch.Tensor]] = []

    def run(self, ent: torch.Tensor) -> None:
        """Composite the entries ``ent`` (depth-sorted, behind everything composited so far)."""
        sp, done = self.sp, self.done
        rep, key, sigma, alpha = _candidates(self.fp, sp, ent, self.width)
        if rep.numel() == 0:
            return
        keep = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
        if done is not None:
            keep &= ~_take(done, key)
        idx = keep.nonzero().squeeze(1)
        if idx.numel() == 0:
            return
        key, perm = torch.sort(_take(key, idx), stable=True)
        idx = _take(idx, perm)
        rep, alpha = _take(rep, idx), _take(alpha, idx)

        la = torch.log1p(-alpha)
        first, seg_id, seg_key = _segments(key)
        log_te = _segmented_prefix(la, self.log_t, first, seg_id, seg_key)
        stop = (log_te + la) <= _LOG_T_MIN
        if bool(stop.any()):
            if done is None:
                done = self.done = torch.zeros_like(self.log_t, dtype=torch.bool)
            done[key[stop]] = True
            kidx = (~stop).nonzero().squeeze(1)
            rep, key, alpha, la, log_te = (_take(t, kidx) for t in (rep, key, alpha, la, log_te))
        w = alpha.double() * torch.exp(log_te)
        for d, col in enumerate(self.cols):
            self.acc[d].index_add_(0, key, w * _take(col, rep))
        self.log_t.index_add_(0, key, la.double())
        self.chunks.append((key, rep))


class _Rasterize(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        means2d,
        conics,
        colors,
        opacities,
        backgrounds,
        radii,
        image_ids,
        n_images,
        width,
        height,
        chunk_pairs,
    ):
        dev, dtype = means2d.device, means2d.dtype
        n_ch = colors.shape[-1]
        hw = width * height
        n_pix = n_images * hw
        n_ent = means2d.shape[0]
        if n_pix >= 2**31:
            raise ValueError(f"rasterize_pixels: {n_pix} pixels exceed the int32 pixel index")

        sp = tuple(t.contiguous() for t in (*means2d.unbind(-1), *conics.unbind(-1), opacities))
        cols = tuple(c.contiguous() for c in colors.unbind(-1))
        fp = _Footprints(means2d, radii, image_ids, width, height)

        comp = _Compositor(sp, cols, fp, n_images, width, height)
        raw_cum = torch.cumsum(fp.counts, 0).cpu() if n_ent else None
        budget = max(int(chunk_pairs), hw)
        live_frac = 1.0
        start = 0
        while start < n_ent:
            prev = int(raw_cum[start - 1]) if start else 0
            # Scale the next chunk by the share of candidates that survived the last one so a
            # chunk enumerates about ``budget`` pairs once most pixels are finished.
            target = prev + int(budget / max(live_frac, 1.0 / 64))
            end = int(torch.searchsorted(raw_cum, torch.tensor([target]), right=True))
            end = min(max(end, start + 1), n_ent)
            ent = torch.arange(start, end, dtype=torch.int32, device=dev)
            raw = int(raw_cum[end - 1]) - prev
            start = end
            if comp.done is not None:
                ent = ent[_alive_mask(comp.done, fp, ent, n_images, width, height)]
            if ent.numel() == 0:
                live_frac = 0.0
                continue
            cum = torch.cumsum(_take(fp.counts, ent), 0)
            total = int(cum[-1])
            live_frac = total / max(raw, 1)
            # The survival estimate can undershoot; never enumerate much more than the budget.
            n_sub = max(1, round(total / budget))
            if n_sub == 1:
                comp.run(ent)
            else:
                bounds = torch.searchsorted(
                    cum, torch.arange(1, n_sub, device=dev) * (total / n_sub)
                )
                for sub in torch.tensor_split(ent, bounds.cpu()):
                    if sub.numel():
                        comp.run(sub)

        acc, log_t, chunks = comp.acc, comp.log_t, comp.chunks
        t_final = torch.exp(log_t)
        out = acc
        if backgrounds is not None:
            bg = backgrounds.detach().double().t().unsqueeze(-1)  # [D, I, 1]
            out = acc + (t_final.view(1, n_images, hw) * bg).reshape(n_ch, n_pix)
        render = out.t().reshape(n_images, height, width, n_ch).to(dtype)
        alphas = (1.0 - t_final).view(n_images, height, width, 1).to(dtype)

        ctx.save_for_backward(means2d, conics, colors, opacities, backgrounds)
        ctx.chunks = chunks
        ctx.t_final = t_final
        ctx.acc = acc
        ctx.meta = (n_images, width, height)
        return render, alphas

    @staticmethod
    @once_differentiable
    def backward(ctx, g_render, g_alpha):
        means2d, conics, colors, opacities, backgrounds = ctx.saved_tensors
        n_images, width, height = ctx.meta
        dtype, dev = means2d.dtype, means2d.device
        hw = width * height
        n_pix = n_images * hw
        n_ch = colors.shape[-1]
        n_ent = means2d.shape[0]
        t_final, acc = ctx.t_final, ctx.acc

        g_c = g_render.reshape(n_pix, n_ch).t().double()  # [D, P]
        g_a = g_alpha.reshape(n_pix).double()
        # K_p = g . C_fg + T_N (g . bg) - gA T_N: the part of dL/da_i shared by a pixel.
        k_pix = (g_c * acc).sum(0) - g_a * t_final
        g_bg = None
        if backgrounds is not None:
            bg = backgrounds.double().t().unsqueeze(-1)  # [D, I, 1]
            gcb = (g_c.reshape(n_ch, n_images, hw) * bg).sum(0).view(n_pix)
            k_pix = k_pix + t_final * gcb
            if ctx.needs_input_grad[4]:
                g_bg = (g_c.reshape(n_ch, n_images, hw) * t_final.view(1, n_images, hw)).sum(-1)
                g_bg = g_bg.t().to(backgrounds.dtype)

        sp = tuple(t.contiguous() for t in (*means2d.unbind(-1), *conics.unbind(-1), opacities))
        ca, cb, cc, op = sp[2], sp[3], sp[4], sp[5]
        cols = tuple(c.contiguous() for c in colors.unbind(-1))
        g_cols = tuple(g_c[d].to(dtype).contiguous() for d in range(n_ch))

        v = torch.zeros((6 + n_ch, n_ent), dtype=dtype, device=dev)
        log_t = torch.zeros(n_pix, dtype=torch.float64, device=dev)
        run_q = torch.zeros(n_pix, dtype=torch.float64, device=dev)
        n_chunks = len(ctx.chunks)
        for ci, (key, rep) in enumerate(ctx.chunks):
            pin = key if n_images == 1 else torch.remainder(key, hw)
            py = torch.div(pin, width, rounding_mode="floor")
            px = pin - py * width
            dx, dy, sigma = _falloff(sp, rep, px, py)
            vis = torch.exp(-sigma)
            ov = _take(op, rep) * vis
            alpha = ov.clamp_max(ALPHA_MAX)
            la = torch.log1p(-alpha)
            first, seg_id, seg_key = _segments(key)
            t_excl = torch.exp(_segmented_prefix(la, log_t, first, seg_id, seg_key)).to(dtype)
            w = alpha * t_excl

            gdot = torch.zeros_like(w)
            for d in range(n_ch):
                gd = _take(g_cols[d], key)
                v[6 + d].index_add_(0, rep, w * gd)
                gdot += gd * _take(cols[d], rep)
            q = w * gdot
            s_incl = _segmented_prefix(q, run_q, first, seg_id, seg_key) + q
            # (K_p - S_i) in float64: both are sums over the pixel and nearly cancel at the back.
            rest = (_take(k_pix, key) - s_incl).to(dtype)
            v_alpha = t_excl * gdot - rest / (1.0 - alpha)

            # min(0.999, .) passes no gradient where it clamps (as gsplat).
            v_sig = torch.where(ov <= ALPHA_MAX, -ov * v_alpha, 0.0)
            v_op = torch.where(ov <= ALPHA_MAX, vis * v_alpha, 0.0)
            a_r, b_r, c_r = _take(ca, rep), _take(cb, rep), _take(cc, rep)
            sdx, sdy = v_sig * dx, v_sig * dy
            v[0].index_add_(0, rep, a_r * sdx + b_r * sdy)
            v[1].index_add_(0, rep, b_r * sdx + c_r * sdy)
            v[2].index_add_(0, rep, 0.5 * sdx * dx)
            v[3].index_add_(0, rep, sdx * dy)
            v[4].index_add_(0, rep, 0.5 * sdy * dy)
            v[5].index_add_(0, rep, v_op)
            if ci + 1 < n_chunks:
                log_t.index_add_(0, key, la.double())
                run_q.index_add_(0, key, q.double())

        g_means2d = v[0:2].t() if ctx.needs_input_grad[0] else None
        g_conics = v[2:5].t() if ctx.needs_input_grad[1] else None
        g_colors = v[6:].t() if ctx.needs_input_grad[2] else None
        g_opac = v[5] if ctx.needs_input_grad[3] else None
        return (g_means2d, g_conics, g_colors, g_opac, g_bg) + (None,) * 6
