"""The pure-PyTorch backend: projection -> SH colour -> sparse compositing.

Runs on any device torch runs on, needs no compilation, and follows gsplat 1.5's
``rasterization(..., packed=False)`` semantics so both backends give the same images,
gradients and ``meta`` (``means2d [..., C, N, 2]`` with gradients, ``radii [..., C, N, 2]``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gs_core.rendering.projection import project_gaussians
from gs_core.rendering.rasterization import DEFAULT_CHUNK_PAIRS, rasterize_pixels
from gs_core.rendering.sh import sh_to_rgb


def render_torch(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    sh: torch.Tensor,
    sh_degree: int,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    backgrounds: torch.Tensor | None,
    mode: str,
    rasterize_mode: str = "classic",
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
    compositor: str = "torch",
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """gsplat-compatible rasterisation: returns ``colors [..., C, H, W, D]``, ``alphas``, ``meta``.

    ``D`` is 3 for "RGB", 4 for "RGB+D"/"RGB+ED" (depth last), 1 for "D"/"ED". ``backgrounds``
    is ``[..., C, 3]`` (RGB only; depth channels composite over 0) or ``None``.
    ``compositor`` "numba" composites with :mod:`gs_core.rendering.numba_compositing` (CPU,
    no gradients: same images, several times faster); "torch" is differentiable.
    """
    batch = tuple(means.shape[:-2])
    n = means.shape[-2]
    c = viewmats.shape[-3]
    b = math.prod(batch)
    n_img = b * c

    proj = project_gaussians(
        means,
        quats,
        scales,
        opacities,
        viewmats,
        Ks,
        width,
        height,
        eps2d=eps2d,
        near_plane=near_plane,
        far_plane=far_plane,
        radius_clip=radius_clip,
        antialiased=rasterize_mode == "antialiased",
    )

    with torch.no_grad():
        radii_flat = proj.radii.reshape(-1, 2)
        flat = (radii_flat > 0).all(-1).nonzero().squeeze(1)
        order = torch.argsort(proj.depths.detach().reshape(-1)[flat], stable=True)
        flat = flat[order]
        img = torch.div(flat, n, rounding_mode="floor")
        gid = flat - img * n
        src = torch.div(img, c, rounding_mode="floor") * n + gid  # row of the Gaussian in [B*N]

    means2d_v = proj.means2d.reshape(-1, 2)[flat]
    conics_v = proj.conics.reshape(-1, 3)[flat]
    opac_v = proj.opacities.reshape(-1)[flat]

    feats = []
    with_rgb = mode in ("RGB", "RGB+D", "RGB+ED")
    with_depth = mode != "RGB"
    if with_rgb:
        rot = viewmats[..., :3, :3]
        campos = -(rot.transpose(-1, -2) @ viewmats[..., :3, 3:]).squeeze(-1)  # [..., C, 3]
        dirs = means.reshape(-1, 3)[src] - campos.reshape(-1, 3)[img]
        coeffs = sh.reshape(b * n, sh.shape[-2], 3)[src]
        feats.append(sh_to_rgb(sh_degree, dirs, coeffs))
    if with_depth:
        feats.append(proj.depths.reshape(-1, 1)[flat])
    colors_v = torch.cat(feats, -1) if len(feats) > 1 else feats[0]

    bg = None
    if backgrounds is not None and with_rgb:
        bg = backgrounds.reshape(n_img, 3).to(means.dtype)
        if with_depth:
            bg = torch.cat([bg, bg.new_zeros(n_img, 1)], -1)

    if compositor == "numba":
        from gs_core.rendering.numba_compositing import composite_numba

        render, alphas = composite_numba(
            means2d_v, conics_v, colors_v, opac_v, radii_flat[flat], img, n_img, width, height,
            backgrounds=bg,
        )  # fmt: skip
    else:
        render, alphas = rasterize_pixels(
            means2d_v,
            conics_v,
            colors_v,
            opac_v,
            radii_flat[flat],
            img,
            n_img,
            width,
            height,
            backgrounds=bg,
            chunk_pairs=chunk_pairs,
        )
    render = render.reshape(*batch, c, height, width, render.shape[-1])
    alphas = alphas.reshape(*batch, c, height, width, 1)
    if mode in ("ED", "RGB+ED"):
        render = torch.cat([render[..., :-1], render[..., -1:] / alphas.clamp_min(1e-10)], -1)

    meta: dict[str, Any] = {
        "radii": proj.radii,
        "means2d": proj.means2d,
        "depths": proj.depths,
        "conics": proj.conics,
        "opacities": proj.opacities,
        "compensations": proj.compensations,
        "batch_ids": None,
        "camera_ids": None,
        "gaussian_ids": None,
        "n_visible": int(flat.numel()),
        "width": width,
        "height": height,
        "n_batches": b,
        "n_cameras": c,
    }
    return render, alphas, meta
